//! Steward's integration suite: the real server over HTTP, on SQLite and on PostgreSQL.

mod accounts;
mod api;
mod approvals;
mod audit;
mod authz;
mod classification;
mod cli;
mod cli_habits;
#[path = "../../../steward-core/tests/support/cyclonedx_schema.rs"]
mod cyclonedx_schema;
mod detect;
mod discovery;
mod dual_control;
mod erasure;
mod execution;
mod governance;
mod helpers;
mod incidents;
mod inventory;
mod inventory_sources;
mod lifecycle;
mod metrics;
mod mlflow;
mod paging;
mod pipelines;
mod portal;
mod portal_http;
mod sso;
mod tenants;
mod times;

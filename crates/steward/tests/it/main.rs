//! Steward's integration suite: the real server over HTTP, on SQLite and on PostgreSQL.

mod api;
mod approvals;
mod audit;
mod classification;
mod cli;
#[path = "../../../steward-core/tests/support/cyclonedx_schema.rs"]
mod cyclonedx_schema;
mod detect;
mod discovery;
mod execution;
mod governance;
mod helpers;
mod incidents;
mod inventory;
mod inventory_sources;
mod lifecycle;
mod metrics;
mod mlflow;
mod pipelines;

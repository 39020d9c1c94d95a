//! Steward's integration suite: the real server over HTTP, on SQLite and on PostgreSQL.

mod api;
mod approvals;
mod audit;
mod classification;
mod cli;
mod detect;
mod execution;
mod governance;
mod helpers;
mod incidents;
mod lifecycle;
mod metrics;
mod mlflow;
mod pipelines;

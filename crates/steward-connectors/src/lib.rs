//! Steward's connections to other systems: the signatures webhooks carry — those Steward puts on
//! what it sends ([`standard_webhooks`]) and those it checks on what it receives ([`github`],
//! [`gitlab`]) — and the executors that run implementation steps behind one trait
//! ([`executor::Executor`]): [`command`] and [`webhook`] so far; MLflow and Kubernetes drop in
//! beside them.

pub mod command;
pub mod executor;
pub mod github;
pub mod gitlab;
pub mod mlflow;
pub mod standard_webhooks;
pub mod webhook;

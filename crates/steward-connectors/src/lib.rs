//! Steward's connections to other systems: the signatures webhooks carry — those Steward puts on
//! what it sends ([`standard_webhooks`]) and those it checks on what it receives ([`github`],
//! [`gitlab`]) — and the executors that run implementation steps behind one trait
//! ([`executor::Executor`]): [`command`], [`webhook`] and [`mlflow`]'s; and the clients of other
//! systems: [`mlflow`] (the one MLflow client, which discovery's registry scan uses too) and
//! [`prometheus`], which verification reads evidence through.

pub mod command;
pub mod executor;
pub mod github;
pub mod gitlab;
pub mod mlflow;
pub mod prometheus;
pub mod standard_webhooks;
pub mod webhook;

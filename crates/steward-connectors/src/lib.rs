//! Steward's connections to other systems. For now the signatures webhooks carry: those Steward
//! puts on what it sends ([`standard_webhooks`]) and those it checks on what it receives
//! ([`github`]). The executors of the execution issue (MLflow, webhook, command) will live here,
//! behind one trait, so a Kubernetes executor drops in beside them.

pub mod github;
pub mod gitlab;
pub mod standard_webhooks;

//! The Steward domain, pure.
//!
//! This crate owns the rules: what a valid change request is, how it is classified, how its risk
//! is scored, who must approve it, when its approval is overdue, and which lifecycle transitions
//! are legal. It does no IO, no async, no SQL and no HTTP: callers hand it facts (targets, catalog
//! items, history, the clock) and it returns decisions plus the events to record. That keeps every
//! decision reproducible in a unit test and explainable to an auditor.

pub mod account;
pub mod approval;
pub mod catalog;
pub mod change;
pub mod classify;
pub mod deployment;
pub mod detect;
pub mod execution;
pub mod gate;
pub mod incident;
pub mod inventory;
pub mod measures;
pub mod metrics;
pub mod names;
pub mod policy;
pub mod risk;
pub mod role;
pub mod schedule;
pub mod sla;
pub mod sso;
pub mod state;
pub mod submission;
pub mod target;
pub mod time;

pub use names::{ChangeId, NameError, TargetName, TenantId, UserName, WindowName};
pub use role::{Role, Roles};

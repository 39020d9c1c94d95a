//! Executors: what runs a change's implementation steps, and undoes them.
//!
//! Every executor follows the same three-phase contract so the execution worker (to come with the
//! rest of the execution issue) can treat them alike, and a Kubernetes executor drops in beside
//! these: [`Executor::snapshot`] records, *before* anything changes, what undoing will need;
//! [`Executor::apply`] performs the step; [`Executor::undo`] restores from the snapshot. Each
//! phase returns an [`Outcome`] with the captured output, for the step's audit events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// Output kept per phase; anything longer is cut (and says so).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether the phase did what it should.
    pub ok: bool,
    /// What it printed or answered, cut at [`MAX_OUTPUT_BYTES`].
    pub output: String,
    /// Structured facts: exit status, HTTP status, attempts, duration.
    pub detail: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The step's definition cannot run (an empty program, a bad URL).
    #[error("the step is not runnable: {0}")]
    Invalid(String),
    /// The system the step talks to could not be reached, or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
}

/// One kind of implementation step.
pub trait Executor {
    /// What undoing the step will need, taken before it runs.
    fn snapshot(&self) -> impl Future<Output = Result<Value, ExecError>> + Send;
    /// Runs the step.
    fn apply(&self) -> impl Future<Output = Result<Outcome, ExecError>> + Send;
    /// Undoes the step from its snapshot.
    fn undo(&self, snapshot: &Value) -> impl Future<Output = Result<Outcome, ExecError>> + Send;
}

/// Cuts `text` to [`MAX_OUTPUT_BYTES`] on a character boundary.
pub(crate) fn bounded(text: &str) -> String {
    if text.len() <= MAX_OUTPUT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… {} more bytes cut]", &text[..end], text.len() - end)
}

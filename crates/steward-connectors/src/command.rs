//! The command executor: a program with arguments — never a shell — with a timeout, its output
//! captured. Its undo is a second command the change declares; the snapshot records it, so what
//! undoes the step is fixed before the step runs.

use crate::executor::{ExecError, Executor, Outcome, bounded};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandStep {
    pub run: Invocation,
    /// How to undo it; a step without one has no rollback path.
    pub undo: Option<Invocation>,
    pub timeout_seconds: u64,
}

async fn invoke(call: &Invocation, timeout: Duration) -> Result<Outcome, ExecError> {
    if call.program.trim().is_empty() {
        return Err(ExecError::Invalid("the program is empty".into()));
    }
    let started = Instant::now();
    let child = tokio::process::Command::new(&call.program)
        .args(&call.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExecError::Invalid(format!("cannot start {}: {e}", call.program)))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Ok(Outcome {
            ok: false,
            output: format!(
                "{} did not finish within {}s and was killed",
                call.program,
                timeout.as_secs()
            ),
            detail: json!({"timed_out": true, "seconds": started.elapsed().as_secs_f64()}),
        }),
        Ok(Err(e)) => Err(ExecError::Unreachable(format!(
            "{} failed to run: {e}",
            call.program
        ))),
        Ok(Ok(output)) => {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !stderr.is_empty() {
                text.push_str(&stderr);
            }
            Ok(Outcome {
                ok: output.status.success(),
                output: bounded(&text),
                detail: json!({
                    "exit_code": output.status.code(),
                    "seconds": started.elapsed().as_secs_f64(),
                }),
            })
        }
    }
}

impl Executor for CommandStep {
    async fn snapshot(&self) -> Result<Value, ExecError> {
        Ok(json!({ "undo": self.undo }))
    }

    async fn apply(&self) -> Result<Outcome, ExecError> {
        invoke(&self.run, Duration::from_secs(self.timeout_seconds.max(1))).await
    }

    async fn undo(&self, snapshot: &Value) -> Result<Outcome, ExecError> {
        let undo: Option<Invocation> = serde_json::from_value(snapshot["undo"].clone())
            .map_err(|e| ExecError::Invalid(format!("the snapshot's undo is unreadable: {e}")))?;
        let Some(undo) = undo else {
            return Err(ExecError::Invalid(
                "the step declared no undo command".into(),
            ));
        };
        invoke(&undo, Duration::from_secs(self.timeout_seconds.max(1))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(program: &str, args: &[&str]) -> Invocation {
        Invocation {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn runs_without_a_shell_captures_output_and_undoes_from_the_snapshot() {
        let step = CommandStep {
            run: call("echo", &["moved champion to 7; $(rm -rf /) stays text"]),
            undo: Some(call("echo", &["moved champion back to 6"])),
            timeout_seconds: 10,
        };
        let snapshot = step.snapshot().await.expect("snapshot");
        let applied = step.apply().await.expect("runs");
        assert!(applied.ok);
        assert_eq!(
            applied.output,
            "moved champion to 7; $(rm -rf /) stays text\n"
        );
        assert_eq!(applied.detail["exit_code"], 0);
        let undone = step.undo(&snapshot).await.expect("undoes");
        assert_eq!(undone.output, "moved champion back to 6\n");
    }

    #[tokio::test]
    async fn failures_timeouts_and_missing_programs_are_reported() {
        let failing = CommandStep {
            run: call("false", &[]),
            undo: None,
            timeout_seconds: 10,
        };
        let outcome = failing.apply().await.expect("ran");
        assert!(!outcome.ok);
        assert_eq!(outcome.detail["exit_code"], 1);
        let err = failing
            .undo(&failing.snapshot().await.expect("snapshot"))
            .await
            .expect_err("no undo");
        assert!(err.to_string().contains("no undo"), "{err}");

        let slow = CommandStep {
            run: call("sleep", &["30"]),
            undo: None,
            timeout_seconds: 1,
        };
        let started = Instant::now();
        let outcome = slow.apply().await.expect("ran");
        assert!(
            !outcome.ok && outcome.detail["timed_out"] == true,
            "{outcome:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "killed, not waited for"
        );

        let missing = CommandStep {
            run: call("/no/such/program", &[]),
            undo: None,
            timeout_seconds: 1,
        };
        let err = missing.apply().await.expect_err("cannot start");
        assert!(
            err.to_string().contains("cannot start /no/such/program"),
            "{err}"
        );
    }
}

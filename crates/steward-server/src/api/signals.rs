//! What alert intake, the detectors and hand-opened incidents share about the signals they
//! raise: which labels may name the affected target, and a fresh key for a signal that brings
//! none of its own.

use chrono::{DateTime, Utc};

/// Label names whose value may name the affected target, in order of preference.
pub(super) const TARGET_LABELS: &[&str] = &["target", "deployment", "model", "service", "job"];

/// A key no other signal has, for one that brings none (a hand-opened incident, a PagerDuty
/// trigger without `dedup_key`, an external change record): the time in milliseconds and 8
/// random bytes.
pub(super) fn fresh_signal_key(now: DateTime<Utc>) -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!(
        "{}-{}",
        now.timestamp_millis(),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

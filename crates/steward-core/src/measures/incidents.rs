//! What a period's incidents add up to, per severity: how many opened, how many were resolved,
//! and how long restoring took — the median and 90th percentile of the time from opening to
//! resolution (the same span the incident metrics' mean time to resolve measures).

use super::Spread;
use crate::incident::{Incident, Severity};
use serde::{Deserialize, Serialize};

/// The severities in the order every figure lists them, the worst first.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Sev1,
    Severity::Sev2,
    Severity::Sev3,
    Severity::Sev4,
];

/// The incidents of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeverityFigures {
    pub severity: Severity,
    /// Opened in the period.
    pub incidents: usize,
    /// Time to restore (opened → resolved) of those resolved; its `count` is how many were.
    pub time_to_restore: Spread,
}

/// One row per severity, [`SEVERITIES`] order, zero included, over `incidents` (the caller
/// picks those opened in the period).
pub fn by_severity(incidents: &[Incident]) -> Vec<SeverityFigures> {
    SEVERITIES
        .into_iter()
        .map(|severity| {
            let of: Vec<&Incident> = incidents
                .iter()
                .filter(|i| i.severity == severity)
                .collect();
            SeverityFigures {
                severity,
                incidents: of.len(),
                time_to_restore: Spread::of(
                    of.iter()
                        .filter_map(|i| i.resolved_at.map(|at| at - i.opened_at)),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use serde_json::json;

    fn opened() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("time")
    }

    fn incident(n: u64, severity: &str, restored_after: Option<Duration>) -> Incident {
        let resolved = restored_after.map(|d| opened() + d);
        serde_json::from_value(json!({
            "id": format!("INC-{n}"), "tenant": "default", "title": "errors", "severity": severity,
            "state": if resolved.is_some() { "resolved" } else { "triggered" },
            "targets": [], "signals": [], "timeline": [], "owner": null, "suspects": [],
            "change_related": false, "containment": null, "review": null, "problem": null,
            "started_at": opened(), "opened_at": opened(), "acknowledged_at": null,
            "contained_at": null, "resolved_at": resolved, "closed_at": null,
            "updated_at": opened(), "version": 1,
        }))
        .expect("incident")
    }

    #[test]
    fn every_severity_is_listed_with_its_time_to_restore() {
        let incidents = [
            incident(1, "sev1", Some(Duration::minutes(30))),
            incident(2, "sev1", Some(Duration::minutes(90))),
            incident(3, "sev1", None),
            incident(4, "sev3", Some(Duration::hours(5))),
        ];
        let rows = by_severity(&incidents);
        assert_eq!(
            rows.iter().map(|r| r.severity).collect::<Vec<_>>(),
            SEVERITIES
        );
        let sev1 = rows[0];
        assert_eq!(sev1.incidents, 3);
        assert_eq!(sev1.time_to_restore.count, 2, "one is not resolved");
        assert_eq!(sev1.time_to_restore.p50_minutes, Some(30.0));
        assert_eq!(sev1.time_to_restore.p90_minutes, Some(90.0));
        assert_eq!(rows[1].incidents, 0);
        assert_eq!(rows[1].time_to_restore.p50_minutes, None);
        assert_eq!(rows[2].time_to_restore.p50_minutes, Some(300.0));
        assert_eq!(rows[3].incidents, 0);
    }
}

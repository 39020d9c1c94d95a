//! Approval SLA clocks: when a change's approval is due, by type.
//!
//! Standard: 1 day. Emergency: 2 hours. Normal: 3 business days, counted in UTC and skipping
//! Saturdays and Sundays (a holiday calendar per tenant is future work, noted in ARCHITECTURE.md).

use crate::classify::ChangeType;
use chrono::{DateTime, Datelike, Duration, Utc, Weekday};

pub fn approval_deadline(change_type: ChangeType, submitted_at: DateTime<Utc>) -> DateTime<Utc> {
    match change_type {
        ChangeType::Standard => submitted_at + Duration::days(1),
        ChangeType::Emergency => submitted_at + Duration::hours(2),
        ChangeType::Normal => add_business_days(submitted_at, 3),
    }
}

fn is_weekend(t: DateTime<Utc>) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Adds whole business days. A submission made at the weekend starts counting on Monday 00:00.
fn add_business_days(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let mut t = start;
    if is_weekend(t) {
        while is_weekend(t) {
            t += Duration::days(1);
        }
        t = t
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc())
            .unwrap_or(t);
    }
    let mut left = days;
    while left > 0 {
        t += Duration::days(1);
        if !is_weekend(t) {
            left -= 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn deadlines_by_type() {
        let check = |t, submitted: &str, due: &str| {
            assert_eq!(
                approval_deadline(t, at(submitted)),
                at(due),
                "{t} {submitted}"
            );
        };
        // 2026-11-23 is a Monday.
        check(
            ChangeType::Standard,
            "2026-11-23T10:00:00Z",
            "2026-11-24T10:00:00Z",
        );
        check(
            ChangeType::Emergency,
            "2026-11-23T23:30:00Z",
            "2026-11-24T01:30:00Z",
        );
        check(
            ChangeType::Normal,
            "2026-11-23T10:00:00Z",
            "2026-11-26T10:00:00Z",
        );
        // Thursday + 3 business days skips the weekend.
        check(
            ChangeType::Normal,
            "2026-11-26T10:00:00Z",
            "2026-12-01T10:00:00Z",
        );
        // Saturday counts from Monday midnight.
        check(
            ChangeType::Normal,
            "2026-11-28T15:00:00Z",
            "2026-12-03T00:00:00Z",
        );
    }
}

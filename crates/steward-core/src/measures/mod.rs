//! The arithmetic behind Steward's delivery and reliability figures — the numbers the change and
//! incident metrics APIs answer and the portal's dashboard draws: a period cut into weeks,
//! percentiles, and (in the submodules) what changes and incidents add up to over a period.
//!
//! Pure, like the rest of the core: the server reads the records and hands them here, so each
//! figure has one definition, unit-tested, that the API and the dashboard both use.
//!
//! Conventions, chosen to be explainable to an auditor rather than clever:
//! - a period is half-open, `[from, to)`, in UTC;
//! - weeks are seven-day buckets counted from the period's first instant (the last one is cut
//!   short at the period's end), so every record of the period falls in exactly one week;
//! - percentiles are nearest-rank (the smallest observation with at least `p` of the
//!   observations at or below it): every figure reported is a time that really happened, never
//!   an interpolation between two.

pub mod changes;
pub mod incidents;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The longest period the figures are computed over: two years of weekly buckets.
pub const MAX_PERIOD_DAYS: i64 = 731;

/// A stretch of time, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodRefused {
    #[error("the period must end after it starts: pick a `to` later than `from`")]
    Empty,
    #[error("the period is longer than {MAX_PERIOD_DAYS} days: pick a shorter one")]
    TooLong,
}

impl Period {
    /// The period `[from, to)`, refused when it is empty or longer than [`MAX_PERIOD_DAYS`].
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Period, PeriodRefused> {
        if to <= from {
            return Err(PeriodRefused::Empty);
        }
        if to - from > Duration::days(MAX_PERIOD_DAYS) {
            return Err(PeriodRefused::TooLong);
        }
        Ok(Period { from, to })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.to
    }

    /// The period's weeks: seven-day buckets from `from`, the last one ending at `to`.
    pub fn weeks(&self) -> Vec<Period> {
        let mut weeks = Vec::new();
        let mut start = self.from;
        while start < self.to {
            let end = (start + Duration::days(7)).min(self.to);
            weeks.push(Period {
                from: start,
                to: end,
            });
            start = end;
        }
        weeks
    }
}

/// The nearest-rank `p`-quantile (`0 < p ≤ 1`) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// How a set of durations spreads, in minutes: how many, and their median, 90th and 99th
/// percentiles (`None` when there are none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub count: usize,
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    pub p99_minutes: Option<f64>,
}

impl Spread {
    /// The spread of `durations`, in any order.
    pub fn of(durations: impl IntoIterator<Item = Duration>) -> Spread {
        let mut minutes: Vec<f64> = durations
            .into_iter()
            .map(|d| d.num_milliseconds() as f64 / 60_000.0)
            .collect();
        minutes.sort_by(f64::total_cmp);
        Spread {
            count: minutes.len(),
            p50_minutes: percentile(&minutes, 0.50),
            p90_minutes: percentile(&minutes, 0.90),
            p99_minutes: percentile(&minutes, 0.99),
        }
    }
}

/// `part / whole`, `None` when `whole` is zero (a rate of nothing is unknown, not 0%).
pub fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0)
            .single()
            .expect("day")
    }

    #[test]
    fn weeks_cover_the_period_once_and_the_last_is_cut_short() {
        let period = Period::new(day(1), day(18)).expect("period");
        let weeks = period.weeks();
        assert_eq!(
            weeks.iter().map(|w| (w.from, w.to)).collect::<Vec<_>>(),
            [(day(1), day(8)), (day(8), day(15)), (day(15), day(18))]
        );
        // An instant belongs to exactly one week; the period's end to none.
        for at in [day(1), day(7), day(8), day(17)] {
            assert_eq!(weeks.iter().filter(|w| w.contains(at)).count(), 1, "{at}");
        }
        assert!(!period.contains(day(18)));
        assert_eq!(Period::new(day(1), day(8)).expect("p").weeks().len(), 1);
    }

    #[test]
    fn empty_and_overlong_periods_are_refused() {
        assert_eq!(Period::new(day(2), day(2)), Err(PeriodRefused::Empty));
        assert_eq!(Period::new(day(3), day(2)), Err(PeriodRefused::Empty));
        assert_eq!(
            Period::new(day(1), day(1) + Duration::days(MAX_PERIOD_DAYS + 1)),
            Err(PeriodRefused::TooLong)
        );
        assert!(Period::new(day(1), day(1) + Duration::days(MAX_PERIOD_DAYS)).is_ok());
    }

    #[test]
    fn percentiles_are_nearest_rank_observations() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.5), Some(5.0));
        assert_eq!(percentile(&ten, 0.9), Some(9.0));
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
        let four = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&four, 0.5), Some(2.0));
        assert_eq!(percentile(&four, 0.9), Some(4.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.99), Some(99.0));
    }

    #[test]
    fn a_spread_is_in_minutes_whatever_the_order() {
        let spread = Spread::of([
            Duration::hours(2),
            Duration::minutes(30),
            Duration::hours(1),
        ]);
        assert_eq!(spread.count, 3);
        assert_eq!(spread.p50_minutes, Some(60.0));
        assert_eq!(spread.p90_minutes, Some(120.0));
        assert_eq!(spread.p99_minutes, Some(120.0));
        assert_eq!(
            Spread::of([]),
            Spread {
                count: 0,
                p50_minutes: None,
                p90_minutes: None,
                p99_minutes: None
            }
        );
        assert_eq!(Spread::of([Duration::seconds(90)]).p50_minutes, Some(1.5));
    }

    #[test]
    fn a_share_of_nothing_is_unknown() {
        assert_eq!(share(0, 0), None);
        assert_eq!(share(1, 4), Some(0.25));
    }
}

//! Times as people write them: the one parser behind every time a person types into Steward.
//!
//! Three forms are accepted, and only these, so a time means the same thing in every flag, file
//! and field: an RFC 3339 time with an offset (`2026-12-01T22:00:00Z`, `2026-12-01T22:00+05:30`),
//! which is one instant wherever it is read; a date alone (`2026-12-01`), which is that day's
//! midnight in the zone in force; and a local date-time without offset (`2026-12-01T22:00` or
//! `2026-12-01 22:00`, seconds optional), read in the zone in force. Which zone is in force is the
//! caller's business (the CLI's `--tz`, a calendar window's own zone), so the parser is pure and
//! takes it as an argument. Wall-clock times that a DST change makes ambiguous are settled the
//! way the calendar settles them ([`resolve_local`]), so a flag and a window never disagree.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
pub use chrono_tz::Tz;

/// What the accepted forms look like, for messages.
pub const ACCEPTED_FORMS: &str = "2026-12-01T22:00:00Z or 2026-12-01T22:00+05:30 (with an offset), 2026-12-01 (midnight), or 2026-12-01T22:00 / 2026-12-01 22:00 (local time)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("'{0}' is not a time: write {ACCEPTED_FORMS}")]
    Unreadable(String),
    #[error("'{0}' is not an IANA time zone (e.g. Europe/London, Asia/Kolkata, UTC)")]
    UnknownZone(String),
}

/// A time as written, before a zone gives the local forms their instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrittenTime {
    /// With an offset: the same instant in every zone.
    Exact(DateTime<FixedOffset>),
    /// A date alone: its midnight in the zone in force.
    Date(NaiveDate),
    /// A wall-clock time without offset, in the zone in force.
    Local(NaiveDateTime),
}

impl WrittenTime {
    /// Reads one of the accepted forms (surrounding spaces ignored), or says which they are.
    pub fn parse(text: &str) -> Result<WrittenTime, TimeError> {
        let trimmed = text.trim();
        // `2026-12-01 22:00` is the same as `2026-12-01T22:00`; a lower-case `t` or `z` too.
        let mut normal = trimmed.to_ascii_uppercase();
        if normal.as_bytes().get(10) == Some(&b' ') {
            normal.replace_range(10..11, "T");
        }
        if let Ok(exact) = DateTime::parse_from_rfc3339(&normal) {
            return Ok(WrittenTime::Exact(exact));
        }
        // An offset without seconds, `2026-12-01T22:00Z`: RFC 3339 wants the seconds, people don't.
        let offset_form = match normal.strip_suffix('Z') {
            Some(rest) => format!("{rest}+00:00"),
            None => normal.clone(),
        };
        if let Ok(exact) = DateTime::parse_from_str(&offset_form, "%Y-%m-%dT%H:%M%:z") {
            return Ok(WrittenTime::Exact(exact));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(local) = NaiveDateTime::parse_from_str(&normal, format) {
                return Ok(WrittenTime::Local(local));
            }
        }
        if normal.len() == 10
            && let Ok(date) = NaiveDate::parse_from_str(&normal, "%Y-%m-%d")
        {
            return Ok(WrittenTime::Date(date));
        }
        Err(TimeError::Unreadable(trimmed.to_owned()))
    }

    /// The instant it names, a date or local time read in `zone`.
    pub fn instant_in(&self, zone: Tz) -> DateTime<Utc> {
        match self {
            WrittenTime::Exact(exact) => exact.with_timezone(&Utc),
            WrittenTime::Date(date) => resolve_local(zone, midnight(*date), false),
            WrittenTime::Local(local) => resolve_local(zone, *local, false),
        }
    }

    /// As [`WrittenTime::instant_in`], except that a date alone means the last second of that
    /// day: "as things stood on 2026-09-30" includes the 30th.
    pub fn day_end_in(&self, zone: Tz) -> DateTime<Utc> {
        match self {
            WrittenTime::Date(date) => {
                let next = date.succ_opt().unwrap_or(*date);
                resolve_local(zone, midnight(next), false) - Duration::seconds(1)
            }
            other => other.instant_in(zone),
        }
    }

    /// The wall-clock time in `zone`: a time with an offset is converted to it, the local forms
    /// are taken as written.
    pub fn wall_clock_in(&self, zone: Tz) -> NaiveDateTime {
        match self {
            WrittenTime::Exact(exact) => exact.with_timezone(&zone).naive_local(),
            WrittenTime::Date(date) => midnight(*date),
            WrittenTime::Local(local) => *local,
        }
    }
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(chrono::NaiveTime::MIN)
}

/// An IANA zone by name.
pub fn parse_zone(name: &str) -> Result<Tz, TimeError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| TimeError::UnknownZone(name.trim().to_owned()))
}

/// The instant `text` names, dates and local times read in `zone`.
pub fn parse_instant(text: &str, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    Ok(WrittenTime::parse(text)?.instant_in(zone))
}

/// The wall-clock time in `zone` that `text` names (a time with an offset is converted to it).
pub fn parse_wall_clock(text: &str, zone: Tz) -> Result<NaiveDateTime, TimeError> {
    Ok(WrittenTime::parse(text)?.wall_clock_in(zone))
}

/// A local time in `zone`. In a DST gap, the first valid time after it; in a fold (the hour that
/// happens twice), the first for a start and the second for an end, so a window never shrinks.
pub fn resolve_local(zone: Tz, local: NaiveDateTime, end: bool) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..4 {
        let found = zone.from_local_datetime(&probe);
        let t = if end {
            found.latest()
        } else {
            found.earliest()
        };
        if let Some(t) = t {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` read in `zone` is the instant `expected` (RFC 3339), or fails when it is `None`.
    fn check(text: &str, zone: &str, expected: Option<&str>) {
        let zone = parse_zone(zone).expect("zone");
        let got = parse_instant(text, zone).ok();
        let expected = expected.map(|e| DateTime::parse_from_rfc3339(e).expect("expected"));
        assert_eq!(
            got,
            expected.map(|e| e.with_timezone(&Utc)),
            "{text} in {zone}"
        );
    }

    #[test]
    fn the_accepted_forms_name_these_instants() {
        for (text, zone, expected) in [
            // With an offset: the zone in force does not matter.
            (
                "2026-12-01T22:00:00Z",
                "Asia/Kolkata",
                "2026-12-01T22:00:00Z",
            ),
            ("2026-12-01T22:00:00+05:30", "UTC", "2026-12-01T16:30:00Z"),
            (
                "2026-12-01T22:00:00.250-05:00",
                "UTC",
                "2026-12-02T03:00:00.250Z",
            ),
            ("2026-12-01 22:00:00Z", "UTC", "2026-12-01T22:00:00Z"),
            ("2026-12-01t22:00:00z", "UTC", "2026-12-01T22:00:00Z"),
            ("2026-12-01T22:00Z", "Europe/London", "2026-12-01T22:00:00Z"),
            ("2026-12-01T22:00+01:00", "UTC", "2026-12-01T21:00:00Z"),
            // A date: midnight in the zone in force.
            ("2026-12-01", "UTC", "2026-12-01T00:00:00Z"),
            ("2026-12-01", "Asia/Kolkata", "2026-11-30T18:30:00Z"),
            ("2026-07-01", "Europe/London", "2026-06-30T23:00:00Z"),
            ("  2026-12-01 ", "UTC", "2026-12-01T00:00:00Z"),
            // A local date-time, with or without seconds, T or a space.
            ("2026-12-01T22:00", "Europe/London", "2026-12-01T22:00:00Z"),
            ("2026-07-01T22:00", "Europe/London", "2026-07-01T21:00:00Z"),
            (
                "2026-12-01 22:00",
                "America/New_York",
                "2026-12-02T03:00:00Z",
            ),
            ("2026-12-01T22:00:30", "UTC", "2026-12-01T22:00:30Z"),
            ("2026-12-01 22:00:30.5", "UTC", "2026-12-01T22:00:30.5Z"),
            // A DST gap moves forward to the first time that exists; a fold takes the first.
            ("2026-03-29T01:30", "Europe/London", "2026-03-29T01:00:00Z"),
            ("2026-10-25T01:30", "Europe/London", "2026-10-25T00:30:00Z"),
        ] {
            check(text, zone, Some(expected));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "yesterday",
            "2026-12",
            "2026-13-01",
            "2026-02-30",
            "2026-12-01T25:00",
            "2026-12-01T22",
            "01/12/2026",
            "2026-12-01T22:00:00Z trailing",
            "1795000000",
            "2026-1-1",
        ] {
            check(text, "UTC", None);
        }
    }

    #[test]
    fn the_refusal_shows_the_accepted_forms() {
        let error = parse_instant("noon", Tz::UTC).expect_err("refused");
        assert_eq!(
            error.to_string(),
            format!("'noon' is not a time: write {ACCEPTED_FORMS}")
        );
        assert_eq!(
            parse_zone("Mars/Olympus").expect_err("refused").to_string(),
            "'Mars/Olympus' is not an IANA time zone (e.g. Europe/London, Asia/Kolkata, UTC)"
        );
    }

    #[test]
    fn wall_clocks_convert_offsets_into_the_zone() {
        let check = |text: &str, zone: &str, expected: &str| {
            let zone = parse_zone(zone).expect("zone");
            let got = parse_wall_clock(text, zone).expect("parses");
            assert_eq!(got.format("%Y-%m-%dT%H:%M").to_string(), expected, "{text}");
        };
        check("2026-12-24T18:00", "America/New_York", "2026-12-24T18:00");
        check("2026-12-24 18:00", "America/New_York", "2026-12-24T18:00");
        check("2026-12-24", "America/New_York", "2026-12-24T00:00");
        check(
            "2026-12-24T18:00:00Z",
            "America/New_York",
            "2026-12-24T13:00",
        );
        check("2026-12-24T18:00+05:30", "Asia/Kolkata", "2026-12-24T18:00");
    }

    #[test]
    fn a_date_can_mean_the_end_of_its_day() {
        let kolkata = parse_zone("Asia/Kolkata").expect("zone");
        let end = |text: &str, zone: Tz| {
            WrittenTime::parse(text)
                .expect("parses")
                .day_end_in(zone)
                .to_rfc3339()
        };
        assert_eq!(end("2026-09-30", Tz::UTC), "2026-09-30T23:59:59+00:00");
        assert_eq!(end("2026-09-30", kolkata), "2026-09-30T18:29:59+00:00");
        assert_eq!(
            end("2026-09-30T12:00", Tz::UTC),
            "2026-09-30T12:00:00+00:00"
        );
    }
}

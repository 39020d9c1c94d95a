//! Times typed on the command line or written in a file the CLI reads, read by the one parser
//! (`steward_core::time`) and sent to the server as RFC 3339 instants.
//!
//! The API speaks instants only (and, for calendar windows, wall-clock times in the window's own
//! zone), so what an approval binds never depends on where it was typed. The zone a date or a
//! local time is read in is `--tz` (`STEWARD_TZ`, default UTC); a window's times are read in the
//! window's zone by the server, with the same parser.

use anyhow::{Context, anyhow};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use steward_core::time::{Tz, WrittenTime, parse_zone};

/// The zone named by `--tz`.
pub fn zone(name: &str) -> anyhow::Result<Tz> {
    parse_zone(name).map_err(|e| anyhow!("--tz {e}"))
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The instant a time flag names, as RFC 3339 for the API; errors name the flag.
pub fn instant(flag: &str, text: &str, zone: Tz) -> anyhow::Result<String> {
    let written = WrittenTime::parse(text).map_err(|e| anyhow!("{flag} {e}"))?;
    Ok(rfc3339(written.instant_in(zone)))
}

/// As [`instant`], except that a date alone means the end of that day (`--at 2026-09-30`: as
/// things stood on the 30th).
pub fn day_end(flag: &str, text: &str, zone: Tz) -> anyhow::Result<String> {
    let written = WrittenTime::parse(text).map_err(|e| anyhow!("{flag} {e}"))?;
    Ok(rfc3339(written.day_end_in(zone)))
}

/// Rewrites a change request's `window.start` and `window.end` as RFC 3339 instants, dates and
/// local times read in `zone`. Anything that is not a text is left for the server to name.
pub fn normalise_window(document: &mut Value, zone: Tz, source: &str) -> anyhow::Result<()> {
    let Some(window) = document.get_mut("window").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for key in ["start", "end"] {
        if let Some(Value::String(text)) = window.get_mut(key) {
            let written =
                WrittenTime::parse(text).with_context(|| format!("{source}: window.{key}"))?;
            *text = rfc3339(written.instant_in(zone));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_window_in_local_time_becomes_instants() {
        let london = zone("Europe/London").expect("zone");
        let mut doc = json!({"title": "x", "window": {"start": "2026-07-01 22:00", "end": "2026-07-01T23:00:00Z"}});
        normalise_window(&mut doc, london, "change.yaml").expect("normalised");
        assert_eq!(
            doc["window"],
            json!({"start": "2026-07-01T21:00:00Z", "end": "2026-07-01T23:00:00Z"})
        );
        let mut bad = json!({"window": {"start": "soon", "end": 3}});
        let error = normalise_window(&mut bad, london, "change.yaml").expect_err("refused");
        assert!(
            format!("{error:#}").starts_with("change.yaml: window.start: 'soon' is not a time"),
            "{error:#}"
        );
        let mut none = json!({"title": "x"});
        normalise_window(&mut none, london, "change.yaml").expect("nothing to do");
        assert_eq!(none, json!({"title": "x"}));
    }

    #[test]
    fn flags_name_themselves_in_errors() {
        let error = instant("--from", "tomorrow", Tz::UTC).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("--from 'tomorrow' is not a time"),
            "{error}"
        );
        assert_eq!(
            instant("--from", "2026-12-01", Tz::UTC).expect("date"),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(
            day_end("--at", "2026-12-01", Tz::UTC).expect("date"),
            "2026-12-01T23:59:59Z"
        );
        assert!(zone("Moon/Base").is_err());
    }
}

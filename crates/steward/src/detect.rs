//! `steward detect`: try an anomaly detector on history before switching it on.
//!
//! `detect replay` runs locally, without a server: it feeds a CSV of `timestamp,value` rows to
//! the same detector the server runs (`steward_core::detect`) and writes each row back with the
//! detector's score, so a rule's parameters can be tuned on a past incident first. The whole
//! input is checked before anything is written: a malformed row is an error naming its line, and
//! no half-written output is left behind.

use crate::output;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::fmt::Write;
use std::path::PathBuf;
use steward_core::detect::DetectorConfig;
use steward_core::time::{Tz, WrittenTime};

#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Score a CSV of `timestamp,value` rows with a detector; writes
    /// `timestamp,value,anomaly_score`.
    ///
    /// Timestamps are Unix seconds, RFC 3339, or local times read in --tz (the forms every time
    /// flag takes), and are written back as given; an optional header
    /// row `timestamp,value` is skipped. An empty value (or NaN) is a missing sample: it is
    /// written with an empty score and not fed to the detector. Scores are in [0, 1].
    Replay {
        /// The CSV file (`-` reads standard input).
        file: PathBuf,
        /// robust_z (level shifts and spikes) or page_hinkley (change points, slow drifts).
        #[arg(long)]
        detector: String,
        /// The detector's parameters as k=v,k=v, e.g. `enter=5,min_relative_effect=0.02`.
        ///
        /// robust_z: warmup, alpha, enter, confirm, spike, exit, relearn, min_effect,
        /// min_relative_effect, direction (both, up, down), season (seconds, e.g. 86400),
        /// season_buckets, season_alpha. page_hinkley: warmup, alpha, delta, lambda, clip, exit,
        /// min_effect, min_relative_effect, direction, season, season_buckets, season_alpha.
        /// Unset parameters take their defaults.
        #[arg(long, default_value = "")]
        params: String,
        /// Write the scored CSV to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The IANA time zone that timestamps without an offset are read in.
        #[arg(long, env = "STEWARD_TZ", default_value = "UTC")]
        tz: String,
    },
}

pub fn run(command: DetectCommand) -> anyhow::Result<()> {
    match command {
        DetectCommand::Replay {
            file,
            detector,
            params,
            out,
            tz,
        } => {
            let zone = crate::times::zone(&tz)?;
            let config = DetectorConfig::parse(&detector, &params).map_err(anyhow::Error::msg)?;
            let input = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let scored = replay(&config, &input, zone)
                .with_context(|| format!("{} is not a timestamp,value CSV", file.display()))?;
            match out {
                Some(path) => std::fs::write(&path, scored)
                    .with_context(|| format!("cannot write {}", path.display())),
                None => output::write(&scored),
            }
        }
    }
}

/// One row of the input: the timestamp as written and as seconds, and the value (None: missing).
#[derive(Debug, PartialEq)]
struct Row<'a> {
    timestamp: &'a str,
    seconds: f64,
    value_text: &'a str,
    value: Option<f64>,
}

/// Scores every row of `input`; the output CSV, or the first malformed line.
fn replay(config: &DetectorConfig, input: &str, zone: Tz) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || (rows.is_empty() && is_header(line)) {
            continue;
        }
        rows.push(parse_row(line, zone).with_context(|| format!("line {number}"))?);
    }
    let mut detector = config.build();
    let mut out = String::with_capacity(input.len() + 8 * rows.len() + 32);
    out.push_str("timestamp,value,anomaly_score\n");
    for row in rows {
        match row.value {
            Some(value) => {
                let detection = detector.update(row.seconds, value);
                let _ = writeln!(
                    out,
                    "{},{},{:.4}",
                    row.timestamp, row.value_text, detection.score
                );
            }
            None => {
                let _ = writeln!(out, "{},{},", row.timestamp, row.value_text);
            }
        }
    }
    Ok(out)
}

fn is_header(line: &str) -> bool {
    let mut fields = line.split(',').map(|f| f.trim().to_ascii_lowercase());
    fields.next().as_deref() == Some("timestamp")
        && fields.next().as_deref() == Some("value")
        && fields.next().is_none()
}

fn parse_row(line: &str, zone: Tz) -> anyhow::Result<Row<'_>> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [timestamp, value_text] = fields[..] else {
        bail!(
            "expected 2 fields `timestamp,value`, found {}: `{line}`",
            fields.len()
        );
    };
    let seconds = parse_time(timestamp, zone)?;
    let value = if value_text.is_empty() {
        None
    } else {
        match value_text.parse::<f64>() {
            Ok(v) if v.is_nan() => None,
            Ok(v) if v.is_finite() => Some(v),
            Ok(_) => bail!("value `{value_text}` is not a finite number"),
            Err(_) => bail!("value `{value_text}` is not a number"),
        }
    };
    Ok(Row {
        timestamp,
        seconds,
        value_text,
        value,
    })
}

/// Unix seconds (`1795000000`, `1795000000.5`), or any time `steward_core::time` reads
/// (`2026-11-30T10:00:00Z`; `2026-11-30 10:00` in `zone`).
fn parse_time(text: &str, zone: Tz) -> anyhow::Result<f64> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(seconds);
    }
    if text.is_empty() {
        bail!("the timestamp is empty");
    }
    match WrittenTime::parse(text) {
        Ok(written) => {
            let time = written.instant_in(zone);
            Ok(time.timestamp() as f64 + f64::from(time.timestamp_subsec_nanos()) / 1e9)
        }
        Err(e) => bail!("timestamp {e}, or Unix seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robust_z() -> DetectorConfig {
        DetectorConfig::parse("robust_z", "warmup=5").expect("config")
    }

    fn error(input: &str) -> String {
        let e = replay(&robust_z(), input, Tz::UTC).expect_err("refused");
        e.chain()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ")
    }

    #[test]
    fn rows_are_scored_and_written_back_as_given() {
        let mut input = String::from("timestamp,value\n");
        for i in 0..40 {
            let _ = writeln!(input, "{},{}", 1_795_000_000 + 60 * i, 10 + i % 3);
        }
        input.push_str("2026-11-30T10:00:00Z,\n1795009999,50\n");
        let out = replay(&robust_z(), &input, Tz::UTC).expect("scored");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,value,anomaly_score");
        assert_eq!(lines.len(), 43);
        assert_eq!(lines[1], "1795000000,10,0.0000");
        assert_eq!(lines[41], "2026-11-30T10:00:00Z,,");
        let last: f64 = lines[42]
            .rsplit(',')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("score");
        assert!(last > 0.9, "{}", lines[42]);
    }

    #[test]
    fn times_parse_as_unix_seconds_or_as_every_time_flag() {
        let utc = |text: &str| parse_time(text, Tz::UTC);
        assert_eq!(utc("1795000000").expect("unix"), 1_795_000_000.0);
        assert_eq!(utc("1795000000.25").expect("unix"), 1_795_000_000.25);
        assert_eq!(
            utc("2026-11-30T10:00:00.5+01:00").expect("rfc 3339"),
            1_796_029_200.5
        );
        assert_eq!(
            parse_time("2026-11-30 10:00:00.5", Tz::Europe__Berlin).expect("local"),
            1_796_029_200.5
        );
        assert!(utc("yesterday").is_err());
    }

    #[test]
    fn malformed_rows_name_their_line() {
        assert_eq!(
            error("timestamp,value\n1,2\n3,abc\n"),
            "line 3: value `abc` is not a number"
        );
        assert_eq!(
            error("1,2,3\n"),
            "line 1: expected 2 fields `timestamp,value`, found 3: `1,2,3`"
        );
        assert_eq!(
            error("1,2\nnoon,3\n"),
            format!(
                "line 2: timestamp 'noon' is not a time: write {}, or Unix seconds",
                steward_core::time::ACCEPTED_FORMS
            )
        );
        assert_eq!(
            error("1,inf\n"),
            "line 1: value `inf` is not a finite number"
        );
        // A header is only a header on the first row.
        assert!(error("1,2\ntimestamp,value\n").starts_with("line 2: timestamp"));
    }
}

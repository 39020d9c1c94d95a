//! `steward detect replay` as a user runs it: a CSV of history in, scores out, no server.

use crate::helpers::{Run, run_steward};
use std::fmt::Write;
use std::path::Path;

/// Replay needs no server: any URL and token will do, and none is contacted.
fn steward(args: &[&str]) -> Run {
    run_steward("http://127.0.0.1:9", "unused", args)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write csv");
    path.to_str().expect("utf-8 path").to_owned()
}

/// Two hours of one sample a minute around 100 (a fixed wobble), then a shift to 130.
fn shifted_history() -> String {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..180u32 {
        let wobble = f64::from((i * 7) % 5) - 2.0;
        let value = if i < 150 { 100.0 } else { 130.0 } + wobble;
        let _ = writeln!(csv, "{},{value}", 1_795_000_000 + 60 * i);
    }
    csv
}

fn scores(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .skip(1)
        .map(|line| {
            let mut f = line.splitn(3, ',').map(str::to_owned);
            let mut next = || f.next().expect("three columns");
            (next(), next(), next())
        })
        .collect()
}

#[test]
fn replay_scores_every_row_and_a_level_shift_scores_high() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "latency.csv", &shifted_history());
    let run = steward(&["detect", "replay", &file, "--detector", "robust_z"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.lines().next(),
        Some("timestamp,value,anomaly_score")
    );
    let rows = scores(&run.stdout);
    assert_eq!(rows.len(), 180);
    assert_eq!(
        rows[0].0, "1795000000",
        "timestamps are written back as given"
    );
    assert_eq!(rows[0].1, "98", "values are written back as given");
    let score = |i: usize| rows[i].2.parse::<f64>().expect("a score");
    assert!((0..150).all(|i| score(i) < 0.5), "quiet before the shift");
    assert!((150..153).all(|i| score(i) > 0.9), "the shift scores high");
    assert!((0..180).all(|i| (0.0..=1.0).contains(&score(i))));

    // Page-Hinkley sees the same shift; --out writes a file instead.
    let out = dir.path().join("scored.csv");
    let run = steward(&[
        "detect",
        "replay",
        &file,
        "--detector",
        "page_hinkley",
        "--params",
        "lambda=10,min_relative_effect=0.05",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let written = std::fs::read_to_string(&out).expect("output file");
    let rows = scores(&written);
    assert_eq!(rows.len(), 180);
    assert!(
        rows[150..160]
            .iter()
            .any(|r| r.2.parse::<f64>().expect("score") >= 1.0)
    );
}

#[test]
fn a_missing_value_is_written_with_an_empty_score() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "gaps.csv",
        "2026-11-30T10:00:00Z,0.91\n2026-11-30T10:01:00Z,\n2026-11-30T10:02:00+00:00,0.92\n",
    );
    let run = steward(&["detect", "replay", &file, "--detector", "page_hinkley"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "timestamp,value,anomaly_score\n\
         2026-11-30T10:00:00Z,0.91,0.0000\n\
         2026-11-30T10:01:00Z,,\n\
         2026-11-30T10:02:00+00:00,0.92,0.0000\n"
    );
}

#[test]
fn a_malformed_row_fails_naming_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "bad.csv",
        "timestamp,value\n1795000000,1\n1795000060,fast\n",
    );
    let out = dir.path().join("never.csv");
    let run = steward(&[
        "detect",
        "replay",
        &file,
        "--detector",
        "robust_z",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("error: ")
            && run.stderr.contains("line 3: value `fast` is not a number"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is written when the input is bad");

    let file = write(dir.path(), "columns.csv", "1795000000;1\n");
    let run = steward(&["detect", "replay", &file, "--detector", "robust_z"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("line 1: expected 2 fields `timestamp,value`, found 1"),
        "{}",
        run.stderr
    );

    let run = steward(&[
        "detect",
        "replay",
        "/nonexistent/x.csv",
        "--detector",
        "robust_z",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot read /nonexistent/x.csv"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_detectors_and_parameters_are_refused_with_the_valid_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "ok.csv", "1795000000,1\n");
    let run = steward(&["detect", "replay", &file, "--detector", "zscore"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("unknown detector `zscore`: use one of robust_z, page_hinkley"),
        "{}",
        run.stderr
    );
    let run = steward(&[
        "detect",
        "replay",
        &file,
        "--detector",
        "robust_z",
        "--params",
        "threshold=5",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("unknown parameter `threshold` for robust_z: valid keys are")
            && run.stderr.contains("enter")
            && run.stderr.contains("min_effect"),
        "{}",
        run.stderr
    );
    let run = steward(&[
        "detect",
        "replay",
        &file,
        "--detector",
        "page_hinkley",
        "--params",
        "lambda=-3",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`lambda` must be a positive number, got -3"),
        "{}",
        run.stderr
    );
}

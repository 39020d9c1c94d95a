//! `steward-detect-bench`: how well and how fast the streaming anomaly detectors work.
//!
//! Quality: generates labelled streams deterministically (fixed seeds) — level shifts up and
//! down, single-sample spikes, slow drifts, and a quiet control — on a noisy series with a
//! daily-like cycle and about 2 % of samples missing, feeds them to each detector configuration
//! and scores its onsets against the labels: an event counts as detected when an onset falls
//! within its tolerance window after it starts; an onset outside every window is a false
//! positive. Precision = detected / (detected + false positives), recall = detected / events,
//! delay = samples from an event's start to its first onset.
//!
//! Throughput: feeds one detector ≥ 10 M samples on one thread, several times, and prints the
//! best and median samples per second. See bench/README.md for results.

mod rng;

use clap::Parser;
use rng::Rng;
use std::hint::black_box;
use std::time::Instant;
use steward_core::detect::{Detector, DetectorConfig};

#[derive(Debug, Parser)]
#[command(about = "Measure the anomaly detectors' precision, recall, delay and throughput.")]
struct Args {
    /// Streams generated per scenario (each with its own seed).
    #[arg(long, default_value_t = 20)]
    streams: u64,
    /// Days per stream, at one sample every 5 minutes (288 a day).
    #[arg(long, default_value_t = 30)]
    days: usize,
    /// Amplitude of the daily cycle, in noise standard deviations (0 for a flat series).
    #[arg(long, default_value_t = 3.0)]
    season_amplitude: f64,
    /// Fraction of samples missing.
    #[arg(long, default_value_t = 0.02)]
    missing: f64,
    /// A detector configuration to measure as NAME or NAME:k=v,k=v; repeatable. Default: each
    /// detector with its defaults, and with `season=86400`.
    #[arg(long = "config")]
    configs: Vec<String>,
    /// Timed runs per configuration.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Samples fed per timed run.
    #[arg(long, default_value_t = 10_000_000)]
    updates: usize,
    /// Skip the throughput measurement.
    #[arg(long)]
    no_throughput: bool,
    /// Skip the quality measurement.
    #[arg(long)]
    no_quality: bool,
    /// Print each false onset: where it fell relative to the latest event before it.
    #[arg(long)]
    show_false_onsets: bool,
}

/// Seconds between samples.
const STEP: f64 = 300.0;
const PER_DAY: usize = 288;
/// The series' level and noise σ: every magnitude below is in σ.
const LEVEL: f64 = 100.0;
const SIGMA: f64 = 1.0;
/// No events in the first days: every detector's warm-up (with a season, one day) must be over.
const QUIET_DAYS: usize = 3;

/// The distributions the streams are drawn from.
impl Rng {
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }
    fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 }
    }
    /// Standard normal, Box-Muller.
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    LevelShift,
    Spike,
    SlowDrift,
    Quiet,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::LevelShift,
        Scenario::Spike,
        Scenario::SlowDrift,
        Scenario::Quiet,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::LevelShift => "level shift",
            Scenario::Spike => "spike",
            Scenario::SlowDrift => "slow drift",
            Scenario::Quiet => "quiet",
        }
    }
}

/// A labelled anomaly: an onset in `start..start + window` detects it.
#[derive(Debug, Clone, Copy)]
struct Event {
    start: usize,
    window: usize,
}

#[derive(Debug)]
struct Stream {
    /// (time, value); `None` for a missing sample.
    samples: Vec<(f64, Option<f64>)>,
    events: Vec<Event>,
}

/// What each scenario adds to the baseline series, per sample.
fn effects(scenario: Scenario, n: usize, rng: &mut Rng) -> (Vec<f64>, Vec<Event>) {
    let mut effect = vec![0.0; n];
    let mut events = Vec::new();
    let mut at = QUIET_DAYS * PER_DAY;
    match scenario {
        Scenario::Quiet => {}
        Scenario::LevelShift => {
            // Lasting shifts of 4 to 8 σ, up or down, 500 to 900 samples apart.
            let mut level = 0.0;
            while at < n {
                let shift = rng.sign() * rng.between(4.0, 8.0) * SIGMA;
                // Drift back towards 0 rather than away forever.
                level = if (level + shift).abs() > 12.0 {
                    level - shift
                } else {
                    level + shift
                };
                effect[at..].iter_mut().for_each(|e| *e = level);
                events.push(Event {
                    start: at,
                    window: 30,
                });
                at += rng.between(500.0, 900.0) as usize;
            }
        }
        Scenario::Spike => {
            // Single samples 6 to 12 σ off, 200 to 400 samples apart.
            while at < n {
                effect[at] = rng.sign() * rng.between(6.0, 12.0) * SIGMA;
                events.push(Event {
                    start: at,
                    window: 3,
                });
                at += rng.between(200.0, 400.0) as usize;
            }
        }
        Scenario::SlowDrift => {
            // Ramps of 4 to 8 σ over 300 to 600 samples (1 to 2 days), then holding; ramps 1,200
            // to 1,600 samples apart.
            let mut level = 0.0;
            while at < n {
                let length = rng.between(300.0, 600.0) as usize;
                let total = rng.sign() * rng.between(4.0, 8.0) * SIGMA;
                let total = if (level + total).abs() > 12.0 {
                    -total
                } else {
                    total
                };
                for (i, e) in effect[at..].iter_mut().enumerate() {
                    *e = level + total * (i as f64 / length as f64).min(1.0);
                }
                level += total;
                events.push(Event {
                    start: at,
                    window: length + 30,
                });
                at += rng.between(1200.0, 1600.0) as usize;
            }
        }
    }
    events.retain(|e| e.start < n);
    (effect, events)
}

fn generate(scenario: Scenario, seed: u64, args: &Args) -> Stream {
    let n = args.days * PER_DAY;
    let mut rng = Rng(seed);
    let (effect, events) = effects(scenario, n, &mut rng);
    let spike_at: Vec<bool> = (0..n)
        .map(|i| scenario == Scenario::Spike && effect[i] != 0.0)
        .collect();
    let phase0 = rng.uniform() * std::f64::consts::TAU;
    let samples = (0..n)
        .map(|i| {
            let t = 1.8e9 + i as f64 * STEP;
            let day = t / 86_400.0 * std::f64::consts::TAU + phase0;
            let cycle = args.season_amplitude * SIGMA * (day.sin() + 0.3 * (2.0 * day).sin());
            let value = LEVEL + cycle + effect[i] + SIGMA * rng.normal();
            // A missing spike could not be detected by anyone: spikes are always sampled.
            let missing = rng.uniform() < args.missing && !spike_at[i];
            (t, (!missing).then_some(value))
        })
        .collect();
    Stream { samples, events }
}

#[derive(Debug, Default)]
struct Score {
    events: usize,
    detected: usize,
    false_positives: usize,
    samples: usize,
    delays: Vec<usize>,
}

fn evaluate(config: &DetectorConfig, stream: &Stream, score: &mut Score, show: bool) {
    let mut detector = config.build();
    let mut first_onset: Vec<Option<usize>> = vec![None; stream.events.len()];
    for (i, &(t, value)) in stream.samples.iter().enumerate() {
        let Some(value) = value else { continue };
        if !detector.update(t, value).onset {
            continue;
        }
        let mut inside = false;
        for (e, event) in stream.events.iter().enumerate() {
            if (event.start..event.start + event.window).contains(&i) {
                inside = true;
                first_onset[e].get_or_insert(i);
            }
        }
        score.false_positives += usize::from(!inside);
        if show && !inside {
            match stream.events.iter().rev().find(|e| e.start <= i) {
                Some(e) => println!(
                    "  false onset at {i}: {} samples after an event (window {})",
                    i - e.start,
                    e.window
                ),
                None => println!("  false onset at {i}, before any event"),
            }
        }
    }
    score.events += stream.events.len();
    score.samples += stream.samples.len();
    for (event, onset) in stream.events.iter().zip(first_onset) {
        if let Some(onset) = onset {
            score.detected += 1;
            score.delays.push(onset - event.start);
        }
    }
}

fn percentile(sorted: &[usize], p: f64) -> Option<usize> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[index.min(sorted.len() - 1)])
}

fn ratio(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.3}", part as f64 / whole as f64)
    }
}

fn parse_config(text: &str) -> anyhow::Result<(String, DetectorConfig)> {
    let (name, params) = text.split_once(':').unwrap_or((text, ""));
    let config = DetectorConfig::parse(name, params).map_err(anyhow::Error::msg)?;
    Ok((text.to_owned(), config))
}

fn quality(args: &Args, configs: &[(String, DetectorConfig)]) {
    println!(
        "quality: {} streams per scenario, {} days each (288 samples a day), noise σ = 1, daily cycle {} σ, {:.0} % missing",
        args.streams,
        args.days,
        args.season_amplitude,
        args.missing * 100.0
    );
    println!(
        "| detector | scenario | events | detected | false onsets | false onsets / 10k samples | precision | recall | delay median | delay p95 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, config) in configs {
        for scenario in Scenario::ALL {
            let mut score = Score::default();
            for seed in 0..args.streams {
                let stream = generate(scenario, 1000 * seed + scenario as u64, args);
                evaluate(config, &stream, &mut score, args.show_false_onsets);
            }
            score.delays.sort_unstable();
            let show = |v: Option<usize>| v.map_or("-".into(), |v| v.to_string());
            println!(
                "| {label} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
                scenario.name(),
                score.events,
                score.detected,
                score.false_positives,
                score.false_positives as f64 * 10_000.0 / score.samples.max(1) as f64,
                ratio(score.detected, score.detected + score.false_positives),
                ratio(score.detected, score.events),
                show(percentile(&score.delays, 0.5)),
                show(percentile(&score.delays, 0.95)),
            );
        }
    }
}

fn throughput(args: &Args, configs: &[(String, DetectorConfig)]) {
    // One mixed stream of a million samples, fed round and round with time moving on.
    let mut samples: Vec<(f64, f64)> = Vec::with_capacity(1_000_000);
    let mut seed = 77;
    while samples.len() < 1_000_000 {
        let scenario = Scenario::ALL[seed as usize % 3];
        let stream = generate(scenario, seed, args);
        let offset = samples.last().map_or(0.0, |(t, _)| *t + STEP) - 1.8e9;
        samples.extend(
            stream
                .samples
                .iter()
                .filter_map(|&(t, v)| v.map(|v| (t + offset, v))),
        );
        seed += 1;
    }
    samples.truncate(1_000_000);
    let span = samples.last().map_or(0.0, |(t, _)| *t) - samples[0].0 + STEP;
    println!(
        "\nthroughput: one thread, {} runs of {} updates each (a fresh detector per run)",
        args.runs, args.updates
    );
    println!("| detector | best samples/s | median samples/s | ns per update (best) |");
    println!("|---|---|---|---|");
    for (label, config) in configs {
        let mut rates = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let mut detector: Detector = config.build();
            let mut onsets = 0usize;
            let mut score = 0.0;
            let started = Instant::now();
            let mut fed = 0;
            let mut lap = 0.0;
            while fed < args.updates {
                for &(t, v) in samples.iter().take(args.updates - fed) {
                    let d = detector.update(black_box(t + lap), black_box(v));
                    onsets += usize::from(d.onset);
                    score += d.score;
                }
                fed += samples.len().min(args.updates - fed);
                lap += span;
            }
            let elapsed = started.elapsed().as_secs_f64();
            black_box((onsets, score, &detector));
            rates.push(args.updates as f64 / elapsed);
        }
        rates.sort_by(f64::total_cmp);
        let best = rates.last().copied().unwrap_or_default();
        let median = rates[rates.len() / 2];
        println!(
            "| {label} | {:.1} M | {:.1} M | {:.1} |",
            best / 1e6,
            median / 1e6,
            1e9 / best
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let texts: Vec<String> = if args.configs.is_empty() {
        [
            "robust_z",
            "robust_z:season=86400",
            "page_hinkley",
            "page_hinkley:season=86400",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args.configs.clone()
    };
    let configs = texts
        .iter()
        .map(|t| parse_config(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        args.runs > 0 && args.streams > 0,
        "--runs and --streams must be positive"
    );
    if !args.no_quality {
        quality(&args, &configs);
    }
    if !args.no_throughput {
        throughput(&args, &configs);
    }
    Ok(())
}

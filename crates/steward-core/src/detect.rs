//! Streaming anomaly detectors over one metric series: feed samples one at a time, get a score in
//! [0, 1] and whether the series is anomalous now.
//!
//! Two detectors, chosen and tuned per metric through [`DetectorConfig`]:
//!
//! - `robust_z` catches **level shifts and spikes**. It scores each sample's robust z-score
//!   against a baseline (a Huber-clipped EWMA of the level and of the absolute deviation, started
//!   from the median and MAD of a warm-up), with hysteresis: an episode starts when `confirm`
//!   samples beyond `enter` fall in one run of samples beyond `exit` on one side, or at once for
//!   a single sample beyond `spike`; it ends when the series is back inside `exit`. While a run
//!   or an episode lasts the baseline is frozen, so a shift is not absorbed; after `relearn`
//!   anomalous samples the new level is accepted as normal (the episode ends), so a lasting
//!   change is reported once rather than "anomalous" forever.
//! - `page_hinkley` catches **change points, including slow drifts**: a two-sided Page-Hinkley
//!   (CUSUM) statistic of the residuals against a slow baseline, minus an allowance `delta`,
//!   alarming at `lambda`. At the alarm the level is re-anchored at the mean since the change
//!   began and then follows the mean of the episode's samples; the episode ends once the
//!   statistic has decayed below `exit × lambda`.
//!
//! Both take a **minimum effect size** (`min_effect`, absolute, and `min_relative_effect`, a
//! fraction of the baseline level; the larger applies): in a very stable or very high-volume
//! series a tiny deviation is many standard deviations away, yet nobody wants to be paged for it.
//! Both can model a **seasonal profile** (`season` seconds, e.g. 86400, in `season_buckets`
//! linearly interpolated buckets), which is where the sample time is used; otherwise the detectors
//! count samples, so a missing sample is simply skipped. Everything here is arithmetic on a few
//! numbers: no allocation per update, no clock, no IO; a [`Detector`] serializes, so a server can
//! persist one between samples.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// Huber clip for learning, in standard deviations: a residual beyond it moves the baseline as
/// much as one at the clip, so an outlier nudges the baseline rather than dragging it.
const CLIP_LEARN: f64 = 3.0;
/// The scale learns at this fraction of the level's rate: a level moves more often than the
/// noise around it changes, and a noisy σ is what makes a quiet series fire.
const SIGMA_RATE: f64 = 0.25;
/// E|X| of a normal variable is σ·√(2/π): multiply a mean absolute deviation by this for σ.
const MEAN_ABS_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// The median absolute deviation of a normal variable is σ / 1.4826.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;
/// Largest warm-up: the warm-up samples are kept (to take their median) until it ends.
const MAX_WARMUP: u32 = 100_000;
/// Most seasonal buckets.
const MAX_SEASON_BUCKETS: u32 = 10_000;

/// Which deviations count: `up` for a latency or an error rate, `down` for an accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    Up,
    Down,
}

impl Direction {
    /// Whether a deviation upwards (`true`) or downwards counts.
    fn allows(self, up: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Up => up,
            Direction::Down => !up,
        }
    }
}

/// A detector and its parameters, as stored per metric and as given on the command line
/// (`--detector robust_z --params enter=5,confirm=2`). Every parameter has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case")]
pub enum DetectorConfig {
    /// Level shifts and spikes: robust z-score with hysteresis.
    RobustZ(RobustZ),
    /// Change points and slow drifts: two-sided Page-Hinkley.
    PageHinkley(PageHinkley),
}

/// Parameters of the `robust_z` detector. Thresholds are in robust standard deviations of the
/// residual (the sample minus the baseline).
///
/// The score is `z² / (z² + enter²)`: 0 on the baseline, 0.5 at the `enter` threshold, 0.8 at
/// twice it, 0.9 at three times, where `z` is the robust z-score, lowered below the minimum
/// effect so that a deviation smaller than it always scores under 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobustZ {
    /// Samples that only teach the baseline (its median and MAD) before anything is scored;
    /// with a season, the warm-up also lasts one whole cycle.
    pub warmup: u32,
    /// Weight of a new sample in the baseline's level, in (0, 1): 0.05 follows the level over
    /// about 20 samples. The scale learns four times slower.
    pub alpha: f64,
    /// |z| that starts an episode when reached by `confirm` samples of one run (below).
    pub enter: f64,
    /// Samples beyond `enter` that confirm a level shift, within one run of consecutive samples
    /// beyond `exit` on the same side (the run is not learned from while it lasts).
    pub confirm: u32,
    /// |z| at which a single sample starts an episode (a spike); at least `enter`.
    pub spike: f64,
    /// |z| below which an episode ends (the hysteresis), less than `enter`; a sample on the other
    /// side of the baseline ends it too.
    pub exit: f64,
    /// Anomalous samples after which the new level is accepted as the baseline and the episode
    /// ends: a lasting shift is reported once, then becomes normal. An episode also ends when a
    /// spike's next sample, or `confirm` consecutive samples after a shift, fall inside `exit`.
    pub relearn: u32,
    /// Smallest deviation, in the metric's unit, that may count as anomalous.
    pub min_effect: f64,
    /// Smallest deviation as a fraction of the baseline level (0.01 = 1 %); the larger of the
    /// two minimum effects applies.
    pub min_relative_effect: f64,
    /// `both`, `up` (only increases count: latency, errors) or `down` (accuracy). The other
    /// side is still tracked — a drop in latency becomes the new normal just the same — but
    /// scores 0 and raises nothing.
    pub direction: Direction,
    /// Length of the seasonal cycle in seconds (86400 for daily); 0 for none. With a season,
    /// scoring also waits until one full season has been seen.
    pub season: f64,
    /// Buckets of the seasonal profile (interpolated linearly between bucket starts).
    pub season_buckets: u32,
    /// Weight of a new sample in the seasonal profile, in (0, 1).
    pub season_alpha: f64,
}

impl Default for RobustZ {
    fn default() -> RobustZ {
        RobustZ {
            warmup: 30,
            alpha: 0.05,
            enter: 4.0,
            confirm: 3,
            spike: 6.0,
            exit: 2.0,
            relearn: 50,
            min_effect: 0.0,
            min_relative_effect: 0.01,
            direction: Direction::Both,
            season: 0.0,
            season_buckets: 24,
            season_alpha: 0.02,
        }
    }
}

/// Parameters of the `page_hinkley` detector. `delta` and `lambda` are in standard deviations
/// of the residual.
///
/// The statistic of each side is `g = max(0, g + (r − δ)/σ)` where `r` is the residual (clipped
/// at `δ + clip·σ`) and `δ` is the larger of `delta·σ` and the minimum effect; an alarm is raised
/// at `g ≥ lambda`. The score is `min(g / lambda, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkley {
    /// Samples that only teach the baseline (its median and MAD) before anything is scored;
    /// with a season, the warm-up also lasts one whole cycle.
    pub warmup: u32,
    /// Weight of a new sample in the baseline's level, in (0, 1); the scale learns four times
    /// slower. Small, so that a slow drift runs away from the baseline instead of dragging it
    /// along.
    pub alpha: f64,
    /// Allowance per sample, in σ: a mean shift smaller than this never accumulates.
    pub delta: f64,
    /// Alarm threshold of the cumulative statistic, in σ.
    pub lambda: f64,
    /// Most one sample adds to the statistic, in σ beyond the allowance: a single spike cannot
    /// raise an alarm alone (that is `robust_z`'s job).
    pub clip: f64,
    /// The episode ends when the statistic falls below `exit × lambda`, in [0, 1); the
    /// statistic then starts again from 0.
    pub exit: f64,
    /// Smallest mean shift, in the metric's unit, that may accumulate.
    pub min_effect: f64,
    /// Smallest mean shift as a fraction of the baseline level; the larger minimum applies.
    pub min_relative_effect: f64,
    /// `both`, `up` or `down`: the other side still moves the baseline but raises nothing.
    pub direction: Direction,
    /// Length of the seasonal cycle in seconds (86400 for daily); 0 for none. A slow baseline
    /// cannot follow a daily cycle: set it for any metric that has one.
    pub season: f64,
    /// Buckets of the seasonal profile (interpolated linearly between bucket starts).
    pub season_buckets: u32,
    /// Weight of a new sample in the seasonal profile, in (0, 1).
    pub season_alpha: f64,
}

impl Default for PageHinkley {
    fn default() -> PageHinkley {
        PageHinkley {
            warmup: 30,
            alpha: 0.005,
            delta: 0.5,
            lambda: 20.0,
            clip: 4.0,
            exit: 0.5,
            min_effect: 0.0,
            min_relative_effect: 0.01,
            direction: Direction::Both,
            season: 0.0,
            season_buckets: 24,
            season_alpha: 0.02,
        }
    }
}

/// The detector names `parse` accepts.
pub const DETECTOR_NAMES: [&str; 2] = ["robust_z", "page_hinkley"];

impl DetectorConfig {
    /// The command-line form: `name` is `robust_z` or `page_hinkley`, `params` is `k=v,k=v`
    /// (empty for the defaults). The result is validated.
    pub fn parse(name: &str, params: &str) -> Result<DetectorConfig, String> {
        let name = name.trim();
        let default = match name {
            "robust_z" => DetectorConfig::RobustZ(RobustZ::default()),
            "page_hinkley" => DetectorConfig::PageHinkley(PageHinkley::default()),
            _ => {
                return Err(format!(
                    "unknown detector `{name}`: use one of {}",
                    DETECTOR_NAMES.join(", ")
                ));
            }
        };
        let Value::Object(defaults) = serde_json::to_value(&default).map_err(|e| e.to_string())?
        else {
            return Err("detector parameters are not an object".into());
        };
        let valid = || {
            defaults
                .keys()
                .filter(|k| *k != "detector")
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut given = Map::new();
        for pair in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, raw)) = pair.split_once('=') else {
                return Err(format!(
                    "parameter `{pair}` is not key=value (valid keys for {name}: {})",
                    valid()
                ));
            };
            let (key, raw) = (key.trim(), raw.trim());
            let value = match defaults.get(key).filter(|_| key != "detector") {
                None => None,
                Some(Value::String(_)) => Some(Value::String(raw.to_owned())),
                Some(Value::Number(n)) if n.is_u64() => match raw.parse::<u32>() {
                    Ok(v) => Some(Value::from(v)),
                    Err(_) => {
                        return Err(format!(
                            "parameter `{key}` must be a whole number, got `{raw}`"
                        ));
                    }
                },
                Some(_) => match raw.parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(v) => Some(Value::Number(v)),
                    None => return Err(format!("parameter `{key}` must be a number, got `{raw}`")),
                },
            };
            let Some(value) = value else {
                return Err(format!(
                    "unknown parameter `{key}` for {name}: valid keys are {}",
                    valid()
                ));
            };
            if given.insert(key.to_owned(), value).is_some() {
                return Err(format!("parameter `{key}` is given twice"));
            }
        }
        let mut document = defaults.clone();
        for (key, value) in given {
            let one = Map::from_iter([
                ("detector".to_owned(), Value::String(name.to_owned())),
                (key.clone(), value.clone()),
            ]);
            if let Err(e) = serde_json::from_value::<DetectorConfig>(Value::Object(one)) {
                return Err(format!("parameter `{key}`: {e}"));
            }
            document.insert(key, value);
        }
        let config: DetectorConfig =
            serde_json::from_value(Value::Object(document)).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// The detector's name as `parse` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            DetectorConfig::RobustZ(_) => "robust_z",
            DetectorConfig::PageHinkley(_) => "page_hinkley",
        }
    }

    /// Checks every parameter's range; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            DetectorConfig::RobustZ(p) => {
                check_baseline(
                    p.warmup,
                    p.alpha,
                    p.min_effect,
                    p.min_relative_effect,
                    p.season,
                    p.season_buckets,
                    p.season_alpha,
                )?;
                positive("enter", p.enter)?;
                if !(p.exit.is_finite() && p.exit >= 0.0 && p.exit < p.enter) {
                    return Err(format!(
                        "`exit` must be at least 0 and below `enter` ({}), got {}",
                        p.enter, p.exit
                    ));
                }
                if !(p.spike.is_finite() && p.spike >= p.enter) {
                    return Err(format!(
                        "`spike` must be at least `enter` ({}), got {}",
                        p.enter, p.spike
                    ));
                }
                at_least("confirm", p.confirm, 1)?;
                at_least("relearn", p.relearn, 1)
            }
            DetectorConfig::PageHinkley(p) => {
                check_baseline(
                    p.warmup,
                    p.alpha,
                    p.min_effect,
                    p.min_relative_effect,
                    p.season,
                    p.season_buckets,
                    p.season_alpha,
                )?;
                positive("delta", p.delta)?;
                positive("lambda", p.lambda)?;
                positive("clip", p.clip)?;
                if !(p.exit.is_finite() && (0.0..1.0).contains(&p.exit)) {
                    return Err(format!("`exit` must be in [0, 1), got {}", p.exit));
                }
                Ok(())
            }
        }
    }

    /// A fresh detector (it warms up first). Expects a configuration that passed
    /// [`validate`](Self::validate); an invalid one does not panic but scores nonsense.
    pub fn build(&self) -> Detector {
        let (baseline, kind) = match self {
            DetectorConfig::RobustZ(p) => (
                Baseline::new(
                    p.warmup,
                    p.alpha,
                    p.min_effect,
                    p.min_relative_effect,
                    p.season,
                    p.season_buckets,
                    p.season_alpha,
                ),
                Kind::RobustZ {
                    params: p.clone(),
                    state: RobustZState::default(),
                },
            ),
            DetectorConfig::PageHinkley(p) => (
                Baseline::new(
                    p.warmup,
                    p.alpha,
                    p.min_effect,
                    p.min_relative_effect,
                    p.season,
                    p.season_buckets,
                    p.season_alpha,
                ),
                Kind::PageHinkley {
                    params: p.clone(),
                    state: PageHinkleyState::default(),
                },
            ),
        };
        Detector { baseline, kind }
    }
}

fn check_baseline(
    warmup: u32,
    alpha: f64,
    min_effect: f64,
    min_relative_effect: f64,
    season: f64,
    season_buckets: u32,
    season_alpha: f64,
) -> Result<(), String> {
    if !(3..=MAX_WARMUP).contains(&warmup) {
        return Err(format!(
            "`warmup` must be between 3 and {MAX_WARMUP} samples, got {warmup}"
        ));
    }
    fraction("alpha", alpha)?;
    fraction("season_alpha", season_alpha)?;
    non_negative("min_effect", min_effect)?;
    non_negative("min_relative_effect", min_relative_effect)?;
    non_negative("season", season)?;
    if season > 0.0 && !(2..=MAX_SEASON_BUCKETS).contains(&season_buckets) {
        return Err(format!(
            "`season_buckets` must be between 2 and {MAX_SEASON_BUCKETS}, got {season_buckets}"
        ));
    }
    Ok(())
}

fn fraction(name: &str, v: f64) -> Result<(), String> {
    if v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be between 0 and 1 (exclusive), got {v}"
        ))
    }
}

fn positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("`{name}` must be a positive number, got {v}"))
    }
}

fn non_negative(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("`{name}` must be 0 or more, got {v}"))
    }
}

fn at_least(name: &str, v: u32, min: u32) -> Result<(), String> {
    if v >= min {
        Ok(())
    } else {
        Err(format!("`{name}` must be at least {min}, got {v}"))
    }
}

/// What one sample did to a detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// How unusual the sample is, in [0, 1]; see each detector's parameters for the mapping.
    pub score: f64,
    /// The series is in an anomaly episode after this sample (after hysteresis).
    pub anomaly: bool,
    /// A level shift, spike or change point was confirmed at this sample: true on the first
    /// anomalous sample of an episode only.
    pub onset: bool,
}

impl Detection {
    const QUIET: Detection = Detection {
        score: 0.0,
        anomaly: false,
        onset: false,
    };
}

/// A running detector: its parameters and everything it has learned. Serializes, so a server can
/// keep one per series between samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    baseline: Baseline,
    kind: Kind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case")]
enum Kind {
    RobustZ {
        params: RobustZ,
        state: RobustZState,
    },
    PageHinkley {
        params: PageHinkley,
        state: PageHinkleyState,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RobustZState {
    anomalous: bool,
    /// The run of samples beyond `exit` on one side that began with a sample beyond `enter`, not
    /// yet confirmed: its length, how many of its samples were beyond `enter`, its side and its
    /// deseasonalized sum (it becomes the start of the episode).
    pending: u32,
    pending_beyond: u32,
    pending_up: bool,
    pending_sum: f64,
    /// Samples of the current episode, its side and their deseasonalized sum: the new level on
    /// relearn.
    episode: u32,
    episode_up: bool,
    episode_sum: f64,
    /// Consecutive samples back inside `exit`, and how many end the episode.
    inside: u32,
    exit_after: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PageHinkleyState {
    anomalous: bool,
    /// The cumulative statistics, in σ.
    up: f64,
    down: f64,
    /// Deseasonalized sum and count of samples since each statistic was last 0 (or the last
    /// re-anchoring): the estimate of the level after the change.
    up_sum: f64,
    up_count: u32,
    down_sum: f64,
    down_count: u32,
    /// During an episode, its side and the samples since the last re-anchoring: the level is
    /// their mean.
    episode_up: bool,
    episode_count: u32,
}

impl Detector {
    /// The configuration it was built from.
    pub fn config(&self) -> DetectorConfig {
        match &self.kind {
            Kind::RobustZ { params, .. } => DetectorConfig::RobustZ(params.clone()),
            Kind::PageHinkley { params, .. } => DetectorConfig::PageHinkley(params.clone()),
        }
    }

    /// Whether the warm-up is over and samples are being scored.
    pub fn is_ready(&self) -> bool {
        self.baseline.ready
    }

    /// Feeds one sample (`t` in seconds since any epoch, `value`); returns its score in [0, 1]
    /// and whether the series is anomalous now. A non-finite value or time is ignored (score 0,
    /// not anomalous, state unchanged). Missing samples need no special call: the next one is
    /// compared with the baseline as it was.
    pub fn update(&mut self, t: f64, value: f64) -> Detection {
        if !(value.is_finite() && t.is_finite()) {
            return Detection::QUIET;
        }
        let phase = self.baseline.phase(t);
        if self.baseline.warm_up(t, value, phase) {
            return Detection::QUIET;
        }
        match &mut self.kind {
            Kind::RobustZ { params, state } => {
                robust_z(&mut self.baseline, params, state, value, phase)
            }
            Kind::PageHinkley { params, state } => {
                page_hinkley(&mut self.baseline, params, state, value, phase)
            }
        }
    }
}

/// Where a time falls in the seasonal cycle: between bucket starts `low` and `high`, `weight` of
/// the way to `high`.
#[derive(Debug, Clone, Copy)]
struct Phase {
    low: usize,
    high: usize,
    weight: f64,
}

/// The expected value of the series and its spread: a level, a scale and an optional seasonal
/// profile, learned with Huber-clipped exponential smoothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Baseline {
    warmup: u32,
    alpha: f64,
    min_effect: f64,
    min_relative_effect: f64,
    season: f64,
    season_alpha: f64,
    /// Warm-up values, kept to take their median; emptied when the warm-up ends.
    warm: Vec<f64>,
    /// Time of the first sample, for the seasonal part of the warm-up.
    first_t: Option<f64>,
    learned: bool,
    ready: bool,
    level: f64,
    /// σ of the residuals, estimated from their clipped absolute values.
    sigma: f64,
    /// Seasonal offsets at the bucket starts; empty without a season. During the warm-up, the
    /// weighted sums of the values seen near each bucket start.
    profile: Vec<f64>,
    /// During the warm-up, the weights of those sums; emptied when the warm-up ends.
    profile_weights: Vec<f64>,
}

impl Baseline {
    fn new(
        warmup: u32,
        alpha: f64,
        min_effect: f64,
        min_relative_effect: f64,
        season: f64,
        season_buckets: u32,
        season_alpha: f64,
    ) -> Baseline {
        let season = if season > 0.0 && season_buckets >= 2 {
            season
        } else {
            0.0
        };
        Baseline {
            warmup: warmup.clamp(1, MAX_WARMUP),
            alpha,
            min_effect,
            min_relative_effect,
            season,
            season_alpha,
            warm: Vec::with_capacity(warmup.clamp(1, MAX_WARMUP) as usize),
            first_t: None,
            learned: false,
            ready: false,
            level: 0.0,
            sigma: 0.0,
            profile: if season > 0.0 {
                vec![0.0; season_buckets.min(MAX_SEASON_BUCKETS) as usize]
            } else {
                Vec::new()
            },
            profile_weights: if season > 0.0 {
                vec![0.0; season_buckets.min(MAX_SEASON_BUCKETS) as usize]
            } else {
                Vec::new()
            },
        }
    }

    fn phase(&self, t: f64) -> Phase {
        let buckets = self.profile.len();
        if buckets == 0 {
            return Phase {
                low: 0,
                high: 0,
                weight: 0.0,
            };
        }
        let position = t.rem_euclid(self.season) / self.season * buckets as f64;
        let low = (position as usize).min(buckets - 1);
        Phase {
            low,
            high: if low + 1 == buckets { 0 } else { low + 1 },
            weight: (position - low as f64).clamp(0.0, 1.0),
        }
    }

    fn seasonal(&self, phase: Phase) -> f64 {
        match (self.profile.get(phase.low), self.profile.get(phase.high)) {
            (Some(low), Some(high)) => low + (high - low) * phase.weight,
            _ => 0.0,
        }
    }

    /// Learns from a sample during the warm-up; false once the detector is ready to score.
    ///
    /// Without a season the warm-up is `warmup` samples: level and σ are their median and MAD.
    /// With a season it also lasts one whole cycle: the profile starts as the mean of the values
    /// seen near each bucket start, the level as the mean of those, and σ comes from the
    /// differences of consecutive warm-up samples, which the cycle barely moves.
    fn warm_up(&mut self, t: f64, value: f64, phase: Phase) -> bool {
        if self.ready {
            return false;
        }
        let first_t = *self.first_t.get_or_insert(t);
        if let (Some(low), Some(high)) = (
            self.profile_weights.get(phase.low).copied(),
            self.profile_weights.get(phase.high).copied(),
        ) {
            self.profile_weights[phase.low] = low + (1.0 - phase.weight);
            self.profile_weights[phase.high] = high + phase.weight;
            self.profile[phase.low] += (1.0 - phase.weight) * value;
            self.profile[phase.high] += phase.weight * value;
        }
        if !self.learned {
            self.warm.push(value);
            if self.warm.len() >= self.warmup as usize {
                self.start_from_warm_up();
            }
        }
        if self.learned && (self.season <= 0.0 || t - first_t >= self.season) {
            self.finish_season();
            self.ready = true;
        }
        true
    }

    /// The first level and scale, robust to outliers in the warm-up.
    fn start_from_warm_up(&mut self) {
        let values = &mut self.warm;
        let sigma = if self.season > 0.0 {
            // |x[i+1] − x[i]| in place: a slow cycle barely moves consecutive samples.
            for i in 0..values.len().saturating_sub(1) {
                values[i] = (values[i + 1] - values[i]).abs();
            }
            values.pop();
            values.sort_unstable_by(f64::total_cmp);
            middle(values) * MAD_TO_SIGMA / std::f64::consts::SQRT_2
        } else {
            values.sort_unstable_by(f64::total_cmp);
            let median = middle(values);
            self.level = median;
            for v in values.iter_mut() {
                *v = (*v - median).abs();
            }
            values.sort_unstable_by(f64::total_cmp);
            middle(values) * MAD_TO_SIGMA
        };
        self.sigma = if sigma > 0.0 {
            sigma
        } else {
            // Mostly identical values (integer counts): fall back on the mean deviation.
            values.iter().sum::<f64>() / values.len().max(1) as f64 * MEAN_ABS_TO_SIGMA
        };
        self.learned = true;
        self.warm = Vec::new();
    }

    /// Turns the warm-up sums into the seasonal profile and the level.
    fn finish_season(&mut self) {
        if self.profile.is_empty() {
            return;
        }
        let (mut total, mut seen) = (0.0, 0.0);
        for (sum, weight) in self.profile.iter_mut().zip(&self.profile_weights) {
            if *weight > 0.0 {
                *sum /= weight;
                total += *sum;
                seen += 1.0;
            }
        }
        let level = if seen > 0.0 { total / seen } else { 0.0 };
        for (mean, weight) in self.profile.iter_mut().zip(&self.profile_weights) {
            *mean = if *weight > 0.0 { *mean - level } else { 0.0 };
        }
        self.level = level;
        self.profile_weights = Vec::new();
    }

    /// The smallest deviation that may count, in the metric's unit.
    fn min_effect(&self) -> f64 {
        self.min_effect
            .max(self.min_relative_effect * self.level.abs())
    }

    /// σ, kept away from 0 so a constant series still divides.
    fn sigma(&self) -> f64 {
        self.sigma
            .max(1e-9 * self.level.abs())
            .max(f64::MIN_POSITIVE)
    }

    /// Moves the level, scale and seasonal profile towards a residual, clipped.
    fn learn(&mut self, residual: f64, phase: Phase) {
        let sigma = self.sigma();
        let width = (CLIP_LEARN * sigma).max(self.min_effect());
        let step = residual.clamp(-width, width);
        self.level += self.alpha * step;
        let deviation = residual.abs().min(CLIP_LEARN * sigma) * MEAN_ABS_TO_SIGMA;
        self.sigma += self.alpha * SIGMA_RATE * (deviation - self.sigma);
        if let (Some(low), Some(high)) = (
            self.profile.get(phase.low).copied(),
            self.profile.get(phase.high).copied(),
        ) {
            let gain = self.season_alpha * step;
            self.profile[phase.low] = low + gain * (1.0 - phase.weight);
            self.profile[phase.high] = high + gain * phase.weight;
        }
    }
}

fn middle(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn robust_z(
    baseline: &mut Baseline,
    p: &RobustZ,
    s: &mut RobustZState,
    value: f64,
    phase: Phase,
) -> Detection {
    let seasonal = baseline.seasonal(phase);
    let deseasonalized = value - seasonal;
    let residual = deseasonalized - baseline.level;
    let up = residual >= 0.0;
    let mut z = effective_z(baseline, p, residual);
    let mut onset = false;
    if s.anomalous {
        if z < p.exit || up != s.episode_up {
            s.inside += 1;
            if s.inside >= s.exit_after {
                s.anomalous = false;
            }
        } else {
            s.inside = 0;
            s.episode += 1;
            s.episode_sum += deseasonalized;
            if s.episode >= p.relearn {
                // The shift has lasted: it is the new normal.
                baseline.level = s.episode_sum / f64::from(s.episode);
                s.anomalous = false;
                s.pending = 0;
                z = effective_z(baseline, p, deseasonalized - baseline.level);
            }
        }
    } else if z >= p.enter || (s.pending > 0 && s.pending_up == up && z >= p.exit) {
        if s.pending > 0 && s.pending_up == up && s.pending < p.relearn {
            s.pending += 1;
            s.pending_sum += deseasonalized;
        } else {
            s.pending = 1;
            s.pending_beyond = 0;
            s.pending_up = up;
            s.pending_sum = deseasonalized;
        }
        s.pending_beyond += u32::from(z >= p.enter);
        if s.pending_beyond >= p.confirm || z >= p.spike {
            onset = true;
            s.anomalous = true;
            s.episode_up = up;
            // A lone spike ends with the next normal sample; a confirmed shift needs as many
            // samples back inside `exit` to end as it needed beyond `enter` to begin.
            s.exit_after = if s.pending == 1 { 1 } else { p.confirm };
            s.inside = 0;
            s.episode = s.pending;
            s.episode_sum = s.pending_sum;
            s.pending = 0;
        }
        // Otherwise not learned from: a shift being confirmed must not pull the baseline along.
    } else {
        s.pending = 0;
        baseline.learn(residual, phase);
    }
    // Both sides are tracked so the baseline follows either way; only `direction` is reported.
    let counts = p.direction.allows(s.episode_up);
    Detection {
        score: if p.direction.allows(up) {
            z_score(z, p.enter)
        } else {
            0.0
        },
        anomaly: s.anomalous && counts,
        onset: onset && counts,
    }
}

/// `z² / (z² + enter²)`, written so that an infinite z scores 1 and z = 0 scores 0.
fn z_score(z: f64, enter: f64) -> f64 {
    let ratio = enter / z;
    1.0 / (1.0 + ratio * ratio)
}

/// |z|, lowered below the minimum effect: `min(|r|/σ, enter·|r|/min_effect)`, so it reaches
/// `enter` only when the deviation is both unusual and large enough to matter.
fn effective_z(baseline: &Baseline, p: &RobustZ, residual: f64) -> f64 {
    let magnitude = residual.abs();
    let z = magnitude / baseline.sigma();
    let min_effect = baseline.min_effect();
    if min_effect > 0.0 {
        z.min(p.enter * magnitude / min_effect)
    } else {
        z
    }
}

fn page_hinkley(
    baseline: &mut Baseline,
    p: &PageHinkley,
    s: &mut PageHinkleyState,
    value: f64,
    phase: Phase,
) -> Detection {
    let seasonal = baseline.seasonal(phase);
    let deseasonalized = value - seasonal;
    let residual = deseasonalized - baseline.level;
    let sigma = baseline.sigma();
    let allowance = (p.delta * sigma).max(baseline.min_effect());
    let bound = allowance + p.clip * sigma;
    let clipped = residual.clamp(-bound, bound);
    s.up = (s.up + (clipped - allowance) / sigma).max(0.0);
    if s.up > 0.0 {
        s.up_sum += deseasonalized;
        s.up_count += 1;
    } else {
        (s.up_sum, s.up_count) = (0.0, 0);
    }
    s.down = (s.down + (-clipped - allowance) / sigma).max(0.0);
    if s.down > 0.0 {
        s.down_sum += deseasonalized;
        s.down_count += 1;
    } else {
        (s.down_sum, s.down_count) = (0.0, 0);
    }
    let statistic = s.up.max(s.down);
    let mut onset = false;
    if statistic >= p.lambda {
        let up = s.up >= p.lambda;
        onset = !s.anomalous || s.episode_up != up;
        s.anomalous = true;
        s.episode_up = up;
        // Re-anchor at the mean since the change began (the last time the statistic was 0), so
        // the statistic decays once the series holds its new level, and rises again if it drifts.
        let (sum, count) = if up {
            (&mut s.up_sum, &mut s.up_count)
        } else {
            (&mut s.down_sum, &mut s.down_count)
        };
        let (sum, count) = (std::mem::take(sum), std::mem::take(count));
        if count > 0 {
            baseline.level = sum / f64::from(count);
        }
        s.episode_count = count;
    } else if s.anomalous && statistic < p.exit * p.lambda {
        // Over: start afresh, so that what is left of the statistic is no head start towards
        // the next alarm.
        *s = PageHinkleyState::default();
    } else if s.anomalous {
        // The new level, better estimated with every sample of the episode.
        s.episode_count = s.episode_count.saturating_add(1);
        baseline.level += (deseasonalized - baseline.level) / f64::from(s.episode_count);
    }
    if !s.anomalous && statistic < p.lambda / 2.0 {
        baseline.learn(residual, phase);
    }
    // Both sides are tracked so the baseline follows either way; only `direction` is reported.
    let reported = match p.direction {
        Direction::Both => statistic,
        Direction::Up => s.up,
        Direction::Down => s.down,
    };
    let counts = p.direction.allows(s.episode_up);
    Detection {
        score: (reported / p.lambda).min(1.0),
        anomaly: s.anomalous && counts,
        onset: onset && counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a tiny deterministic generator, so every test sees the same stream.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Standard normal, Box-Muller.
        fn normal(&mut self) -> f64 {
            let u = self.uniform().max(1e-300);
            let v = self.uniform();
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    fn config(name: &str, params: &str) -> DetectorConfig {
        DetectorConfig::parse(name, params).expect("valid config")
    }

    /// Feeds `values` one per minute; returns every detection.
    fn run(detector: &mut Detector, values: &[f64]) -> Vec<Detection> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| detector.update(i as f64 * 60.0, v))
            .collect()
    }

    fn noisy(seed: u64, n: usize, level: f64, sigma: f64) -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..n).map(|_| level + sigma * rng.normal()).collect()
    }

    fn onsets(detections: &[Detection]) -> Vec<usize> {
        (0..detections.len())
            .filter(|&i| detections[i].onset)
            .collect()
    }

    #[test]
    fn a_level_shift_is_detected_within_a_few_samples() {
        for name in DETECTOR_NAMES {
            let mut values = noisy(1, 600, 100.0, 2.0);
            for v in &mut values[300..] {
                *v += 12.0; // 6 σ, 12 %
            }
            let detections = run(&mut config(name, "").build(), &values);
            let found = onsets(&detections);
            assert_eq!(
                found.len(),
                1,
                "{name}: one episode, got onsets at {found:?}"
            );
            assert!(
                (300..310).contains(&found[0]),
                "{name}: detected at {}",
                found[0]
            );
            assert!(detections[found[0]].anomaly);
            assert!(detections[found[0]].score >= 0.5, "{name}");
        }
    }

    #[test]
    fn a_shift_downwards_is_detected_and_then_accepted_as_the_new_level() {
        let mut values = noisy(2, 600, 50.0, 1.0);
        for v in &mut values[200..] {
            *v -= 5.0;
        }
        let detections = run(&mut config("robust_z", "").build(), &values);
        assert_eq!(onsets(&detections).len(), 1);
        // Anomalous while the shift is fresh, normal again after `relearn` samples.
        assert!(detections[210].anomaly);
        assert!(!detections[300].anomaly);
        assert!(
            detections[400..]
                .iter()
                .all(|d| !d.anomaly && d.score < 0.5)
        );
    }

    #[test]
    fn a_single_spike_is_flagged_and_its_episode_ends_after_it() {
        let mut values = noisy(3, 400, 100.0, 1.0);
        values[250] += 15.0;
        let detections = run(&mut config("robust_z", "").build(), &values);
        assert_eq!(onsets(&detections), vec![250]);
        assert!(detections[250].anomaly && detections[250].score > 0.9);
        assert!(
            !detections[251].anomaly,
            "the episode ends with the next normal sample: {:?} {:?}",
            &values[245..255],
            &detections[249..253]
        );
        assert!(detections[251..].iter().all(|d| !d.anomaly));
        // Page-Hinkley leaves a lone spike alone: it looks for lasting changes.
        let detections = run(&mut config("page_hinkley", "").build(), &values);
        assert!(onsets(&detections).is_empty());
    }

    #[test]
    fn a_shift_that_reverts_ends_its_episode_once_back() {
        let mut values = noisy(15, 500, 100.0, 1.0);
        for v in &mut values[200..220] {
            *v += 6.0;
        }
        let detections = run(&mut config("robust_z", "").build(), &values);
        assert_eq!(onsets(&detections).len(), 1);
        assert!(detections[205..220].iter().all(|d| d.anomaly));
        // Ended after `confirm` (3) samples back inside `exit`, and nothing since.
        assert!(detections[223..].iter().all(|d| !d.anomaly));
    }

    #[test]
    fn a_stable_noisy_series_raises_nothing_in_ten_thousand_samples() {
        for name in DETECTOR_NAMES {
            for seed in [4, 5, 6] {
                let values = noisy(seed, 10_000, 200.0, 5.0);
                let detections = run(&mut config(name, "").build(), &values);
                assert!(
                    detections.iter().all(|d| !d.anomaly),
                    "{name} seed {seed}: anomalies at {:?}",
                    onsets(&detections)
                );
                assert!(detections.iter().all(|d| (0.0..=1.0).contains(&d.score)));
            }
        }
    }

    #[test]
    fn a_shift_below_the_minimum_effect_does_not_fire() {
        // A very stable series: a 0.5 shift is 50 σ, but only 0.5 % of the level.
        for name in DETECTOR_NAMES {
            let mut values = noisy(7, 800, 100.0, 0.01);
            for v in &mut values[400..] {
                *v += 0.5;
            }
            let detections = run(&mut config(name, "").build(), &values);
            assert!(
                onsets(&detections).is_empty(),
                "{name}: {:?}",
                onsets(&detections)
            );
            // Without a minimum effect it is an anomaly.
            let detections = run(&mut config(name, "min_relative_effect=0").build(), &values);
            assert!(!onsets(&detections).is_empty(), "{name}");
            // An absolute minimum works the same way.
            let detections = run(
                &mut config(name, "min_relative_effect=0,min_effect=1").build(),
                &values,
            );
            assert!(onsets(&detections).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_slow_drift_is_caught_by_page_hinkley() {
        let mut values = noisy(8, 1500, 100.0, 1.0);
        for (i, v) in values[500..1000].iter_mut().enumerate() {
            *v += 8.0 * i as f64 / 500.0;
        }
        for v in &mut values[1000..] {
            *v += 8.0;
        }
        let detections = run(&mut config("page_hinkley", "").build(), &values);
        let found = onsets(&detections);
        assert!(
            !found.is_empty() && (500..700).contains(&found[0]),
            "{found:?}"
        );
    }

    #[test]
    fn direction_restricts_which_side_counts() {
        let mut values = noisy(9, 600, 0.9, 0.002);
        for v in &mut values[300..] {
            *v += 0.03; // accuracy got better: not an incident
        }
        for name in DETECTOR_NAMES {
            let detections = run(&mut config(name, "direction=down").build(), &values);
            assert!(onsets(&detections).is_empty(), "{name}");
            let detections = run(&mut config(name, "direction=up").build(), &values);
            assert_eq!(onsets(&detections).len(), 1, "{name}");
        }
    }

    #[test]
    fn the_ignored_direction_still_moves_the_baseline() {
        // Latency drops from 100 to 80 (good news, silent), then climbs to 95: a rise of 15 over
        // the new normal, though still below the old one.
        let mut values = noisy(14, 900, 100.0, 1.0);
        for v in &mut values[300..] {
            *v -= 20.0;
        }
        for v in &mut values[600..] {
            *v += 15.0;
        }
        for name in DETECTOR_NAMES {
            let detections = run(&mut config(name, "direction=up").build(), &values);
            let found = onsets(&detections);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert!((600..620).contains(&found[0]), "{name}: {found:?}");
            assert!(
                detections[300..600]
                    .iter()
                    .all(|d| !d.anomaly && d.score < 0.5)
            );
        }
    }

    #[test]
    fn non_finite_values_are_ignored_and_gaps_do_not_matter() {
        let mut detector = config("robust_z", "").build();
        let values = noisy(10, 200, 10.0, 0.5);
        let mut t = 0.0;
        for (i, &v) in values.iter().enumerate() {
            // Every tenth sample is missing: time moves on, nothing is fed.
            t += 60.0;
            if i % 10 == 3 {
                continue;
            }
            assert!(!detector.update(t, v).anomaly);
        }
        let before = serde_json::to_string(&detector).expect("serializes");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(detector.update(t + 60.0, bad), Detection::QUIET);
        }
        assert_eq!(detector.update(f64::NAN, 10.0), Detection::QUIET);
        assert_eq!(
            serde_json::to_string(&detector).expect("serializes"),
            before
        );
        let after_gap = detector.update(t + 86_400.0, 10.2);
        assert!(!after_gap.anomaly && after_gap.score < 0.5);
    }

    #[test]
    fn a_persisted_detector_continues_where_it_left_off() {
        let values = noisy(11, 400, 5.0, 0.3);
        let mut whole = config("page_hinkley", "").build();
        let mut split = config("page_hinkley", "").build();
        let first = run(&mut whole, &values);
        let _ = run(&mut split, &values[..200]);
        let json = serde_json::to_string(&split).expect("serializes");
        let mut restored: Detector = serde_json::from_str(&json).expect("deserializes");
        for (i, &v) in values.iter().enumerate().skip(200) {
            assert_eq!(restored.update(i as f64 * 60.0, v), first[i]);
        }
    }

    #[test]
    fn seasonality_is_learned_when_configured() {
        // A daily cycle of ±10 (5 σ) at one sample per 5 minutes, 20 days; a shift on day 15.
        let mut rng = Rng(12);
        let samples: Vec<(f64, f64)> = (0..20 * 288)
            .map(|i| {
                let t = i as f64 * 300.0;
                let day = (t / 86_400.0 * std::f64::consts::TAU).sin();
                let shift = if i >= 15 * 288 { 15.0 } else { 0.0 };
                (t, 100.0 + 10.0 * day + 2.0 * rng.normal() + shift)
            })
            .collect();
        for name in DETECTOR_NAMES {
            let mut detector = config(name, "season=86400").build();
            let found: Vec<usize> = samples
                .iter()
                .enumerate()
                .filter(|(_, (t, v))| detector.update(*t, *v).onset)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert!(
                (15 * 288..15 * 288 + 10).contains(&found[0]),
                "{name}: {found:?}"
            );
        }
    }

    #[test]
    fn scores_stay_in_range_on_wild_input() {
        for name in DETECTOR_NAMES {
            let mut detector = config(name, "").build();
            let mut rng = Rng(13);
            for i in 0..5_000 {
                let v = match i % 7 {
                    0 => 0.0,
                    1 => 1e12 * rng.normal(),
                    _ => rng.normal(),
                };
                let d = detector.update(i as f64, v);
                assert!((0.0..=1.0).contains(&d.score), "{name}: {d:?}");
            }
            // A constant series, then a jump: no division by zero.
            let mut detector = config(name, "").build();
            let constant = vec![0.0; 100];
            assert!(run(&mut detector, &constant).iter().all(|d| !d.anomaly));
            let d = detector.update(1e6, 1.0);
            assert!(d.score.is_finite());
        }
    }

    #[test]
    fn parse_takes_defaults_and_overrides() {
        assert_eq!(
            DetectorConfig::parse("robust_z", "").expect("defaults"),
            DetectorConfig::RobustZ(RobustZ::default())
        );
        let parsed = DetectorConfig::parse("page_hinkley", " lambda = 30, direction=up ,")
            .expect("overrides");
        assert_eq!(
            parsed,
            DetectorConfig::PageHinkley(PageHinkley {
                lambda: 30.0,
                direction: Direction::Up,
                ..PageHinkley::default()
            })
        );
        // The stored form: tagged, defaults filled in, unknown fields refused.
        let stored: DetectorConfig =
            serde_json::from_str(r#"{"detector": "robust_z", "enter": 5}"#).expect("json");
        assert_eq!(
            stored,
            DetectorConfig::RobustZ(RobustZ {
                enter: 5.0,
                ..RobustZ::default()
            })
        );
        let unknown =
            serde_json::from_str::<DetectorConfig>(r#"{"detector": "robust_z", "entre": 5}"#);
        assert!(unknown.is_err());
        let round = serde_json::to_value(&parsed).expect("serializes");
        assert_eq!(round["detector"], "page_hinkley");
        assert_eq!(
            serde_json::from_value::<DetectorConfig>(round).expect("round trip"),
            parsed
        );
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let check = |name: &str, params: &str, expected: &[&str]| {
            let error = DetectorConfig::parse(name, params).expect_err("refused");
            for part in expected {
                assert!(error.contains(part), "{error:?} lacks {part:?}");
            }
        };
        check(
            "zscore",
            "",
            &["unknown detector `zscore`", "robust_z, page_hinkley"],
        );
        check(
            "robust_z",
            "treshold=3",
            &[
                "unknown parameter `treshold`",
                "enter",
                "exit",
                "min_effect",
            ],
        );
        check("robust_z", "enter", &["`enter` is not key=value"]);
        check(
            "robust_z",
            "enter=high",
            &["`enter` must be a number, got `high`"],
        );
        check(
            "robust_z",
            "confirm=2.5",
            &["`confirm` must be a whole number"],
        );
        check("robust_z", "enter=3,enter=4", &["`enter` is given twice"]);
        check("robust_z", "exit=5", &["`exit`", "below `enter`"]);
        check(
            "robust_z",
            "alpha=1.5",
            &["`alpha` must be between 0 and 1"],
        );
        check(
            "page_hinkley",
            "lambda=-1",
            &["`lambda` must be a positive number"],
        );
        check(
            "page_hinkley",
            "direction=sideways",
            &["`direction`", "sideways"],
        );
        check(
            "page_hinkley",
            "enter=3",
            &["unknown parameter `enter`", "lambda"],
        );
        check(
            "robust_z",
            "detector=page_hinkley",
            &["unknown parameter `detector`"],
        );
    }
}

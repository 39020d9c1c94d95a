//! Walking a directory tree into the sorted list of regular files a scan examines. Paths are
//! relative to the root, so a report does not depend on where the tree is mounted.
//!
//! - Symbolic links are skipped unless `follow_symlinks`; when followed, each directory is entered
//!   once (by its canonical path), so a link cycle ends, and a dangling link is an error entry.
//! - `.git` directories are not entered: Git LFS keeps a second copy of every model file there
//!   without its extension, and a scan of a cloned model repository would list each model twice.
//! - Anything but regular files and directories (FIFOs, sockets, devices) is skipped: opening a
//!   FIFO would block the scan.
//! - A file name that is not UTF-8 is an error entry (a report is JSON, whose strings are UTF-8).
//! - An unreadable subdirectory is an error entry; only an unreadable root stops the walk.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::ScanError;

/// The regular files under a root, and what could not be walked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Relative to the root, sorted.
    pub files: Vec<PathBuf>,
    /// (relative path, message), sorted.
    pub errors: Vec<(PathBuf, String)>,
}

/// Lists the regular files under `root`.
pub fn walk(root: &Path, follow_symlinks: bool) -> Result<Walk, ScanError> {
    let root_error = |source| ScanError::Root {
        root: root.to_path_buf(),
        source,
    };
    let metadata = fs::metadata(root).map_err(root_error)?;
    if !metadata.is_dir() {
        return Err(ScanError::NotADirectory {
            root: root.to_path_buf(),
        });
    }
    let mut visited = HashSet::new();
    if follow_symlinks {
        visited.insert(fs::canonicalize(root).map_err(root_error)?);
    }

    let mut walk = Walk::default();
    let mut pending = vec![PathBuf::new()];
    while let Some(directory) = pending.pop() {
        let entries = match fs::read_dir(root.join(&directory)) {
            Ok(entries) => entries,
            Err(source) if directory.as_os_str().is_empty() => return Err(root_error(source)),
            Err(error) => {
                walk.errors
                    .push((directory, format!("cannot read the directory: {error}")));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    walk.errors.push((
                        directory.clone(),
                        format!("cannot list the directory: {error}"),
                    ));
                    continue;
                }
            };
            let name = entry.file_name();
            let relative = directory.join(&name);
            if name.to_str().is_none() {
                walk.errors.push((
                    PathBuf::from(relative.to_string_lossy().into_owned()),
                    "the file name is not UTF-8: rename it to scan it".to_owned(),
                ));
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(error) => {
                    walk.errors
                        .push((relative, format!("cannot read the file type: {error}")));
                    continue;
                }
            };
            if file_type.is_dir() {
                if name != ".git" {
                    pending.push(relative);
                }
            } else if file_type.is_file() {
                walk.files.push(relative);
            } else if file_type.is_symlink() && follow_symlinks {
                let full = root.join(&relative);
                match fs::metadata(&full) {
                    Ok(target) if target.is_dir() => match fs::canonicalize(&full) {
                        Ok(canonical) => {
                            if visited.insert(canonical) {
                                pending.push(relative);
                            }
                        }
                        Err(error) => walk.errors.push((
                            relative,
                            format!("cannot resolve the symbolic link: {error}"),
                        )),
                    },
                    Ok(target) if target.is_file() => walk.files.push(relative),
                    Ok(_) => {}
                    Err(error) => walk
                        .errors
                        .push((relative, format!("dangling symbolic link: {error}"))),
                }
            }
        }
    }
    walk.files.sort();
    walk.errors.sort();
    Ok(walk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_sorted_and_relative_skipping_git() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        fs::create_dir_all(root.path().join("b/c"))?;
        fs::create_dir_all(root.path().join(".git/lfs"))?;
        fs::write(root.path().join("b/c/z.onnx"), b"")?;
        fs::write(root.path().join("b/a.gguf"), b"")?;
        fs::write(root.path().join("top.pkl"), b"")?;
        fs::write(root.path().join(".git/lfs/object"), b"")?;
        let walk = walk(root.path(), false).map_err(std::io::Error::other)?;
        assert_eq!(
            walk.files,
            vec![
                PathBuf::from("b/a.gguf"),
                PathBuf::from("b/c/z.onnx"),
                PathBuf::from("top.pkl")
            ]
        );
        assert_eq!(walk.errors, vec![]);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_skipped_or_followed_once() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        fs::create_dir_all(root.path().join("models"))?;
        fs::write(root.path().join("models/m.gguf"), b"")?;
        std::os::unix::fs::symlink(root.path(), root.path().join("models/loop"))?;
        std::os::unix::fs::symlink(
            root.path().join("models/m.gguf"),
            root.path().join("alias.gguf"),
        )?;
        std::os::unix::fs::symlink(root.path().join("gone"), root.path().join("dangling"))?;

        let skipped = walk(root.path(), false).map_err(std::io::Error::other)?;
        assert_eq!(skipped.files, vec![PathBuf::from("models/m.gguf")]);
        assert_eq!(skipped.errors, vec![]);

        let followed = walk(root.path(), true).map_err(std::io::Error::other)?;
        assert_eq!(
            followed.files,
            vec![PathBuf::from("alias.gguf"), PathBuf::from("models/m.gguf")]
        );
        assert_eq!(followed.errors.len(), 1);
        assert_eq!(followed.errors[0].0, PathBuf::from("dangling"));
        assert!(followed.errors[0].1.starts_with("dangling symbolic link"));
        Ok(())
    }

    #[test]
    fn a_missing_root_is_a_scan_error() {
        let missing = Path::new("/nonexistent/steward-discovery-test");
        assert!(matches!(walk(missing, false), Err(ScanError::Root { .. })));
    }
}

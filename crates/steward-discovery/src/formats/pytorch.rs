//! PyTorch's `torch.save` archives (PyTorch ≥ 1.6, and TorchScript): an uncompressed ZIP holding
//! `<archive>/data.pkl` (the pickled object graph), one `<archive>/data/<key>` entry per tensor
//! storage, `<archive>/version` and `<archive>/byteorder`. A small reader of ZIP's central
//! directory (the index at the end of the file, with the ZIP64 records large checkpoints need)
//! lists the entries without touching the storages; nothing is unpickled, so the parameter count
//! is not known — the storage bytes are.

use std::io::{Read, Seek};

use serde_json::Value;

use super::{Findings, PICKLE_NOTE, Source, Trouble};

const END_OF_CENTRAL_DIRECTORY: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_END_OF_CENTRAL_DIRECTORY: &[u8; 4] = b"PK\x06\x06";
const CENTRAL_FILE_HEADER: &[u8; 4] = b"PK\x01\x02";
const LOCAL_FILE_HEADER: &[u8; 4] = b"PK\x03\x04";
/// The end record is 22 bytes plus a comment of at most 65,535.
const MAX_END_RECORD: u64 = 22 + 65_535;

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    method: u16,
    size: u64,
    local_header: u64,
}

/// Reads the central directory of a ZIP file of `length` bytes. `None`: a readable ZIP archive
/// that is not a PyTorch checkpoint (no `<archive>/data.pkl`). An unreadable archive is
/// `Some`, with its problem, since its name made it a candidate.
pub fn read<R: Read + Seek>(
    reader: &mut R,
    length: u64,
    max_header_bytes: u64,
) -> Option<Findings> {
    let mut findings = Findings::default();
    findings.set("framework", "pytorch");
    findings.note(PICKLE_NOTE);
    let mut source = Source::new(reader, length, max_header_bytes);
    let entries = match central_directory(&mut source) {
        Ok(entries) => entries,
        Err(trouble) => {
            findings.trouble(&trouble);
            return Some(findings);
        }
    };
    let archive = entries
        .iter()
        .filter_map(|entry| entry.name.strip_suffix("/data.pkl"))
        .min_by_key(|prefix| (prefix.len(), *prefix))?
        .to_owned();

    let storage_prefix = format!("{archive}/data/");
    let storages = entries
        .iter()
        .filter(|entry| entry.name.starts_with(&storage_prefix));
    let storage_count = storages.clone().count();
    let storage_bytes = storages.fold(0u64, |sum, entry| sum.saturating_add(entry.size));
    let torchscript = entries.iter().any(|entry| {
        entry.name.starts_with(&format!("{archive}/code/"))
            || entry.name == format!("{archive}/constants.pkl")
    });
    let mut raw = serde_json::Map::new();
    raw.insert("archive".into(), Value::from(archive.as_str()));
    raw.insert("entries".into(), Value::from(entries.len()));
    raw.insert("storages".into(), Value::from(storage_count));
    raw.insert("storage_bytes".into(), Value::from(storage_bytes));
    raw.insert("torchscript".into(), Value::from(torchscript));
    for (key, names) in [
        ("version", [".data/version", "version"]),
        ("byteorder", ["byteorder", "byteorder"]),
    ] {
        let entry = names.iter().find_map(|name| {
            let full = format!("{archive}/{name}");
            entries.iter().find(|entry| entry.name == full)
        });
        if let Some(entry) = entry {
            match small_record(&mut source, entry) {
                Ok(Some(text)) => {
                    raw.insert(key.into(), Value::from(text));
                }
                Ok(None) => {}
                Err(trouble) => findings.trouble(&trouble),
            }
        }
    }
    findings.set("raw", Value::Object(raw));
    if torchscript {
        findings.set("producer", "torchscript");
    }
    Some(findings)
}

fn central_directory<R: Read + Seek>(source: &mut Source<'_, R>) -> Result<Vec<Entry>, Trouble> {
    let length = source.length();
    let tail_length = length.min(MAX_END_RECORD);
    let tail_start = length - tail_length;
    source.seek_to(tail_start, "the end of the archive")?;
    let tail = source.bytes(tail_length, "the end of the archive")?;
    let end_at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&index| tail[index..].starts_with(END_OF_CENTRAL_DIRECTORY))
        .ok_or_else(|| {
            Trouble::corrupt(
                "no ZIP end-of-central-directory record: the archive is truncated or not a ZIP file",
            )
        })?;
    let end = &tail[end_at..];
    let mut entry_count = u64::from(u16_at(end, 10));
    let mut directory_size = u64::from(u32_at(end, 12));
    let mut directory_offset = u64::from(u32_at(end, 16));
    let end_position = tail_start + end_at as u64;

    if entry_count == 0xffff || directory_size == 0xffff_ffff || directory_offset == 0xffff_ffff {
        // ZIP64: a locator just before the end record points at the 64-bit end record.
        let locator_position = end_position.checked_sub(20).ok_or_else(|| {
            Trouble::corrupt("a ZIP64 archive without its ZIP64 end-record locator")
        })?;
        source.seek_to(locator_position, "the ZIP64 locator")?;
        let locator = source.bytes(20, "the ZIP64 locator")?;
        if !locator.starts_with(ZIP64_LOCATOR) {
            return Err(Trouble::corrupt(
                "a ZIP64 archive without its ZIP64 end-record locator",
            ));
        }
        let record_position = u64_at(&locator, 8);
        source.seek_to(record_position, "the ZIP64 end record")?;
        let record = source.bytes(56, "the ZIP64 end record")?;
        if !record.starts_with(ZIP64_END_OF_CENTRAL_DIRECTORY) {
            return Err(Trouble::corrupt("the ZIP64 end record is missing"));
        }
        entry_count = u64_at(&record, 32);
        directory_size = u64_at(&record, 40);
        directory_offset = u64_at(&record, 48);
    }

    if directory_offset.saturating_add(directory_size) > end_position {
        return Err(Trouble::Truncated {
            what: "the ZIP central directory".to_owned(),
            offset: directory_offset,
            needed: directory_size,
            length: end_position,
        });
    }
    // Each central directory entry is at least 46 bytes.
    if entry_count > directory_size / 46 {
        return Err(Trouble::corrupt(format!(
            "the ZIP end record claims {entry_count} entries in a {directory_size}-byte directory"
        )));
    }
    source.seek_to(directory_offset, "the ZIP central directory")?;
    let directory = source.bytes(directory_size, "the ZIP central directory")?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    for _ in 0..entry_count {
        let fixed = directory
            .get(at..at + 46)
            .filter(|fixed| fixed.starts_with(CENTRAL_FILE_HEADER))
            .ok_or_else(|| {
                Trouble::corrupt(format!(
                    "ZIP central directory entry {} is damaged",
                    entries.len()
                ))
            })?;
        let method = u16_at(fixed, 10);
        let mut size = u64::from(u32_at(fixed, 24));
        let name_length = usize::from(u16_at(fixed, 28));
        let extra_length = usize::from(u16_at(fixed, 30));
        let comment_length = usize::from(u16_at(fixed, 32));
        let mut local_header = u64::from(u32_at(fixed, 42));
        let compressed_is_64 = u32_at(fixed, 20) == 0xffff_ffff;
        let name_start = at + 46;
        let extra_start = name_start + name_length;
        let next = extra_start + extra_length + comment_length;
        let (Some(name), Some(extra)) = (
            directory.get(name_start..extra_start),
            directory.get(extra_start..extra_start + extra_length),
        ) else {
            return Err(Trouble::corrupt(format!(
                "ZIP central directory entry {} runs past the directory",
                entries.len()
            )));
        };
        if size == 0xffff_ffff || local_header == 0xffff_ffff {
            let values = zip64_extra(extra);
            let mut values = values.iter().copied();
            if size == 0xffff_ffff {
                size = values.next().unwrap_or(size);
            }
            if compressed_is_64 {
                values.next();
            }
            if local_header == 0xffff_ffff {
                local_header = values.next().unwrap_or(local_header);
            }
        }
        entries.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            size,
            local_header,
        });
        at = next;
    }
    Ok(entries)
}

/// The 64-bit values of a ZIP64 extended-information extra field (header id 1), in order.
fn zip64_extra(mut extra: &[u8]) -> Vec<u64> {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let size = usize::from(u16_at(extra, 2));
        let Some(data) = extra.get(4..4 + size) else {
            break;
        };
        if id == 1 {
            return data.chunks_exact(8).map(|chunk| u64_at(chunk, 0)).collect();
        }
        extra = &extra[4 + size..];
    }
    Vec::new()
}

/// The text of a short stored entry (`version`, `byteorder`), read through its local header.
fn small_record<R: Read + Seek>(
    source: &mut Source<'_, R>,
    entry: &Entry,
) -> Result<Option<String>, Trouble> {
    if entry.method != 0 || entry.size > 64 {
        return Ok(None);
    }
    source.seek_to(entry.local_header, &entry.name)?;
    let header = source.bytes(30, &entry.name)?;
    if !header.starts_with(LOCAL_FILE_HEADER) {
        return Err(Trouble::corrupt(format!(
            "the local header of {} is missing",
            entry.name
        )));
    }
    let skip = u64::from(u16_at(&header, 26)) + u64::from(u16_at(&header, 28));
    source.skip(skip, &entry.name)?;
    let bytes = source.bytes(entry.size, &entry.name)?;
    Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned()))
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    let mut value = [0u8; 2];
    if let Some(slice) = bytes.get(at..at + 2) {
        value.copy_from_slice(slice);
    }
    u16::from_le_bytes(value)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut value = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        value.copy_from_slice(slice);
    }
    u32::from_le_bytes(value)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut value = [0u8; 8];
    if let Some(slice) = bytes.get(at..at + 8) {
        value.copy_from_slice(slice);
    }
    u64::from_le_bytes(value)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use serde_json::json;

    use super::*;
    use crate::samples;

    /// The JSON a `read` of a plain checkpoint gives under `raw`.
    fn expected_raw(archive: &str, entries: usize, storages: &[usize]) -> Value {
        json!({
            "archive": archive,
            "entries": entries,
            "storages": storages.len(),
            "storage_bytes": storages.iter().sum::<usize>(),
            "torchscript": false,
            "version": "3",
            "byteorder": "little",
        })
    }

    fn findings(bytes: &[u8]) -> Option<Findings> {
        read(&mut Cursor::new(bytes), bytes.len() as u64, 1 << 20)
    }

    #[test]
    fn lists_the_archive_without_reading_storages() {
        let bytes = samples::torch_zip("model", &[4096, 64]);
        let found = findings(&bytes).expect("a checkpoint");
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(found.metadata["framework"], json!("pytorch"));
        assert_eq!(found.metadata["notes"], json!([PICKLE_NOTE]));
        assert_eq!(found.metadata["raw"], expected_raw("model", 6, &[4096, 64]));
    }

    #[test]
    fn an_archive_without_data_pkl_is_not_pytorch() {
        let bytes = samples::zip(&[("docs/readme.txt", b"hello".as_slice())]);
        assert_eq!(findings(&bytes), None);
    }

    #[test]
    fn a_cut_archive_has_no_directory() {
        let bytes = samples::torch_zip("model", &[4096]);
        let found = findings(&bytes[..3000]).expect("reported");
        assert_eq!(
            found.problems,
            vec![
                "corrupt header: no ZIP end-of-central-directory record: the archive is truncated or not a ZIP file"
            ]
        );
    }
}

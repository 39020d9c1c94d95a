//! The model file formats Steward recognises, and how a file is recognised: by its name and its
//! first bytes, never by loading it. Each format module is a pure function over a `Read + Seek`
//! (a file, or a `Cursor` over bytes in tests) that reads headers only — the safetensors JSON
//! header, ONNX's top-level protobuf fields, GGUF's key/values and tensor table, a ZIP central
//! directory, a pickle's first bytes — and returns [`Findings`]: normalised metadata plus the
//! problems it met. A reader never fails: a truncated or corrupt header is a problem of that
//! artifact, described in words, and whatever could be read before it is kept.
//!
//! Every read goes through `Source`, which knows the file's length (so a length field that
//! points past the end is reported as truncation before anything is allocated) and a budget of
//! bytes it may copy into memory (`max_header_bytes`), so a hostile header cannot make the scanner
//! allocate gigabytes. Large regions (an ONNX graph, a GGUF tokenizer vocabulary) are skipped by
//! seeking, not read.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod gguf;
pub mod onnx;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;

/// The kind of a model artifact. Unrecognised files are not artifacts, so there is no `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Hugging Face safetensors: a JSON header, then raw tensor bytes.
    Safetensors,
    /// An ONNX `ModelProto` (protobuf).
    Onnx,
    /// llama.cpp's GGUF: key/values, a tensor table, then (often quantised) tensor data.
    Gguf,
    /// A Python pickle, including legacy (pre-1.6, non-ZIP) `torch.save` files.
    Pickle,
    /// A joblib dump: a pickle, possibly compressed.
    Joblib,
    /// A `torch.save` ZIP archive (`<archive>/data.pkl` plus one entry per storage).
    PytorchZip,
}

impl Format {
    /// The name used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
            Format::Gguf => "gguf",
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::PytorchZip => "pytorch_zip",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The note every pickle-based artifact carries: it is the one format that executes code.
pub const PICKLE_NOTE: &str = "pickle can run code when loaded: load it only from a trusted source, or convert it to safetensors";

/// At most this many problems are listed per artifact; the rest are counted in a last line.
const MAX_PROBLEMS: usize = 20;

/// What a format reader found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Normalised keys (`name`, `architecture`, `framework`, `producer`, `producer_version`,
    /// `opsets`, `license`, `base_model`, `dtypes`, `tensor_count`, `parameter_count`, `notes`)
    /// and the format's own metadata under `raw`. Keys are present only when known.
    pub metadata: BTreeMap<String, Value>,
    /// Truncated or corrupt headers, in words; empty when the header read cleanly.
    pub problems: Vec<String>,
    omitted_problems: u64,
}

impl Findings {
    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.metadata.insert(key.to_owned(), value.into());
    }

    pub(crate) fn problem(&mut self, problem: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem.into());
        } else {
            self.omitted_problems += 1;
        }
    }

    pub(crate) fn trouble(&mut self, trouble: &Trouble) {
        self.problem(trouble.describe());
    }

    pub(crate) fn note(&mut self, note: &str) {
        let notes = self
            .metadata
            .entry("notes".to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(notes) = notes {
            notes.push(Value::from(note));
        }
    }

    /// Closes the problem list: the problems past the first twenty become one counting line.
    pub(crate) fn finish(mut self) -> Findings {
        if self.omitted_problems > 0 {
            self.problems.push(format!(
                "and {} more problems like these",
                thousands(self.omitted_problems)
            ));
            self.omitted_problems = 0;
        }
        self
    }
}

/// Reads a file's header and says what it is. `file_name` is the file's name (its extension
/// matters); `length` its size in bytes; `reader` is positioned at its start, and buffered: the
/// first bytes are peeked from its buffer, so a small file is read from disk once. `Ok(None)`:
/// not a model file. An error only when even the first bytes cannot be read; once a file is
/// recognised, every later trouble is one of its problems.
///
/// Recognition, in order:
/// - `*.safetensors`; or no extension and a plausible safetensors start (a length that fits the
///   file, then `{"`) — Hugging Face's cache keeps blobs without extensions.
/// - `*.gguf`, or any file starting with `GGUF`.
/// - `*.onnx` (protobuf has no magic: the name decides, the parse confirms).
/// - ZIP archives (`PK\x03\x04`) named `*.pt`, `*.pth`, `*.ckpt`, `*.bin`, `*.tar`, `*.pkl`,
///   `*.pickle` or without extension, holding `<archive>/data.pkl`: PyTorch. A `.pt`, `.pth` or
///   `.ckpt` ZIP without it is still reported, with a problem; the others are skipped.
/// - `*.joblib`; `*.pkl`, `*.pickle`; `*.pt`, `*.pth`, `*.ckpt` (legacy torch files are
///   pickles); `*.bin` only when it starts like a pickle (0x80, protocol 2–5), since `.bin` is
///   also any other binary; any file starting with legacy `torch.save`'s magic number.
pub fn examine<R: BufRead + Seek>(
    reader: &mut R,
    length: u64,
    file_name: &str,
    max_header_bytes: u64,
) -> io::Result<Option<(Format, Findings)>> {
    let mut head = [0u8; 16];
    let head = peek(reader, &mut head)?;

    let Some(candidate) = identify(file_name, head, length) else {
        return Ok(None);
    };
    let found = match candidate {
        Candidate::Safetensors => Some((
            Format::Safetensors,
            safetensors::read(reader, length, max_header_bytes),
        )),
        Candidate::Onnx => Some((Format::Onnx, onnx::read(reader, length, max_header_bytes))),
        Candidate::Gguf => Some((Format::Gguf, gguf::read(reader, length, max_header_bytes))),
        Candidate::Pickle => Some((
            Format::Pickle,
            pickle::read(reader, length, pickle::Flavour::Pickle),
        )),
        Candidate::Joblib => Some((
            Format::Joblib,
            pickle::read(reader, length, pickle::Flavour::Joblib),
        )),
        Candidate::Zip {
            report_without_data_pkl,
        } => match pytorch::read(reader, length, max_header_bytes) {
            Some(findings) => Some((Format::PytorchZip, findings)),
            None if report_without_data_pkl => {
                let mut findings = Findings::default();
                findings.set("framework", "pytorch");
                findings.problem(
                    "a ZIP archive without <archive>/data.pkl: not a torch.save checkpoint",
                );
                Some((Format::PytorchZip, findings))
            }
            None => None,
        },
    };
    Ok(found.map(|(format, findings)| (format, findings.finish())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate {
    Safetensors,
    Onnx,
    Gguf,
    Pickle,
    Joblib,
    Zip { report_without_data_pkl: bool },
}

/// Legacy `torch.save` starts with a protocol-2 pickle of its magic number
/// 0x1950a86a20f9469cfc6c (`LONG1`, 10 bytes little-endian).
const LEGACY_TORCH_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

pub(crate) fn is_legacy_torch(head: &[u8]) -> bool {
    head.starts_with(&LEGACY_TORCH_MAGIC)
}

pub(crate) fn starts_like_pickle(head: &[u8]) -> bool {
    matches!(head, [0x80, 2..=5, ..])
}

fn identify(file_name: &str, head: &[u8], length: u64) -> Option<Candidate> {
    let lower = file_name.to_ascii_lowercase();
    let extension = match lower.rsplit_once('.') {
        Some((_, extension)) => extension,
        None => "",
    };
    let zip = head.starts_with(b"PK\x03\x04");
    match extension {
        "safetensors" => return Some(Candidate::Safetensors),
        "gguf" => return Some(Candidate::Gguf),
        "onnx" => return Some(Candidate::Onnx),
        _ => {}
    }
    if head.starts_with(b"GGUF") {
        return Some(Candidate::Gguf);
    }
    if zip {
        return match extension {
            "pt" | "pth" | "ckpt" => Some(Candidate::Zip {
                report_without_data_pkl: true,
            }),
            "bin" | "tar" | "pkl" | "pickle" | "" => Some(Candidate::Zip {
                report_without_data_pkl: false,
            }),
            _ => None,
        };
    }
    match extension {
        "joblib" => Some(Candidate::Joblib),
        "pkl" | "pickle" | "pt" | "pth" | "ckpt" => Some(Candidate::Pickle),
        "bin" if starts_like_pickle(head) => Some(Candidate::Pickle),
        _ if is_legacy_torch(head) => Some(Candidate::Pickle),
        "" if safetensors::sniff(head, length) => Some(Candidate::Safetensors),
        _ => None,
    }
}

/// The first bytes of `reader` (up to `into.len()`), left unread. Peeks at the buffer; only when
/// one read returned fewer bytes than wanted (and the file has more) does it read on and rewind.
fn peek<'h, R: BufRead + Seek>(reader: &mut R, into: &'h mut [u8]) -> io::Result<&'h [u8]> {
    let buffered = reader.fill_buf()?;
    if buffered.len() >= into.len() {
        into.copy_from_slice(&buffered[..into.len()]);
        return Ok(into);
    }
    let mut filled = 0;
    while filled < into.len() {
        match reader.read(&mut into[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    reader.seek(SeekFrom::Start(0))?;
    Ok(&into[..filled])
}

/// Why a header could not be read to its end.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// A length or offset points past the end of the file.
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        length: u64,
    },
    /// The bytes are there but do not make sense.
    Corrupt(String),
    /// Reading this would copy more than `max_header_bytes` into memory.
    TooLarge { what: String, size: u64, limit: u64 },
    /// The operating system refused a read or a seek.
    Io(io::Error),
}

impl Trouble {
    pub(crate) fn corrupt(message: impl Into<String>) -> Trouble {
        Trouble::Corrupt(message.into())
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Trouble::Truncated {
                what,
                offset,
                needed,
                length,
            } => format!(
                "truncated: {what} at byte {} needs {} bytes, file has {}",
                thousands(*offset),
                thousands(*needed),
                thousands(*length)
            ),
            Trouble::Corrupt(message) => format!("corrupt header: {message}"),
            Trouble::TooLarge { what, size, limit } => format!(
                "header too large: {what} is {} bytes, more than max_header_bytes ({}) allows",
                thousands(*size),
                thousands(*limit)
            ),
            Trouble::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                "truncated: the file ended early (did it change during the scan?)".to_owned()
            }
            Trouble::Io(error) => format!("read error: {error}"),
        }
    }
}

impl From<io::Error> for Trouble {
    fn from(error: io::Error) -> Self {
        Trouble::Io(error)
    }
}

/// Skips shorter than this read through the buffer; longer ones seek.
const SEEK_THRESHOLD: u64 = 64 * 1024;

/// A bounded view of a file: its length, the position reached, and how many more bytes may be
/// copied into memory.
pub(crate) struct Source<'r, R> {
    reader: &'r mut R,
    position: u64,
    length: u64,
    budget: u64,
    limit: u64,
}

impl<'r, R: Read + Seek> Source<'r, R> {
    /// `reader` must be positioned at byte 0 of a file of `length` bytes.
    pub(crate) fn new(reader: &'r mut R, length: u64, max_header_bytes: u64) -> Self {
        Source {
            reader,
            position: 0,
            length,
            budget: max_header_bytes,
            limit: max_header_bytes,
        }
    }

    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    pub(crate) fn length(&self) -> u64 {
        self.length
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.length.saturating_sub(self.position)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.position >= self.length
    }

    /// Fails with `Truncated` unless `needed` more bytes exist.
    pub(crate) fn need(&self, needed: u64, what: &str) -> Result<(), Trouble> {
        if needed > self.remaining() {
            return Err(Trouble::Truncated {
                what: what.to_owned(),
                offset: self.position,
                needed,
                length: self.length,
            });
        }
        Ok(())
    }

    /// Copies `count` bytes into memory, within the file and the budget.
    pub(crate) fn bytes(&mut self, count: u64, what: &str) -> Result<Vec<u8>, Trouble> {
        self.need(count, what)?;
        if count > self.budget {
            return Err(Trouble::TooLarge {
                what: what.to_owned(),
                size: count,
                limit: self.limit,
            });
        }
        let size = usize::try_from(count).map_err(|_| Trouble::TooLarge {
            what: what.to_owned(),
            size: count,
            limit: self.limit,
        })?;
        let mut bytes = vec![0u8; size];
        self.reader.read_exact(&mut bytes)?;
        self.position += count;
        self.budget -= count;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Trouble> {
        self.need(N as u64, what)?;
        if N as u64 > self.budget {
            return Err(Trouble::TooLarge {
                what: what.to_owned(),
                size: N as u64,
                limit: self.limit,
            });
        }
        let mut bytes = [0u8; N];
        self.reader.read_exact(&mut bytes)?;
        self.position += N as u64;
        self.budget -= N as u64;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, Trouble> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16_le(&mut self, what: &str) -> Result<u16, Trouble> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32_le(&mut self, what: &str) -> Result<u32, Trouble> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64_le(&mut self, what: &str) -> Result<u64, Trouble> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Moves on `count` bytes without keeping them: through the buffer when short, by seeking
    /// when long.
    pub(crate) fn skip(&mut self, count: u64, what: &str) -> Result<(), Trouble> {
        self.need(count, what)?;
        if count < SEEK_THRESHOLD {
            let copied = io::copy(&mut (&mut *self.reader).take(count), &mut io::sink())?;
            if copied != count {
                return Err(Trouble::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        } else {
            self.reader.seek(SeekFrom::Start(self.position + count))?;
        }
        self.position += count;
        Ok(())
    }

    /// Jumps to an absolute offset inside the file.
    pub(crate) fn seek_to(&mut self, offset: u64, what: &str) -> Result<(), Trouble> {
        if offset > self.length {
            return Err(Trouble::Truncated {
                what: what.to_owned(),
                offset,
                needed: 0,
                length: self.length,
            });
        }
        self.reader.seek(SeekFrom::Start(offset))?;
        self.position = offset;
        Ok(())
    }
}

/// `12345678` → `"12,345,678"`: problems quote sizes people read.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    /// Every prefix of every sample, and every sample with any one byte set to 0x00 or 0xff,
    /// is examined without a panic, and a recognised file keeps its format.
    #[test]
    fn damaged_files_never_panic() {
        use crate::samples::{self, GgufValue};
        let values = [
            ("general.name", GgufValue::String("n".into())),
            ("a", GgufValue::Strings(vec!["x".into(); 70])),
            ("b", GgufValue::F32s(vec![1.0; 3])),
        ];
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "m.safetensors",
                samples::safetensors(&[("w", "F16", &[4, 4])], &[("format", "pt")]),
            ),
            (
                "m.onnx",
                samples::onnx("pytorch", "2", &[("", 17)], &[("k", "v")], 64),
            ),
            ("m.gguf", samples::gguf(3, &values, &[("w", &[32], 8)])),
            ("m.pkl", samples::pickle(4, 16)),
            ("m.joblib", samples::joblib()),
            ("m.pt", samples::torch_zip("m", &[16])),
            ("m.bin", samples::legacy_torch()),
        ];
        for (name, bytes) in &files {
            let check = |bytes: &[u8]| {
                let mut reader = io::Cursor::new(bytes);
                examine(&mut reader, bytes.len() as u64, name, 1 << 16)
            };
            let format = check(bytes).ok().flatten().map(|(format, _)| format);
            assert!(format.is_some(), "{name} is recognised");
            for cut in 0..bytes.len() {
                let _ = check(&bytes[..cut]);
            }
            for position in 0..bytes.len() {
                for value in [0x00, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[position] = value;
                    let _ = check(&damaged);
                }
            }
        }
    }

    #[test]
    fn identification_by_name_and_first_bytes() {
        let check = |name: &str, head: &[u8], expected: Option<Candidate>| {
            assert_eq!(identify(name, head, 1000), expected, "{name}");
        };
        check("model.safetensors", b"", Some(Candidate::Safetensors));
        check("model.SAFETENSORS", b"", Some(Candidate::Safetensors));
        check("model.onnx", b"\x08\x07", Some(Candidate::Onnx));
        check("model.gguf", b"", Some(Candidate::Gguf));
        check("weights", b"GGUF\x03\0\0\0", Some(Candidate::Gguf));
        check("model.joblib", b"\x78\x9c", Some(Candidate::Joblib));
        check("model.pkl", b"\x80\x04", Some(Candidate::Pickle));
        check("model.pt", b"\x80\x02", Some(Candidate::Pickle));
        check("pytorch_model.bin", b"\x80\x02", Some(Candidate::Pickle));
        check("vocab.bin", b"\x00\x01", None);
        check(
            "legacy.weights",
            &LEGACY_TORCH_MAGIC,
            Some(Candidate::Pickle),
        );
        let zip = b"PK\x03\x04";
        let report = |report_without_data_pkl| {
            Some(Candidate::Zip {
                report_without_data_pkl,
            })
        };
        check("model.pt", zip, report(true));
        check("model.pth.tar", zip, report(false));
        check("pytorch_model.bin", zip, report(false));
        check("bundle.zip", zip, None);
        check("README.md", b"# Model", None);
        check("config.json", b"{\"a\": 1}", None);
        let mut blob = 2u64.to_le_bytes().to_vec();
        blob.extend_from_slice(b"{\"");
        check("0123abcd", &blob, Some(Candidate::Safetensors));
        check("notes.txt", &blob, None);
    }
}

//! Pickles and joblib dumps, recognised and never unpickled: loading a pickle runs whatever code
//! its author put in it, so all we read is the first bytes. A protocol-2+ pickle starts with
//! `PROTO` (0x80) and the protocol number (2–5); protocols 0 and 1 have no header and start with
//! an ordinary opcode. Legacy (pre-ZIP) `torch.save` files are pickles that start with torch's
//! magic number. joblib writes a plain pickle, or one compressed with zlib, gzip, bz2, xz, lzma
//! or lz4, recognisable by the compressor's own magic bytes.
//!
//! Every such artifact carries [`PICKLE_NOTE`] in `metadata.notes`.

use std::io::{Read, Seek};

use super::{Findings, PICKLE_NOTE, Source, Trouble, is_legacy_torch};

/// Which name the file came under: it decides what is expected in its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `.pkl`, `.pickle`, or a legacy torch file (`.pt`, `.pth`, `.ckpt`, `.bin`).
    Pickle,
    /// `.joblib`: a pickle, or a compressed one.
    Joblib,
}

/// Reads the first bytes of a pickle or joblib file of `length` bytes.
pub fn read<R: Read + Seek>(reader: &mut R, length: u64, flavour: Flavour) -> Findings {
    let mut findings = Findings::default();
    findings.note(PICKLE_NOTE);
    let mut source = Source::new(reader, length, 64);
    let head = match source.bytes(length.min(16), "the first bytes") {
        Ok(head) => head,
        Err(trouble) => {
            findings.trouble(&trouble);
            return findings;
        }
    };
    if head.is_empty() {
        findings.problem("truncated: the file is empty");
        return findings;
    }
    if flavour == Flavour::Joblib {
        findings.set("framework", "joblib");
        if let Some(compression) = compression(&head) {
            findings.set("compression", compression);
            return findings;
        }
    }
    match head.as_slice() {
        [0x80, protocol, ..] if (2..=5).contains(protocol) => {
            findings.set("protocol", *protocol);
            if is_legacy_torch(&head) {
                findings.set("framework", "pytorch");
                findings.set(
                    "raw",
                    serde_json::json!({"torch_serialization": "legacy (pre-1.6, not ZIP)"}),
                );
            }
        }
        [0x80, protocol, ..] => findings.trouble(&Trouble::corrupt(format!(
            "pickle protocol {protocol} (expected 2 to 5)"
        ))),
        [0x80] => findings.problem("truncated: the pickle header stops after its first byte"),
        [first, ..] if PROTOCOL_0_1_OPENERS.contains(first) => {
            // No header: protocol 0 or 1. Nothing more can be told without reading on.
        }
        [first, ..] => findings.trouble(&Trouble::corrupt(format!(
            "not a pickle: the first byte 0x{first:02x} is not a pickle opcode"
        ))),
        [] => {}
    }
    findings
}

/// Opcodes a protocol 0 or 1 pickle can start with: MARK, the empty containers, GLOBAL, the
/// text and binary scalars, NONE, PERSID, INST.
const PROTOCOL_0_1_OPENERS: &[u8] = b"(]})cIJKLMFGSTUVXNPi";

fn compression(head: &[u8]) -> Option<&'static str> {
    Some(match head {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => "zlib",
        [0x1f, 0x8b, ..] => "gzip",
        [b'B', b'Z', b'h', ..] => "bz2",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz",
        [0x5d, 0x00, 0x00, ..] => "lzma",
        [0x04, 0x22, 0x4d, 0x18, ..] => "lz4",
        [b'Z', b'F', ..] => "zlib (joblib < 0.10)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use serde_json::json;

    use super::*;
    use crate::samples;

    fn findings(bytes: &[u8], flavour: Flavour) -> Findings {
        read(&mut Cursor::new(bytes), bytes.len() as u64, flavour)
    }

    #[test]
    fn protocol_and_note() {
        let found = findings(&samples::pickle(4, 100), Flavour::Pickle);
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(found.metadata["protocol"], json!(4));
        assert_eq!(found.metadata["notes"], json!([PICKLE_NOTE]));
    }

    #[test]
    fn legacy_torch_is_a_pytorch_pickle() {
        let found = findings(&samples::legacy_torch(), Flavour::Pickle);
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(found.metadata["framework"], json!("pytorch"));
        assert_eq!(found.metadata["protocol"], json!(2));
    }

    #[test]
    fn joblib_plain_and_compressed() {
        let plain = findings(&samples::joblib(), Flavour::Joblib);
        assert_eq!(plain.problems, Vec::<String>::new());
        assert_eq!(plain.metadata["protocol"], json!(4));
        assert_eq!(plain.metadata["framework"], json!("joblib"));
        let compressed = findings(b"\x78\x5e\x4d\x52\x3d", Flavour::Joblib);
        assert_eq!(compressed.metadata["compression"], json!("zlib"));
        assert_eq!(compressed.problems, Vec::<String>::new());
    }

    #[test]
    fn bad_first_bytes_are_problems() {
        assert_eq!(
            findings(b"\x80\x09abc", Flavour::Pickle).problems,
            vec!["corrupt header: pickle protocol 9 (expected 2 to 5)"]
        );
        assert_eq!(
            findings(b"\x00\x01", Flavour::Pickle).problems,
            vec!["corrupt header: not a pickle: the first byte 0x00 is not a pickle opcode"]
        );
        assert_eq!(
            findings(b"", Flavour::Pickle).problems,
            vec!["truncated: the file is empty"]
        );
        assert_eq!(
            findings(b"(dp0\nS'a'\np1\nI1\ns.", Flavour::Pickle).problems,
            Vec::<String>::new()
        );
    }
}

//! ONNX: a protobuf `ModelProto`, read with a small wire-format reader (varints, fixed-width and
//! length-delimited fields) instead of a protobuf library. The top-level fields we keep are
//! `ir_version` (1), `producer_name` (2), `producer_version` (3), `domain` (4), `model_version` (5),
//! `doc_string` (6), `opset_import` (8: `OperatorSetIdProto {domain = 1, version = 2}`) and
//! `metadata_props` (14: `StringStringEntryProto {key = 1, value = 2}`). Everything else —
//! above all the graph (7), which holds the weights — is skipped by seeking, so a 2 GB model costs
//! a few reads. Protobuf writers emit fields in number order, so `opset_import` and
//! `metadata_props` come *after* the graph: the whole top level is walked.
//!
//! Protobuf has no magic number: a `.onnx` file is taken for ONNX, and the parse confirms it
//! (the first field must be a `ModelProto` field, and `ir_version` must be present).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

use serde_json::{Map, Value};

use super::{Findings, Source, Trouble};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// Reads the top-level fields of an ONNX model of `length` bytes.
pub fn read<R: Read + Seek>(reader: &mut R, length: u64, max_header_bytes: u64) -> Findings {
    let mut findings = Findings::default();
    let mut source = Source::new(reader, length, max_header_bytes);
    let mut model = Model::default();
    let outcome = read_model(&mut source, &mut model);
    model.report(&mut findings);
    if let Err(trouble) = outcome {
        findings.trouble(&trouble);
    } else if model.ir_version.is_none() {
        findings.problem(
            "corrupt header: no ir_version (field 1), which every ONNX model has: not an ONNX model?",
        );
    }
    findings
}

#[derive(Debug, Default)]
struct Model {
    ir_version: Option<i64>,
    producer_name: Option<String>,
    producer_version: Option<String>,
    domain: Option<String>,
    model_version: Option<i64>,
    doc_string: Option<String>,
    graph_bytes: Option<u64>,
    /// Domain ("" is the default `ai.onnx`) → version; the highest wins if one repeats.
    opsets: BTreeMap<String, i64>,
    metadata_props: BTreeMap<String, String>,
}

fn field_name(number: u64) -> &'static str {
    match number {
        1 => "ir_version",
        2 => "producer_name",
        3 => "producer_version",
        4 => "domain",
        5 => "model_version",
        6 => "doc_string",
        7 => "graph",
        8 => "opset_import",
        14 => "metadata_props",
        20 => "training_info",
        25 => "functions",
        _ => "an unknown field",
    }
}

fn read_model<R: Read + Seek>(
    source: &mut Source<'_, R>,
    model: &mut Model,
) -> Result<(), Trouble> {
    let mut first = true;
    while !source.at_end() {
        let (number, wire_type) = tag(source)?;
        if first && !(1..=25).contains(&number) {
            return Err(Trouble::corrupt(format!(
                "not an ONNX ModelProto: the first field is number {number}"
            )));
        }
        first = false;
        let expected = match number {
            1 | 5 => Some(VARINT),
            2 | 3 | 4 | 6 | 7 | 8 | 14 => Some(LENGTH_DELIMITED),
            _ => None,
        };
        if let Some(expected) = expected
            && expected != wire_type
        {
            return Err(Trouble::corrupt(format!(
                "field {number} ({}) has wire type {wire_type}, expected {expected}",
                field_name(number)
            )));
        }
        match number {
            1 => model.ir_version = Some(varint(source, "ir_version")? as i64),
            5 => model.model_version = Some(varint(source, "model_version")? as i64),
            2 => model.producer_name = Some(string(source, "producer_name")?),
            3 => model.producer_version = Some(string(source, "producer_version")?),
            4 => model.domain = Some(string(source, "domain")?),
            6 => model.doc_string = Some(string(source, "doc_string")?),
            7 => {
                let size = varint(source, "the graph's length")?;
                source.skip(size, "the graph")?;
                model.graph_bytes = Some(model.graph_bytes.unwrap_or(0).saturating_add(size));
            }
            8 => {
                let bytes = delimited(source, "an opset_import")?;
                let (domain, version) = pair(&bytes, "opset_import")?;
                let version = match version {
                    Some(Entry::Integer(version)) => version,
                    _ => 0,
                };
                let domain = match domain {
                    Some(Entry::Text(domain)) => domain,
                    _ => String::new(),
                };
                let slot = model.opsets.entry(domain).or_insert(version);
                *slot = (*slot).max(version);
            }
            14 => {
                let bytes = delimited(source, "a metadata_props entry")?;
                let (key, value) = pair(&bytes, "metadata_props")?;
                let text = |entry: Option<Entry>| match entry {
                    Some(Entry::Text(text)) => text,
                    _ => String::new(),
                };
                model.metadata_props.insert(text(key), text(value));
            }
            _ => skip_value(source, wire_type, field_name(number))?,
        }
    }
    Ok(())
}

impl Model {
    fn report(&self, findings: &mut Findings) {
        if let Some(producer) = &self.producer_name {
            findings.set("producer", producer.as_str());
            if let Some(framework) = framework(producer) {
                findings.set("framework", framework);
            }
        }
        if let Some(version) = &self.producer_version {
            findings.set("producer_version", version.as_str());
        }
        if !self.opsets.is_empty() {
            let opsets: Map<String, Value> = self
                .opsets
                .iter()
                .map(|(domain, version)| {
                    let domain = if domain.is_empty() {
                        "ai.onnx"
                    } else {
                        domain.as_str()
                    };
                    (domain.to_owned(), Value::from(*version))
                })
                .collect();
            findings.set("opsets", Value::Object(opsets));
        }
        let property = |names: &[&str]| {
            self.metadata_props.iter().find_map(|(key, value)| {
                names
                    .contains(&key.to_ascii_lowercase().as_str())
                    .then(|| value.clone())
            })
        };
        if let Some(name) = property(&["name", "model_name"]) {
            findings.set("name", name);
        }
        if let Some(license) = property(&["license"]) {
            findings.set("license", license);
        }
        if let Some(base_model) = property(&["base_model"]) {
            findings.set("base_model", base_model);
        }

        let mut raw = Map::new();
        if let Some(ir_version) = self.ir_version {
            raw.insert("ir_version".into(), ir_version.into());
        }
        if let Some(domain) = &self.domain {
            raw.insert("domain".into(), domain.as_str().into());
        }
        if let Some(model_version) = self.model_version {
            raw.insert("model_version".into(), model_version.into());
        }
        if let Some(doc_string) = &self.doc_string {
            raw.insert("doc_string".into(), doc_string.as_str().into());
        }
        if let Some(graph_bytes) = self.graph_bytes {
            raw.insert("graph_bytes".into(), graph_bytes.into());
        }
        raw.insert(
            "metadata_props".into(),
            Value::Object(
                self.metadata_props
                    .iter()
                    .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
                    .collect(),
            ),
        );
        findings.set("raw", Value::Object(raw));
    }
}

/// The framework behind well-known ONNX exporters.
fn framework(producer: &str) -> Option<&'static str> {
    Some(match producer.to_ascii_lowercase().as_str() {
        "pytorch" => "pytorch",
        "tf2onnx" | "keras2onnx" => "tensorflow",
        "skl2onnx" => "scikit-learn",
        "onnxmltools" => "onnxmltools",
        "paddle2onnx" => "paddlepaddle",
        _ => return None,
    })
}

fn varint<R: Read + Seek>(source: &mut Source<'_, R>, what: &str) -> Result<u64, Trouble> {
    let start = source.position();
    let mut value = 0u64;
    for index in 0..10 {
        let byte = source.u8(what)?;
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Trouble::corrupt(format!(
        "{what}: the varint at byte {start} is longer than 10 bytes"
    )))
}

fn tag<R: Read + Seek>(source: &mut Source<'_, R>) -> Result<(u64, u8), Trouble> {
    let position = source.position();
    let tag = varint(source, "a field tag")?;
    let number = tag >> 3;
    let wire_type = (tag & 7) as u8;
    if number == 0 {
        return Err(Trouble::corrupt(format!(
            "field number 0 at byte {position}"
        )));
    }
    if !matches!(wire_type, VARINT | FIXED64 | LENGTH_DELIMITED | FIXED32) {
        return Err(Trouble::corrupt(format!(
            "field {number} at byte {position} has wire type {wire_type}, which ONNX never uses"
        )));
    }
    Ok((number, wire_type))
}

fn delimited<R: Read + Seek>(source: &mut Source<'_, R>, what: &str) -> Result<Vec<u8>, Trouble> {
    let size = varint(source, what)?;
    source.bytes(size, what)
}

fn string<R: Read + Seek>(source: &mut Source<'_, R>, what: &str) -> Result<String, Trouble> {
    let bytes = delimited(source, what)?;
    String::from_utf8(bytes)
        .map_err(|_| Trouble::corrupt(format!("{what} is not UTF-8 (it must be a string)")))
}

fn skip_value<R: Read + Seek>(
    source: &mut Source<'_, R>,
    wire_type: u8,
    what: &str,
) -> Result<(), Trouble> {
    match wire_type {
        VARINT => varint(source, what).map(drop),
        FIXED64 => source.skip(8, what),
        FIXED32 => source.skip(4, what),
        _ => {
            let size = varint(source, what)?;
            source.skip(size, what)
        }
    }
}

enum Entry {
    Integer(i64),
    Text(String),
}

/// Fields 1 and 2 of a small message (`OperatorSetIdProto`, `StringStringEntryProto`); others
/// are skipped.
fn pair(bytes: &[u8], what: &str) -> Result<(Option<Entry>, Option<Entry>), Trouble> {
    let mut cursor = Cursor::new(bytes);
    let mut source = Source::new(&mut cursor, bytes.len() as u64, bytes.len() as u64);
    let mut first = None;
    let mut second = None;
    while !source.at_end() {
        let (number, wire_type) = tag(&mut source)?;
        let entry = match wire_type {
            VARINT if number <= 2 => Entry::Integer(varint(&mut source, what)? as i64),
            LENGTH_DELIMITED if number <= 2 => Entry::Text(string(&mut source, what)?),
            _ => {
                skip_value(&mut source, wire_type, what)?;
                continue;
            }
        };
        if number == 1 {
            first = Some(entry);
        } else {
            second = Some(entry);
        }
    }
    Ok((first, second))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::samples;

    fn findings(bytes: &[u8]) -> Findings {
        read(&mut Cursor::new(bytes), bytes.len() as u64, 1 << 20)
    }

    #[test]
    fn reads_producer_opsets_and_properties_after_the_graph() {
        let bytes = samples::onnx(
            "pytorch",
            "2.5.1",
            &[("", 17), ("ai.onnx.ml", 3)],
            &[("license", "mit"), ("author", "team-a")],
            100_000,
        );
        let found = findings(&bytes);
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(found.metadata["producer"], json!("pytorch"));
        assert_eq!(found.metadata["producer_version"], json!("2.5.1"));
        assert_eq!(found.metadata["framework"], json!("pytorch"));
        assert_eq!(
            found.metadata["opsets"],
            json!({"ai.onnx": 17, "ai.onnx.ml": 3})
        );
        assert_eq!(found.metadata["license"], json!("mit"));
        assert_eq!(found.metadata["raw"]["ir_version"], json!(8));
        assert_eq!(
            found.metadata["raw"]["metadata_props"],
            json!({"license": "mit", "author": "team-a"})
        );
        assert!(found.metadata["raw"]["graph_bytes"].as_u64() > Some(100_000));
    }

    #[test]
    fn a_varint_that_never_ends_is_corrupt() {
        let mut bytes = vec![0x08];
        bytes.extend_from_slice(&[0xff; 11]);
        let found = findings(&bytes);
        assert_eq!(
            found.problems,
            vec!["corrupt header: ir_version: the varint at byte 1 is longer than 10 bytes"]
        );
    }

    #[test]
    fn a_graph_longer_than_the_file_is_truncation() {
        // ir_version 8, then field 7 claiming 1,000 bytes with 3 present.
        let bytes = [0x08, 0x08, 0x3a, 0xe8, 0x07, 1, 2, 3];
        let found = findings(&bytes);
        assert_eq!(
            found.problems,
            vec!["truncated: the graph at byte 5 needs 1,000 bytes, file has 8"]
        );
        assert_eq!(found.metadata["raw"]["ir_version"], json!(8));
    }

    #[test]
    fn text_is_not_onnx() {
        let found = findings(b"this is not a model\n");
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(found.problems[0].starts_with("corrupt header:"));
    }
}

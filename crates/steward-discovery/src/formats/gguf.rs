//! GGUF (llama.cpp): `GGUF`, a `u32` version (2 or 3; version 1 had 32-bit lengths), `u64`
//! tensor count, `u64` key/value count, the key/values (a string key = `u64` length + UTF-8, a
//! `u32` value type 0–12, the value; arrays carry an element type and a `u64` count), then one
//! entry per tensor (name, `u32` dimension count, `u64` dimensions, `u32` ggml type, `u64`
//! offset), then the aligned tensor data. Everything is little-endian.
//!
//! All key/values are read, but arrays longer than [`MAX_ARRAY_KEPT`] (and arrays of arrays
//! past the first level) keep only their length and element type: a tokenizer vocabulary has
//! 100,000+ strings, which are stepped over (through the read buffer) without being allocated.
//! The tensor table gives the parameter count and parameters per ggml type (the quantisation);
//! tensors whose data would end past the end of the file are reported as truncation.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use serde_json::{Map, Value};

use super::{Findings, Source, Trouble, thousands};

/// Arrays up to this many elements are kept in `raw`; longer ones keep their length only.
pub const MAX_ARRAY_KEPT: u64 = 64;
/// A string value longer than this keeps its length only.
const MAX_STRING_KEPT: u64 = 1024 * 1024;
/// Nested arrays deeper than this are refused as corrupt.
const MAX_NESTING: u32 = 4;

/// Reads the key/values and tensor table of a GGUF file of `length` bytes.
pub fn read<R: Read + Seek>(reader: &mut R, length: u64, max_header_bytes: u64) -> Findings {
    let mut findings = Findings::default();
    let mut source = Source::new(reader, length, max_header_bytes);
    let mut header = Header::default();
    let outcome = read_header(&mut source, &mut header, &mut findings);
    header.report(&mut findings);
    if let Err(trouble) = outcome {
        findings.trouble(&trouble);
    }
    findings
}

#[derive(Debug, Default)]
struct Header {
    version: Option<u32>,
    tensor_count: Option<u64>,
    values: Map<String, Value>,
    /// Parameters per ggml type; `None` until the whole tensor table has been read.
    tensors: Option<BTreeMap<String, u64>>,
}

fn read_header<R: Read + Seek>(
    source: &mut Source<'_, R>,
    header: &mut Header,
    findings: &mut Findings,
) -> Result<(), Trouble> {
    let magic = source.array::<4>("the magic number")?;
    if &magic != b"GGUF" {
        return Err(Trouble::corrupt(format!(
            "the file starts with {}, not the GGUF magic number",
            hex(&magic)
        )));
    }
    let version = source.u32_le("the version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Trouble::corrupt(
                "GGUF version 1 (32-bit lengths) is not supported: convert the file with a current llama.cpp",
            ));
        }
        _ if matches!(version.swap_bytes(), 2 | 3) => {
            return Err(Trouble::corrupt(
                "a big-endian GGUF file, which is not supported",
            ));
        }
        _ => {
            return Err(Trouble::corrupt(format!(
                "unsupported GGUF version {version} (expected 2 or 3)"
            )));
        }
    }
    header.version = Some(version);
    let tensor_count = source.u64_le("the tensor count")?;
    let value_count = source.u64_le("the key/value count")?;
    // The smallest key/value is 13 bytes (empty key, type, one byte); the smallest tensor entry
    // 24 bytes (empty name, no dimensions, type, offset).
    if value_count > source.remaining() / 13 {
        return Err(Trouble::corrupt(format!(
            "{} key/values cannot fit in the {} bytes left",
            thousands(value_count),
            thousands(source.remaining())
        )));
    }
    if tensor_count > source.remaining() / 24 {
        return Err(Trouble::corrupt(format!(
            "{} tensors cannot fit in the {} bytes left",
            thousands(tensor_count),
            thousands(source.remaining())
        )));
    }
    header.tensor_count = Some(tensor_count);

    for _ in 0..value_count {
        let key = string(source, "a key")?;
        let value_type = source.u32_le("a value type")?;
        let value = value(source, value_type, &key, 0)?;
        header.values.insert(key, value);
    }

    let alignment = match header
        .values
        .get("general.alignment")
        .and_then(Value::as_u64)
    {
        Some(alignment) if alignment.is_power_of_two() => alignment,
        Some(alignment) => {
            return Err(Trouble::corrupt(format!(
                "general.alignment {alignment} is not a power of two"
            )));
        }
        None => 32,
    };
    let mut parameters_by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut tensors = Vec::new();
    for _ in 0..tensor_count {
        let name = string(source, "a tensor name")?;
        let dimension_count = source.u32_le("a tensor's dimension count")?;
        if dimension_count > 8 {
            return Err(Trouble::corrupt(format!(
                "tensor {name} has {dimension_count} dimensions"
            )));
        }
        let mut elements = 1u64;
        for _ in 0..dimension_count {
            let dimension = source.u64_le("a tensor dimension")?;
            elements = elements.checked_mul(dimension).ok_or_else(|| {
                Trouble::corrupt(format!(
                    "tensor {name}: its element count overflows 64 bits"
                ))
            })?;
        }
        let ggml_type = source.u32_le("a tensor type")?;
        let offset = source.u64_le("a tensor offset")?;
        let total = parameters_by_type.entry(type_name(ggml_type)).or_insert(0);
        *total = total.saturating_add(elements);
        tensors.push((name, elements, ggml_type, offset));
    }
    header.tensors = Some(parameters_by_type);

    let data_start = source
        .position()
        .div_ceil(alignment)
        .saturating_mul(alignment);
    let mut reported = 0;
    for (name, elements, ggml_type, offset) in tensors {
        let start = data_start.saturating_add(offset);
        let end = type_size(ggml_type)
            .and_then(|(block, bytes)| (elements / block).checked_mul(bytes))
            .map_or(start, |size| start.saturating_add(size));
        if end > source.length() && reported < 3 {
            reported += 1;
            findings.problem(format!(
                "truncated: tensor {name}'s data ends at byte {}, file has {}",
                thousands(end.max(start)),
                thousands(source.length())
            ));
        }
    }
    Ok(())
}

impl Header {
    fn report(&self, findings: &mut Findings) {
        let text = |key: &str| self.values.get(key).and_then(Value::as_str);
        if let Some(name) = text("general.name") {
            findings.set("name", name);
        }
        if let Some(architecture) = text("general.architecture") {
            findings.set("architecture", architecture);
        }
        if let Some(license) = text("general.license") {
            findings.set("license", license);
        }
        let mut base_models: BTreeMap<u64, Map<String, Value>> = BTreeMap::new();
        for (key, value) in &self.values {
            let Some(rest) = key.strip_prefix("general.base_model.") else {
                continue;
            };
            if let Some((index, field)) = rest.split_once('.')
                && let Ok(index) = index.parse::<u64>()
            {
                base_models
                    .entry(index)
                    .or_default()
                    .insert(field.to_owned(), value.clone());
            }
        }
        if !base_models.is_empty() {
            findings.set(
                "base_model",
                Value::Array(base_models.into_values().map(Value::Object).collect()),
            );
        }
        if self.version.is_some() {
            findings.set("framework", "ggml");
        }
        for key in ["quantization_version", "file_type"] {
            if let Some(value) = self.values.get(&format!("general.{key}")) {
                findings.set(key, value.clone());
            }
        }
        if let Some(version) = self.version {
            findings.set("format_version", version);
        }
        if let Some(tensor_count) = self.tensor_count {
            findings.set("tensor_count", tensor_count);
        }
        if let Some(parameters_by_type) = &self.tensors {
            findings.set(
                "parameter_count",
                parameters_by_type
                    .values()
                    .fold(0u64, |sum, count| sum.saturating_add(*count)),
            );
            findings.set(
                "dtypes",
                Value::Object(
                    parameters_by_type
                        .iter()
                        .map(|(name, count)| (name.clone(), Value::from(*count)))
                        .collect(),
                ),
            );
        }
        if self.version.is_some() {
            findings.set("raw", Value::Object(self.values.clone()));
        }
    }
}

fn string<R: Read + Seek>(source: &mut Source<'_, R>, what: &str) -> Result<String, Trouble> {
    let length = source.u64_le(what)?;
    let bytes = source.bytes(length, what)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Bytes of a fixed-size value type; `None` for strings and arrays.
fn fixed_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn type_label(value_type: u32) -> &'static str {
    match value_type {
        0 => "uint8",
        1 => "int8",
        2 => "uint16",
        3 => "int16",
        4 => "uint32",
        5 => "int32",
        6 => "float32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "uint64",
        11 => "int64",
        12 => "float64",
        _ => "unknown",
    }
}

fn value<R: Read + Seek>(
    source: &mut Source<'_, R>,
    value_type: u32,
    key: &str,
    depth: u32,
) -> Result<Value, Trouble> {
    Ok(match value_type {
        0 => source.u8(key)?.into(),
        1 => (source.u8(key)? as i8).into(),
        2 => source.u16_le(key)?.into(),
        3 => (source.u16_le(key)? as i16).into(),
        4 => source.u32_le(key)?.into(),
        5 => (source.u32_le(key)? as i32).into(),
        6 => f64::from(f32::from_le_bytes(source.array(key)?)).into(),
        7 => match source.u8(key)? {
            0 => false.into(),
            1 => true.into(),
            other => {
                return Err(Trouble::corrupt(format!(
                    "{key}: the boolean byte is {other}, not 0 or 1"
                )));
            }
        },
        8 => {
            let length = source.u64_le(key)?;
            if length > MAX_STRING_KEPT {
                source.skip(length, key)?;
                Value::from(format!("<{} bytes, not kept>", thousands(length)))
            } else {
                Value::from(String::from_utf8_lossy(&source.bytes(length, key)?).into_owned())
            }
        }
        9 => {
            if depth >= MAX_NESTING {
                return Err(Trouble::corrupt(format!(
                    "{key}: arrays nested more than {MAX_NESTING} deep"
                )));
            }
            let element_type = source.u32_le(key)?;
            let count = source.u64_le(key)?;
            // Arrays of arrays are kept one level deep only: one key keeps at most 64 × 64 values.
            if count <= MAX_ARRAY_KEPT && (depth == 0 || element_type != 9) {
                let mut elements = Vec::new();
                for _ in 0..count {
                    elements.push(value(source, element_type, key, depth + 1)?);
                }
                Value::Array(elements)
            } else {
                skip_array(source, element_type, count, key, depth + 1)?;
                serde_json::json!({"array_of": type_label(element_type), "length": count})
            }
        }
        10 => source.u64_le(key)?.into(),
        11 => (source.u64_le(key)? as i64).into(),
        12 => f64::from_le_bytes(source.array(key)?).into(),
        other => {
            return Err(Trouble::corrupt(format!(
                "{key}: unknown value type {other}"
            )));
        }
    })
}

fn skip_array<R: Read + Seek>(
    source: &mut Source<'_, R>,
    element_type: u32,
    count: u64,
    key: &str,
    depth: u32,
) -> Result<(), Trouble> {
    if let Some(size) = fixed_size(element_type) {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| Trouble::corrupt(format!("{key}: an array of {count} elements")))?;
        return source.skip(total, key);
    }
    match element_type {
        8 => {
            // Each string is at least its 8-byte length: refuse impossible counts up front.
            if count > source.remaining() / 8 {
                return Err(Trouble::Truncated {
                    what: format!("{key} ({} strings)", thousands(count)),
                    offset: source.position(),
                    needed: count.saturating_mul(8),
                    length: source.length(),
                });
            }
            for _ in 0..count {
                let length = source.u64_le(key)?;
                source.skip(length, key)?;
            }
            Ok(())
        }
        9 => {
            if depth >= MAX_NESTING {
                return Err(Trouble::corrupt(format!(
                    "{key}: arrays nested more than {MAX_NESTING} deep"
                )));
            }
            if count > source.remaining() / 12 {
                return Err(Trouble::corrupt(format!(
                    "{key}: {} nested arrays cannot fit in the file",
                    thousands(count)
                )));
            }
            for _ in 0..count {
                let inner_type = source.u32_le(key)?;
                let inner_count = source.u64_le(key)?;
                skip_array(source, inner_type, inner_count, key, depth + 1)?;
            }
            Ok(())
        }
        other => Err(Trouble::corrupt(format!(
            "{key}: unknown array element type {other}"
        ))),
    }
}

/// ggml's tensor type names (ggml.h `enum ggml_type`).
fn type_name(ggml_type: u32) -> String {
    let name = match ggml_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        40 => "NVFP4",
        41 => "Q1_0",
        other => return format!("type_{other}"),
    };
    name.to_owned()
}

/// (elements per block, bytes per block) per ggml type, as gguf-py's `GGML_QUANT_SIZES` lists
/// them.
pub(crate) fn type_size(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 | 26 => (1, 4),
        1 | 25 | 30 => (1, 2),
        2 | 20 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 40),
        10 => (256, 84),
        11 | 21 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 | 35 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        27 | 28 => (1, 8),
        29 => (256, 56),
        34 => (256, 54),
        39 => (32, 17),
        40 => (64, 36),
        41 => (128, 18),
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use serde_json::json;

    use super::*;
    use crate::samples::{self, GgufValue};

    fn findings(bytes: &[u8]) -> Findings {
        read(&mut Cursor::new(bytes), bytes.len() as u64, 1 << 20)
    }

    fn sample_values() -> Vec<(&'static str, GgufValue)> {
        let tokens = (0..5000).map(|index| format!("tok{index}")).collect();
        vec![
            ("general.architecture", GgufValue::String("llama".into())),
            ("general.name", GgufValue::String("Tiny Llama".into())),
            ("general.license", GgufValue::String("apache-2.0".into())),
            ("general.base_model.count", GgufValue::U32(1)),
            (
                "general.base_model.0.name",
                GgufValue::String("Llama 3".into()),
            ),
            (
                "general.base_model.0.organization",
                GgufValue::String("Meta".into()),
            ),
            ("general.quantization_version", GgufValue::U32(2)),
            ("general.file_type", GgufValue::U32(7)),
            ("llama.context_length", GgufValue::U64(4096)),
            ("llama.rope.freq_base", GgufValue::F32(10000.0)),
            ("tokenizer.ggml.tokens", GgufValue::Strings(tokens)),
            ("tokenizer.ggml.scores", GgufValue::F32s(vec![0.5; 200])),
            ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
            (
                "short.list",
                GgufValue::Strings(vec!["a".into(), "b".into()]),
            ),
        ]
    }

    #[test]
    fn reads_key_values_and_the_tensor_table() {
        let bytes = samples::gguf(
            3,
            &sample_values(),
            &[
                ("token_embd.weight", &[64, 32], 8),
                ("output_norm.weight", &[64], 0),
            ],
        );
        let found = findings(&bytes);
        assert_eq!(found.problems, Vec::<String>::new());
        let metadata = &found.metadata;
        assert_eq!(metadata["name"], json!("Tiny Llama"));
        assert_eq!(metadata["architecture"], json!("llama"));
        assert_eq!(metadata["license"], json!("apache-2.0"));
        assert_eq!(
            metadata["base_model"],
            json!([{"name": "Llama 3", "organization": "Meta"}])
        );
        assert_eq!(metadata["framework"], json!("ggml"));
        assert_eq!(metadata["format_version"], json!(3));
        assert_eq!(metadata["quantization_version"], json!(2));
        assert_eq!(metadata["file_type"], json!(7));
        assert_eq!(metadata["tensor_count"], json!(2));
        assert_eq!(metadata["parameter_count"], json!(64 * 32 + 64));
        assert_eq!(metadata["dtypes"], json!({"Q8_0": 2048, "F32": 64}));
        let raw = &metadata["raw"];
        assert_eq!(
            raw["tokenizer.ggml.tokens"],
            json!({"array_of": "string", "length": 5000})
        );
        assert_eq!(
            raw["tokenizer.ggml.scores"],
            json!({"array_of": "float32", "length": 200})
        );
        assert_eq!(raw["short.list"], json!(["a", "b"]));
        assert_eq!(raw["tokenizer.ggml.add_bos_token"], json!(true));
        assert_eq!(raw["llama.rope.freq_base"], json!(10000.0));
    }

    #[test]
    fn a_wrong_version_is_reported() {
        let bytes = samples::gguf(7, &sample_values(), &[]);
        let found = findings(&bytes);
        assert_eq!(
            found.problems,
            vec!["corrupt header: unsupported GGUF version 7 (expected 2 or 3)"]
        );
        let big_endian = samples::gguf(3u32.swap_bytes(), &[], &[]);
        assert_eq!(
            findings(&big_endian).problems,
            vec!["corrupt header: a big-endian GGUF file, which is not supported"]
        );
    }

    #[test]
    fn a_cut_vocabulary_is_truncation() {
        let bytes = samples::gguf(3, &sample_values(), &[("w", &[64], 0)]);
        let cut = &bytes[..2000];
        let found = findings(cut);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(
            found.problems[0].starts_with("truncated: tokenizer.ggml.tokens"),
            "{:?}",
            found.problems
        );
        // What was read before the cut is kept.
        assert_eq!(found.metadata["name"], json!("Tiny Llama"));
    }

    #[test]
    fn tensor_data_past_the_end_is_truncation() {
        let bytes = samples::gguf(3, &[], &[("w", &[1024], 0)]);
        let found = findings(&bytes[..bytes.len() - 100]);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(found.problems[0].starts_with("truncated: tensor w's data ends at byte"));
    }
}

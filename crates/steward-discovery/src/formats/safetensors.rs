//! safetensors: a little-endian `u64` N, then N bytes of JSON mapping each tensor name to
//! `{dtype, shape, data_offsets}` (offsets relative to the end of the header), plus an optional
//! `__metadata__` object of string → string; the tensor bytes follow. Only the header is read:
//! tensor count, parameter count (the sum of the products of the shapes) and parameters per dtype
//! come from it, and the offsets are checked against the file's length, so a cut-off download is
//! reported without reading the weights.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use serde_json::{Map, Value};

use super::{Findings, Source, Trouble, thousands};

/// The reference implementation refuses headers above 100 MB; so do we, whatever
/// `max_header_bytes` says.
pub const MAX_HEADER_LENGTH: u64 = 100_000_000;

/// Reads the header of a safetensors file of `length` bytes.
pub fn read<R: Read + Seek>(reader: &mut R, length: u64, max_header_bytes: u64) -> Findings {
    let mut findings = Findings::default();
    let mut source = Source::new(reader, length, max_header_bytes.min(MAX_HEADER_LENGTH));
    if let Err(trouble) = read_header(&mut source, &mut findings) {
        findings.trouble(&trouble);
    }
    findings
}

/// Whether the first bytes look like safetensors (a header length that fits the file, then
/// `{"` or `{}`): used for files without an extension.
pub(crate) fn sniff(head: &[u8], length: u64) -> bool {
    let Some(length_bytes) = head.get(..8) else {
        return false;
    };
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(length_bytes);
    let header_length = u64::from_le_bytes(bytes);
    (2..=MAX_HEADER_LENGTH).contains(&header_length)
        && header_length <= length.saturating_sub(8)
        && head.get(8) == Some(&b'{')
        && matches!(head.get(9), Some(b'"' | b'}'))
}

fn read_header<R: Read + Seek>(
    source: &mut Source<'_, R>,
    findings: &mut Findings,
) -> Result<(), Trouble> {
    let length = source.length();
    source.need(8, "the 8-byte header length")?;
    let header_length = source.u64_le("the header length")?;
    if header_length > length - 8 {
        findings.problem(format!(
            "truncated: header says {} bytes, file has {}",
            thousands(header_length),
            thousands(length)
        ));
        return Ok(());
    }
    if header_length > MAX_HEADER_LENGTH {
        return Err(Trouble::corrupt(format!(
            "header length {} bytes is more than the format's limit of {}",
            thousands(header_length),
            thousands(MAX_HEADER_LENGTH)
        )));
    }
    let bytes = source.bytes(header_length, "the JSON header")?;
    let header = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(header)) => header,
        Ok(_) => return Err(Trouble::corrupt("the header is JSON but not an object")),
        Err(error) => {
            return Err(Trouble::corrupt(format!(
                "the header is not valid JSON ({error})"
            )));
        }
    };

    let mut tensor_count = 0u64;
    let mut parameter_count = 0u64;
    let mut parameters_by_dtype: BTreeMap<String, u64> = BTreeMap::new();
    let mut data_end = 0u64;
    let mut every_tensor_read = true;
    let mut raw = Map::new();
    for (name, entry) in &header {
        if name == "__metadata__" {
            match entry {
                Value::Object(metadata) => {
                    for (key, value) in metadata {
                        if !value.is_string() {
                            findings.problem(format!(
                                "corrupt header: __metadata__.{key} is not a string"
                            ));
                        }
                    }
                    raw = metadata.clone();
                }
                _ => findings.problem("corrupt header: __metadata__ is not an object"),
            }
            continue;
        }
        tensor_count += 1;
        match tensor(entry) {
            Ok(tensor) => {
                parameter_count = parameter_count.saturating_add(tensor.parameters);
                let total = parameters_by_dtype.entry(tensor.dtype).or_insert(0);
                *total = total.saturating_add(tensor.parameters);
                data_end = data_end.max(tensor.end);
            }
            Err(message) => {
                every_tensor_read = false;
                findings.problem(format!("corrupt header: tensor {name}: {message}"));
            }
        }
    }

    let data_available = length - 8 - header_length;
    if data_end > data_available {
        findings.problem(format!(
            "truncated: tensor data ends at byte {}, file has {}",
            thousands(8 + header_length + data_end),
            thousands(length)
        ));
    } else if data_end < data_available && tensor_count > 0 && every_tensor_read {
        findings.problem(format!(
            "{} bytes after the last tensor's data, which safetensors loaders refuse",
            thousands(data_available - data_end)
        ));
    }

    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| raw.get(*key).and_then(Value::as_str))
            .map(str::to_owned)
    };
    if let Some(format) = text(&["format"]) {
        let framework = match format.as_str() {
            "pt" => "pytorch",
            "tf" => "tensorflow",
            "np" => "numpy",
            "flax" => "flax",
            "mlx" => "mlx",
            other => other,
        };
        findings.set("framework", framework);
    }
    if let Some(name) = text(&["name", "modelspec.title"]) {
        findings.set("name", name);
    }
    if let Some(architecture) = text(&["architecture", "modelspec.architecture"]) {
        findings.set("architecture", architecture);
    }
    if let Some(license) = text(&["license", "modelspec.license"]) {
        findings.set("license", license);
    }
    if let Some(base_model) = text(&["base_model"]) {
        findings.set("base_model", base_model);
    }
    findings.set("tensor_count", tensor_count);
    findings.set("parameter_count", parameter_count);
    findings.set(
        "dtypes",
        Value::Object(
            parameters_by_dtype
                .into_iter()
                .map(|(dtype, parameters)| (dtype, Value::from(parameters)))
                .collect(),
        ),
    );
    findings.set("raw", Value::Object(raw));
    Ok(())
}

struct Tensor {
    dtype: String,
    parameters: u64,
    end: u64,
}

fn tensor(entry: &Value) -> Result<Tensor, String> {
    let dtype = entry
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or("no dtype")?;
    let shape = entry
        .get("shape")
        .and_then(Value::as_array)
        .ok_or("no shape")?;
    let mut parameters = 1u64;
    let mut dimensions = Vec::with_capacity(shape.len());
    for dimension in shape {
        let dimension = dimension
            .as_u64()
            .ok_or("a shape dimension is not a non-negative integer")?;
        dimensions.push(dimension);
        parameters = parameters
            .checked_mul(dimension)
            .ok_or("the shape's element count overflows 64 bits")?;
    }
    let offsets = entry
        .get("data_offsets")
        .and_then(Value::as_array)
        .ok_or("no data_offsets")?;
    let (start, end) = match offsets.as_slice() {
        [start, end] => (
            start.as_u64().ok_or("data_offsets are not integers")?,
            end.as_u64().ok_or("data_offsets are not integers")?,
        ),
        _ => return Err("data_offsets is not [start, end]".to_owned()),
    };
    if start > end {
        return Err(format!("data_offsets [{start}, {end}] run backwards"));
    }
    if let Some(size) = dtype_size(dtype) {
        let needed = parameters.checked_mul(size);
        if needed != Some(end - start) {
            return Err(format!(
                "shape {dimensions:?} of {dtype} needs {} bytes, data_offsets span {}",
                needed.map_or_else(|| "more than 2^64".to_owned(), thousands),
                thousands(end - start)
            ));
        }
    }
    Ok(Tensor {
        dtype: dtype.to_owned(),
        parameters,
        end,
    })
}

/// Bytes per element of the whole-byte dtypes; sub-byte ones (F4, F6_*) are not checked.
pub(crate) fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use serde_json::json;

    use super::*;
    use crate::samples;

    fn findings(bytes: &[u8]) -> Findings {
        read(&mut Cursor::new(bytes), bytes.len() as u64, 1 << 20)
    }

    #[test]
    fn reads_tensors_and_metadata() {
        let bytes = samples::safetensors(
            &[
                ("embed.weight", "F16", &[10, 4]),
                ("head.bias", "F32", &[3]),
                ("scale", "F32", &[]),
            ],
            &[("format", "pt"), ("license", "apache-2.0")],
        );
        let found = findings(&bytes);
        assert_eq!(found.problems, Vec::<String>::new());
        assert_eq!(found.metadata["tensor_count"], json!(3));
        assert_eq!(found.metadata["parameter_count"], json!(44));
        assert_eq!(found.metadata["dtypes"], json!({"F16": 40, "F32": 4}));
        assert_eq!(found.metadata["framework"], json!("pytorch"));
        assert_eq!(found.metadata["license"], json!("apache-2.0"));
        assert_eq!(
            found.metadata["raw"],
            json!({"format": "pt", "license": "apache-2.0"})
        );
    }

    #[test]
    fn header_length_past_the_end_is_truncation() {
        let mut bytes = 12_345u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[b' '; 92]);
        let found = findings(&bytes);
        assert_eq!(
            found.problems,
            vec!["truncated: header says 12,345 bytes, file has 100"]
        );
    }

    #[test]
    fn shapes_that_disagree_with_offsets_are_corrupt() {
        let header = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 8]);
        let found = findings(&bytes);
        assert_eq!(
            found.problems,
            vec![
                "corrupt header: tensor w: shape [2, 2] of F32 needs 16 bytes, data_offsets span 8"
            ]
        );
    }

    #[test]
    fn json_that_stops_is_corrupt() {
        let header = br#"{"w":{"dtype":"F32","sha"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        let found = findings(&bytes);
        assert_eq!(found.problems.len(), 1);
        assert!(
            found.problems[0].starts_with("corrupt header: the header is not valid JSON"),
            "{:?}",
            found.problems
        );
    }

    #[test]
    fn a_tiny_file_is_truncated() {
        let found = findings(b"\x01\x02");
        assert_eq!(
            found.problems,
            vec!["truncated: the 8-byte header length at byte 0 needs 8 bytes, file has 2"]
        );
    }

    #[test]
    fn sniffing_needs_a_fitting_length_and_json() {
        let bytes = samples::safetensors(&[("w", "F32", &[1])], &[]);
        assert!(sniff(&bytes[..16], bytes.len() as u64));
        assert!(!sniff(&bytes[..16], 9));
        assert!(!sniff(b"PK\x03\x04\0\0\0\0{\"", 1000));
    }
}

//! Writers of small, valid model files in every recognised format — for this crate's tests, the
//! scan benchmark, and any other crate's tests that need a model file on disk without shipping
//! binaries. They follow the formats' specifications (and what `torch.save`, joblib and the
//! safetensors library actually write), with zero-filled tensor data; they are not a general
//! serialiser.

use serde_json::{Map, Value, json};

use crate::formats::{gguf, safetensors};

/// A safetensors file: `tensors` as (name, dtype, shape), laid out in order, with zero data;
/// `metadata` becomes `__metadata__`. The header is padded with spaces to a multiple of 8 bytes,
/// as the safetensors library does.
pub fn safetensors(tensors: &[(&str, &str, &[u64])], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = Map::new();
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let elements: u64 = shape.iter().product();
        let size = elements * safetensors::dtype_size(dtype).unwrap_or(1);
        header.insert(
            (*name).to_owned(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}),
        );
        offset += size;
    }
    if !metadata.is_empty() {
        let metadata: Map<String, Value> = metadata
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::from(*value)))
            .collect();
        header.insert("__metadata__".to_owned(), Value::Object(metadata));
    }
    let mut json = Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    bytes.resize(bytes.len() + offset as usize, 0);
    bytes
}

/// An ONNX `ModelProto` (IR version 8, model version 1): the producer, a graph whose
/// `doc_string` is `graph_filler` bytes long (standing in for the weights a reader must skip),
/// the opsets as (domain, version) and `metadata_props`, in field-number order as protobuf
/// writers emit them.
pub fn onnx(
    producer: &str,
    producer_version: &str,
    opsets: &[(&str, i64)],
    metadata_props: &[(&str, &str)],
    graph_filler: usize,
) -> Vec<u8> {
    let mut graph = Vec::new();
    proto_bytes(&mut graph, 2, b"main_graph");
    proto_bytes(&mut graph, 10, &vec![b'w'; graph_filler]);

    let mut model = Vec::new();
    proto_varint_field(&mut model, 1, 8);
    proto_bytes(&mut model, 2, producer.as_bytes());
    proto_bytes(&mut model, 3, producer_version.as_bytes());
    proto_varint_field(&mut model, 5, 1);
    proto_bytes(&mut model, 7, &graph);
    for (domain, version) in opsets {
        let mut opset = Vec::new();
        if !domain.is_empty() {
            proto_bytes(&mut opset, 1, domain.as_bytes());
        }
        proto_varint_field(&mut opset, 2, *version as u64);
        proto_bytes(&mut model, 8, &opset);
    }
    for (key, value) in metadata_props {
        let mut entry = Vec::new();
        proto_bytes(&mut entry, 1, key.as_bytes());
        proto_bytes(&mut entry, 2, value.as_bytes());
        proto_bytes(&mut model, 14, &entry);
    }
    model
}

fn proto_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn proto_varint_field(out: &mut Vec<u8>, number: u64, value: u64) {
    proto_varint(out, number << 3);
    proto_varint(out, value);
}

fn proto_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    proto_varint(out, (number << 3) | 2);
    proto_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A GGUF key/value's value, for [`gguf()`].
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U32(u32),
    U64(u64),
    F32(f32),
    Bool(bool),
    String(String),
    Strings(Vec<String>),
    F32s(Vec<f32>),
}

/// A GGUF file: header with `version` (write 2 or 3 for a valid file), the key/values, a tensor
/// table of (name, dimensions, ggml type) — types F32 (0), F16 (1), Q4_0 (2), Q8_0 (8), K-quants
/// — and zero-filled, 32-byte-aligned tensor data.
pub fn gguf(
    version: u32,
    values: &[(&str, GgufValue)],
    tensors: &[(&str, &[u64], u32)],
) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for (key, value) in values {
        gguf_string(&mut out, key);
        match value {
            GgufValue::U32(value) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            GgufValue::U64(value) => {
                out.extend_from_slice(&10u32.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            GgufValue::F32(value) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            GgufValue::Bool(value) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*value));
            }
            GgufValue::String(value) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                gguf_string(&mut out, value);
            }
            GgufValue::Strings(values) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(values.len() as u64).to_le_bytes());
                for value in values {
                    gguf_string(&mut out, value);
                }
            }
            GgufValue::F32s(values) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(values.len() as u64).to_le_bytes());
                for value in values {
                    out.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    for (name, dimensions, ggml_type) in tensors {
        gguf_string(&mut out, name);
        out.extend_from_slice(&(dimensions.len() as u32).to_le_bytes());
        for dimension in *dimensions {
            out.extend_from_slice(&dimension.to_le_bytes());
        }
        out.extend_from_slice(&ggml_type.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        let elements: u64 = dimensions.iter().product();
        let (block, bytes) = gguf::type_size(*ggml_type).unwrap_or((1, 1));
        offset += (elements.div_ceil(block) * bytes).next_multiple_of(32);
    }
    out.resize(out.len().next_multiple_of(32), 0);
    out.resize(out.len() + offset as usize, 0);
    out
}

fn gguf_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A pickle of `{"weights": "aaa…"}` (`payload` characters) with the given protocol (2–5).
pub fn pickle(protocol: u8, payload: usize) -> Vec<u8> {
    let mut out = vec![0x80, protocol, b'}'];
    pickle_unicode(&mut out, "weights");
    pickle_unicode(&mut out, &"a".repeat(payload));
    out.extend_from_slice(b"s.");
    out
}

fn pickle_unicode(out: &mut Vec<u8>, text: &str) {
    out.push(b'X');
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn pickle_short_unicode(out: &mut Vec<u8>, text: &str) {
    out.push(0x8c);
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
    out.push(0x94);
}

/// What `joblib.dump` writes for a fitted scikit-learn `LinearRegression`, in its opening: a
/// protocol-4 frame that imports the class, instantiates it and sets its state.
pub fn joblib() -> Vec<u8> {
    let mut body = Vec::new();
    pickle_short_unicode(&mut body, "sklearn.linear_model._base");
    pickle_short_unicode(&mut body, "LinearRegression");
    body.extend_from_slice(&[0x93, 0x94, b')', 0x81, 0x94, b'}', 0x94]);
    pickle_short_unicode(&mut body, "fit_intercept");
    body.extend_from_slice(&[0x88, b's']);
    pickle_short_unicode(&mut body, "n_features_in_");
    body.extend_from_slice(&[b'K', 1, b's', b'b', b'.']);
    let mut out = vec![0x80, 4, 0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A legacy (pre-1.6) `torch.save` file: the magic-number pickle, the protocol-version pickle
/// (1001), an empty system-info dict, a small object pickle and the storage keys.
pub fn legacy_torch() -> Vec<u8> {
    let mut out = vec![
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    out.extend_from_slice(&[0x80, 0x02, b'M', 0xe9, 0x03, b'.']);
    out.extend_from_slice(&[0x80, 0x02, b'}', b'.']);
    out.extend_from_slice(&pickle(2, 256));
    out.extend_from_slice(&[0x80, 0x02, b']', b'.']);
    out
}

/// A stored (uncompressed) ZIP archive of `entries` (name, content), with CRC-32s, a central
/// directory and an end record — what `torch.save` writes, minus its alignment padding.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, content) in entries {
        let offset = out.len() as u32;
        let crc = crc32(content);
        let size = content.len() as u32;
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method, time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(content);

        directory.extend_from_slice(b"PK\x01\x02");
        directory.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
        directory.extend_from_slice(&crc.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&(name.len() as u16).to_le_bytes());
        directory.extend_from_slice(&[0; 12]); // extra, comment, disk, internal and external attributes
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `torch.save` checkpoint: `<archive>/data.pkl`, `byteorder`, one `data/<n>` entry per
/// storage size, `version` and `.data/serialization_id`.
pub fn torch_zip(archive: &str, storages: &[usize]) -> Vec<u8> {
    let data_pkl = pickle(2, 64);
    let storage_contents: Vec<Vec<u8>> = storages.iter().map(|size| vec![0u8; *size]).collect();
    let mut names = vec![
        format!("{archive}/data.pkl"),
        format!("{archive}/byteorder"),
    ];
    for index in 0..storages.len() {
        names.push(format!("{archive}/data/{index}"));
    }
    names.push(format!("{archive}/version"));
    names.push(format!("{archive}/.data/serialization_id"));
    let mut contents: Vec<&[u8]> = vec![&data_pkl, b"little"];
    contents.extend(storage_contents.iter().map(Vec::as_slice));
    contents.push(b"3\n");
    contents.push(b"1234567890123456789012345678901234567890");
    let entries: Vec<(&str, &[u8])> = names.iter().map(String::as_str).zip(contents).collect();
    zip(&entries)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (index, slot) in table.iter_mut().enumerate() {
        let mut value = index as u32;
        for _ in 0..8 {
            value = if value & 1 == 1 {
                0xedb8_8320 ^ (value >> 1)
            } else {
                value >> 1
            };
        }
        *slot = value;
    }
    let mut crc = !0u32;
    for byte in bytes {
        crc = table[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}

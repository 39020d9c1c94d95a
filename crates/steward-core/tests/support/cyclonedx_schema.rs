//! The official CycloneDX 1.6 JSON schema, vendored in `steward-core/tests/fixtures/cyclonedx/`
//! (see its README), as a validator whose cross-file `$ref`s (SPDX licence ids, JSF signatures)
//! are answered from the vendored copies, never from the network. Shared by steward-core's
//! export tests and the end-to-end `steward inventory export` test (through `#[path]`).

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SCHEMA_BASE: &str = "http://cyclonedx.org/schema/";

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../steward-core/tests/fixtures/cyclonedx")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Answers the schema's `$ref`s from the vendored files: the names the packaged copy uses
/// (`spdx.SNAPSHOT.schema.json`) and the published ones. Any other URI is an error, not a fetch.
struct Vendored(BTreeMap<String, Value>);

impl Vendored {
    fn new() -> Vendored {
        let mut files = BTreeMap::new();
        for (file, names) in [
            (
                "spdx.schema.json",
                ["spdx.schema.json", "spdx.SNAPSHOT.schema.json"],
            ),
            (
                "jsf-0.82.schema.json",
                ["jsf-0.82.schema.json", "jsf-0.82.SNAPSHOT.schema.json"],
            ),
        ] {
            let schema = fixture(file);
            for name in names {
                files.insert(format!("{SCHEMA_BASE}{name}"), schema.clone());
            }
        }
        Vendored(files)
    }
}

impl jsonschema::Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("{uri} is not vendored in tests/fixtures/cyclonedx").into())
    }
}

pub fn validator() -> jsonschema::Validator {
    let schema = fixture("bom-1.6.schema.json");
    assert_eq!(
        schema["$id"], "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "the vendored schema is CycloneDX 1.6"
    );
    jsonschema::options()
        .with_retriever(Vendored::new())
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the vendored schema does not compile: {e}"))
}

/// The schema's complaints about `bom`, one line each (empty when it is valid).
pub fn errors(validator: &jsonschema::Validator, bom: &Value) -> Vec<String> {
    validator
        .iter_errors(bom)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

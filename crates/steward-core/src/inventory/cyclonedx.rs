//! The inventory as a CycloneDX 1.6 ML-BOM, the machine-readable bill of materials that supply
//! chain tools and regulators' portals read. [`ml_bom`] turns the models, the datasets their
//! training runs read and the deployments serving them into one JSON document: each model
//! version is a `machine-learning-model` component with its digest as a hash, its artifact as a
//! distribution reference and a model card (task and architecture, the datasets it was trained
//! on, its metrics, intended use and limitations); each dataset is a `data` component; lineage is
//! the `dependencies` graph (a version depends on the datasets its run read). What CycloneDX has
//! no place for — the risk tier, the status, the owner, validation dates, completeness against
//! the templates, where every value came from, where a version runs — goes into `steward:`
//! properties, so nothing the inventory knows is lost on export. The output follows the 1.6 JSON
//! schema exactly (the test checks it against the vendored official schema): a value that would
//! break it (a digest that is not a hex hash, a location that is not an IRI) is kept as a
//! property instead of being forced into a field it does not fit. Everything is sorted, so the
//! same inventory gives the same document.
//!
//! Property names: `steward:<field>` for each model field without a CycloneDX place (a list
//! field gives one property per item: CycloneDX allows a name to repeat), `steward:provenance:`
//! and the field for where its value came from (`attested by cora at …`), `steward:completeness`,
//! `steward:needs_review` and `steward:missing_fields` against the templates,
//! `steward:validation_current` on the day of the export, `steward:version:…` for what the scan
//! found of the version, `steward:run:…` for its training run, and `steward:deployment` for each
//! running deployment serving it (`steward:deployment_of_model` when the deployment runs the
//! model at a version the inventory cannot place).

use super::{
    Dataset, Deployment, Model, ModelVersion, Provenance, Run, Templates, match_deployment,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.6";

/// Model fields that have a place of their own in a CycloneDX component; every other field is
/// exported as a `steward:<field>` property.
const MAPPED_FIELDS: &[&str] = &[
    "purpose",         // description
    "intended_use",    // modelCard.considerations.useCases
    "restrictions",    // modelCard.considerations.technicalLimitations
    "regulatory_tags", // tags
    "developers",      // authors
    "provider",        // supplier
    "license",         // licenses
    "base_model",      // pedigree.ancestors
    "architecture",    // modelCard.modelParameters.modelArchitecture
];

/// What a BOM is made from: the inventory as the server read it.
#[derive(Debug, Clone)]
pub struct BomInput<'a> {
    pub models: &'a [Model],
    pub datasets: &'a [Dataset],
    pub runs: &'a [Run],
    pub deployments: &'a [Deployment],
    /// For each model's completeness (`steward:completeness`, `steward:missing_fields`).
    pub templates: &'a Templates,
    /// The BOM's serial number, a UUID: `urn:uuid:…` or the bare UUID, in either case. It must
    /// be new for every export (the core has no randomness, so the caller makes it). A value
    /// that is not a UUID is left out of the document rather than making it invalid.
    pub serial: String,
    /// The time of the export: `metadata.timestamp`, and the day validations are judged on.
    pub now: DateTime<Utc>,
    /// Steward's version, named as the tool that wrote the BOM.
    pub tool_version: &'a str,
}

/// The inventory as a CycloneDX 1.6 JSON BOM (see the module documentation for the mapping).
pub fn ml_bom(input: &BomInput) -> Value {
    let mut models: Vec<&Model> = input.models.iter().collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    let runs: BTreeMap<&str, &Run> = input.runs.iter().map(|r| (r.id.as_str(), r)).collect();
    let deployments = running_deployments(input.deployments, input.models);

    // The datasets: every one the inventory has, and any a run names that it does not (so a
    // model card never refers to a component that is not there).
    let mut datasets: BTreeMap<&str, Option<&Dataset>> = input
        .datasets
        .iter()
        .map(|d| (d.key.as_str(), Some(d)))
        .collect();
    for model in &models {
        for version in &model.versions {
            for key in run_of(version, &runs)
                .map(|r| r.datasets.as_slice())
                .unwrap_or_default()
            {
                datasets.entry(key.as_str()).or_insert(None);
            }
        }
    }

    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    for model in &models {
        let completeness = model.completeness(input.templates);
        let shared = ModelShared {
            model,
            properties: model_properties(model, &completeness, input.now),
        };
        if model.versions.is_empty() {
            let serving: Vec<(&str, &str)> = deployments
                .get(model.name.as_str())
                .into_iter()
                .flat_map(|d| d.values().flatten())
                .map(|key| ("steward:deployment", *key))
                .collect();
            components.push(model_component(&shared, None, None, &serving));
            continue;
        }
        for version in &model.versions {
            let run = run_of(version, &runs);
            let serving = deployments
                .get(model.name.as_str())
                .map(|by_version| serving_version(by_version, model, version))
                .unwrap_or_default();
            components.push(model_component(&shared, Some(version), run, &serving));
            let read: Vec<String> = unique(run.map(|r| r.datasets.as_slice()).unwrap_or_default())
                .into_iter()
                .map(dataset_ref)
                .collect();
            if !read.is_empty() {
                dependencies.push(json!({
                    "ref": model_ref(&model.name, Some(&version.version)),
                    "dependsOn": read,
                }));
            }
        }
    }
    for (key, dataset) in &datasets {
        components.push(match dataset {
            Some(d) => dataset_component(d),
            None => missing_dataset_component(key),
        });
    }

    let mut bom = Map::new();
    bom.insert("bomFormat".into(), json!("CycloneDX"));
    bom.insert("specVersion".into(), json!(SPEC_VERSION));
    if let Some(serial) = serial_number(&input.serial) {
        bom.insert("serialNumber".into(), json!(serial));
    }
    bom.insert("version".into(), json!(1));
    bom.insert(
        "metadata".into(),
        json!({
            "timestamp": time(input.now),
            "tools": {"components": [{
                "type": "application",
                "name": "Steward",
                "version": input.tool_version,
                "description": "ML governance platform: the model inventory",
            }]},
        }),
    );
    bom.insert("components".into(), Value::Array(components));
    if !dependencies.is_empty() {
        bom.insert("dependencies".into(), Value::Array(dependencies));
    }
    Value::Object(bom)
}

/// The component reference of a model version (`model:fraud-scoring@3`), or of a model with no
/// version found yet (`model:fraud-scoring`). Model names cannot hold `@`, so these are unique.
fn model_ref(model: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("model:{model}@{v}"),
        None => format!("model:{model}"),
    }
}

/// The component reference of a dataset: its inventory key (`transactions@3f2a9b1c`).
fn dataset_ref(key: &str) -> String {
    format!("dataset:{key}")
}

fn run_of<'r>(version: &ModelVersion, runs: &BTreeMap<&str, &'r Run>) -> Option<&'r Run> {
    version
        .run_id
        .as_deref()
        .and_then(|id| runs.get(id).copied())
}

/// Each item once, in first-seen order (CycloneDX's `dependsOn` items must be unique).
fn unique(items: &[String]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .map(String::as_str)
        .filter(|i| seen.insert(*i))
        .collect()
}

/// The running deployments by the model they serve, then by the version (`None`: not known).
fn running_deployments<'d>(
    deployments: &'d [Deployment],
    models: &[Model],
) -> BTreeMap<String, BTreeMap<Option<String>, Vec<&'d str>>> {
    let mut out: BTreeMap<String, BTreeMap<Option<String>, Vec<&'d str>>> = BTreeMap::new();
    for d in deployments.iter().filter(|d| d.running) {
        if let Some((model, version)) = match_deployment(d, models) {
            out.entry(model.name.clone())
                .or_default()
                .entry(version)
                .or_default()
                .push(d.key.as_str());
        }
    }
    for by_version in out.values_mut() {
        for keys in by_version.values_mut() {
            keys.sort_unstable();
            keys.dedup();
        }
    }
    out
}

/// What serves `version`: `steward:deployment` for the deployments known to run it, and
/// `steward:deployment_of_model` for those that run the model at a version the inventory cannot
/// place (on every version of the model, since any of them may be the one).
fn serving_version<'d>(
    by_version: &BTreeMap<Option<String>, Vec<&'d str>>,
    model: &Model,
    version: &ModelVersion,
) -> Vec<(&'static str, &'d str)> {
    let mut out = Vec::new();
    for (served, keys) in by_version {
        let name = match served {
            Some(v) if *v == version.version => "steward:deployment",
            Some(v) if model.versions.iter().any(|known| known.version == *v) => continue,
            _ => "steward:deployment_of_model",
        };
        out.extend(keys.iter().map(|k| (name, *k)));
    }
    out
}

/// What every component of one model carries.
struct ModelShared<'m> {
    model: &'m Model,
    /// The model's governance properties, the same on each of its versions.
    properties: Properties,
}

fn model_component(
    shared: &ModelShared,
    version: Option<&ModelVersion>,
    run: Option<&Run>,
    serving: &[(&str, &str)],
) -> Value {
    let model = shared.model;
    let mut c = Map::new();
    c.insert("type".into(), json!("machine-learning-model"));
    c.insert(
        "bom-ref".into(),
        json!(model_ref(&model.name, version.map(|v| v.version.as_str()))),
    );
    if let Some(provider) = field_text(model, "provider") {
        c.insert("supplier".into(), json!({ "name": provider }));
    }
    let authors: Vec<Value> = field_texts(model, "developers")
        .into_iter()
        .map(|name| json!({ "name": name }))
        .collect();
    if !authors.is_empty() {
        c.insert("authors".into(), Value::Array(authors));
    }
    c.insert("name".into(), json!(model.name));
    if let Some(v) = version {
        c.insert("version".into(), json!(v.version));
    }
    if let Some(purpose) = field_text(model, "purpose") {
        c.insert("description".into(), json!(purpose));
    }
    if let Some(hash) = version.and_then(|v| v.digest.as_deref()).and_then(hash_of) {
        c.insert("hashes".into(), json!([hash]));
    }
    if let Some(license) = field_text(model, "license") {
        // A name, not an SPDX id: the field is free text, and an id outside the SPDX list
        // would make the document invalid.
        c.insert(
            "licenses".into(),
            json!([{ "license": { "name": license } }]),
        );
    }
    if let Some(base) = field_text(model, "base_model") {
        c.insert(
            "pedigree".into(),
            json!({ "ancestors": [{ "type": "machine-learning-model", "name": base }] }),
        );
    }
    if let Some(uri) = version
        .map(|v| v.artifact_uri.trim())
        .filter(|u| is_absolute_iri(u))
    {
        c.insert(
            "externalReferences".into(),
            json!([{ "type": "distribution", "url": uri, "comment": "the model artifact" }]),
        );
    }
    let card = model_card(model, version, run);
    if !card.is_empty() {
        c.insert("modelCard".into(), Value::Object(card));
    }

    let mut properties = shared.properties.clone();
    if let Some(v) = version {
        version_properties(&mut properties, v);
    }
    if let Some(r) = run {
        run_properties(&mut properties, r);
    }
    for (name, key) in serving {
        properties.add(*name, *key);
    }
    c.insert("properties".into(), properties.into_value());

    let tags = field_texts(model, "regulatory_tags");
    if !tags.is_empty() {
        c.insert("tags".into(), json!(tags));
    }
    Value::Object(c)
}

fn model_card(
    model: &Model,
    version: Option<&ModelVersion>,
    run: Option<&Run>,
) -> Map<String, Value> {
    let mut card = Map::new();

    let mut parameters = Map::new();
    if let Some(task) = version.and_then(|v| scanned_text(v, "task")) {
        parameters.insert("task".into(), json!(task));
    }
    if let Some(architecture) = field_text(model, "architecture")
        .or_else(|| version.and_then(|v| scanned_text(v, "architecture")))
    {
        parameters.insert("modelArchitecture".into(), json!(architecture));
    }
    let datasets: Vec<Value> = unique(run.map(|r| r.datasets.as_slice()).unwrap_or_default())
        .into_iter()
        .map(|key| json!({ "ref": dataset_ref(key) }))
        .collect();
    if !datasets.is_empty() {
        parameters.insert("datasets".into(), Value::Array(datasets));
    }
    if !parameters.is_empty() {
        card.insert("modelParameters".into(), Value::Object(parameters));
    }

    // The version's own metrics; the run's when the registry copied none onto the version.
    let metrics = match version {
        Some(v) if !v.metrics.is_empty() => Some(&v.metrics),
        _ => run.map(|r| &r.metrics).filter(|m| !m.is_empty()),
    };
    if let Some(metrics) = metrics {
        let performance: Vec<Value> = metrics
            .iter()
            .map(|(name, value)| json!({ "type": name, "value": value.to_string() }))
            .collect();
        card.insert(
            "quantitativeAnalysis".into(),
            json!({ "performanceMetrics": performance }),
        );
    }

    let mut considerations = Map::new();
    if let Some(use_case) = field_text(model, "intended_use") {
        considerations.insert("useCases".into(), json!([use_case]));
    }
    if let Some(limitations) = field_text(model, "restrictions") {
        considerations.insert("technicalLimitations".into(), json!([limitations]));
    }
    if !considerations.is_empty() {
        card.insert("considerations".into(), Value::Object(considerations));
    }
    card
}

fn dataset_component(d: &Dataset) -> Value {
    let mut properties = Properties::default();
    let hash = d.digest.as_deref().and_then(hash_of);
    if hash.is_none()
        && let Some(digest) = d.digest.as_deref()
    {
        // MLflow's dataset digests are short fingerprints of its own, not a hash of the data.
        properties.add("steward:digest", digest);
    }
    let url = d
        .uri
        .as_deref()
        .map(str::trim)
        .filter(|u| is_absolute_iri(u));
    if url.is_none()
        && let Some(location) = d.uri.as_deref()
    {
        properties.add("steward:location", location);
    }
    if let Some(kind) = &d.source_type {
        properties.add("steward:source_type", kind);
    }
    properties.add("steward:found_by", &d.found_by);
    properties.add("steward:first_seen", time(d.first_seen));
    properties.add("steward:last_seen", time(d.last_seen));

    let mut data = Map::new();
    data.insert("type".into(), json!("dataset"));
    data.insert("name".into(), json!(d.name));
    if let Some(url) = url {
        data.insert("contents".into(), json!({ "url": url }));
    }
    let mut c = Map::new();
    c.insert("type".into(), json!("data"));
    c.insert("bom-ref".into(), json!(dataset_ref(&d.key)));
    c.insert("name".into(), json!(d.name));
    if let Some(hash) = hash {
        c.insert("hashes".into(), json!([hash]));
    }
    c.insert("data".into(), json!([data]));
    c.insert("properties".into(), properties.into_value());
    Value::Object(c)
}

/// A dataset a run names that the inventory has no record of: named by its key, so the lineage
/// still shows it.
fn missing_dataset_component(key: &str) -> Value {
    json!({
        "type": "data",
        "bom-ref": dataset_ref(key),
        "name": key,
        "data": [{ "type": "dataset", "name": key }],
        "properties": [{ "name": "steward:record", "value": "missing: a run names it, the inventory has no record of it" }],
    })
}

/// Name/value pairs, in order; CycloneDX allows a name more than once, which is how lists go.
#[derive(Debug, Clone, Default)]
struct Properties(Vec<(String, String)>);

impl Properties {
    /// Adds a pair; an empty value says nothing and is left out.
    fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.0.push((name.into(), value));
        }
    }

    fn into_value(self) -> Value {
        Value::Array(
            self.0
                .into_iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect(),
        )
    }
}

/// The governance record: every field without a CycloneDX place of its own, completeness, and
/// where each value came from.
fn model_properties(
    model: &Model,
    completeness: &super::Completeness,
    now: DateTime<Utc>,
) -> Properties {
    let mut p = Properties::default();
    for (field, value) in &model.fields {
        if MAPPED_FIELDS.contains(&field.as_str()) {
            continue;
        }
        for text in texts(value) {
            p.add(format!("steward:{field}"), text);
        }
    }
    p.add(
        "steward:validation_current",
        model.validation_current(now.date_naive()).to_string(),
    );
    p.add("steward:completeness", completeness.score.to_string());
    p.add(
        "steward:needs_review",
        completeness.needs_review.to_string(),
    );
    for field in &completeness.missing {
        p.add("steward:missing_fields", field);
    }
    for (field, provenance) in &model.provenance {
        p.add(
            format!("steward:provenance:{field}"),
            provenance_text(provenance),
        );
    }
    p
}

fn version_properties(p: &mut Properties, v: &ModelVersion) {
    if let Some(digest) = v.digest.as_deref().filter(|d| hash_of(d).is_none()) {
        p.add("steward:version:digest", digest);
    }
    if !is_absolute_iri(v.artifact_uri.trim()) {
        // Not an IRI, so not a distribution reference: kept as it was found.
        p.add("steward:version:artifact", &v.artifact_uri);
    }
    if let Some(format) = scanned_text(v, "format") {
        p.add("steward:version:format", format);
    }
    if let Some(framework) = &v.framework {
        p.add("steward:version:framework", framework);
    }
    if let Some(trained) = v.trained_at {
        p.add("steward:version:trained_at", time(trained));
    }
    p.add("steward:version:source", &v.source);
    p.add("steward:version:first_seen", time(v.first_seen));
    p.add("steward:version:last_seen", time(v.last_seen));
    for alias in &v.aliases {
        p.add("steward:version:alias", alias);
    }
    if let Some(stage) = &v.stage {
        p.add("steward:version:stage", stage);
    }
    p.add(
        "steward:version:production",
        v.marked_production().to_string(),
    );
    for problem in &v.problems {
        p.add("steward:version:problem", problem);
    }
    if let Some(run) = &v.run_id {
        p.add("steward:run:id", run);
    }
}

fn run_properties(p: &mut Properties, r: &Run) {
    if let Some(name) = &r.name {
        p.add("steward:run:name", name);
    }
    if let Some(experiment) = &r.experiment {
        p.add("steward:run:experiment", experiment);
    }
    if let Some(user) = &r.user {
        p.add("steward:run:user", user);
    }
    if let Some(started) = r.started_at {
        p.add("steward:run:started_at", time(started));
    }
    p.add("steward:run:found_by", &r.found_by);
    for (name, value) in &r.params {
        p.add(format!("steward:run:param:{name}"), value);
    }
}

/// Where a value came from, in words: `attested by cora at 2026-11-29T12:00:00Z`.
fn provenance_text(provenance: &Provenance) -> String {
    match provenance {
        Provenance::Attested { user, at } => format!("attested by {user} at {}", time(*at)),
        Provenance::Discovered { source, at } => {
            format!("discovered by {source} at {}", time(*at))
        }
        Provenance::Derived { from, at } => format!("derived from {from} at {}", time(*at)),
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A field's value as text, when it is one (text, a date, a word, a number).
fn field_text(model: &Model, field: &str) -> Option<String> {
    match model.fields.get(field)? {
        Value::Array(_) => None,
        other => texts(other).into_iter().next(),
    }
}

/// A list field's items (a text field gives itself).
fn field_texts(model: &Model, field: &str) -> Vec<String> {
    model.fields.get(field).map(texts).unwrap_or_default()
}

/// A JSON value as property texts: one per list item, none for null or empty text.
fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                Vec::new()
            } else {
                vec![s.to_owned()]
            }
        }
        Value::Array(items) => items.iter().flat_map(texts).collect(),
        other => vec![other.to_string()],
    }
}

/// A text the scan of a version recorded: at the top of its metadata (`format`), in the file
/// header's normalised keys (`architecture`) or in the registry's tags (`task`).
fn scanned_text(version: &ModelVersion, key: &str) -> Option<String> {
    let m = &version.metadata;
    [
        m.get(key),
        m.pointer(&format!("/metadata/{key}")),
        m.pointer(&format!("/tags/{key}")),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
    .map(str::to_owned)
}

/// A digest (`sha256:9f86…`) as a CycloneDX hash: the algorithm named by its prefix, the content
/// lowercase hex of that algorithm's length. Anything else (MLflow's short dataset digests, a
/// bare hex string whose algorithm is not stated) is not a hash CycloneDX can name.
fn hash_of(digest: &str) -> Option<Value> {
    let (algorithm, hex) = digest.trim().split_once(':')?;
    let (name, length) = match algorithm.to_ascii_lowercase().as_str() {
        "md5" => ("MD5", 32),
        "sha1" | "sha-1" => ("SHA-1", 40),
        "sha256" | "sha-256" => ("SHA-256", 64),
        "sha384" | "sha-384" => ("SHA-384", 96),
        "sha512" | "sha-512" => ("SHA-512", 128),
        _ => return None,
    };
    (hex.len() == length && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| json!({ "alg": name, "content": hex.to_ascii_lowercase() }))
}

/// The serial number as CycloneDX writes it, `urn:uuid:` and lowercase hex in 8-4-4-4-12.
fn serial_number(serial: &str) -> Option<String> {
    let lower = serial.trim().to_ascii_lowercase();
    let uuid = lower.strip_prefix("urn:uuid:").unwrap_or(&lower);
    let shaped = uuid.len() == 36
        && uuid.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    shaped.then(|| format!("urn:uuid:{uuid}"))
}

/// Whether `text` is an absolute IRI (RFC 3987): a scheme, then characters each part allows.
/// Stricter than the RFC in two ways, so that what passes is valid for any reader: one-letter
/// schemes are refused (`C:/models` is a Windows path) and so are IP-literal hosts and private-use
/// characters.
fn is_absolute_iri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return false;
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (hier, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !iri_chars(fragment, ":@/?") || !iri_chars(query, ":@/?") {
        return false;
    }
    match hier.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            let (userinfo, host_port) = authority.split_once('@').unwrap_or(("", authority));
            let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
            iri_chars(userinfo, ":")
                && iri_chars(host, "")
                && port.bytes().all(|b| b.is_ascii_digit())
                && iri_chars(path, ":@/")
        }
        None => iri_chars(hier, ":@/"),
    }
}

/// Whether every character is unreserved, a sub-delimiter, a well-formed `%XX` or one of `extra`.
fn iri_chars(part: &str, extra: &str) -> bool {
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        let ok = if c == '%' {
            chars.next().is_some_and(|h| h.is_ascii_hexdigit())
                && chars.next().is_some_and(|h| h.is_ascii_hexdigit())
        } else {
            c.is_ascii_alphanumeric()
                || "-._~!$&'()*+,;=".contains(c)
                || extra.contains(c)
                || ucschar(c)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// RFC 3987's `ucschar`: the non-ASCII characters an IRI may hold as they are.
fn ucschar(c: char) -> bool {
    let c = c as u32;
    matches!(c, 0xA0..=0xD7FF | 0xF900..=0xFDCF | 0xFDF0..=0xFFEF)
        || (0x10000..=0xEFFFD).contains(&c) && (c & 0xFFFF) <= 0xFFFD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::check_fields;
    use crate::names::UserName;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn now() -> DateTime<Utc> {
        at("2026-11-29T12:00:00Z")
    }

    const DIGEST: &str = "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

    fn version(number: &str, run: Option<&str>) -> ModelVersion {
        ModelVersion {
            version: number.into(),
            artifact_uri: format!("models:/fraud-scoring/{number}"),
            // Distinct per version: a rescan matches versions by digest.
            digest: Some(if number == "3" {
                DIGEST.into()
            } else {
                format!("sha256:{}", number.repeat(64))
            }),
            framework: Some("sklearn".into()),
            trained_at: Some(at("2026-11-01T08:00:00Z")),
            metrics: BTreeMap::from([("auc".to_owned(), 0.91), ("f1".to_owned(), 0.5)]),
            source: "mlflow:http://mlflow:5000".into(),
            first_seen: now(),
            last_seen: now(),
            metadata: json!({"tags": {"task": "tabular-classification"}}),
            problems: vec![],
            run_id: run.map(str::to_owned),
            aliases: vec!["champion".into()],
            stage: None,
        }
    }

    fn model() -> Model {
        let mut m = Model::new("fraud-scoring", now());
        let values = check_fields(
            json!({"purpose": "score card payments for fraud", "intended_use": "hold payments for review",
                   "restrictions": "not for credit decisions", "risk_tier": "high", "owner": "mia",
                   "developers": ["ana", "raj"], "regulatory_tags": ["sox", "eu-ai-act-high-risk"]})
            .as_object()
            .expect("object"),
        )
        .expect("valid");
        m.attest(values, &UserName::parse("cora").expect("user"), now());
        m.discover("architecture", json!("GradientBoosting"), "mlflow:x", now());
        m.see_version(version("2", None), now());
        m.see_version(version("3", Some("run-3")), now());
        m
    }

    fn dataset(name: &str, digest: &str, uri: &str) -> Dataset {
        Dataset {
            key: Dataset::key_for(name, Some(digest)),
            name: name.into(),
            digest: Some(digest.into()),
            uri: Some(uri.into()),
            source_type: Some("s3".into()),
            found_by: "mlflow:http://mlflow:5000".into(),
            first_seen: now(),
            last_seen: now(),
        }
    }

    fn run(datasets: &[&Dataset]) -> Run {
        Run {
            id: "run-3".into(),
            found_by: "mlflow:http://mlflow:5000".into(),
            name: Some("nightly".into()),
            experiment: Some("fraud".into()),
            user: Some("ana".into()),
            started_at: Some(at("2026-11-01T07:00:00Z")),
            params: BTreeMap::from([("max_depth".to_owned(), "6".to_owned())]),
            metrics: BTreeMap::new(),
            datasets: datasets
                .iter()
                .map(|d| d.key.clone())
                .chain(["clicks@dead".to_owned()])
                .collect(),
            first_seen: now(),
            last_seen: now(),
        }
    }

    fn deployment(name: &str, version: Option<&str>, running: bool) -> Deployment {
        Deployment {
            key: Deployment::key_for("kubernetes:prod", "kserve", "fraud", name),
            found_by: "kubernetes:prod".into(),
            kind: "kserve".into(),
            namespace: "fraud".into(),
            name: name.into(),
            model: Some("fraud-scoring".into()),
            version: version.map(str::to_owned),
            format: None,
            runtime: None,
            storage_uri: None,
            digest: None,
            url: None,
            ready: true,
            labels: BTreeMap::new(),
            images: vec![],
            running,
            first_seen: now(),
            last_seen: now(),
        }
    }

    fn export() -> Value {
        let sha = format!("sha256:{}", "ab".repeat(32));
        let datasets = vec![
            dataset("transactions", "3f2a9b1c", "s3://data/transactions.parquet"),
            dataset("labels", &sha, "main.fraud.labels"),
        ];
        let runs = vec![run(&datasets.iter().collect::<Vec<_>>())];
        let deployments = vec![
            deployment("fraud-v3", Some("3"), true),
            deployment("fraud-old", Some("2"), false),
            deployment("fraud-any", None, true),
        ];
        let templates = Templates::standard();
        ml_bom(&BomInput {
            models: &[model()],
            datasets: &datasets,
            runs: &runs,
            deployments: &deployments,
            templates: &templates,
            serial: "3F1C2B9A-0000-4000-8000-00000000000A".into(),
            now: now(),
            tool_version: "0.1.0",
        })
    }

    fn component<'b>(bom: &'b Value, bom_ref: &str) -> &'b Value {
        bom["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["bom-ref"] == bom_ref)
            .unwrap_or_else(|| panic!("no component {bom_ref}"))
    }

    fn property<'b>(component: &'b Value, name: &str) -> Vec<&'b str> {
        component["properties"]
            .as_array()
            .expect("properties")
            .iter()
            .filter(|p| p["name"] == name)
            .filter_map(|p| p["value"].as_str())
            .collect()
    }

    #[test]
    fn digests_become_hashes_only_when_they_name_a_known_algorithm() {
        assert_eq!(
            hash_of(DIGEST),
            Some(json!({"alg": "SHA-256", "content": DIGEST[7..].to_ascii_lowercase()}))
        );
        assert_eq!(
            hash_of(&format!("md5:{}", "0a".repeat(16))).expect("md5")["alg"],
            "MD5"
        );
        for not_a_hash in [
            "3f2a9b1c",
            &"ab".repeat(32),
            "sha256:abc",
            &format!("sha256:{}", "zz".repeat(32)),
            &format!("blake2:{}", "ab".repeat(32)),
        ] {
            assert_eq!(hash_of(not_a_hash), None, "{not_a_hash}");
        }
    }

    #[test]
    fn serial_numbers_and_iris_are_checked_before_they_are_written() {
        assert_eq!(
            serial_number("3F1C2B9A-0000-4000-8000-00000000000A").as_deref(),
            Some("urn:uuid:3f1c2b9a-0000-4000-8000-00000000000a")
        );
        assert_eq!(
            serial_number("urn:uuid:3f1c2b9a-0000-4000-8000-00000000000a").as_deref(),
            Some("urn:uuid:3f1c2b9a-0000-4000-8000-00000000000a")
        );
        assert_eq!(serial_number("not-a-uuid"), None);
        for iri in [
            "s3://bucket/models/fraud/3/model.pkl",
            "runs:/0a1b2c/model",
            "models:/fraud-scoring/3",
            "file:///models/fraud.safetensors",
            "https://user@host.example:8443/a%20b?x=1#top",
            "gs://bücher/daten",
        ] {
            assert!(is_absolute_iri(iri), "{iri}");
        }
        for not_iri in [
            "main.fraud.labels",
            "/models/fraud.pkl",
            "C:/models/fraud.pkl",
            "s3://bucket/with space",
            "https://host:port/",
            "https://host/%zz",
            "https://[::1]/",
            "",
        ] {
            assert!(!is_absolute_iri(not_iri), "{not_iri}");
        }
    }

    #[test]
    fn each_version_is_a_model_component_with_its_hash_card_and_governance() {
        let bom = export();
        assert_eq!(bom["specVersion"], "1.6");
        assert_eq!(
            bom["serialNumber"],
            "urn:uuid:3f1c2b9a-0000-4000-8000-00000000000a"
        );
        assert_eq!(bom["metadata"]["timestamp"], "2026-11-29T12:00:00Z");
        let v3 = component(&bom, "model:fraud-scoring@3");
        assert_eq!(v3["type"], "machine-learning-model");
        assert_eq!(v3["version"], "3");
        assert_eq!(v3["hashes"][0]["alg"], "SHA-256");
        assert_eq!(v3["hashes"][0]["content"], DIGEST[7..].to_ascii_lowercase());
        assert_eq!(
            v3["externalReferences"][0]["url"],
            "models:/fraud-scoring/3"
        );
        assert_eq!(v3["description"], "score card payments for fraud");
        assert_eq!(v3["authors"], json!([{"name": "ana"}, {"name": "raj"}]));
        assert_eq!(v3["tags"], json!(["sox", "eu-ai-act-high-risk"]));
        let card = &v3["modelCard"];
        assert_eq!(card["modelParameters"]["task"], "tabular-classification");
        assert_eq!(
            card["modelParameters"]["modelArchitecture"],
            "GradientBoosting"
        );
        assert_eq!(
            card["quantitativeAnalysis"]["performanceMetrics"],
            json!([{"type": "auc", "value": "0.91"}, {"type": "f1", "value": "0.5"}])
        );
        assert_eq!(
            card["considerations"],
            json!({"useCases": ["hold payments for review"], "technicalLimitations": ["not for credit decisions"]})
        );
        assert_eq!(property(v3, "steward:risk_tier"), ["high"]);
        assert_eq!(property(v3, "steward:owner"), ["mia"]);
        assert_eq!(property(v3, "steward:status"), ["development"]);
        assert_eq!(
            property(v3, "steward:provenance:risk_tier"),
            ["attested by cora at 2026-11-29T12:00:00Z"]
        );
        assert_eq!(
            property(v3, "steward:provenance:architecture"),
            ["discovered by mlflow:x at 2026-11-29T12:00:00Z"]
        );
        assert_eq!(
            property(v3, "steward:deployment"),
            ["kubernetes:prod/kserve/fraud/fraud-v3"]
        );
        assert_eq!(
            property(v3, "steward:deployment_of_model"),
            ["kubernetes:prod/kserve/fraud/fraud-any"]
        );
        assert_eq!(property(v3, "steward:run:param:max_depth"), ["6"]);
        assert_eq!(property(v3, "steward:version:alias"), ["champion"]);
        assert!(
            property(v3, "steward:purpose").is_empty(),
            "mapped, not a property"
        );
        let v2 = component(&bom, "model:fraud-scoring@2");
        assert!(
            property(v2, "steward:deployment").is_empty(),
            "a deployment that is gone serves nothing"
        );
        assert!(v2["modelCard"]["modelParameters"].get("datasets").is_none());
    }

    #[test]
    fn completeness_is_exported_with_the_missing_fields() {
        let bom = export();
        let v3 = component(&bom, "model:fraud-scoring@3");
        let c = model().completeness(&Templates::standard());
        assert_eq!(property(v3, "steward:completeness"), [c.score.to_string()]);
        assert_eq!(property(v3, "steward:needs_review"), ["true"]);
        assert_eq!(property(v3, "steward:missing_fields"), c.missing);
    }

    #[test]
    fn datasets_are_data_components_and_every_reference_resolves() {
        let bom = export();
        let refs: BTreeSet<&str> = bom["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["bom-ref"].as_str())
            .collect();
        assert_eq!(refs.len(), bom["components"].as_array().expect("c").len());
        let v3 = component(&bom, "model:fraud-scoring@3");
        let used: Vec<&str> = v3["modelCard"]["modelParameters"]["datasets"]
            .as_array()
            .expect("datasets")
            .iter()
            .filter_map(|d| d["ref"].as_str())
            .collect();
        assert_eq!(
            used,
            [
                "dataset:transactions@3f2a9b1c",
                &format!("dataset:labels@sha256:{}", "ab".repeat(32)),
                "dataset:clicks@dead"
            ]
        );
        assert!(
            used.iter().all(|r| refs.contains(r)),
            "{used:?} in {refs:?}"
        );

        let short = component(&bom, "dataset:transactions@3f2a9b1c");
        assert_eq!(short["type"], "data");
        assert!(short.get("hashes").is_none(), "an MLflow digest is no hash");
        assert_eq!(property(short, "steward:digest"), ["3f2a9b1c"]);
        assert_eq!(
            short["data"],
            json!([{"type": "dataset", "name": "transactions", "contents": {"url": "s3://data/transactions.parquet"}}])
        );
        let hashed = component(&bom, &format!("dataset:labels@sha256:{}", "ab".repeat(32)));
        assert_eq!(
            hashed["hashes"],
            json!([{"alg": "SHA-256", "content": "ab".repeat(32)}])
        );
        assert!(
            hashed["data"][0].get("contents").is_none(),
            "a table name is no IRI"
        );
        assert_eq!(property(hashed, "steward:location"), ["main.fraud.labels"]);
        let missing = component(&bom, "dataset:clicks@dead");
        assert_eq!(missing["type"], "data");
    }

    #[test]
    fn lineage_is_the_dependency_graph() {
        let bom = export();
        let dependencies = bom["dependencies"].as_array().expect("dependencies");
        assert_eq!(
            dependencies.len(),
            1,
            "only the version with a run: {dependencies:?}"
        );
        assert_eq!(dependencies[0]["ref"], "model:fraud-scoring@3");
        let depends: Vec<&str> = dependencies[0]["dependsOn"]
            .as_array()
            .expect("dependsOn")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let v3 = component(&bom, "model:fraud-scoring@3");
        let card: Vec<&str> = v3["modelCard"]["modelParameters"]["datasets"]
            .as_array()
            .expect("datasets")
            .iter()
            .filter_map(|d| d["ref"].as_str())
            .collect();
        assert_eq!(depends, card);
    }

    #[test]
    fn a_model_without_versions_is_still_in_the_bom() {
        let templates = Templates::standard();
        let bare = Model::new("churn", now());
        let bom = ml_bom(&BomInput {
            models: &[bare],
            datasets: &[],
            runs: &[],
            deployments: &[],
            templates: &templates,
            serial: "nonsense".into(),
            now: now(),
            tool_version: "0.1.0",
        });
        assert!(
            bom.get("serialNumber").is_none(),
            "an invalid serial is left out"
        );
        let c = component(&bom, "model:churn");
        assert!(c.get("version").is_none() && c.get("hashes").is_none());
        assert_eq!(property(c, "steward:completeness").len(), 1);
        assert!(bom.get("dependencies").is_none());
    }
}

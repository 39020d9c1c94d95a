//! Compliance policy as code: Rego modules evaluated in-process by regorus.
//!
//! A *rule* is a Rego package under `steward.rules` (`package steward.rules.pii_compliance_approval`).
//! It reads the change as `input` (shape: `steward_core::policy::input`) and may define:
//! `deny` and `warn` (sets of messages), `approvals` (a set of `{"role", "reason"}` objects),
//! `obligations` (a set of names such as `post_implementation_review`), `inputs` (an object of
//! the input values the rule looked at, kept in the decision receipt), `title` and `controls`.
//! Other packages (helpers) may exist beside the rules.
//!
//! [`PolicySet`] loads modules, refuses broken ones with file and line, and evaluates every rule
//! in one call through a generated aggregator module. Its version is a SHA-256 over the modules'
//! file names and text, so a receipt names exactly the policy set that decided. [`run_tests`] is the
//! `opa test` of Steward: every `test_*` rule in every module must evaluate to `true`. Files named
//! `*_test.rego` hold tests and are never loaded into a serving policy set.

pub mod backtest;

use regorus::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use steward_core::policy::{PolicyEvaluator, RequiredApproval, RuleVerdict};

/// One Rego source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Shown in errors: a file path, or `builtin/<name>.rego` for the shipped pack.
    pub path: String,
    pub text: String,
}

impl Module {
    /// Whether the file holds tests (`*_test.rego`), which a serving policy set leaves out.
    pub fn is_test(&self) -> bool {
        self.path.ends_with("_test.rego")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy directory {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no .rego files in {}", .0.display())]
    Empty(PathBuf),
    /// A module that does not parse or compile; the message carries `file:line:column`.
    #[error("{0}")]
    Broken(String),
}

macro_rules! builtin {
    ($($name:literal),+ $(,)?) => {
        &[$(
            (concat!("builtin/", $name, ".rego"), include_str!(concat!("../builtin/", $name, ".rego"))),
            (concat!("builtin/", $name, "_test.rego"), include_str!(concat!("../builtin/", $name, "_test.rego"))),
        )+]
    };
}

/// The shipped pack, each rule beside its tests.
const BUILTIN: &[(&str, &str)] = builtin!(
    "high_risk_rollback",
    "pii_compliance_approval",
    "sox_financial_cab",
    "emergency_justification",
    "standard_regulated_production",
    "audit_logging_protected",
    "maintenance_window",
);

/// The built-in policy pack, rules and tests.
pub fn builtin_modules() -> Vec<Module> {
    BUILTIN
        .iter()
        .map(|(path, text)| Module {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// Every `.rego` file under `dir`, recursively, in path order.
pub fn read_dir(dir: &Path) -> Result<Vec<Module>, PolicyError> {
    fn walk(dir: &Path, out: &mut Vec<Module>) -> Result<(), PolicyError> {
        let read = |source| PolicyError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut entries = std::fs::read_dir(dir)
            .map_err(read)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read)?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rego") {
                let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
                    path: path.clone(),
                    source,
                })?;
                out.push(Module {
                    path: path.display().to_string(),
                    text,
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    if out.is_empty() {
        return Err(PolicyError::Empty(dir.to_owned()));
    }
    Ok(out)
}

const RULES_PREFIX: &str = "data.steward.rules.";
/// What a rule package may define that a verdict is made of, evaluated per change.
const OUTPUTS: [&str; 5] = ["deny", "warn", "approvals", "obligations", "inputs"];

/// Adds modules to an engine, naming the file and line of the first broken one.
fn engine_with(modules: &[&Module]) -> Result<(Engine, Vec<(String, String)>), PolicyError> {
    let mut engine = Engine::new();
    // A builtin that fails (a bad timestamp, a type error) is an evaluation error, so the set
    // fails closed instead of leaving a deny silently undefined.
    engine.set_strict_builtin_errors(true);
    let mut packages = Vec::with_capacity(modules.len());
    for module in modules {
        let package = engine
            .add_policy(module.path.clone(), module.text.clone())
            .map_err(|e| PolicyError::Broken(format!("{e:#}")))?;
        packages.push((module.path.clone(), package));
    }
    Ok((engine, packages))
}

/// One rule package: the outputs it declares, and its constant title and controls.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    /// `(output, full rule path)` for each output the package declares.
    outputs: Vec<(&'static str, String)>,
    title: Option<String>,
    controls: Vec<String>,
}

/// The loaded, checked policy set a server evaluates every change against.
#[derive(Debug)]
pub struct PolicySet {
    template: Engine,
    /// Engines ready to evaluate; each evaluation takes one and puts it back.
    idle: Mutex<Vec<Engine>>,
    version: String,
    rules: Vec<Rule>,
    modules: Vec<Module>,
    /// (module path, the package it declares), in load order.
    packages: Vec<(String, String)>,
}

fn eval_json(engine: &mut Engine, path: &str) -> Result<Value, String> {
    let value = engine
        .eval_rule(path.to_owned())
        .map_err(|e| format!("{e:#}"))?;
    if value == regorus::Value::Undefined {
        return Ok(Value::Null);
    }
    serde_json::to_value(&value).map_err(|e| e.to_string())
}

impl PolicySet {
    /// Loads the non-test modules and checks that every rule compiles and evaluates.
    pub fn new(modules: Vec<Module>) -> Result<PolicySet, PolicyError> {
        let modules: Vec<Module> = modules.into_iter().filter(|m| !m.is_test()).collect();
        let refs: Vec<&Module> = modules.iter().collect();
        let (mut engine, packages) = engine_with(&refs)?;
        let broken = |e: String| PolicyError::Broken(e);
        let mut rules: Vec<Rule> = Vec::new();
        for (path, package) in &packages {
            let Some(name) = package
                .strip_prefix(RULES_PREFIX)
                .filter(|rest| !rest.contains('.'))
            else {
                continue;
            };
            let rule = match rules.iter().position(|r| r.name == name) {
                Some(i) => &mut rules[i],
                None => {
                    rules.push(Rule {
                        name: name.to_owned(),
                        outputs: Vec::new(),
                        title: None,
                        controls: Vec::new(),
                    });
                    rules.last_mut().ok_or_else(|| broken("no rule".into()))?
                }
            };
            for output in OUTPUTS {
                let declared = engine
                    .has_declared_rule_rooted_at(path, output)
                    .map_err(|e| broken(format!("{e:#}")))?;
                if declared && !rule.outputs.iter().any(|(o, _)| *o == output) {
                    rule.outputs.push((output, format!("{package}.{output}")));
                }
            }
        }
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        // Evaluate everything once on an empty input: compile errors (unknown functions, unsafe
        // variables) surface at load time, not on the first change; titles and controls are
        // constants and are read here once.
        engine.set_input(regorus::Value::new_object());
        for rule in &mut rules {
            let base = format!("{RULES_PREFIX}{}", rule.name);
            for (_, path) in &rule.outputs {
                eval_json(&mut engine, path).map_err(broken)?;
            }
            if let Ok(title) = eval_json(&mut engine, &format!("{base}.title")) {
                rule.title = title.as_str().map(str::to_owned);
            }
            if let Ok(controls) = eval_json(&mut engine, &format!("{base}.controls")) {
                rule.controls = texts(&controls);
            }
        }
        // Over file names and text, not the directory: `./policies` and `/etc/steward/policies`
        // holding the same files are the same policy set.
        let mut hasher = Sha256::new();
        let mut named: Vec<(&str, &str)> = modules
            .iter()
            .map(|m| {
                (
                    m.path.rsplit('/').next().unwrap_or(&m.path),
                    m.text.as_str(),
                )
            })
            .collect();
        named.sort();
        for (name, text) in named {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
        }
        let version = format!("sha256:{}", steward_audit::hex::encode(&hasher.finalize()));
        Ok(PolicySet {
            idle: Mutex::new(vec![engine.clone()]),
            template: engine,
            version,
            rules,
            modules,
            packages,
        })
    }

    /// The rule names, sorted.
    pub fn rules(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The package the module at `path` declares (without the `data.` prefix).
    pub fn package_of(&self, path: &str) -> Option<&str> {
        self.packages
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, package)| package.strip_prefix("data.").unwrap_or(package))
    }

    /// The path of a module declaring `package` (written without the `data.` prefix), if any.
    pub fn path_declaring(&self, package: &str) -> Option<&str> {
        self.packages
            .iter()
            .find(|(_, p)| p.strip_prefix("data.").unwrap_or(p) == package)
            .map(|(path, _)| path.as_str())
    }

    fn take(&self) -> Engine {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        idle.unwrap_or_else(|| self.template.clone())
    }

    fn give_back(&self, engine: Engine) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 64
        {
            idle.push(engine);
        }
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn texts(value: &Value) -> Vec<String> {
    let mut out: Vec<String> = value
        .as_array()
        .map(|items| items.iter().map(text_of).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A rule output that must be a set (`deny contains msg if …`): anything else is a mistake in
/// the rule, reported as an evaluation error so the set fails closed rather than passing.
fn set_of(rule: &str, output: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null | Value::Array(_) => Ok(texts(value)),
        other => Err(format!(
            "rule {rule}: `{output}` is {other}, but must be a set (write `{output} contains msg if {{ … }}`)"
        )),
    }
}

fn verdict_of(rule: &Rule, engine: &mut Engine) -> Result<RuleVerdict, String> {
    let mut raw = Map::new();
    for (output, path) in &rule.outputs {
        raw.insert((*output).to_owned(), eval_json(engine, path)?);
    }
    let raw = Value::Object(raw);
    let deny = set_of(&rule.name, "deny", &raw["deny"])?;
    let warn = set_of(&rule.name, "warn", &raw["warn"])?;
    let obligations = set_of(&rule.name, "obligations", &raw["obligations"])?;
    if !matches!(raw["approvals"], Value::Null | Value::Array(_)) {
        return Err(format!(
            "rule {}: `approvals` must be a set of {{\"role\", \"reason\"}} objects",
            rule.name
        ));
    }
    let mut approvals = Vec::new();
    for item in raw["approvals"].as_array().into_iter().flatten() {
        let role = item["role"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                format!(
                    "rule {}: approvals entry {item} needs a \"role\" that Steward knows",
                    rule.name
                )
            })?;
        approvals.push(RequiredApproval {
            role,
            reason: item["reason"]
                .as_str()
                .unwrap_or("required by policy")
                .to_owned(),
        });
    }
    approvals.sort_by_key(|a| a.role);
    Ok(RuleVerdict {
        rule: rule.name.clone(),
        title: rule.title.clone(),
        controls: rule.controls.clone(),
        verdict: RuleVerdict::verdict_of(&deny, &warn),
        deny,
        warn,
        approvals,
        obligations,
        inputs: match &raw["inputs"] {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_owned(), other.clone())]),
        },
    })
}

impl PolicyEvaluator for PolicySet {
    fn version(&self) -> &str {
        &self.version
    }

    fn evaluate(&self, input: &Value) -> Result<Vec<RuleVerdict>, String> {
        let mut engine = self.take();
        engine.set_input(regorus::Value::from(input.clone()));
        let verdicts = self
            .rules
            .iter()
            .map(|rule| verdict_of(rule, &mut engine))
            .collect();
        self.give_back(engine);
        verdicts
    }
}

/// How one `test_*` rule fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// `data.steward.rules.pii_compliance_approval_test.test_pii_needs_compliance`
    pub name: String,
    pub file: String,
    pub passed: bool,
    /// Why it failed: `false`, undefined, or the evaluation error.
    pub failure: Option<String>,
    pub duration: Duration,
}

/// Runs every `test_*` rule in `modules`, like `opa test`. Broken modules are an error.
pub fn run_tests(modules: &[Module]) -> Result<Vec<TestResult>, PolicyError> {
    let refs: Vec<&Module> = modules.iter().collect();
    let (engine, packages) = engine_with(&refs)?;
    let mut results = Vec::new();
    for (module, (_, package)) in modules.iter().zip(&packages) {
        for name in test_rule_names(&module.text) {
            let full = format!("{package}.{name}");
            let mut engine = engine.clone();
            engine.set_input(regorus::Value::Undefined);
            let started = Instant::now();
            let outcome = engine.eval_rule(full.clone());
            let duration = started.elapsed();
            let failure = match outcome {
                Ok(regorus::Value::Bool(true)) => None,
                Ok(regorus::Value::Undefined) => {
                    Some("undefined (a condition did not hold)".into())
                }
                Ok(other) => Some(format!("evaluated to {other}")),
                Err(e) => Some(format!("error: {e:#}")),
            };
            if !results.iter().any(|r: &TestResult| r.name == full) {
                results.push(TestResult {
                    name: full,
                    file: module.path.clone(),
                    passed: failure.is_none(),
                    failure,
                    duration,
                });
            }
        }
    }
    Ok(results)
}

/// Names of rules starting `test_` defined at the start of a line.
fn test_rule_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("test_") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let name = format!("test_{name}");
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests;

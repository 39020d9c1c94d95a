//! The bytes of a leaf: a versioned prefix and canonical JSON (RFC 8785) of the event's facts.
//!
//! Only the facts an auditor must be able to prove go into the leaf: event id, server time, the
//! tenant the event belongs to, actor, action, subject, outcome, correlation id, the policy
//! version that decided (when one did), and the SHA-256 of the payload kept outside the tree (free text and personal data, which must stay
//! erasable without breaking proofs). Values are strings only and keys are ASCII, written in
//! sorted order; for such documents serde_json's compact output with escaped control characters is
//! exactly RFC 8785's canonical form (tested below).

use serde_json::{Map, Value};

/// Identifies the entry format; a new format gets a new prefix, never a changed meaning.
pub const ENTRY_PREFIX: &str = "steward-audit-entry/v1\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub event_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: String,
    pub correlation_id: Option<String>,
    pub policy_version: Option<String>,
    /// Hex SHA-256 of the payload stored outside the tree.
    pub payload_sha256: Option<String>,
    /// The tenant (business unit) the event belongs to. Optional only because entries written
    /// before tenants were administered lack it (their tenant is in the event's row); every new
    /// entry carries it, so a tenant's auditor can prove which entries are theirs.
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the entry does not start with the {ENTRY_PREFIX:?} prefix")]
    Prefix,
    #[error("the entry is not canonical JSON of the expected fields: {0}")]
    Body(String),
}

impl Entry {
    /// The leaf's input bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Keys inserted in sorted order, so the output is sorted whatever map type serde_json uses.
        let mut fields: Vec<(&str, &str)> = vec![
            ("action", &self.action),
            ("actor", &self.actor),
            ("event_id", &self.event_id),
            ("outcome", &self.outcome),
            ("subject_id", &self.subject_id),
            ("subject_type", &self.subject_type),
            ("time", &self.time),
        ];
        for (key, value) in [
            ("correlation_id", &self.correlation_id),
            ("payload_sha256", &self.payload_sha256),
            ("policy_version", &self.policy_version),
            ("tenant", &self.tenant),
        ] {
            if let Some(value) = value {
                fields.push((key, value));
            }
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = Map::new();
        for (key, value) in fields {
            map.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        let mut out = ENTRY_PREFIX.as_bytes().to_vec();
        out.extend_from_slice(Value::Object(map).to_string().as_bytes());
        out
    }

    /// Parses leaf bytes back, refusing anything that would not re-encode to the same bytes.
    pub fn parse(bytes: &[u8]) -> Result<Entry, EntryError> {
        let body = bytes
            .strip_prefix(ENTRY_PREFIX.as_bytes())
            .ok_or(EntryError::Prefix)?;
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EntryError::Body(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| EntryError::Body("not an object".into()))?;
        let text = |key: &str| -> Result<String, EntryError> {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| EntryError::Body(format!("missing {key}")))
        };
        let optional = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let entry = Entry {
            event_id: text("event_id")?,
            time: text("time")?,
            actor: text("actor")?,
            action: text("action")?,
            subject_type: text("subject_type")?,
            subject_id: text("subject_id")?,
            outcome: text("outcome")?,
            correlation_id: optional("correlation_id"),
            policy_version: optional("policy_version"),
            payload_sha256: optional("payload_sha256"),
            tenant: optional("tenant"),
        };
        if entry.to_bytes() != bytes {
            return Err(EntryError::Body("not in canonical form".into()));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            event_id: "0192-ab".into(),
            time: "2026-11-23T10:00:00.000000Z".into(),
            actor: "mia".into(),
            action: "change.approved".into(),
            subject_type: "change".into(),
            subject_id: "CHG-1".into(),
            outcome: "success".into(),
            correlation_id: None,
            policy_version: None,
            payload_sha256: Some("ab".repeat(32)),
            tenant: None,
        }
    }

    #[test]
    fn canonical_bytes_are_stable_and_round_trip() {
        let bytes = entry().to_bytes();
        let expected = format!(
            "steward-audit-entry/v1\n{{\"action\":\"change.approved\",\"actor\":\"mia\",\"event_id\":\"0192-ab\",\
             \"outcome\":\"success\",\"payload_sha256\":\"{}\",\"subject_id\":\"CHG-1\",\"subject_type\":\"change\",\
             \"time\":\"2026-11-23T10:00:00.000000Z\"}}",
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(bytes.clone()).expect("utf8"), expected);
        assert_eq!(Entry::parse(&bytes), Ok(entry()));
    }

    #[test]
    fn the_tenant_is_a_fact_of_the_leaf_when_known() {
        let mut e = entry();
        e.tenant = Some("risk".into());
        let bytes = String::from_utf8(e.to_bytes()).expect("utf8");
        assert!(
            bytes.contains(r#""subject_type":"change","tenant":"risk","time""#),
            "{bytes}"
        );
        assert_eq!(Entry::parse(bytes.as_bytes()), Ok(e));
        // An entry written before tenants were recorded in leaves reads back without one.
        assert_eq!(
            Entry::parse(&entry().to_bytes()).map(|e| e.tenant),
            Ok(None)
        );
    }

    #[test]
    fn rfc_8785_string_escaping() {
        let mut e = entry();
        e.actor = "a\"b\\c\u{1}\n/é€".into();
        let bytes = String::from_utf8(e.to_bytes()).expect("utf8");
        assert!(bytes.contains(r#""actor":"a\"b\\c\u0001\n/é€""#), "{bytes}");
        assert_eq!(Entry::parse(bytes.as_bytes()), Ok(e));
    }

    #[test]
    fn non_canonical_or_foreign_bytes_are_refused() {
        assert_eq!(Entry::parse(b"{}"), Err(EntryError::Prefix));
        let spaced = String::from_utf8(entry().to_bytes())
            .expect("utf8")
            .replace("\":\"", "\": \"");
        assert!(Entry::parse(spaced.as_bytes()).is_err());
    }
}

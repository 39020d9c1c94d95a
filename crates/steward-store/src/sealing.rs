//! Free text and personal data in stored documents, sealed under its data subject's key.
//!
//! A change's title, description and plans, decision comments, obligation notes, incident
//! reviews and comments, attested model fields, and the notices quoting them are what a person
//! wrote; each such string is stored as a token `sealed:v1:<tenant>:<user>:<nonce>:<ciphertext>`
//! (AES-256-GCM under the writer's payload key, the same key as their audit payloads, bound to
//! the subject), never in clear. Destroying the key (erasure) turns every token of theirs into
//! [`ERASED`] on read, while the record keeps its ids, states, times, roles and hashes.
//!
//! Writing needs the document's shape (which strings are whose): the `*_text` visitors below.
//! Reading does not: a token names its subject, so [`open_json`] replaces every token in a
//! document's JSON text, whatever the document, with one key lookup for the whole page.

use crate::StoreError;
use crate::kek::random;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use steward_audit::hex;
use steward_audit::payload;

/// What a reader sees where erased text was.
pub const ERASED: &str = "[erased]";
const PREFIX: &str = "sealed:v1:";
/// The user Steward acts as; its own text (alert summaries, state changes) is not sealed.
const SYSTEM: &str = "steward";

fn aad(subject: &str) -> Vec<u8> {
    format!("steward-sealed-text/v1:{subject}").into_bytes()
}

/// Payload keys by subject (`tenant:user`), as one request or transaction fetched them; `None`
/// for a subject whose key is gone (erased) or who never had one.
#[derive(Debug, Default, Clone)]
pub(crate) struct Keys {
    keys: HashMap<String, Option<[u8; 32]>>,
}

impl Keys {
    pub(crate) fn insert(&mut self, subject: String, key: Option<[u8; 32]>) {
        self.keys.insert(subject, key);
    }

    pub(crate) fn contains(&self, subject: &str) -> bool {
        self.keys.contains_key(subject)
    }

    pub(crate) fn get(&self, subject: &str) -> Option<&[u8; 32]> {
        self.keys.get(subject).and_then(Option::as_ref)
    }

    /// Seals `plain` under `subject`'s key, which must have been fetched.
    pub(crate) fn seal(&self, subject: &str, plain: &str) -> Result<String, StoreError> {
        let key = self
            .get(subject)
            .ok_or_else(|| StoreError::Corrupt(format!("no payload key fetched for {subject}")))?;
        let nonce = random::<12>()?;
        let sealed = payload::seal(key, &nonce, &aad(subject), plain.as_bytes())
            .map_err(|e| StoreError::corrupt("sealed text", e))?;
        Ok(format!(
            "{PREFIX}{subject}:{}:{sealed}",
            hex::encode(&nonce)
        ))
    }

    /// The plaintext of a token: `Some(text)`, or `None` when its key is gone or does not open
    /// it (erased, then a new key made for the subject).
    pub(crate) fn open(&self, token: &Token<'_>) -> Option<String> {
        let key = self.get(token.subject)?;
        let plain = payload::open(key, &token.nonce, &aad(token.subject), token.sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// A parsed token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub(crate) subject: &'a str,
    nonce: [u8; 12],
    sealed: &'a str,
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// `text` as a token, if it is one.
pub(crate) fn parse_token(text: &str) -> Option<Token<'_>> {
    let rest = text.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplitn(3, ':');
    let sealed = parts.next()?;
    let nonce = hex::decode::<12>(parts.next()?)?;
    let subject = parts.next()?;
    let (tenant, user) = subject.split_once(':')?;
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    (is_slug(tenant) && is_slug(user) && !sealed.is_empty() && sealed.bytes().all(base64))
        .then_some(Token {
            subject,
            nonce,
            sealed,
        })
}

/// Byte ranges of the tokens in a JSON text (each a whole string's content; a token never
/// needs escaping, and an unescaped `"` always delimits a string).
fn token_spans(json: &str) -> Vec<(usize, usize)> {
    let bytes = json.as_bytes();
    let needle = "\"sealed:v1:";
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = json[from..].find(needle) {
        let quote = from + found;
        from = quote + 1;
        let backslashes = bytes[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            continue;
        }
        let start = quote + 1;
        let Some(len) = json[start..].find('"') else {
            break;
        };
        if parse_token(&json[start..start + len]).is_some() {
            spans.push((start, start + len));
        }
        from = start + len;
    }
    spans
}

/// Adds the subjects of every token in a JSON text.
pub(crate) fn subjects_in(json: &str, out: &mut BTreeSet<String>) {
    for (start, end) in token_spans(json) {
        if let Some(token) = parse_token(&json[start..end]) {
            out.insert(token.subject.to_owned());
        }
    }
}

/// A JSON text with every token replaced by its plaintext (escaped), or by [`ERASED`].
pub(crate) fn open_json(json: &str, keys: &Keys) -> String {
    let spans = token_spans(json);
    if spans.is_empty() {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len());
    let mut at = 0;
    for (start, end) in spans {
        let plain = parse_token(&json[start..end])
            .and_then(|token| keys.open(&token))
            .unwrap_or_else(|| ERASED.to_owned());
        // The string's quotes stay; its content becomes the escaped plaintext.
        out.push_str(&json[at..start]);
        let quoted = serde_json::to_string(&plain).unwrap_or_else(|_| format!("\"{ERASED}\""));
        out.push_str(&quoted[1..quoted.len() - 1]);
        at = end;
    }
    out.push_str(&json[at..]);
    out
}

/// One string (or list of strings) in a document that a person wrote: whose, and where.
pub(crate) struct Place<'a> {
    /// The writer's user name.
    pub(crate) user: String,
    /// JSON pointer, for comparing with the stored document.
    pub(crate) pointer: String,
    pub(crate) value: &'a mut Value,
}

/// Adds the place of every string at `value` (a string, or each string of a list).
fn each_string<'a>(user: &str, pointer: String, value: &'a mut Value, out: &mut Vec<Place<'a>>) {
    if user.is_empty() || user == SYSTEM {
        return;
    }
    if value.as_str().is_some_and(|s| !s.is_empty()) {
        out.push(Place {
            user: user.to_owned(),
            pointer,
            value,
        });
    } else if let Value::Array(items) = value {
        for (i, item) in items.iter_mut().enumerate() {
            if item.as_str().is_some_and(|s| !s.is_empty()) {
                out.push(Place {
                    user: user.to_owned(),
                    pointer: format!("{pointer}/{i}"),
                    value: item,
                });
            }
        }
    }
}

/// The entries of an object named in `names` (each mutable at once).
fn entries<'a>(
    value: &'a mut Value,
    names: &'a [&str],
) -> impl Iterator<Item = (&'a String, &'a mut Value)> {
    value
        .as_object_mut()
        .into_iter()
        .flat_map(|map| map.iter_mut())
        .filter(move |(key, _)| names.contains(&key.as_str()))
}

fn str_at(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The request's free text, the requester's.
const REQUEST_TEXT: &[&str] = &[
    "title",
    "description",
    "implementation_plan",
    "rollback_plan",
    "verification_plan",
    "justification",
];

/// The places of a change document (`steward_core::change::Change` as JSON) a person wrote: the
/// request's text (also in the stored policy input) is the requester's, a decision's comment its
/// decider's, an obligation's note whoever fulfilled it, a rollback's or window override's
/// reason (and each approver's agreement to one) whoever gave it.
pub(crate) fn change_text(doc: &mut Value) -> Vec<Place<'_>> {
    let mut out = Vec::new();
    let requester = str_at(doc, "requester");
    let Value::Object(map) = doc else {
        return out;
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "request" => {
                for (field, v) in entries(value, REQUEST_TEXT) {
                    each_string(&requester, format!("/request/{field}"), v, &mut out);
                }
            }
            "policy_input" => {
                if let Some(change) = value.get_mut("change") {
                    for (field, v) in entries(change, REQUEST_TEXT) {
                        let pointer = format!("/policy_input/change/{field}");
                        each_string(&requester, pointer, v, &mut out);
                    }
                }
            }
            "decisions" => {
                for (i, d) in value.as_array_mut().into_iter().flatten().enumerate() {
                    let by = str_at(d, "by");
                    if let Some(v) = d.get_mut("comment") {
                        each_string(&by, format!("/decisions/{i}/comment"), v, &mut out);
                    }
                }
            }
            "obligations" => {
                for (i, o) in value.as_array_mut().into_iter().flatten().enumerate() {
                    if let Some(done) = o.get_mut("fulfilled").filter(|f| f.is_object()) {
                        let by = str_at(done, "by");
                        if let Some(v) = done.get_mut("note") {
                            let pointer = format!("/obligations/{i}/fulfilled/note");
                            each_string(&by, pointer, v, &mut out);
                        }
                    }
                }
            }
            "execution" => {
                if let Some(rollback) = value.get_mut("rollback").filter(|r| r.is_object()) {
                    let by = str_at(rollback, "by");
                    if let Some(v) = rollback.get_mut("reason") {
                        each_string(&by, "/execution/rollback/reason".into(), v, &mut out);
                    }
                }
            }
            "window_override" if value.is_object() => {
                let by = str_at(value, "by");
                for (field, v) in value.as_object_mut().into_iter().flatten() {
                    match field.as_str() {
                        "reason" => {
                            each_string(&by, "/window_override/reason".into(), v, &mut out);
                        }
                        "agreements" => {
                            agreement_reasons(Some(v), "/window_override/agreements", &mut out);
                        }
                        _ => {}
                    }
                }
            }
            "override_agreements" => {
                agreement_reasons(Some(value), "/override_agreements", &mut out);
            }
            _ => {}
        }
    }
    out
}

/// Each window-override agreement's reason, its approver's.
fn agreement_reasons<'a>(list: Option<&'a mut Value>, pointer: &str, out: &mut Vec<Place<'a>>) {
    for (i, agreement) in list
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let by = str_at(agreement, "by");
        if let Some(v) = agreement.get_mut("reason") {
            each_string(&by, format!("{pointer}/{i}/reason"), v, out);
        }
    }
}

/// What an incident's sealing needs to know from outside it: each suspect change's requester.
pub(crate) type Requesters = BTreeMap<String, String>;

/// The change ids an incident document names as suspects (`CHG-n`).
pub(crate) fn suspect_changes(doc: &Value) -> BTreeSet<String> {
    doc.get("suspects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("change").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// The people who reported an incident's signals by hand (`labels.reported_by`), by the
/// summary they wrote.
fn reporters(doc: &Value) -> Vec<(String, String)> {
    doc.get("signals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let by = s.pointer("/labels/reported_by")?.as_str()?;
            let summary = s.get("summary")?.as_str()?;
            Some((summary.to_owned(), by.to_owned()))
        })
        .collect()
}

/// Who reported the signal whose summary `text` quotes.
fn reporter_of<'r>(reported: &'r [(String, String)], text: &str) -> Option<&'r str> {
    reported
        .iter()
        .find(|(summary, _)| !summary.is_empty() && text.contains(summary.as_str()))
        .map(|(_, by)| by.as_str())
}

/// The places of an incident document a person wrote, or that quote what one wrote: comments in
/// the timeline (their author's), the review (its author's), a hand-reported signal's summary and
/// the title and timeline entries quoting it (the reporter's), and each suspect's title and
/// reason, which quote the suspect change's request (its requester's).
pub(crate) fn incident_text<'a>(doc: &'a mut Value, requesters: &Requesters) -> Vec<Place<'a>> {
    let mut out = Vec::new();
    let reported = reporters(doc);
    let reporter_of = |text: &str| reporter_of(&reported, text).map(str::to_owned);
    let requester_of = |id: &str| requesters.get(id).map(String::as_str).unwrap_or_default();
    let Value::Object(map) = doc else {
        return out;
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "title" => {
                let by = value.as_str().and_then(reporter_of).unwrap_or_default();
                each_string(&by, "/title".into(), value, &mut out);
            }
            "signals" => {
                for (i, s) in value.as_array_mut().into_iter().flatten().enumerate() {
                    let by = s
                        .pointer("/labels/reported_by")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(v) = s.get_mut("summary") {
                        each_string(&by, format!("/signals/{i}/summary"), v, &mut out);
                    }
                }
            }
            "timeline" => {
                for (i, entry) in value.as_array_mut().into_iter().flatten().enumerate() {
                    let actor = str_at(entry, "actor");
                    let what = str_at(entry, "what");
                    let by = if actor != SYSTEM {
                        actor
                    } else if let Some(change) = what
                        .strip_prefix("top suspect ")
                        .and_then(|rest| rest.split(':').next())
                    {
                        requester_of(change).to_owned()
                    } else {
                        reporter_of(&what).unwrap_or_default()
                    };
                    if let Some(v) = entry.get_mut("what") {
                        each_string(&by, format!("/timeline/{i}/what"), v, &mut out);
                    }
                }
            }
            "suspects" => {
                suspect_text(value, "/suspects", requesters, &mut out);
            }
            "review" if value.is_object() => {
                let by = str_at(value, "by");
                let fields = &["what_happened", "why", "risk_assessment_missed", "actions"];
                for (field, v) in entries(value, fields) {
                    each_string(&by, format!("/review/{field}"), v, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// Suspects' titles and reasons, which quote the suspect change's request: its requester's.
fn suspect_text<'a>(
    suspects: &'a mut Value,
    pointer: &str,
    requesters: &Requesters,
    out: &mut Vec<Place<'a>>,
) {
    for (i, s) in suspects.as_array_mut().into_iter().flatten().enumerate() {
        let change = str_at(s, "change");
        let by = requesters.get(&change).cloned().unwrap_or_default();
        let Value::Object(fields) = s else { continue };
        for (field, v) in fields.iter_mut() {
            if field == "title" || field == "reason" {
                each_string(&by, format!("{pointer}/{i}/{field}"), v, out);
            }
        }
    }
}

/// The places of an incident event's audit details written by someone other than its actor: a
/// hand-reported summary (as the system's comment) and the suspects' titles and reasons.
pub(crate) fn incident_event_text<'a>(
    details: &'a mut Value,
    requesters: &Requesters,
    reporter: Option<&str>,
) -> Vec<Place<'a>> {
    let mut out = Vec::new();
    let Value::Object(map) = details else {
        return out;
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "comment" => {
                if let Some(by) = reporter {
                    each_string(by, "/comment".into(), value, &mut out);
                }
            }
            "details" => {
                if let Some(suspects) = value.get_mut("suspects") {
                    suspect_text(suspects, "/details/suspects", requesters, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// Model fields that hold what a person wrote (text, Markdown, lists of names), unless they are
/// the vocabulary other records are matched on (an account name, tags, a status).
fn attestable_text(field: &str) -> bool {
    use steward_core::inventory::{FIELDS, Kind};
    !matches!(field, "owner" | "regulatory_tags")
        && FIELDS.iter().any(|(name, kind, _)| {
            *name == field && matches!(kind, Kind::Text | Kind::Markdown | Kind::List)
        })
}

/// The places of a model record (`steward_core::inventory::Model` as JSON) a person attested:
/// each free-text field whose provenance is `attested`, under the attesting user.
pub(crate) fn model_text(doc: &mut Value) -> Vec<Place<'_>> {
    let mut out = Vec::new();
    let attested: BTreeMap<String, String> = doc
        .get("provenance")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, p)| p.get("by").and_then(Value::as_str) == Some("attested"))
        .map(|(field, p)| (field.clone(), str_at(p, "user")))
        .collect();
    if let Some(Value::Object(fields)) = doc.get_mut("fields") {
        for (field, value) in fields.iter_mut() {
            if let Some(user) = attested.get(field).filter(|_| attestable_text(field)) {
                let pointer = format!("/fields/{}", field.replace('~', "~0").replace('/', "~1"));
                each_string(user, pointer, value, &mut out);
            }
        }
    }
    out
}

/// The top-level string `fields` of a document one person wrote (a problem record's title and
/// description, a notice's subject and body): `writer`'s.
pub(crate) fn top_level_text<'a>(
    doc: &'a mut Value,
    writer: &str,
    fields: &[&str],
) -> Vec<Place<'a>> {
    let mut out = Vec::new();
    if let Value::Object(map) = doc {
        for (key, value) in map.iter_mut() {
            if fields.contains(&key.as_str()) {
                each_string(writer, format!("/{key}"), value, &mut out);
            }
        }
    }
    out
}

/// The subjects (`tenant:user`) of a set of places.
pub(crate) fn subjects_of(tenant: &str, places: &[Place<'_>], out: &mut BTreeSet<String>) {
    for place in places {
        out.insert(format!("{tenant}:{}", place.user));
    }
}

/// Seals every place. With `stored` (the document as last written, tokens and all), a place
/// whose stored token opens to the same text keeps that token, and one whose stored token no
/// longer opens keeps it too: text read before an erasure and saved after it stays erased.
pub(crate) fn seal_places(
    tenant: &str,
    places: Vec<Place<'_>>,
    keys: &Keys,
    stored: Option<&Value>,
) -> Result<(), StoreError> {
    for place in places {
        let Some(plain) = place.value.as_str() else {
            continue;
        };
        let before = stored
            .and_then(|s| s.pointer(&place.pointer))
            .and_then(Value::as_str)
            .and_then(|text| parse_token(text).map(|token| (text, token)));
        if let Some((text, token)) = before {
            if text == plain {
                continue;
            }
            match keys.open(&token) {
                Some(opened) if opened != plain => {}
                _ => {
                    *place.value = Value::String(text.to_owned());
                    continue;
                }
            }
        }
        let subject = format!("{tenant}:{}", place.user);
        *place.value = Value::String(keys.seal(&subject, plain)?);
    }
    Ok(())
}

/// Seals the places that are not tokens already (used where a document read with its tokens is
/// written back, and by the migration that seals older documents).
pub(crate) fn seal_plain_places(
    tenant: &str,
    places: Vec<Place<'_>>,
    keys: &Keys,
) -> Result<(), StoreError> {
    for place in places {
        let Some(plain) = place.value.as_str() else {
            continue;
        };
        if parse_token(plain).is_some() {
            continue;
        }
        let subject = format!("{tenant}:{}", place.user);
        *place.value = Value::String(keys.seal(&subject, plain)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(subjects: &[(&str, u8)]) -> Keys {
        let mut keys = Keys::default();
        for (s, k) in subjects {
            keys.insert((*s).to_owned(), Some([*k; 32]));
        }
        keys
    }

    fn change_doc() -> Value {
        json!({
            "requester": "rita",
            "request": {"title": "Quokka \"migration\"", "description": "line\nbreak", "category": "model-deployment",
                        "implementation_plan": "plan", "rollback_plan": "back", "verification_plan": null,
                        "links": ["https://ci/1"]},
            "policy_input": {"change": {"title": "Quokka \"migration\"", "category": "model-deployment"}},
            "decisions": [{"by": "mia", "comment": "owner:mia: fine by me", "slot": "owner"}],
            "obligations": [{"name": "pir", "fulfilled": {"by": "max", "note": "reviewed"}}, {"name": "x", "fulfilled": null}],
            "execution": {"rollback": {"by": "steward", "reason": "metric degraded"}},
            "override_agreements": [{"by": "mia", "reason": "cannot wait", "at": "2026-11-23T23:20:00Z"}],
            "window_override": {"by": "max", "reason": "losses grow", "agreements": [
                {"by": "rita", "reason": "agreed by a requester?", "at": "2026-11-23T23:20:00Z"},
                {"by": "max", "reason": "losses grow", "at": "2026-11-23T23:30:00Z"}]},
        })
    }

    #[test]
    fn a_change_is_sealed_per_writer_and_opens_back() {
        let k = keys(&[("t:rita", 1), ("t:mia", 2), ("t:max", 3)]);
        let plain = change_doc();
        let mut doc = plain.clone();
        let places = change_text(&mut doc);
        let mut subjects = BTreeSet::new();
        subjects_of("t", &places, &mut subjects);
        assert_eq!(
            subjects.into_iter().collect::<Vec<_>>(),
            ["t:max", "t:mia", "t:rita"]
        );
        seal_places("t", places, &k, None).expect("sealed");
        let text = doc.to_string();
        for secret in [
            "Quokka",
            "line",
            "fine by me",
            "reviewed",
            "\"plan\"",
            "\"back\"",
            "cannot wait",
            "losses grow",
            "agreed by",
        ] {
            assert!(!text.contains(secret), "{secret} in clear: {text}");
        }
        // What is not a person's text stays: categories, links, the system's rollback reason.
        assert!(text.contains("model-deployment") && text.contains("https://ci/1"));
        assert!(text.contains("metric degraded"));
        let mut found = BTreeSet::new();
        subjects_in(&text, &mut found);
        assert_eq!(found.len(), 3);
        let opened: Value = serde_json::from_str(&open_json(&text, &k)).expect("json");
        assert_eq!(opened, plain);

        // Without rita's key her text reads as erased; the others' stays.
        let erased = keys(&[("t:rita", 9), ("t:mia", 2), ("t:max", 3)]);
        let opened: Value = serde_json::from_str(&open_json(&text, &erased)).expect("json");
        assert_eq!(opened["request"]["title"], ERASED);
        assert_eq!(opened["policy_input"]["change"]["title"], ERASED);
        assert_eq!(opened["window_override"]["agreements"][0]["reason"], ERASED);
        assert_eq!(
            opened["window_override"]["agreements"][1]["reason"],
            "losses grow"
        );
        assert_eq!(opened["override_agreements"][0]["reason"], "cannot wait");
        assert_eq!(opened["decisions"][0]["comment"], "owner:mia: fine by me");
        let mut gone = erased.clone();
        gone.insert("t:mia".into(), None);
        let opened: Value = serde_json::from_str(&open_json(&text, &gone)).expect("json");
        assert_eq!(opened["decisions"][0]["comment"], ERASED);
    }

    #[test]
    fn saving_keeps_tokens_of_unchanged_and_of_erased_text() {
        let k = keys(&[("t:rita", 1), ("t:mia", 2), ("t:max", 3)]);
        let mut stored = change_doc();
        seal_places("t", change_text(&mut stored), &k, None).expect("sealed");
        // Unchanged text keeps its token; a new comment is sealed afresh.
        let mut next = change_doc();
        next["decisions"][0]["comment"] = json!("owner:mia: changed my mind");
        seal_places("t", change_text(&mut next), &k, Some(&stored)).expect("sealed");
        assert_eq!(next["request"]["title"], stored["request"]["title"]);
        assert_ne!(
            next["decisions"][0]["comment"],
            stored["decisions"][0]["comment"]
        );
        // Rita was erased after the change was read and a new key made for her since: the
        // plaintext read before is not sealed again under her new key.
        let after = keys(&[("t:rita", 7), ("t:mia", 2), ("t:max", 3)]);
        let mut raced = change_doc();
        seal_places("t", change_text(&mut raced), &after, Some(&stored)).expect("sealed");
        assert_eq!(raced["request"]["title"], stored["request"]["title"]);
        let opened: Value =
            serde_json::from_str(&open_json(&raced.to_string(), &after)).expect("json");
        assert_eq!(opened["request"]["title"], ERASED);
    }

    #[test]
    fn only_real_tokens_are_opened() {
        let k = keys(&[("t:rita", 1)]);
        let token = k.seal("t:rita", "secret").expect("sealed");
        // An escaped quote before the prefix is text inside a string, not a token.
        let text = json!({"a": token, "b": format!("x\"{token}"), "c": "sealed:v1:not a token"})
            .to_string();
        let opened: Value = serde_json::from_str(&open_json(&text, &k)).expect("json");
        assert_eq!(opened["a"], "secret");
        assert_eq!(opened["b"], format!("x\"{token}"));
        assert_eq!(opened["c"], "sealed:v1:not a token");
    }

    #[test]
    fn incidents_seal_comments_reviews_reports_and_quoted_titles() {
        let k = keys(&[("t:rita", 1), ("t:ivan", 2), ("t:olga", 3)]);
        let requesters = Requesters::from([("CHG-1".to_owned(), "rita".to_owned())]);
        let plain = json!({
            "title": "Wombat scores drift",
            "signals": [{"summary": "Wombat scores drift", "labels": {"reported_by": "olga"}},
                        {"summary": "HighErrorRate", "labels": {}}],
            "timeline": [
                {"actor": "steward", "what": "opened by manual signal: Wombat scores drift"},
                {"actor": "steward", "what": "top suspect CHG-1: CHG-1 (Quokka) was implemented"},
                {"actor": "steward", "what": "alertmanager signal joined: HighErrorRate"},
                {"actor": "ivan", "what": "acknowledged → contained: pulled the canary"}],
            "suspects": [{"change": "CHG-1", "title": "Quokka", "reason": "CHG-1 (Quokka) was implemented"}],
            "review": {"by": "ivan", "what_happened": "it went bad", "why": "worse than that", "risk_assessment_missed": "", "actions": ["fix it"]},
        });
        let mut doc = plain.clone();
        seal_places("t", incident_text(&mut doc, &requesters), &k, None).expect("sealed");
        let text = doc.to_string();
        for secret in [
            "Wombat",
            "Quokka",
            // With spaces, so no random nonce or ciphertext can contain them by chance.
            "pulled the canary",
            "went bad",
            "worse than",
            "fix it",
        ] {
            assert!(!text.contains(secret), "{secret} in clear: {text}");
        }
        assert!(text.contains("HighErrorRate"), "alert text stays");
        let opened: Value = serde_json::from_str(&open_json(&text, &k)).expect("json");
        assert_eq!(opened, plain);
    }

    #[test]
    fn attested_free_text_of_a_model_is_sealed_discovered_values_are_not() {
        let k = keys(&[("t:rita", 1)]);
        let mut doc = json!({
            "fields": {"purpose": "score wombats", "owner": "mia", "developers": ["Ann Example"],
                       "framework": "onnx", "regulatory_tags": ["sox"]},
            "provenance": {"purpose": {"by": "attested", "user": "rita"}, "owner": {"by": "attested", "user": "rita"},
                           "developers": {"by": "attested", "user": "rita"}, "regulatory_tags": {"by": "attested", "user": "rita"},
                           "framework": {"by": "discovered", "source": "files"}},
        });
        seal_places("t", model_text(&mut doc), &k, None).expect("sealed");
        let text = doc.to_string();
        assert!(
            !text.contains("wombats") && !text.contains("Ann Example"),
            "{text}"
        );
        assert!(text.contains("\"mia\"") && text.contains("onnx") && text.contains("sox"));
    }
}

//! The audit log viewer, for the compliance officer preparing an audit and the auditor checking
//! one: the events newest first with their leaf index, the latest signed checkpoint, one
//! event's inclusion proof checked on the server and again in the browser (`event`), and the
//! export bundle an auditor verifies offline (`export`).
//!
//! Every read is the API's own: the list is a page of `GET /api/v1/audit/leaves`
//! (`api::audit::leaves_page`, with the same query, filters, cursor and tenant scope; the portal
//! only asks `order=newest` unless told otherwise), the checkpoint is `api::audit::latest`, the
//! proof `api::audit::inclusion_proof`. So a tenant's reader sees here exactly what the API
//! shows it: its own tenant's entries in full, every other entry in its place as a leaf hash
//! only, said to be withheld (never a blank row that could pass for data). The log's leaves
//! hold facts only (who, what, about what, when, the outcome, and the SHA-256 of the payload
//! kept outside the tree); the payload itself, encrypted per person and erasable, is no part of
//! the log's API, so it is not shown here either.

pub(super) mod event;
pub(super) mod export;

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::audit::{LeavesQuery, latest, leaves_page};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::ReadAuditLog;
use crate::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use steward_audit::checkpoint::VerifierKey;
use steward_audit::entry::Entry;
use steward_store::{AuditLeaf, StoredCheckpoint};

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    checkpoint: CheckpointBox,
    /// Whose entries the viewer sees in full.
    view: String,
    filters: FilterValues,
    /// Whether any filter narrows the list (withheld entries are then left out).
    filtered: bool,
    rows: Vec<EventRow>,
    /// The next (older) page's address, when there is one.
    next: Option<String>,
    /// `/audit/export`, for the tenant the list shows when one was asked.
    export_href: String,
}

/// The latest signed checkpoint, as the top of the page shows it.
pub(super) struct CheckpointBox {
    pub size: u64,
    pub root: String,
    pub note: String,
    /// The verifier key, `name+id+base64`, as `GET /api/v1/audit/public-key` gives it.
    pub key: String,
    pub key_name: String,
    pub key_id: String,
    /// The signature checked with that key, as `steward audit verify` checks it.
    pub signature: String,
    pub signature_ok: bool,
    /// When the page read it (server clock, UTC): it covers every event committed then.
    pub read_at: String,
}

impl CheckpointBox {
    pub(super) fn new(
        checkpoint: StoredCheckpoint,
        key: String,
        read_at: chrono::DateTime<chrono::Utc>,
    ) -> CheckpointBox {
        let mut parts = key.splitn(3, '+');
        let key_name = parts.next().unwrap_or_default().to_owned();
        let key_id = parts.next().unwrap_or_default().to_owned();
        let (signature, signature_ok) = match VerifierKey::parse(&key)
            .and_then(|k| k.verify(&checkpoint.note))
        {
            Ok(c) if c.size == checkpoint.size && c.root.to_hex() == checkpoint.root => {
                ("verified with the log's public key".to_owned(), true)
            }
            Ok(c) => (
                format!(
                    "NOT VERIFIED: the signed note is of size {} with root {}, not the checkpoint shown",
                    c.size, c.root
                ),
                false,
            ),
            Err(e) => (format!("NOT VERIFIED: {e}"), false),
        };
        CheckpointBox {
            size: checkpoint.size,
            root: checkpoint.root,
            note: checkpoint.note,
            key,
            key_name,
            key_id,
            signature,
            signature_ok,
            read_at: utc(read_at),
        }
    }
}

/// The filter form's values, as given (empty for "any").
#[derive(Default)]
struct FilterValues {
    actor: String,
    subject: String,
    subject_type: String,
    action: String,
    /// Carried as a hidden field, so filtering keeps the tenant an installation reader asked.
    tenant: String,
}

/// One leaf of the list.
pub(super) struct EventRow {
    pub index: u64,
    pub leaf_hash: String,
    pub shown: Shown,
}

/// What a leaf shows its reader.
pub(super) enum Shown {
    /// An entry the reader may read, parsed.
    Event(Box<EventFacts>),
    /// Another tenant's entry: its leaf hash only.
    Withheld,
    /// Entry bytes that are not a `steward-audit-entry/v1` entry (only tampering or a bug
    /// would make one): shown as such, with the reason.
    Unreadable(String),
}

/// The facts a leaf holds.
pub(super) struct EventFacts {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: String,
    pub tenant: String,
    pub event_id: String,
    pub correlation_id: String,
    pub policy_version: String,
    pub payload_sha256: String,
}

/// A time as the portal shows it: UTC, said so.
pub(super) fn utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A leaf as its reader sees it.
pub(super) fn event_row(leaf: &AuditLeaf) -> EventRow {
    let shown = match &leaf.entry {
        None => Shown::Withheld,
        Some(entry) => match Entry::parse(entry.as_bytes()) {
            Ok(e) => Shown::Event(Box::new(EventFacts {
                time: chrono::DateTime::parse_from_rfc3339(&e.time)
                    .map(|t| utc(t.with_timezone(&chrono::Utc)))
                    .unwrap_or(e.time),
                actor: e.actor,
                action: e.action,
                subject_type: e.subject_type,
                subject_id: e.subject_id,
                outcome: e.outcome,
                tenant: e
                    .tenant
                    .unwrap_or_else(|| "(not named: written before tenants)".into()),
                event_id: e.event_id,
                correlation_id: e.correlation_id.unwrap_or_else(|| "none".into()),
                policy_version: e.policy_version.unwrap_or_else(|| "none".into()),
                payload_sha256: e.payload_sha256.unwrap_or_else(|| "none".into()),
            })),
            Err(e) => Shown::Unreadable(e.to_string()),
        },
    };
    EventRow {
        index: leaf.index,
        leaf_hash: leaf.leaf_hash.clone().unwrap_or_default(),
        shown,
    }
}

/// The audit log, newest first: filter by actor, subject, subject type and action, as
/// `GET /api/v1/audit/leaves` does (same parameters, same parser, same tenant scope); the latest
/// signed checkpoint on top; the export to verify offline below.
#[utoipa::path(get, path = "/audit", tag = "portal", params(LeavesQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page of the audit log"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer's roles do not read the audit log"),
        (status = 422, description = "a filter or the cursor is not valid: the page names it")))]
pub async fn audit_list(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<LeavesQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, list(&state, visitor, query).await)
}

/// An empty value (the form's "any") is no filter.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

async fn list(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged<LeavesQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let permit = viewer.caller.may::<ReadAuditLog>(state)?;
    let Paged {
        page: request,
        filters,
    } = query?;
    let query = LeavesQuery {
        from: filters.from,
        tenant: given(filters.tenant),
        // A person reads the newest first; `order=oldest` in the address still reads forward.
        order: given(filters.order).or_else(|| Some("newest".into())),
        actor: given(filters.actor),
        subject: given(filters.subject),
        subject_type: given(filters.subject_type),
        action: given(filters.action),
    };
    let log = permit.log();
    let checkpoint = latest(state, &permit).await?;
    let page = leaves_page(&log, &query, &request).await?;
    let filtered = query.actor.is_some()
        || query.subject.is_some()
        || query.subject_type.is_some()
        || query.action.is_some();
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (key, value) in [
            ("tenant", &query.tenant),
            ("order", &query.order),
            ("actor", &query.actor),
            ("subject", &query.subject),
            ("subject_type", &query.subject_type),
            ("action", &query.action),
        ] {
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        }
        if let Some(from) = query.from {
            pairs.push(("from", from.to_string()));
        }
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let view = match (log.limited_to(), &query.tenant) {
        (Some(own), _) => format!(
            "You read tenant {own}'s entries in full; every other tenant's entry is withheld: it keeps its place and its leaf hash, so the tree still verifies, but not its contents."
        ),
        (None, Some(asked)) => format!(
            "Tenant {asked}'s view: its entries in full, every other entry withheld (leaf hash only), as its own auditors see the log."
        ),
        (None, None) => {
            "You read every tenant's entries in full (the installation's view).".to_owned()
        }
    };
    let export_href = match &query.tenant {
        Some(tenant) => format!(
            "/audit/export?{}",
            serde_urlencoded::to_string([("tenant", tenant)]).unwrap_or_default()
        ),
        None => "/audit/export".to_owned(),
    };
    let page = AuditPage {
        chrome: chrome(&viewer),
        checkpoint: CheckpointBox::new(
            checkpoint,
            state.checkpointer.verifier_key(),
            state.clock.now(),
        ),
        view,
        filters: FilterValues {
            actor: query.actor.clone().unwrap_or_default(),
            subject: query.subject.clone().unwrap_or_default(),
            subject_type: query.subject_type.clone().unwrap_or_default(),
            action: query.action.clone().unwrap_or_default(),
            tenant: query.tenant.clone().unwrap_or_default(),
        },
        filtered,
        rows: page.items.iter().map(event_row).collect(),
        next,
        export_href,
    };
    render(StatusCode::OK, &page)
}

//! The verifiable audit log over HTTP: the public key, signed checkpoints, inclusion and
//! consistency proofs, and the leaves themselves for export. Admins and auditors only. The log
//! is one tree spanning every tenant: its hashes are everyone's, but a reader outside the
//! installation tenant gets its own tenant's entries in full and the others' as leaf hashes
//! only, and an installation reader may ask for that same view of one tenant (`?tenant=`).

use super::body::QueryParams;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::audit_log;
use crate::auth::{Caller, ErasePersonalData, ManageRetention, Permit, ReadAuditLog};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use steward_core::TenantId;
use steward_store::{AuditLeaf, StoredCheckpoint};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyView {
    /// The verifier key in signed-note form: `name+keyid+base64(0x01 ‖ Ed25519 public key)`.
    pub key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    pub size: u64,
    /// Hex SHA-256 root of the first `size` leaves.
    pub root: String,
    /// The C2SP signed note: origin, size, base64 root, blank line, signature line.
    pub note: String,
}

impl From<StoredCheckpoint> for CheckpointView {
    fn from(c: StoredCheckpoint) -> Self {
        CheckpointView {
            size: c.size,
            root: c.root,
            note: c.note,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeafView {
    pub index: u64,
    /// The leaf's input bytes: `steward-audit-entry/v1\n` + canonical JSON. Absent for an
    /// entry of another tenant than the one the reader sees.
    pub entry: Option<String>,
    /// Hex leaf hash held by the tree.
    pub leaf_hash: Option<String>,
}

impl From<AuditLeaf> for LeafView {
    fn from(l: AuditLeaf) -> Self {
        LeafView {
            index: l.index,
            entry: l.entry,
            leaf_hash: l.leaf_hash,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    /// RFC 9162 §2.1.3 audit path, hex, leaf level first.
    pub proof: Vec<String>,
    /// The signed checkpoint of `size`, when the proof is against the latest checkpoint.
    pub checkpoint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    pub first: u64,
    pub second: u64,
    /// RFC 9162 §2.1.4 consistency proof, hex.
    pub proof: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The leaf index (the event's `seq`).
    pub index: Option<u64>,
    /// Or the event id.
    pub event_id: Option<String>,
    /// The tree size to prove against; the latest checkpoint's when absent.
    pub size: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub first: u64,
    /// The latest checkpoint's size when absent.
    pub second: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeavesQuery {
    /// First leaf index (default 0).
    pub from: Option<u64>,
    /// Show only this tenant's entries in full, the others as leaf hashes (an installation
    /// reader's export for one tenant). A reader of another tenant always gets its own view.
    pub tenant: Option<String>,
}

/// The key that verifies this log's checkpoints.
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit", responses((status = 200, body = PublicKeyView)), security(("token" = [])))]
pub async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PublicKeyView>, ApiError> {
    caller.may::<ReadAuditLog>(&state)?;
    Ok(Json(PublicKeyView {
        key: state.checkpointer.verifier_key(),
    }))
}

async fn latest(
    state: &AppState,
    permit: &Permit<'_, ReadAuditLog>,
) -> Result<StoredCheckpoint, ApiError> {
    state
        .checkpointer
        .checkpoint_now(permit.log().tree())
        .await?
        .ok_or_else(|| ApiError::NotFound("the audit log has no checkpoint yet".into()))
}

/// The latest signed checkpoint, covering every event committed when it was asked for.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", responses((status = 200, body = CheckpointView), (status = 403, body = ErrorBody)), security(("token" = [])))]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckpointView>, ApiError> {
    let permit = caller.may::<ReadAuditLog>(&state)?;
    Ok(Json(latest(&state, &permit).await?.into()))
}

/// Every signed checkpoint, oldest first, a page at a time (the first page is asked after
/// signing one covering every committed event).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", params(PageQuery),
    responses((status = 200, body = Page<CheckpointView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<CheckpointView>>, ApiError> {
    let permit = caller.may::<ReadAuditLog>(&state)?;
    let after: Option<u64> = page.after("checkpoints")?;
    if after.is_none() {
        latest(&state, &permit).await?;
    }
    let rows = permit
        .log()
        .tree()
        .checkpoints_after(after, page.fetch())
        .await?;
    let page = page.page("checkpoints", rows, |c| c.size);
    Ok(Json(page.map(CheckpointView::from)))
}

/// Leaves in index order from `from`, a page at a time, for export and verification. Entries
/// of tenants other than the one the reader sees come as their leaf hashes only.
#[utoipa::path(get, path = "/api/v1/audit/leaves", tag = "audit", params(LeavesQuery, PageQuery),
    responses((status = 200, body = Page<LeafView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn leaves(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<LeavesQuery>,
) -> Result<Json<Page<LeafView>>, ApiError> {
    let permit = caller.may::<ReadAuditLog>(&state)?;
    let log = permit.log();
    let asked = match &query.tenant {
        None => None,
        Some(name) => {
            let unknown = || {
                ApiError::invalid_field(
                    "tenant",
                    format!("no tenant '{name}': see `steward tenant list`"),
                )
            };
            let id = TenantId::parse(name).map_err(|_| unknown())?;
            // Only the installation's reader may name another tenant; it learns nothing new.
            if log.limited_to().is_none() && log.tree().tenant_record(&id).await?.is_none() {
                return Err(unknown());
            }
            Some(id)
        }
    };
    let scope = log.scope(asked.as_ref())?;
    let after: Option<u64> = page.after("leaves")?;
    let from = match after {
        Some(last) => query.from.unwrap_or(0).max(last.saturating_add(1)),
        None => query.from.unwrap_or(0),
    };
    let leaves = log
        .tree()
        .audit_leaves(from, page.fetch() as u64, scope)
        .await?;
    let page = page.page("leaves", leaves, |l| l.index);
    Ok(Json(page.map(LeafView::from)))
}

fn hexes(hashes: &[steward_audit::Hash]) -> Vec<String> {
    hashes.iter().map(|h| h.to_hex()).collect()
}

/// An inclusion proof for one event, by leaf index or event id.
#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery), responses(
    (status = 200, body = InclusionProofView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InclusionQuery>,
) -> Result<Json<InclusionProofView>, ApiError> {
    let permit = caller.may::<ReadAuditLog>(&state)?;
    let log = permit.log();
    let index = match (query.index, &query.event_id) {
        (Some(index), None) => index,
        (None, Some(event_id)) => log
            .tree()
            .audit_index_of(event_id, log.scope(None)?)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no audit event {event_id}")))?,
        _ => {
            return Err(ApiError::invalid_field(
                "index",
                "give exactly one of index and event_id",
            ));
        }
    };
    let (size, note) = match query.size {
        Some(size) => (size, None),
        None => {
            let c = latest(&state, &permit).await?;
            (c.size, Some(c.note))
        }
    };
    if index >= size {
        return Err(ApiError::invalid_field(
            "index",
            format!("must be below the tree size {size}"),
        ));
    }
    // A size beyond the log shows up as nodes the tree does not have; only then is the log's
    // size read, so the common case costs one query for the nodes.
    let (leaf, path) = match audit_log::inclusion_proof(log.tree(), index, size).await {
        Ok(proof) => proof,
        Err(error) => {
            let committed = log.tree().audit_size().await?;
            if size > committed {
                return Err(ApiError::invalid_field(
                    "size",
                    format!("the log has {committed} entries"),
                ));
            }
            return Err(error.into());
        }
    };
    Ok(Json(InclusionProofView {
        index,
        size,
        leaf_hash: leaf.to_hex(),
        proof: hexes(&path),
        checkpoint: note,
    }))
}

/// A consistency proof between two tree sizes.
#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery), responses(
    (status = 200, body = ConsistencyProofView), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofView>, ApiError> {
    let permit = caller.may::<ReadAuditLog>(&state)?;
    let second = match query.second {
        Some(second) => second,
        None => latest(&state, &permit).await?.size,
    };
    let committed = permit.log().tree().audit_size().await?;
    if second > committed {
        return Err(ApiError::invalid_field(
            "second",
            format!("the log has {committed} entries"),
        ));
    }
    if query.first > second {
        return Err(ApiError::invalid_field("first", "must not exceed second"));
    }
    let proof = audit_log::consistency_proof(permit.log().tree(), query.first, second).await?;
    Ok(Json(ConsistencyProofView {
        first: query.first,
        second,
        proof: hexes(&proof),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    /// The legal basis, e.g. "GDPR Art. 17 request #4411"; recorded in the erasure event.
    pub basis: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldInput {
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErasureView {
    pub subject: String,
    /// Payloads that became unreadable.
    pub payloads_erased: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetentionView {
    pub payloads_deleted: u64,
    pub keys_deleted: u64,
}

fn required(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    Ok(text.to_owned())
}

/// Erase a data subject's personal data from the audit trail (admin or compliance officer): the
/// subject's payload key is destroyed; leaves and proofs stay valid. Refused under legal hold,
/// and while the subject appears in records a retention class keeps by law.
#[utoipa::path(post, path = "/api/v1/audit/subjects/{user}/erase", tag = "audit", request_body = EraseInput,
    params(("user" = String, Path, description = "the data subject: a user name in your tenant")),
    responses((status = 200, body = ErasureView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(user): axum::extract::Path<String>,
    super::body::JsonBody(body): super::body::JsonBody<EraseInput>,
) -> Result<Json<ErasureView>, ApiError> {
    let officer = caller.may::<ErasePersonalData>(&state)?;
    let basis = required("basis", &body.basis)?;
    let store = officer.store();
    let subject = format!("{}:{user}", store.tenant_id());
    match store
        .erase_subject(
            officer.principal().name.as_str(),
            &user,
            &basis,
            &state.config.audit_retention,
            state.clock.now(),
        )
        .await?
    {
        steward_store::Erasure::Erased { payloads } => Ok(Json(ErasureView {
            subject,
            payloads_erased: payloads,
        })),
        steward_store::Erasure::UnderLegalHold { reason } => Err(ApiError::Conflict {
            message: format!("{user} is under legal hold ({reason}): lift the hold before erasing"),
            details: serde_json::json!({ "legal_hold": reason }),
        }),
        steward_store::Erasure::RetainedByLaw {
            class,
            basis,
            until,
        } => Err(ApiError::Conflict {
            message: format!(
                "{user} appears in {class} records the law requires keeping until {} ({basis}): erasure is refused until then",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            details: serde_json::json!({ "reason": "retained_by_law", "class": class, "basis": basis, "until": until }),
        }),
        steward_store::Erasure::UnknownSubject => Err(ApiError::NotFound(format!(
            "the audit trail holds no personal data of '{user}'"
        ))),
    }
}

/// Place a legal hold on a data subject: erasure and retention skip them until it is lifted.
#[utoipa::path(put, path = "/api/v1/audit/subjects/{user}/hold", tag = "audit", request_body = HoldInput,
    params(("user" = String, Path, description = "a user name in your tenant")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn hold(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(user): axum::extract::Path<String>,
    super::body::JsonBody(body): super::body::JsonBody<HoldInput>,
) -> Result<axum::http::StatusCode, ApiError> {
    let officer = caller.may::<ErasePersonalData>(&state)?;
    let reason = required("reason", &body.reason)?;
    let held = officer
        .store()
        .set_legal_hold(
            officer.principal().name.as_str(),
            &user,
            Some(&reason),
            state.clock.now(),
        )
        .await?;
    held_or_unknown(held, &user)
}

/// 204 when a hold was placed or lifted; 404 for a subject unknown in the caller's tenant.
fn held_or_unknown(known: bool, user: &str) -> Result<axum::http::StatusCode, ApiError> {
    if known {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no user '{user}' in your tenant, and nothing recorded about them"
        )))
    }
}

/// Lift a legal hold.
#[utoipa::path(delete, path = "/api/v1/audit/subjects/{user}/hold", tag = "audit",
    params(("user" = String, Path, description = "a user name in your tenant")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(user): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let officer = caller.may::<ErasePersonalData>(&state)?;
    let released = officer
        .store()
        .set_legal_hold(
            officer.principal().name.as_str(),
            &user,
            None,
            state.clock.now(),
        )
        .await?;
    held_or_unknown(released, &user)
}

/// Apply payload retention now, over the whole log (installation admins); the server also does
/// it every few hours.
#[utoipa::path(post, path = "/api/v1/audit/retention", tag = "audit", responses((status = 200, body = RetentionView)), security(("token" = [])))]
pub async fn retention(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RetentionView>, ApiError> {
    let permit = caller.may::<ManageRetention>(&state)?;
    let done = permit
        .installation()
        .apply_retention(&state.config.audit_retention, state.clock.now())
        .await?;
    Ok(Json(RetentionView {
        payloads_deleted: done.payloads_deleted,
        keys_deleted: done.keys_deleted,
    }))
}

//! The verifiable audit log over HTTP: the public key, signed checkpoints, inclusion and
//! consistency proofs, and the leaves themselves for export. Admins and auditors only. The log
//! is one tree spanning every tenant: its hashes are everyone's, but a reader outside the
//! installation tenant gets its own tenant's entries in full and the others' as leaf hashes
//! only, and an installation reader may ask for that same view of one tenant (`?tenant=`).

use super::body::QueryParams;
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::audit_log;
use crate::auth::{AuditLog, Caller, ErasePersonalData, ManageRetention, Permit, ReadAuditLog};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use steward_core::TenantId;
use steward_store::{AuditLeaf, LeafFilter, LeafOrder, StoredCheckpoint};
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
    /// First leaf index (default 0); with `order=oldest` only.
    pub from: Option<u64>,
    /// Show only this tenant's entries in full, the others as leaf hashes (an installation
    /// reader's export for one tenant). A reader of another tenant always gets its own view.
    pub tenant: Option<String>,
    /// `oldest` (the default: index order, as an export and the verifier read it) or `newest`
    /// (newest first, as a person reads the log).
    pub order: Option<String>,
    /// Only events by this account (`steward` for the server's own work).
    pub actor: Option<String>,
    /// Only events about the subject with this id: `CHG-3`, `INC-2`, a model's or a user's name.
    pub subject: Option<String>,
    /// Only events about subjects of this type: `change`, `incident`, `model`, `user`, …
    pub subject_type: Option<String>,
    /// Only events of this action, e.g. `change.approved`.
    pub action: Option<String>,
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

/// The latest signed checkpoint, signing one first when events were committed since.
pub(crate) async fn latest(
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

/// Leaves in index order from `from` (or newest first), a page at a time, for export and
/// verification. Entries of tenants other than the one the reader sees come as their leaf
/// hashes only. With a filter (`actor`, `subject`, `subject_type`, `action`) the answer is a
/// search, not an export: only the matching entries the reader sees in full, with gaps between
/// their indexes (a withheld entry is never matched: that would say what it holds).
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
    let page = leaves_page(&permit.log(), &query, &page).await?;
    Ok(Json(page.map(LeafView::from)))
}

/// The tenant an installation reader names with `?tenant=` (a reader of another tenant may name
/// only its own): a 422 for a tenant that does not exist.
pub(crate) async fn asked_tenant(
    log: &AuditLog<'_>,
    name: Option<&str>,
) -> Result<Option<TenantId>, ApiError> {
    let Some(name) = name else {
        return Ok(None);
    };
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
    Ok(Some(id))
}

/// The events a query keeps; an empty value is refused (leave the parameter out for any).
fn leaf_filter(query: &LeavesQuery) -> Result<LeafFilter, ApiError> {
    let given = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_field(
            field,
            "must not be empty: leave it out to keep every value",
        )),
        Some(value) => Ok(Some(value.to_owned())),
    };
    Ok(LeafFilter {
        actor: given("actor", &query.actor)?,
        subject_type: given("subject_type", &query.subject_type)?,
        subject_id: given("subject", &query.subject)?,
        action: given("action", &query.action)?,
    })
}

/// One page of the leaves as `GET /api/v1/audit/leaves` answers it, in the reader's scope (the
/// portal's audit log reads the same pages).
pub(crate) async fn leaves_page(
    log: &AuditLog<'_>,
    query: &LeavesQuery,
    page: &PageRequest,
) -> Result<Page<AuditLeaf>, ApiError> {
    let asked = asked_tenant(log, query.tenant.as_deref()).await?;
    let scope = log.scope(asked.as_ref())?;
    let filter = leaf_filter(query)?;
    let newest = match query.order.as_deref().map(str::trim) {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "order",
                format!("'{other}' is not an order: oldest or newest"),
            ));
        }
    };
    // A cursor belongs to one order: its key is the last index, read in one direction.
    let list = if newest { "leaves-newest" } else { "leaves" };
    let after: Option<u64> = page.after(list)?;
    let order = match (newest, query.from) {
        (true, Some(_)) => {
            return Err(ApiError::invalid_field(
                "from",
                "reads in index order: leave it out with order=newest, or ask order=oldest",
            ));
        }
        (true, None) => LeafOrder::Newest { before: after },
        (false, from) => {
            let from = from.unwrap_or(0);
            LeafOrder::Oldest {
                from: after.map_or(from, |last| from.max(last.saturating_add(1))),
            }
        }
    };
    let leaves = log
        .tree()
        .audit_leaves_where(order, page.fetch() as u64, scope, &filter)
        .await?;
    Ok(page.page(list, leaves, |l| l.index))
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
    Ok(Json(
        inclusion_proof(&state, &permit, index, query.size).await?,
    ))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, or in the latest signed
/// checkpoint's tree (with its note) when `size` is absent: `GET /audit/proofs/inclusion`'s
/// answer, which the portal's event page shows and checks.
pub(crate) async fn inclusion_proof(
    state: &AppState,
    permit: &Permit<'_, ReadAuditLog>,
    index: u64,
    size: Option<u64>,
) -> Result<InclusionProofView, ApiError> {
    let log = permit.log();
    let (size, note) = match size {
        Some(size) => (size, None),
        None => {
            let c = latest(state, permit).await?;
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
    Ok(InclusionProofView {
        index,
        size,
        leaf_hash: leaf.to_hex(),
        proof: hexes(&path),
        checkpoint: note,
    })
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

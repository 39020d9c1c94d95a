//! Each person's notification inbox: what Steward told them (a rollback of their change, an
//! execution that needs them), newest first.

use super::body::QueryParams;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub subject: String,
    pub body: String,
    /// The change it is about, `CHG-<n>`.
    pub change: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(InboxQuery),
    responses((status = 200, body = [NotificationView]), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InboxQuery>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let store = caller.store(&state.store);
    let notices = store
        .notifications(&caller.principal().name, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(
        notices
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                subject: n.subject,
                body: n.body,
                change: n.change,
                created_at: n.created_at,
            })
            .collect(),
    ))
}

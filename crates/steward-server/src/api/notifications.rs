//! Each person's notification inbox: what Steward told them (a rollback of their change, an
//! execution that needs them), newest first.

use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub subject: String,
    pub body: String,
    /// The change it is about, `CHG-<n>`.
    pub change: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The caller's notifications, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(PageQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<NotificationView>>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let before: Option<(DateTime<Utc>, String)> = page.after("notifications")?;
    let notices = store
        .notifications(
            &caller.principal().name,
            before.as_ref().map(|(at, id)| (*at, id.as_str())),
            page.fetch(),
        )
        .await?;
    let page = page.page("notifications", notices, |n| (n.created_at, n.id.clone()));
    Ok(Json(page.map(|n| NotificationView {
        id: n.id,
        subject: n.subject,
        body: n.body,
        change: n.change,
        created_at: n.created_at,
    })))
}

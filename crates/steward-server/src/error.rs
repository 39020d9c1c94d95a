//! API errors: every failure leaves as JSON `{ "error": …, "details": … }` with a fitting status.
//!
//! Two buckets, as in zero-to-production: problems the caller can fix (4xx, with a message that
//! says what to fix) and unexpected ones (500, with the cause logged server-side and a generic
//! message to the caller, so internals and secrets never leak into responses).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use steward_core::change::Refused;
use steward_core::submission::FieldError;
use steward_store::StoreError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// One readable sentence saying what went wrong and, where possible, what to do.
    pub error: String,
    /// Structured detail: the bad fields for a 422, the current state for a 409.
    #[schema(value_type = Object)]
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The caller's roles do not hold the permission the operation needs.
    #[error("{}", not_permitted_message(permission, roles, *people_only, *installation_only))]
    NotPermitted {
        permission: &'static str,
        roles: &'static [steward_core::Role],
        people_only: bool,
        /// Held only by accounts of the installation tenant (`default`).
        installation_only: bool,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, details: Value },
    /// The policy set denies the request; details carry the decision receipt.
    #[error("{message}")]
    PolicyDenied { message: String, details: Value },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    /// A system Steward called on the caller's behalf failed.
    #[error("{0}")]
    BadGateway(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn not_permitted_message(
    permission: &str,
    roles: &[steward_core::Role],
    people_only: bool,
    installation_only: bool,
) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let service = if people_only {
        " (service accounts never hold it)"
    } else {
        ""
    };
    if installation_only {
        return format!(
            "this needs the permission {permission}, which the role {} holds in the installation tenant (default) only{service}: ask an installation admin",
            names.join(" or ")
        );
    }
    format!(
        "this needs the permission {permission}, which the role {} holds{service}: ask an admin for one of them (a person acting for a service account uses their own account)",
        names.join(" or ")
    )
}

impl ApiError {
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<steward_core::incident::IncidentRefused> for ApiError {
    fn from(refused: steward_core::incident::IncidentRefused) -> ApiError {
        use steward_core::incident::IncidentRefused;
        match refused {
            IncidentRefused::IllegalState { current, .. } => ApiError::Conflict {
                message: refused.to_string(),
                details: serde_json::json!({ "current_state": current }),
            },
            IncidentRefused::Forbidden(reason) => ApiError::Forbidden(reason),
            IncidentRefused::Unmet(reason) => ApiError::Conflict {
                message: reason,
                details: Value::Null,
            },
            IncidentRefused::Invalid(reason) => ApiError::invalid_field("(body)", reason),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Duplicate(what) => ApiError::Conflict {
                message: format!("{what} already exists"),
                details: Value::Null,
            },
            StoreError::Refused(message) => ApiError::Conflict {
                message,
                details: Value::Null,
            },
            StoreError::Conflict => ApiError::Conflict {
                message: "the record was changed by someone else at the same moment: read it again and retry".into(),
                details: Value::Null,
            },
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::Invalid(fields) => ApiError::Invalid(fields),
            Refused::IllegalTransition { current, .. } => ApiError::Conflict {
                message: refused.to_string(),
                details: json!({ "current_state": current }),
            },
            Refused::Decision(reason) => ApiError::Forbidden(reason.to_string()),
            Refused::Segregation(reason) => ApiError::Forbidden(reason),
            Refused::PolicyDenied(ref receipt) => ApiError::PolicyDenied {
                message: refused.to_string(),
                details: json!({ "policy": receipt }),
            },
            Refused::Unmet(message) => ApiError::Conflict {
                message,
                details: Value::Null,
            },
            Refused::Frozen(message) => ApiError::Conflict {
                message,
                details: json!({ "reason": "freeze" }),
            },
            Refused::Conflict {
                message,
                unacknowledged,
            } => ApiError::Conflict {
                message,
                details: json!({ "reason": "conflict", "unacknowledged": unacknowledged }),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, details) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, Value::Null),
            ApiError::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "fields": fields }),
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, Value::Null),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, Value::Null),
            ApiError::NotPermitted {
                permission,
                roles,
                installation_only,
                ..
            } => (
                StatusCode::FORBIDDEN,
                json!({ "permission": permission, "roles": roles,
                        "installation_only": installation_only }),
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, Value::Null),
            ApiError::Conflict { details, .. } => (StatusCode::CONFLICT, details.clone()),
            ApiError::PolicyDenied { details, .. } => (StatusCode::FORBIDDEN, details.clone()),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, Value::Null),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, Value::Null),
            ApiError::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "request failed unexpectedly");
                (StatusCode::INTERNAL_SERVER_ERROR, Value::Null)
            }
        };
        let error = match &self {
            ApiError::Internal(_) => "internal error: the server logged the cause".to_owned(),
            ApiError::Invalid(fields) => format!(
                "the request has {} invalid field{}: {}",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" },
                fields
                    .iter()
                    .map(|f| f.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        };
        (status, Json(ErrorBody { error, details })).into_response()
    }
}

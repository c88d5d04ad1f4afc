//! The API server's error type and its one mapping to a Kubernetes `Status` on the wire.
//!
//! Every handler returns `Result<_, ApiError>`; `IntoResponse for ApiError` is the only place
//! where an error becomes an HTTP answer, with upstream's reasons and wording.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One field-level problem, as in `details.causes` of a 422 Invalid Status.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn required(field: &str) -> Self {
        Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: field.into(),
        }
    }
    pub fn invalid(field: &str, value: &str, why: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: \"{value}\": {why}"),
            field: field.into(),
        }
    }
    pub fn forbidden(field: &str, why: &str) -> Self {
        Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {why}"),
            field: field.into(),
        }
    }
    pub fn unsupported(field: &str, value: &str, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
            field: field.into(),
        }
    }
}

/// What kind of object an error is about: `deployments.apps`, name `web`.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// Resource plural, e.g. `deployments`.
    pub resource: String,
    /// API group, empty for core.
    pub group: String,
    pub name: String,
}

impl Subject {
    pub fn new(resource: &str, group: &str, name: &str) -> Self {
        Subject {
            resource: resource.into(),
            group: group.into(),
            name: name.into(),
        }
    }
    /// `pods` or `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified(), .0.name, .1)]
    Conflict(Subject, String),
    #[error("{} \"{}\" is invalid: {}", .kind, .name, causes_text(.causes))]
    Invalid {
        kind: String,
        group: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("the server could not find the requested resource")]
    UnknownPath,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Expired(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// Denied by authorization or admission: `pods "x" is forbidden: <why>`.
    #[error("{}{} is forbidden: {}", .0.qualified(), if .0.name.is_empty() { String::new() } else { format!(" \"{}\"", .0.name) }, .1)]
    ForbiddenFor(Subject, String),
    #[error("{0}")]
    Gone(String),
    /// An Apply conflict: message plus per-field causes.
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Cause> },
    #[error("{0}")]
    NamespaceTerminating(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    ServiceUnavailable(String),
}

fn causes_text(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownPath => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists(_)
            | ApiError::Conflict(..)
            | ApiError::ApplyConflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Expired(_) | ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::ForbiddenFor(..)
            | ApiError::NamespaceTerminating(_) => StatusCode::FORBIDDEN,
            ApiError::Storage(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownPath => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(..) | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::Expired(_) => "Expired",
            ApiError::Gone(_) => "Gone",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_)
            | ApiError::ForbiddenFor(..)
            | ApiError::NamespaceTerminating(_) => "Forbidden",
            ApiError::Storage(_) | ApiError::Internal(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut st = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound(s)
            | ApiError::AlreadyExists(s)
            | ApiError::Conflict(s, _)
            | ApiError::ForbiddenFor(s, _) => {
                Some(json!({"name": s.name, "group": s.group, "kind": s.resource}))
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            } => Some(
                json!({"name": name, "group": group, "kind": kind, "causes": causes_json(causes)}),
            ),
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes_json(causes)})),
            _ => None,
        };
        if let Some(d) = details {
            st["details"] = d;
        }
        st
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Storage(_) | ApiError::Internal(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let body = self.status().to_string();
        (
            self.code(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

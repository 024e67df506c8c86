//! RFC 9457 problem details: every error of the HTTP surface, with a stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` style relative names here).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation for this occurrence.
    pub detail: String,
    /// Stable machine-readable code, e.g. `STATION_OFFLINE`.
    pub code: String,
    /// Extra data (field errors, the station's CALLERROR, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
    /// Extra response headers (not serialised).
    #[serde(skip)]
    #[schema(ignore)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with a status, a code and a detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("/problems/{}", code.to_ascii_lowercase().replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: None,
            headers: Vec::new(),
        }
    }

    /// Adds structured details.
    pub fn with_errors(mut self, errors: Value) -> Problem {
        self.errors = Some(errors);
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Problem {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// 400 with a field-level validation message.
    pub fn validation(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", detail)
    }

    /// 400 listing each invalid field (`errors: [{field, code, message}]`).
    pub fn invalid(errors: Vec<FieldError>) -> Problem {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Problem::validation(detail).with_errors(serde_json::to_value(errors).unwrap_or_default())
    }

    /// 400 for one invalid field.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Problem {
        Problem::invalid(vec![FieldError::new(field, code, message)])
    }

    /// 403 for a role or scope that may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// 403 with a specific code (e.g. `ACCOUNT_INACTIVE`).
    pub fn forbidden_code(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 409 for a policy or state conflict with its code.
    pub fn conflict(code: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, code, detail)
    }

    /// 404 for a missing resource.
    pub fn not_found(what: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} not found"))
    }

    /// 500 without leaking internals (the cause is logged).
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %cause, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an internal error occurred",
        )
    }
}

/// A full password pool: 503 with `Retry-After`, code `PASSWORD_CHECKS_BUSY`. Nothing was
/// checked, so a client may simply retry.
impl From<crate::password::Busy> for Problem {
    fn from(_: crate::password::Busy) -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PASSWORD_CHECKS_BUSY",
            "too many password checks are in progress; retry shortly",
        )
        .with_header(header::RETRY_AFTER, "1")
    }
}

impl From<crate::password::HashError> for Problem {
    fn from(e: crate::password::HashError) -> Problem {
        match e {
            crate::password::HashError::Busy(busy) => busy.into(),
            other => Problem::internal(other),
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's JSON path, e.g. `phone` or `schedule.weekly[2].open`.
    pub field: String,
    /// Stable code, e.g. `required`, `invalid_format`, `out_of_range`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<crate::db::StoreError> for Problem {
    fn from(e: crate::db::StoreError) -> Problem {
        use crate::db::StoreError as E;
        match e {
            E::Conflict => Problem::new(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                "a resource with this id already exists",
            ),
            E::NotFound => Problem::not_found("resource"),
            E::Database(e) => Problem::internal(e),
        }
    }
}

/// The `code` of a problem response, as a response extension (for metrics and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemCode(pub String);

/// A database failure the caller did not map is an opaque 500 (logged, never shown); map
/// constraint violations first (see [`crate::db::StoreError::from_sqlx`]).
impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        Problem::internal(e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response.extensions_mut().insert(ProblemCode(self.code));
        response
    }
}

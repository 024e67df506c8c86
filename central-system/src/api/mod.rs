//! The operator REST API under `/api/v1`: JSON with camelCase fields, RFC 9457 problems with a
//! stable `code`, cursor pagination, bearer JWTs with a role claim.
//!
//! Roles: `admin` may do everything; `operator` may read everything and send commands, but not
//! change registrations or id tokens.

pub mod auth;
pub mod commands;
pub mod health;
pub mod id_tokens;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod stations;
pub mod transactions;

use crate::app::AppState;
use axum::http::StatusCode;
use axum::Router;
use problem::Problem;

/// Routes of `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(stations::router())
        .merge(id_tokens::router())
        .merge(transactions::router())
        .merge(commands::router())
        .merge(openapi::router())
}

/// 404 for any unknown path, as a problem.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

/// A JSON request body whose errors become 400 problems naming the field.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::validation(format!("could not read the body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Problem::validation(format!("invalid request body: {e}")))
    }
}

/// Query parameters whose errors become 400 problems (axum's own `Query` answers in plain text).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| Problem::validation(format!("invalid query string: {}", e.body_text())))
    }
}

/// 405 for a known path with another method, as a problem.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not accept that method",
    )
}

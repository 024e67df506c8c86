//! The operator REST API under `/api/v1`: JSON with camelCase fields, RFC 9457 problems with a
//! stable `code`, cursor pagination, bearer JWTs with a role claim.
//!
//! Roles: `admin` may do everything; `operator` may read everything and send commands, but not
//! change registrations or id tokens.

pub mod auth;
pub mod certificates;
pub mod charging_needs;
pub mod commands;
pub mod credentials;
pub mod health;
pub mod id_tokens;
pub mod openapi;
pub use service_kit::{page, problem};
pub mod stations;
pub mod transactions;

use crate::app::AppState;
use axum::Router;

/// Routes of `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(stations::router())
        .merge(id_tokens::router())
        .merge(transactions::router())
        .merge(commands::router())
        .merge(credentials::router())
        .merge(certificates::router())
        .merge(charging_needs::router())
        .merge(openapi::router())
        .merge(service_kit::api_docs::router(
            "EVCS central system operator API",
            "/api/v1",
        ))
}

pub use service_kit::extract::{method_not_allowed, not_found, ApiJson, ApiQuery};

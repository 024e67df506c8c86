//! The HTTP surface under `/api/v1`: JSON with camelCase fields, RFC 9457 problems with a stable
//! `code`, cursor pagination, bearer JWTs with role and station-scope claims; plus `/health`,
//! `/ready`, `/metrics` and the OpenAPI document. Every request gets an `X-Request-Id`.

pub mod auth;
pub mod openapi;

use crate::app::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use service_kit::extract::{method_not_allowed, not_found};

/// Every route.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(crate::accounts::router())
        .merge(crate::vehicles::router())
        .merge(crate::stations::router())
        .merge(crate::slots::router())
        .merge(crate::bookings::router())
        .merge(crate::audit::router())
        .merge(crate::notifications::router())
        .merge(openapi::router());
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::render))
        .nest("/api/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Route layers see the matched path; the request id wraps the metrics so their logs
        // carry it.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::observe,
        ))
        .route_layer(axum::middleware::from_fn(service_kit::request_id::layer))
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    service_kit::health::ready(&state.db).await
}

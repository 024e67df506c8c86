//! The HTTP surface under `/api/v1`: JSON with camelCase fields, RFC 9457 problems with a stable
//! `code`, cursor pagination, bearer JWTs with role and station-scope claims; plus `/health`,
//! `/ready`, `/metrics` (on its own listener with `--metrics-listen`), the OpenAPI document and
//! its reference page. Request bodies are capped at `--max-body-bytes` (413 problem). Every request gets an `X-Request-Id`.

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
        .merge(crate::chargers::router())
        .merge(crate::slots::router())
        .merge(crate::bookings::router())
        .merge(crate::sessions::router())
        .merge(crate::billing::http::router())
        .merge(crate::billing::invoices::http::router())
        .merge(crate::live::socket::router())
        .merge(crate::checkin::router())
        .merge(crate::audit::router())
        .merge(crate::notifications::router())
        .merge(crate::alerts::http::router())
        .merge(crate::inbox::router())
        .merge(crate::reports::router())
        .merge(crate::recommendations::router())
        .merge(crate::maintenance::router())
        .merge(openapi::router());
    let mut router = Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready));
    if state.config.metrics_listen.is_none() {
        router = router.merge(metrics_router());
    }
    router
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
        .layer(service_kit::extract::body_limit(state.config.max_body_bytes))
        .with_state(state)
}

/// `/metrics`: on the public listener, or alone on `--metrics-listen`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(crate::metrics::render))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    service_kit::health::ready(&state.db).await
}

//! `/health` (the process runs), `/ready` (storage answers) and `/metrics` (Prometheus; served
//! on its own listener instead when `--metrics-listen` is set, so it need not be public).

use crate::app::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Health and readiness routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
}

/// `/metrics`: on the public listener, or alone on `--metrics-listen`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    service_kit::health::ready(state.store.db()).await
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.metrics.render();
    // OpenMetrics: `# EOF` must end the exposition, so the writer's counters go before it.
    if body.ends_with("# EOF\n") {
        body.truncate(body.len() - "# EOF\n".len());
    }
    let stats = state.writer.stats();
    use std::sync::atomic::Ordering::Relaxed;
    let counters = [
        (
            "meter_rows_written",
            "Sampled instants (meter rows) committed by the batch writer.",
            &stats.meter_rows_written,
        ),
        (
            "frames_dropped",
            "Frame-log rows dropped over the per-interval quota.",
            &stats.frames_dropped,
        ),
        (
            "failed_batches",
            "Batches whose commit failed after all retries (their chargers got InternalError).",
            &stats.failed_batches,
        ),
        (
            "meter_batches_committed",
            "Batches of readings committed (group commits; rows written / batches = batch size).",
            &stats.batches_committed,
        ),
        (
            "outbox_events_published",
            "Outbox events the bus acknowledged (at least once: a retry may repeat one).",
            &state.outbox_stats.published,
        ),
        (
            "outbox_publish_failures",
            "Failed publishes of outbox events (each is retried with backoff).",
            &state.outbox_stats.failures,
        ),
    ];
    for (name, help, value) in counters {
        body.push_str(&format!(
            "# HELP ocpp_{name} {help}\n# TYPE ocpp_{name} counter\nocpp_{name}_total {}\n",
            value.load(Relaxed)
        ));
    }
    body.push_str("# EOF\n");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

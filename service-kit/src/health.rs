//! The readiness answer both services give at `/ready`.

use crate::db::Db;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// 200 `{"status": "ready", "database": backend}` when the database answers, else 503.
pub async fn ready(db: &Db) -> (StatusCode, Json<Value>) {
    match db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": db.backend() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": db.backend() })),
            )
        }
    }
}

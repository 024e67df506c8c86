//! Audit trail: every state change is recorded (entity, action, actor, role, payload, time) in
//! the transaction of the change, and admins search it by filters.

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::db::{on_db, on_tx, Tx};
use service_kit::extract::ApiQuery;
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// [`record`] in a transaction of its own, for what happened outside one (a charger's answer
/// to a command). A failure is logged, not returned: the act it records already happened.
pub async fn record_alone(
    state: &crate::app::AppState,
    entity_type: &str,
    entity_id: &str,
    action: &str,
    actor: Option<&Caller>,
    payload: &serde_json::Value,
) {
    let now = state.clock.now_ms();
    let recorded = async {
        let mut tx = state.db.begin().await?;
        record(&mut tx, entity_type, entity_id, action, actor, payload, now).await?;
        tx.commit().await
    };
    if let Err(e) = recorded.await {
        tracing::warn!(entity_type, entity_id, action, error = %e, "auditing failed");
    }
}

/// Records one event inside `tx`.
pub async fn record(
    tx: &mut Tx,
    entity_type: &str,
    entity_id: &str,
    action: &str,
    actor: Option<&Caller>,
    payload: &serde_json::Value,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    let payload = payload.to_string();
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO audit_events (entity_type, entity_id, action, actor_id, actor_role, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entity_type)
        .bind(entity_id)
        .bind(action)
        .bind(actor.map(|a| a.id))
        .bind(actor.map(|a| a.role.as_str()))
        .bind(&payload)
        .bind(at_ms)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// One recorded event.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Event id (increasing).
    pub id: i64,
    /// `account`, `station`, `booking`, ...
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// What happened, e.g. `booking.approved`.
    pub action: String,
    /// Who did it (null for the system's own workers).
    pub actor_id: Option<i64>,
    /// The actor's role.
    pub actor_role: Option<String>,
    /// Details as JSON text.
    #[serde(skip)]
    pub payload: String,
    /// When.
    pub created_at: Ts,
}

/// An event as served, its payload as JSON.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventView {
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Details.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// Filters of `GET /audit-events`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    entity_type: Option<String>,
    entity_id: Option<String>,
    action: Option<String>,
    actor_id: Option<i64>,
    actor_role: Option<String>,
    /// Events at or after (RFC 3339).
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Events before (RFC 3339).
    to: Option<chrono::DateTime<chrono::Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Audit routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/audit-events", get(search))
}

/// `GET /audit-events` (admin): newest first, filtered, cursor paged.
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>, Problem> {
    caller.require(&[Role::Admin])?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let before = page.int_key()?;
    let rows: Vec<AuditEvent> = on_db!(&state.db, |pool| {
        sqlx::query_as(
            "SELECT id, entity_type, entity_id, action, actor_id, actor_role, payload, created_at FROM audit_events \
             WHERE ($1 IS NULL OR entity_type = $1) AND ($2 IS NULL OR entity_id = $2) AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR actor_id = $4) AND ($5 IS NULL OR actor_role = $5) AND ($6 IS NULL OR created_at >= $6) \
             AND ($7 IS NULL OR created_at < $7) AND ($8 IS NULL OR id < $8) ORDER BY id DESC LIMIT $9",
        )
        .bind(&q.entity_type)
        .bind(&q.entity_id)
        .bind(&q.action)
        .bind(q.actor_id)
        .bind(&q.actor_role)
        .bind(q.from.map(|t| t.timestamp_millis()))
        .bind(q.to.map(|t| t.timestamp_millis()))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?;
    let items = rows
        .into_iter()
        .map(|event| AuditEventView {
            payload: serde_json::from_str(&event.payload).unwrap_or_default(),
            event,
        })
        .collect();
    Ok(Json(Page::new(items, limit, |e| e.event.id.to_string())))
}

//! Alert endpoints: list and read the alerts of the caller's stations, acknowledge and resolve
//! them. Admins, BackOffices (their stations) and operators (their assigned stations); owners
//! get 403.

use super::{Alert, Status, Step, StepError, SELECT};
use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use service_kit::db::on_db;
use service_kit::extract::{parse_json, ApiBody, ApiPath, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// Alert routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}", get(detail))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
        .route("/alerts/{id}/resolve", post(resolve))
}

impl From<StepError> for Problem {
    fn from(e: StepError) -> Problem {
        match e {
            StepError::NotFound => Problem::not_found("alert"),
            StepError::OutOfScope => Problem::forbidden("this alert is of a station you do not handle"),
            StepError::AlreadyAcknowledged => Problem::conflict(
                "ALERT_ALREADY_ACKNOWLEDGED",
                "the alert is already acknowledged; resolve it when done",
            ),
            StepError::Resolved => Problem::conflict("ALERT_RESOLVED", "the alert is resolved"),
            StepError::Store(e) => e.into(),
        }
    }
}

const STAFF: &[Role] = &[Role::Admin, Role::BackOffice, Role::Operator];

/// Query of `GET /alerts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    station_id: Option<i64>,
    /// `Open`, `Acknowledged` or `Resolved`.
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /alerts?stationId=&status=` (admin: all; BackOffice: its stations; operator: assigned
/// stations; owners 403): newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Alert>>, Problem> {
    caller.require(STAFF)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| Problem::invalid_field("status", "unknown_value", "Open, Acknowledged or Resolved"))?,
        ),
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let before = page.int_key()?;
    let sql = format!(
        "{SELECT} WHERE \
         ($1 = 'admin' \
          OR ($1 = 'operator' AND station_id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2)) \
          OR ($1 = 'backoffice' AND station_id IN (SELECT id FROM stations WHERE backoffice_id = $2))) \
         AND ($3 IS NULL OR station_id = $3) AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6"
    );
    let rows: Vec<Alert> = on_db!(&state.db, |pool| {
        sqlx::query_as(&sql)
            .bind(caller.role.as_str())
            .bind(caller.id)
            .bind(q.station_id)
            .bind(status.map(Status::as_str))
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(Json(Page::new(rows, limit, |a| a.id.to_string())))
}

/// `GET /alerts/{id}`.
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Alert>, Problem> {
    caller.require(STAFF)?;
    Ok(Json(super::visible(&state.db, &caller, id).await?))
}

/// `POST /alerts/{id}/acknowledge`: someone is on it (409 ALERT_ALREADY_ACKNOWLEDGED,
/// ALERT_RESOLVED).
async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Alert>, Problem> {
    caller.require(STAFF)?;
    Ok(Json(super::take(&state, &caller, id, Step::Acknowledge, None).await?))
}

/// Body of `POST /alerts/{id}/resolve`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveRequest {
    /// What was done (at most 1,000 characters).
    pub note: Option<String>,
}

/// `POST /alerts/{id}/resolve`, the body `{"note": ...}` optional (409 ALERT_RESOLVED).
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiBody(body): ApiBody,
) -> Result<Json<Alert>, Problem> {
    caller.require(STAFF)?;
    // The body is optional: an empty one resolves without a note.
    let req: ResolveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveRequest::default()
    } else {
        parse_json(&body)?
    };
    let note = req.note.map(|n| n.trim().to_string());
    if note.as_ref().is_some_and(|n| n.chars().count() > 1_000) {
        return Err(Problem::invalid_field("note", "too_long", "at most 1000 characters"));
    }
    let note = note.filter(|n| !n.is_empty());
    Ok(Json(
        super::take(&state, &caller, id, Step::Resolve, note.as_deref()).await?,
    ))
}

//! Operator alerts: a charger refused a booking's reservation or could not be reached. Raised
//! once per booking and cause (a retried failure does not raise it again), listed by
//! `GET /alerts` to the staff of the station.

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

/// The charger answered ReserveNow with a refusal (Occupied, Faulted, Unavailable, Rejected) or
/// an error.
pub const RESERVATION_REFUSED: &str = "RESERVATION_REFUSED";
/// The charger was offline or did not answer ReserveNow (retried until the slot ends).
pub const RESERVATION_UNREACHABLE: &str = "RESERVATION_UNREACHABLE";
/// The central system refused the booking's id token.
pub const TOKEN_REFUSED: &str = "TOKEN_REFUSED";

/// An alert.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: i64,
    pub station_id: i64,
    pub booking_id: Option<i64>,
    /// `RESERVATION_REFUSED`, `RESERVATION_UNREACHABLE` or `TOKEN_REFUSED`.
    pub code: String,
    pub message: String,
    pub created_at: Ts,
}

/// Raises an alert inside `tx`; false (nothing written) when this booking already has one
/// with this code.
pub async fn raise(
    tx: &mut Tx,
    station_id: i64,
    booking_id: i64,
    code: &str,
    message: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO alerts (station_id, booking_id, code, message, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (booking_id, code) DO NOTHING",
        )
        .bind(station_id)
        .bind(booking_id)
        .bind(code)
        .bind(message)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Alert routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/alerts", get(list))
}

/// Query of `GET /alerts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    station_id: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /alerts?stationId=` (admin: all; BackOffice: its stations; operator: assigned
/// stations; owners 403): newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Alert>>, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Operator])?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let before = page.int_key()?;
    let rows: Vec<Alert> = on_db!(&state.db, |pool| {
        sqlx::query_as(
            "SELECT id, station_id, booking_id, code, message, created_at FROM alerts WHERE \
             ($1 = 'admin' \
              OR ($1 = 'operator' AND station_id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2)) \
              OR ($1 = 'backoffice' AND station_id IN (SELECT id FROM stations WHERE backoffice_id = $2))) \
             AND ($3 IS NULL OR station_id = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
        )
        .bind(caller.role.as_str())
        .bind(caller.id)
        .bind(q.station_id)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?;
    Ok(Json(Page::new(rows, limit, |a| a.id.to_string())))
}

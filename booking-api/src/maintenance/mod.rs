//! Maintenance windows (issue 13, staff and maintenance): a station, or one connector of it, out
//! of service for a while.
//!
//! - **Inventory.** A window takes the units it blocks from every slot it overlaps (all of a
//!   station's, one connector's), in the slots' own `capacity` ([`store::recompute_capacity`]),
//!   so the conditional UPDATE that books a slot refuses them and slot lists stop offering them;
//!   a booking refused there gets `SLOT_IN_MAINTENANCE` instead of `SLOT_FULL`.
//! - **Bookings in the way.** Creating a window over Pending or Approved bookings it leaves no
//!   room for is refused (`MAINTENANCE_CONFLICTS_BOOKINGS`, listing them) unless the request
//!   says `moveBookings`: each then moves to the next slot of the station with room, or is
//!   cancelled when there is none ([`moves`]); a booking that only held the window's connector
//!   keeps its slot and gets another connector. Owners are notified, all in the window's
//!   transaction.
//! - **Charger.** At the start the charger's connector (or the whole station: connector 0 in
//!   1.6, no EVSE in 2.0.1) is set Inoperative with `ChangeAvailability`, at the end Operative,
//!   by the charger rounds ([`charger`]), retried until the charger accepts.
//! - **Ending.** `DELETE` before the start cancels the window (its slots are offered again);
//!   while it runs, ends it now (Operative goes out at the next round, which it wakes).

pub mod charger;
pub mod moves;
pub mod store;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::audit;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::extract::{ApiJson, ApiPath, ApiQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use store::WindowRow;
use utoipa::ToSchema;

/// Maintenance routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations/{id}/maintenance-windows", get(list).post(create))
        .route("/maintenance-windows/{id}", get(detail).delete(end))
}

/// A window may start at most this long before the request (clock skew of the caller).
const START_TOLERANCE_MS: i64 = 60_000;

/// The longest window: a longer outage is a station deactivation.
const MAX_DAYS: i64 = 31;

/// Body of `POST /stations/{id}/maintenance-windows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWindow {
    /// One connector of the station (its `connectorId`); absent: the whole station.
    pub connector_id: Option<i64>,
    /// Start (RFC 3339); not in the past.
    pub starts_at: DateTime<Utc>,
    /// End (RFC 3339), after the start, at most 31 days later.
    pub ends_at: DateTime<Utc>,
    /// Why, for staff and for the owners whose bookings move (1-500 characters).
    pub reason: String,
    /// Move the Pending and Approved bookings in the way to the next free slot of the station
    /// (or cancel them when there is none) instead of refusing with
    /// `MAINTENANCE_CONFLICTS_BOOKINGS`.
    #[serde(default)]
    pub move_bookings: bool,
}

/// A maintenance window as served.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub id: i64,
    pub station_id: i64,
    /// The connector out of service; absent: the whole station.
    pub connector_id: Option<i64>,
    pub starts_at: Ts,
    /// The end (the moment it was ended, when ended early).
    pub ends_at: Ts,
    pub reason: String,
    /// `Scheduled`, `Active`, `Ended` or `Cancelled`, at the time of the request.
    pub status: String,
    pub created_by: Option<i64>,
    pub created_at: Ts,
    pub cancelled_at: Option<Ts>,
    pub ended_early_at: Option<Ts>,
    /// When the charger accepted Inoperative (ChangeAvailability at the start).
    pub inoperative_applied_at: Option<Ts>,
    /// When the charger accepted Operative (at the end).
    pub operative_applied_at: Option<Ts>,
    /// Commands sent to the charger for this window so far.
    pub charger_attempts: i64,
    /// Why the last command did not take (e.g. `station offline`); cleared once one does.
    pub charger_error: Option<String>,
}

impl MaintenanceWindow {
    fn of(row: WindowRow, now: i64) -> MaintenanceWindow {
        MaintenanceWindow {
            status: status(&row, now).into(),
            id: row.id,
            station_id: row.station_id,
            connector_id: row.connector_id,
            starts_at: Ts(row.starts_at),
            ends_at: Ts(row.ends_at),
            reason: row.reason,
            created_by: row.created_by,
            created_at: Ts(row.created_at),
            cancelled_at: row.cancelled_at.map(Ts),
            ended_early_at: row.ended_early_at.map(Ts),
            inoperative_applied_at: row.inoperative_applied_at.map(Ts),
            operative_applied_at: row.operative_applied_at.map(Ts),
            charger_attempts: row.attempts,
            charger_error: row.last_error,
        }
    }
}

/// A window's status at `now`.
pub fn status(row: &WindowRow, now: i64) -> &'static str {
    if row.cancelled_at.is_some() {
        "Cancelled"
    } else if now < row.starts_at {
        "Scheduled"
    } else if now < row.ends_at {
        "Active"
    } else {
        "Ended"
    }
}

/// The answer to a created window: the window and what happened to the bookings in its way.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWindow {
    #[serde(flatten)]
    pub window: MaintenanceWindow,
    /// Bookings moved, given another connector or cancelled (with `moveBookings`).
    pub affected_bookings: Vec<moves::Affected>,
}

/// The station if `caller` is its staff: admins, its BackOffice, its operators (owners and
/// other stations' staff 403).
async fn staff_station(
    state: &AppState,
    caller: &Caller,
    station_id: i64,
) -> Result<crate::stations::store::StationRow, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Operator])?;
    crate::stations::visible(state, caller, station_id).await
}

/// Checks a request's fields: 400 with each invalid field.
fn check(req: &CreateWindow, now: i64) -> Result<(i64, i64, String), Problem> {
    let mut fields = crate::validate::Fields::new();
    let starts_at = req.starts_at.timestamp_millis();
    let ends_at = req.ends_at.timestamp_millis();
    if starts_at < now.saturating_sub(START_TOLERANCE_MS) {
        fields.push("startsAt", "in_past", "the window cannot start in the past");
    }
    if ends_at <= starts_at {
        fields.push("endsAt", "before_start", "endsAt is after startsAt");
    } else if ends_at - starts_at > MAX_DAYS * 86_400_000 {
        fields.push("endsAt", "too_long", "a window lasts at most 31 days");
    }
    let reason = fields.check("reason", crate::validate::text(&req.reason, 500));
    if let Some(c) = req.connector_id {
        if c < 1 {
            fields.push("connectorId", "out_of_range", "connectorId is 1 or more");
        }
    }
    fields.finish()?;
    Ok((starts_at.max(now), ends_at, reason.unwrap_or_default()))
}

/// `POST /stations/{id}/maintenance-windows` (admin; the station's BackOffice and operators).
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<i64>,
    ApiJson(req): ApiJson<CreateWindow>,
) -> Result<Response, Problem> {
    let station = staff_station(&state, &caller, station_id).await?;
    let now = state.clock.now_ms();
    let (starts_at, ends_at, reason) = check(&req, now)?;
    if let Some(c) = req.connector_id {
        let connectors = crate::stations::store::connectors(&state.db, station.id).await?;
        if !connectors.iter().any(|k| k.connector_id == c) {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNKNOWN_CONNECTOR",
                format!("the station has no connector {c}"),
            ));
        }
    }
    let mut tx = state.db.begin().await?;
    store::lock_station(&mut tx, station.id).await?;
    let overlapping = store::overlapping(&mut tx, station.id, req.connector_id, starts_at, ends_at).await?;
    if !overlapping.is_empty() {
        return Err(Problem::conflict(
            "MAINTENANCE_WINDOW_OVERLAPS",
            format!("the window overlaps maintenance window(s) {overlapping:?} of the same station or connector"),
        )
        .with_errors(json!(overlapping
            .iter()
            .map(|id| json!({ "maintenanceWindowId": id }))
            .collect::<Vec<_>>())));
    }
    let row = store::insert(
        &mut tx,
        &store::NewWindow {
            station_id: station.id,
            connector_id: req.connector_id,
            starts_at,
            ends_at,
            reason: &reason,
            created_by: caller.id,
        },
        now,
    )
    .await?;
    store::recompute_capacity(&mut tx, station.id, starts_at, ends_at).await?;
    let conflicts = store::conflicts(&mut tx, row.id).await?;
    if !conflicts.is_empty() && !req.move_bookings {
        tx.rollback().await?;
        let ids: Vec<i64> = conflicts.iter().map(|c| c.booking_id).collect();
        return Err(Problem::conflict(
            "MAINTENANCE_CONFLICTS_BOOKINGS",
            format!(
                "booking(s) {ids:?} hold the window's slots; move them (moveBookings: true) or choose another time"
            ),
        )
        .with_errors(json!(conflicts)));
    }
    let (affected, changed) = moves::resolve(&mut tx, &row, &caller, now).await?;
    // Moving gave slots back: they take the window's capacity now.
    store::recompute_capacity(&mut tx, station.id, starts_at, ends_at).await?;
    let left = store::conflicts(&mut tx, row.id).await?;
    if !left.is_empty() {
        // Only a booking changed by someone else mid-way gets here; nothing is half done.
        tx.rollback().await?;
        return Err(Problem::conflict(
            "CONCURRENT_MODIFICATION",
            "bookings in the window changed meanwhile; retry",
        ));
    }
    audit::record(
        &mut tx,
        "maintenance_window",
        &row.id.to_string(),
        "maintenance.created",
        Some(&caller),
        &json!({
            "stationId": row.station_id,
            "connectorId": row.connector_id,
            "startsAt": Ts(row.starts_at),
            "endsAt": Ts(row.ends_at),
            "reason": row.reason,
            "affectedBookings": affected,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    for booking in &changed {
        state.live.booking_changed(booking);
    }
    state.wake_dispatcher();
    state.wake_charger_work();
    let body = CreatedWindow {
        window: MaintenanceWindow::of(row, now),
        affected_bookings: affected,
    };
    let mut response = (StatusCode::CREATED, Json(&body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/maintenance-windows/{}", body.window.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Query of `GET /stations/{id}/maintenance-windows`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Include windows that ended (default: only current and future ones).
    past: Option<bool>,
}

/// `GET /stations/{id}/maintenance-windows?past=` (admin; the station's BackOffice and
/// operators): by start.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<MaintenanceWindow>>, Problem> {
    staff_station(&state, &caller, station_id).await?;
    let now = state.clock.now_ms();
    let from = if q.past == Some(true) { None } else { Some(now) };
    let rows = store::list(&state.db, station_id, from).await?;
    Ok(Json(rows.into_iter().map(|r| MaintenanceWindow::of(r, now)).collect()))
}

async fn load(state: &AppState, caller: &Caller, id: i64) -> Result<WindowRow, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Operator])?;
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("maintenance window"))?;
    staff_station(state, caller, row.station_id).await?;
    Ok(row)
}

/// `GET /maintenance-windows/{id}` (admin; the station's BackOffice and operators).
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<MaintenanceWindow>, Problem> {
    let row = load(&state, &caller, id).await?;
    Ok(Json(MaintenanceWindow::of(row, state.clock.now_ms())))
}

/// `DELETE /maintenance-windows/{id}` (admin; the station's BackOffice and operators): cancels
/// a window that has not started, ends a running one now (409 `MAINTENANCE_WINDOW_ENDED`,
/// `MAINTENANCE_WINDOW_CANCELLED` otherwise).
async fn end(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<MaintenanceWindow>, Problem> {
    let row = load(&state, &caller, id).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    store::lock_station(&mut tx, row.station_id).await?;
    let action = match status(&row, now) {
        // At its very first instant a window is cancelled rather than ended (an end equal to
        // the start is no window).
        "Scheduled" | "Active" if now <= row.starts_at && store::cancel(&mut tx, id, now).await? => {
            "maintenance.cancelled"
        }
        "Active" if store::end_now(&mut tx, id, now).await? => "maintenance.ended_early",
        "Cancelled" => {
            return Err(Problem::conflict(
                "MAINTENANCE_WINDOW_CANCELLED",
                "the window was cancelled already",
            ))
        }
        "Ended" => return Err(Problem::conflict("MAINTENANCE_WINDOW_ENDED", "the window is over")),
        _ => {
            return Err(Problem::conflict(
                "CONCURRENT_MODIFICATION",
                "the window changed meanwhile; reload it and retry",
            ))
        }
    };
    // Its slots are offered again (from now on: the past stays as it was).
    store::recompute_capacity(&mut tx, row.station_id, now, row.ends_at).await?;
    audit::record(
        &mut tx,
        "maintenance_window",
        &id.to_string(),
        action,
        Some(&caller),
        &json!({ "stationId": row.station_id, "connectorId": row.connector_id, "at": Ts(now) }),
        now,
    )
    .await?;
    tx.commit().await?;
    state.wake_charger_work();
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("maintenance window"))?;
    Ok(Json(MaintenanceWindow::of(row, now)))
}

/// The problem of a booking refused because a window leaves its slot no room.
pub fn slot_in_maintenance(window_id: i64) -> Problem {
    Problem::conflict(
        "SLOT_IN_MAINTENANCE",
        format!("the slot falls in maintenance window {window_id}; choose another time"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(starts_at: i64, ends_at: i64, cancelled_at: Option<i64>) -> WindowRow {
        WindowRow {
            id: 1,
            station_id: 1,
            connector_id: None,
            starts_at,
            ends_at,
            reason: "x".into(),
            created_by: None,
            created_at: 0,
            cancelled_at,
            ended_early_at: None,
            inoperative_applied_at: None,
            operative_applied_at: None,
            attempts: 0,
            last_error: None,
            due_at: None,
        }
    }

    #[test]
    fn status_follows_the_clock_and_cancellation() {
        assert_eq!(status(&row(10, 20, None), 9), "Scheduled");
        assert_eq!(status(&row(10, 20, None), 10), "Active");
        assert_eq!(status(&row(10, 20, None), 19), "Active");
        assert_eq!(status(&row(10, 20, None), 20), "Ended");
        assert_eq!(status(&row(10, 20, Some(5)), 15), "Cancelled");
    }

    fn request(starts: i64, ends: i64, reason: &str) -> CreateWindow {
        CreateWindow {
            connector_id: None,
            starts_at: DateTime::from_timestamp_millis(starts).unwrap_or_default(),
            ends_at: DateTime::from_timestamp_millis(ends).unwrap_or_default(),
            reason: reason.into(),
            move_bookings: false,
        }
    }

    #[test]
    fn fields_are_checked() {
        let now = 1_000_000_000;
        assert!(check(&request(now, now + 1, "pump"), now).is_ok());
        // A start a few seconds old is taken as now.
        assert_eq!(
            check(&request(now - 5_000, now + 1, "pump"), now).map(|r| r.0).ok(),
            Some(now)
        );
        let codes = |r: Result<(i64, i64, String), Problem>| -> Vec<String> {
            r.err()
                .and_then(|p| p.errors)
                .and_then(|e| e.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        e["field"].as_str().unwrap_or(""),
                        e["code"].as_str().unwrap_or("")
                    )
                })
                .collect()
        };
        assert_eq!(
            codes(check(&request(now - 120_000, now + 1, "pump"), now)),
            ["startsAt:in_past"]
        );
        assert_eq!(codes(check(&request(now, now, "pump"), now)), ["endsAt:before_start"]);
        assert_eq!(
            codes(check(&request(now, now + 32 * 86_400_000, "pump"), now)),
            ["endsAt:too_long"]
        );
        assert_eq!(codes(check(&request(now, now + 1, " "), now)).len(), 1);
    }
}

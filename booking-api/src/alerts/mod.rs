//! Operator alerts: what needs a person at a station.
//!
//! - **Causes.** A booking's reservation refused or unreachable, or its token refused
//!   ([`crate::reservations`], one alert per booking and cause). Also the charger's own
//!   troubles ([`charger`]): a connector reporting `Faulted`, a fault or security event it
//!   reported, and a disconnection longer than `--alert-offline-minutes`.
//! - **One open alert per trouble.** Charger alerts carry a key (station, cause, connector or
//!   kind): while an alert with that key is unresolved, the same trouble reported again raises
//!   nothing. Once it is resolved, the next report raises a new alert.
//! - **Lifecycle.** `Open`, then `Acknowledged` (someone is on it), then `Resolved` (with an
//!   optional note). An open alert may also be resolved directly. Each step records who and
//!   when, is audited, and is sent on the live socket to the station's staff.
//!
//! Staff see and handle their stations' alerts: admins all, a BackOffice its stations', an
//! operator the stations assigned to them. Owners see none.

pub mod charger;
pub mod http;

use crate::api::auth::Caller;
use crate::app::AppState;
use serde::{Deserialize, Serialize};
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// The charger answered ReserveNow with a refusal (Occupied, Faulted, Unavailable, Rejected) or
/// an error.
pub const RESERVATION_REFUSED: &str = "RESERVATION_REFUSED";
/// The charger was offline or did not answer ReserveNow (retried until the slot ends).
pub const RESERVATION_UNREACHABLE: &str = "RESERVATION_UNREACHABLE";
/// The central system refused the booking's id token.
pub const TOKEN_REFUSED: &str = "TOKEN_REFUSED";
/// A connector of the station's charger reported `Faulted`.
pub const CONNECTOR_FAULTED: &str = "CONNECTOR_FAULTED";
/// The charger reported a fault (an error code other than NoError).
pub const CHARGER_FAULT: &str = "CHARGER_FAULT";
/// The charger reported a security event.
pub const SECURITY_EVENT: &str = "SECURITY_EVENT";
/// The charger has been disconnected for longer than the threshold.
pub const CHARGER_OFFLINE: &str = "CHARGER_OFFLINE";
/// The charger booted and the central system refused its registration (`Rejected`).
pub const CHARGER_BOOT_REJECTED: &str = "CHARGER_BOOT_REJECTED";

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Status {
    Open,
    Acknowledged,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::Acknowledged => "Acknowledged",
            Status::Resolved => "Resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "Open" => Some(Status::Open),
            "Acknowledged" => Some(Status::Acknowledged),
            "Resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// An alert.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: i64,
    pub station_id: i64,
    pub booking_id: Option<i64>,
    /// The connector concerned (charger alerts about one connector).
    pub connector_id: Option<i64>,
    /// `RESERVATION_REFUSED`, `RESERVATION_UNREACHABLE`, `TOKEN_REFUSED`, `CONNECTOR_FAULTED`,
    /// `CHARGER_FAULT`, `SECURITY_EVENT`, `CHARGER_OFFLINE` or `CHARGER_BOOT_REJECTED`.
    pub code: String,
    pub message: String,
    /// `Open`, `Acknowledged` or `Resolved`.
    pub status: String,
    pub created_at: Ts,
    pub acknowledged_at: Option<Ts>,
    pub acknowledged_by: Option<i64>,
    pub resolved_at: Option<Ts>,
    pub resolved_by: Option<i64>,
    pub resolution_note: Option<String>,
}

pub(crate) const SELECT: &str = "SELECT id, station_id, booking_id, connector_id, code, message, status, created_at, \
     acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_note FROM alerts";

/// Raises a booking's alert inside `tx`; None (nothing written) when this booking already has
/// one with this code. The caller publishes the new alert once committed ([`publish`]).
pub async fn raise(
    tx: &mut Tx,
    station_id: i64,
    booking_id: i64,
    code: &str,
    message: &str,
    now: i64,
) -> Result<Option<Alert>, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query_as(
            "INSERT INTO alerts (station_id, booking_id, code, message, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (booking_id, code) DO NOTHING \
             RETURNING id, station_id, booking_id, connector_id, code, message, status, created_at, \
             acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_note",
        )
        .bind(station_id)
        .bind(booking_id)
        .bind(code)
        .bind(message)
        .bind(now)
        .fetch_optional(conn)
        .await
    })
}

/// A charger alert to raise: the station, the cause, the connector if one, the key that keeps
/// one unresolved alert per trouble, and the words.
#[derive(Debug, Clone)]
pub struct ChargerAlert {
    pub station_id: i64,
    pub code: &'static str,
    pub connector_id: Option<i64>,
    pub key: String,
    pub message: String,
}

/// Raises a charger alert inside `tx` unless one with its key is unresolved; returns the new
/// alert.
pub async fn raise_for_charger(tx: &mut Tx, alert: &ChargerAlert, now: i64) -> Result<Option<Alert>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE id = $1");
    on_tx!(tx, |conn| {
        // Any unique violation means "already raised": the partial index on unresolved keys.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (station_id, connector_id, code, message, dedup_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(alert.station_id)
        .bind(alert.connector_id)
        .bind(alert.code)
        .bind(&alert.message)
        .bind(&alert.key)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        match id {
            Some(id) => sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await,
            None => Ok(None),
        }
    })
}

/// One alert.
pub async fn get(db: &Db, id: i64) -> Result<Option<Alert>, StoreError> {
    let sql = format!("{SELECT} WHERE id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// How many alerts of a station are unresolved (Open or Acknowledged).
pub async fn unresolved_count(db: &Db, station_id: i64) -> Result<i64, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE station_id = $1 AND status <> 'Resolved'"
    )
    .bind(station_id)
    .fetch_one(pool)
    .await)?)
}

/// Why a lifecycle step was refused.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no such alert")]
    NotFound,
    #[error("the alert is another station's")]
    OutOfScope,
    #[error("the alert is already acknowledged")]
    AlreadyAcknowledged,
    #[error("the alert is resolved")]
    Resolved,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> StepError {
        StepError::Store(e.into())
    }
}

/// Whether `caller` handles alerts of `station_id` (see [`crate::stations::handles`]).
pub async fn in_scope(db: &Db, caller: &Caller, station_id: i64) -> Result<bool, StoreError> {
    crate::stations::handles(db, caller, station_id).await
}

/// The alert if `caller` handles it.
pub async fn visible(db: &Db, caller: &Caller, id: i64) -> Result<Alert, StepError> {
    let alert = get(db, id).await?.ok_or(StepError::NotFound)?;
    if in_scope(db, caller, alert.station_id).await? {
        Ok(alert)
    } else {
        Err(StepError::OutOfScope)
    }
}

/// A lifecycle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    Resolve,
}

impl Step {
    /// What the step changes from the current status, or why it cannot.
    pub fn check(self, from: Status) -> Result<Status, StepError> {
        match (self, from) {
            (_, Status::Resolved) => Err(StepError::Resolved),
            (Step::Acknowledge, Status::Acknowledged) => Err(StepError::AlreadyAcknowledged),
            (Step::Acknowledge, Status::Open) => Ok(Status::Acknowledged),
            (Step::Resolve, _) => Ok(Status::Resolved),
        }
    }
}

/// Takes `step` on alert `id` for `caller` (who must handle its station), audited in the same
/// transaction, and publishes the new state on the live socket after the commit. A concurrent
/// step that got there first makes this one fail with the status it left.
pub async fn take(
    state: &AppState,
    caller: &Caller,
    id: i64,
    step: Step,
    note: Option<&str>,
) -> Result<Alert, StepError> {
    let alert = visible(&state.db, caller, id).await?;
    let from = Status::parse(&alert.status).ok_or_else(|| {
        StepError::Store(StoreError::Database(sqlx::Error::Decode(
            format!("alert {id}: unknown status {}", alert.status).into(),
        )))
    })?;
    let to = step.check(from)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let changed = on_tx!(&mut tx, |conn| {
        match step {
            Step::Acknowledge => sqlx::query(
                "UPDATE alerts SET status = $3, acknowledged_at = $4, acknowledged_by = $5 WHERE id = $1 AND status = $2",
            )
            .bind(id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(now)
            .bind(caller.id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()),
            Step::Resolve => sqlx::query(
                "UPDATE alerts SET status = $3, resolved_at = $4, resolved_by = $5, resolution_note = $6 \
                 WHERE id = $1 AND status = $2",
            )
            .bind(id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(now)
            .bind(caller.id)
            .bind(note)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()),
        }
    })?;
    if changed == 0 {
        tx.rollback().await?;
        // Someone else moved it since it was read: answer with where it is now.
        let now_status = get(&state.db, id)
            .await?
            .and_then(|a| Status::parse(&a.status))
            .unwrap_or(Status::Resolved);
        step.check(now_status)?;
        return Err(StepError::Resolved);
    }
    let action = match step {
        Step::Acknowledge => "alert.acknowledged",
        Step::Resolve => "alert.resolved",
    };
    crate::audit::record(
        &mut tx,
        "alert",
        &id.to_string(),
        action,
        Some(caller),
        &serde_json::json!({ "stationId": alert.station_id, "code": alert.code, "note": note }),
        now,
    )
    .await?;
    tx.commit().await?;
    let updated = get(&state.db, id).await?.ok_or(StepError::NotFound)?;
    publish(state, &updated);
    Ok(updated)
}

/// Sends an alert's state to its station's staff on the live socket.
pub fn publish(state: &AppState, alert: &Alert) {
    state.live.publish_changes(
        vec![crate::live::Change::Alert(Box::new(alert.clone()))],
        state.clock.now_ms(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_lifecycle() {
        assert_eq!(Step::Acknowledge.check(Status::Open).ok(), Some(Status::Acknowledged));
        assert!(matches!(
            Step::Acknowledge.check(Status::Acknowledged),
            Err(StepError::AlreadyAcknowledged)
        ));
        assert_eq!(Step::Resolve.check(Status::Open).ok(), Some(Status::Resolved));
        assert_eq!(Step::Resolve.check(Status::Acknowledged).ok(), Some(Status::Resolved));
        for step in [Step::Acknowledge, Step::Resolve] {
            assert!(matches!(step.check(Status::Resolved), Err(StepError::Resolved)));
        }
        for s in [Status::Open, Status::Acknowledged, Status::Resolved] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Closed"), None);
    }
}

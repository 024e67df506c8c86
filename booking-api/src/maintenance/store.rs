//! Maintenance window queries: the windows, what they take from the slot inventory, the bookings
//! they collide with, and the charger-side bookkeeping of the rounds.

use serde::Serialize;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// A maintenance window as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WindowRow {
    pub id: i64,
    pub station_id: i64,
    pub connector_id: Option<i64>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
    pub ended_early_at: Option<i64>,
    pub inoperative_applied_at: Option<i64>,
    pub operative_applied_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub due_at: Option<i64>,
}

const COLUMNS: &str =
    "id, station_id, connector_id, starts_at, ends_at, reason, created_by, created_at, cancelled_at, \
     ended_early_at, inoperative_applied_at, operative_applied_at, attempts, last_error, due_at";

/// The units of slot `slot` (a table name or alias of `slots`) that maintenance windows take:
/// every bookable connector of the station while a station-wide window overlaps the slot, else
/// the bookable connectors that have a window of their own overlapping it. The one definition
/// of "blocked"; inventory sync, window changes and the search for a free slot all use it.
pub fn blocked_units(slot: &str) -> String {
    format!(
        "(CASE WHEN EXISTS (SELECT 1 FROM maintenance_windows mw WHERE mw.station_id = {slot}.station_id \
           AND mw.connector_id IS NULL AND mw.cancelled_at IS NULL \
           AND mw.starts_at < {slot}.ends_at AND mw.ends_at > {slot}.starts_at) \
         THEN (SELECT COUNT(*) FROM station_connectors sc WHERE sc.station_id = {slot}.station_id AND sc.bookable = 1) \
         ELSE (SELECT COUNT(DISTINCT mw.connector_id) FROM maintenance_windows mw \
           JOIN station_connectors sc ON sc.station_id = mw.station_id AND sc.connector_id = mw.connector_id \
           WHERE mw.station_id = {slot}.station_id AND sc.bookable = 1 AND mw.cancelled_at IS NULL \
           AND mw.starts_at < {slot}.ends_at AND mw.ends_at > {slot}.starts_at) END)"
    )
}

/// The effective capacity of slot `slot`: the station's bookable connectors less the blocked.
pub fn effective_capacity(slot: &str) -> String {
    format!(
        "((SELECT COUNT(*) FROM station_connectors sc WHERE sc.station_id = {slot}.station_id AND sc.bookable = 1) - {})",
        blocked_units(slot)
    )
}

/// Sets the capacity of the station's slots ending after `from` to what the windows leave,
/// except where more is already booked (those keep theirs until their bookings are moved).
pub async fn recompute_capacity(tx: &mut Tx, station_id: i64, from: i64, to: i64) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE slots SET capacity = {cap} WHERE station_id = $1 AND ends_at > $2 AND starts_at < $3 AND booked <= {cap}",
        cap = effective_capacity("slots")
    );
    on_tx!(tx, |conn| {
        sqlx::query(&sql)
            .bind(station_id)
            .bind(from)
            .bind(to)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Takes a row lock on the station, so two window changes of one station run one after the other
/// (SQLite's write transactions are serial already).
pub async fn lock_station(tx: &mut Tx, station_id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE stations SET active = active WHERE id = $1")
            .bind(station_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A window to insert.
#[derive(Debug)]
pub struct NewWindow<'a> {
    pub station_id: i64,
    pub connector_id: Option<i64>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: &'a str,
    pub created_by: i64,
}

/// Inserts a window.
pub async fn insert(tx: &mut Tx, w: &NewWindow<'_>, now: i64) -> Result<WindowRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO maintenance_windows (station_id, connector_id, starts_at, ends_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(w.station_id)
            .bind(w.connector_id)
            .bind(w.starts_at)
            .bind(w.ends_at)
            .bind(w.reason)
            .bind(w.created_by)
            .bind(now)
            .fetch_one(conn)
            .await
    })
}

/// Live windows of the station that a new one over `connector_id` (None: the whole station)
/// from `starts_at` to `ends_at` would overlap: a station window overlaps every window of the
/// station, a connector window those of the station and of the same connector.
pub async fn overlapping(
    tx: &mut Tx,
    station_id: i64,
    connector_id: Option<i64>,
    starts_at: i64,
    ends_at: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT id FROM maintenance_windows WHERE station_id = $1 AND cancelled_at IS NULL \
             AND starts_at < $4 AND ends_at > $3 \
             AND ($2 IS NULL OR connector_id IS NULL OR connector_id = $2) ORDER BY id",
        )
        .bind(station_id)
        .bind(connector_id)
        .bind(starts_at)
        .bind(ends_at)
        .fetch_all(conn)
        .await
    })
}

/// A booking a window collides with.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub booking_id: i64,
    pub status: String,
    pub starts_at: Ts,
    pub ends_at: Ts,
    pub connector_id: Option<i64>,
}

/// Pending and Approved bookings that window `id` (already inserted, capacities recomputed)
/// collides with: those in an overlapping slot now booked beyond what the windows leave, and
/// those already assigned to the window's connector. Newest first: they are moved first.
pub async fn conflicts(tx: &mut Tx, id: i64) -> Result<Vec<Conflict>, sqlx::Error> {
    let sql = format!(
        "SELECT b.id AS booking_id, b.status, b.starts_at, b.ends_at, b.connector_id \
         FROM bookings b JOIN slots sl ON sl.id = b.slot_id JOIN maintenance_windows w ON w.id = $1 \
         WHERE b.station_id = w.station_id AND b.status IN ('Pending', 'Approved') \
         AND b.starts_at < w.ends_at AND b.ends_at > w.starts_at \
         AND (sl.booked > {cap} OR (w.connector_id IS NOT NULL AND b.connector_id = w.connector_id)) \
         ORDER BY b.id DESC",
        cap = effective_capacity("sl")
    );
    on_tx!(tx, |conn| sqlx::query_as(&sql).bind(id).fetch_all(conn).await)
}

/// Whether booking `booking_id` still collides with window `id` ([`conflicts`] for one booking;
/// moving an earlier one may have made room).
pub async fn still_conflicts(tx: &mut Tx, id: i64, booking_id: i64) -> Result<bool, sqlx::Error> {
    Ok(conflicts(tx, id).await?.iter().any(|c| c.booking_id == booking_id))
}

/// The next slot of the station starting after `after` with a unit free once the windows are
/// counted: (id, starts_at, ends_at).
pub async fn next_free_slot(tx: &mut Tx, station_id: i64, after: i64) -> Result<Option<(i64, i64, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT sl.id, sl.starts_at, sl.ends_at FROM slots sl WHERE sl.station_id = $1 AND sl.starts_at > $2 \
         AND sl.booked < sl.capacity AND sl.booked < {cap} ORDER BY sl.starts_at LIMIT 1",
        cap = effective_capacity("sl")
    );
    on_tx!(tx, |conn| sqlx::query_as(&sql)
        .bind(station_id)
        .bind(after)
        .fetch_optional(conn)
        .await)
}

/// Drops a booking's connector assignment, so the next reservation round assigns another.
pub async fn unassign_connector(tx: &mut Tx, booking_id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE bookings SET connector_id = NULL WHERE id = $1")
            .bind(booking_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The live window overlapping `[starts_at, ends_at)` of the station that leaves no unit of it
/// (a station window), if any: why a booking there is refused.
pub async fn blocking(db: &Db, station_id: i64, starts_at: i64, ends_at: i64) -> Result<Option<i64>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM maintenance_windows WHERE station_id = $1 AND cancelled_at IS NULL \
             AND starts_at < $3 AND ends_at > $2 ORDER BY connector_id IS NULL DESC, id LIMIT 1",
        )
        .bind(station_id)
        .bind(starts_at)
        .bind(ends_at)
        .fetch_optional(pool)
        .await
    })?)
}

/// One window.
pub async fn get(db: &Db, id: i64) -> Result<Option<WindowRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM maintenance_windows WHERE id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The station's windows ending after `from` (all of them with `from` None), by start.
pub async fn list(db: &Db, station_id: i64, from: Option<i64>) -> Result<Vec<WindowRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM maintenance_windows WHERE station_id = $1 AND ($2 IS NULL OR ends_at > $2) \
         ORDER BY starts_at, id LIMIT 500"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(station_id)
        .bind(from)
        .fetch_all(pool)
        .await)?)
}

/// Cancels a window that has not started before `now`; false when it has (or was cancelled).
/// A window cancelled at its very start may have reached the charger: the Operative follows
/// then as after any window that was tried ([`due_condition`]).
pub async fn cancel(tx: &mut Tx, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE maintenance_windows SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL AND starts_at >= $2",
        )
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Ends a running window at `now`: the Operative command is due at once (any lease or retry
/// of the Inoperative one is dropped). False when it is not running.
pub async fn end_now(tx: &mut Tx, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE maintenance_windows SET ends_at = $2, ended_early_at = $2, due_at = NULL \
             WHERE id = $1 AND cancelled_at IS NULL AND starts_at <= $2 AND ends_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Which command a window's charger needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The window is running and its connectors are not yet Inoperative.
    Inoperative,
    /// The window is over and its connectors may still be Inoperative.
    Operative,
}

/// A window whose charger needs a command, with the charger it is linked to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChargerWork {
    pub id: i64,
    pub station_id: i64,
    pub central_station_id: String,
    pub connector_id: Option<i64>,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// The condition of a window needing `phase` at `$1` (now), on `maintenance_windows w`. An
/// Operative command follows the end (or a cancellation) only of a window whose Inoperative was
/// applied or tried (a window that passed while the service was down, never tried, changed
/// nothing on the charger).
fn due_condition(phase: Phase) -> &'static str {
    match phase {
        Phase::Inoperative => {
            "w.cancelled_at IS NULL AND w.inoperative_applied_at IS NULL AND w.starts_at <= $1 AND w.ends_at > $1 \
             AND COALESCE(w.due_at, 0) <= $1"
        }
        Phase::Operative => {
            "w.operative_applied_at IS NULL AND (w.ends_at <= $1 OR w.cancelled_at IS NOT NULL) \
             AND (w.inoperative_applied_at IS NOT NULL OR w.attempts > 0) AND COALESCE(w.due_at, 0) <= $1"
        }
    }
}

/// Windows needing `phase` at `now`, oldest start first.
pub async fn due(db: &Db, phase: Phase, now: i64, limit: i64) -> Result<Vec<ChargerWork>, StoreError> {
    let sql = format!(
        "SELECT w.id, w.station_id, s.central_station_id, w.connector_id, w.starts_at, w.ends_at \
         FROM maintenance_windows w JOIN stations s ON s.id = w.station_id \
         WHERE {} ORDER BY w.starts_at, w.id LIMIT $2",
        due_condition(phase)
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// Claims a window's command until `lease`; false when another replica has it or the window
/// changed (cancelled, ended early, already applied).
pub async fn claim(db: &Db, id: i64, phase: Phase, now: i64, lease: i64) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE maintenance_windows SET due_at = $2 WHERE id = $3 AND id IN \
         (SELECT w.id FROM maintenance_windows w WHERE w.id = $3 AND {})",
        due_condition(phase)
    );
    let n = on_db!(db, |pool| {
        sqlx::query(&sql)
            .bind(now)
            .bind(lease)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Records a command's outcome on a window still under our `lease`: applied (`retry_at` None)
/// or failed with `error`, due again at `retry_at`. A window changed meanwhile (ended early
/// while its Inoperative was in flight) only gets the attempt counted and the lease released,
/// so its next command goes out at once.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    db: &Db,
    id: i64,
    phase: Phase,
    lease: i64,
    applied: bool,
    error: Option<&str>,
    retry_at: Option<i64>,
    now: i64,
) -> Result<bool, StoreError> {
    let column = match phase {
        Phase::Inoperative => "inoperative_applied_at",
        Phase::Operative => "operative_applied_at",
    };
    let sql = format!(
        "UPDATE maintenance_windows SET {column} = CASE WHEN $2 = 1 THEN $3 ELSE {column} END, \
         attempts = attempts + 1, last_error = $4, due_at = $5 WHERE id = $1 AND due_at = $6"
    );
    let n = on_db!(db, |pool| {
        sqlx::query(&sql)
            .bind(id)
            .bind(i64::from(applied))
            .bind(now)
            .bind(error)
            .bind(retry_at)
            .bind(lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    if n == 0 {
        // Not ours any more (ended early reset the lease): count the attempt only.
        let sql = format!(
            "UPDATE maintenance_windows SET {column} = CASE WHEN $2 = 1 THEN $3 ELSE {column} END, \
             attempts = attempts + 1, last_error = $4 WHERE id = $1"
        );
        on_db!(db, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .bind(i64::from(applied))
                .bind(now)
                .bind(error)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(n == 1)
}

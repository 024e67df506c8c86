//! Booking and idempotency-key queries.

use super::rules::Status;
use crate::api::auth::Role;
use serde::Serialize;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// A booking.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub id: i64,
    /// The EV owner.
    pub owner_id: i64,
    pub station_id: i64,
    pub slot_id: i64,
    pub vehicle_id: Option<i64>,
    /// Pending, Approved, CheckedIn, Completed, Cancelled, Rejected, NoShow or Aborted.
    pub status: String,
    pub starts_at: Ts,
    pub ends_at: Ts,
    pub created_at: Ts,
    pub updated_at: Ts,
    /// The driver's id token for this booking (1.6 idTag, 2.0.1 idToken of type Central):
    /// valid at this station inside the booking's window once approved.
    pub id_token: Option<String>,
    /// The station connector assigned to the booking (its `connectorId`), once assigned.
    pub connector_id: Option<i64>,
    /// The remote-start id of the check-in's RemoteStart, once sent.
    pub remote_start_id: Option<i64>,
    /// The charger's last word on the booking's reservation: `Accepted`, `Occupied`,
    /// `Faulted`, `Unavailable`, `Rejected`, `Offline`, `Timeout`, `Expired`, `Removed`,
    /// `Cancelled`; absent before the lead time.
    pub reservation_status: Option<String>,
    /// Why the reservation did not go as planned, in words.
    pub reservation_note: Option<String>,
    /// The exception that closed the booking: `NoShow`, `Aborted` or `CancelOnSite`.
    pub exception: Option<String>,
    /// Why, in the words of the staff member (or the no-show sweeper) who recorded it.
    pub exception_reason: Option<String>,
}

impl Booking {
    /// The status as an enum (Pending if the stored name is unknown, which the CHECK prevents).
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Pending)
    }
}

const COLUMNS: &str =
    "id, owner_id, station_id, slot_id, vehicle_id, status, starts_at, ends_at, created_at, updated_at, \
                       id_token, connector_id, remote_start_id, reservation_status, reservation_note, \
                       exception, exception_reason";

/// A fresh booking id token: `BK` and 18 random upper-case hex digits, 20 characters, the most
/// a 1.6 idTag (CiString20) holds, and unguessable (72 random bits).
pub fn new_id_token() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("BK{:018X}", bits & ((1u128 << 72) - 1))
}

/// A new booking inside `tx`.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    owner_id: i64,
    station_id: i64,
    slot: (i64, i64, i64),
    vehicle_id: Option<i64>,
    status: Status,
    now: i64,
) -> Result<Booking, sqlx::Error> {
    let sql = format!(
        "INSERT INTO bookings (owner_id, station_id, slot_id, vehicle_id, status, starts_at, ends_at, created_at, updated_at, id_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(owner_id)
            .bind(station_id)
            .bind(slot.0)
            .bind(vehicle_id)
            .bind(status.as_str())
            .bind(slot.1)
            .bind(slot.2)
            .bind(now)
            .bind(new_id_token())
            .fetch_one(conn)
            .await
    })
}

/// What a booking needs to know about its slot, station and owner.
#[derive(Debug, sqlx::FromRow)]
pub struct Target {
    pub slot_id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub station_active: service_kit::sql_types::Flag,
    pub auto_approve: service_kit::sql_types::Flag,
    pub owner_status: Option<String>,
    /// The station's claim of its charger ([`crate::stations::claim`]).
    pub claim_status: String,
}

/// The slot of `station_id` starting at `start`, with its station's flags and the owner's
/// status, in one round trip; None when there is no such slot.
pub async fn target(db: &Db, owner_id: i64, station_id: i64, start: i64) -> Result<Option<Target>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT sl.id AS slot_id, sl.starts_at, sl.ends_at, st.active AS station_active, st.auto_approve, st.claim_status, \
             (SELECT status FROM accounts WHERE id = $3) AS owner_status \
             FROM slots sl JOIN stations st ON st.id = sl.station_id WHERE sl.station_id = $1 AND sl.starts_at = $2",
        )
        .bind(station_id)
        .bind(start)
        .bind(owner_id)
        .fetch_optional(pool)
        .await
    })?)
}

/// One booking.
pub async fn get(db: &Db, id: i64) -> Result<Option<Booking>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM bookings WHERE id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// One booking, read inside `tx` (the bus consumer changes it in the same transaction).
pub async fn get_in(tx: &mut Tx, id: i64) -> Result<Option<Booking>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM bookings WHERE id = $1");
    on_tx!(tx, |conn| sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)
}

/// The booking a charger's transaction at `central_station_id` belongs to: the one whose id
/// token the charger reported (both OCPP versions), else the one whose check-in sent
/// `remote_start_id`. Only bookings of the station linked to that charger match.
pub async fn for_transaction(
    tx: &mut Tx,
    central_station_id: &str,
    id_token: Option<&str>,
    remote_start_id: Option<i64>,
) -> Result<Option<Booking>, sqlx::Error> {
    if id_token.is_none() && remote_start_id.is_none() {
        return Ok(None);
    }
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("b.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM bookings b JOIN stations s ON s.id = b.station_id \
         WHERE s.central_station_id = $1 AND (b.id_token = $2 OR b.remote_start_id = $3) \
         ORDER BY CASE WHEN b.id_token = $2 THEN 0 ELSE 1 END, b.id DESC LIMIT 1"
    );
    on_tx!(tx, |conn| sqlx::query_as(&sql)
        .bind(central_station_id)
        .bind(id_token)
        .bind(remote_start_id)
        .fetch_optional(conn)
        .await)
}

/// The booking's connector: the one assigned before, or else the lowest-numbered bookable
/// connector of its station that no other Approved or CheckedIn booking holds during an
/// overlapping window and no maintenance window covers then, now assigned. `None` when every
/// connector is taken (or the booking is gone). A moved booking (reschedule) loses its connector and gets one here again.
pub async fn assign_connector(tx: &mut Tx, id: i64) -> Result<Option<i64>, sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE bookings SET connector_id = ( \
               SELECT sc.connector_id FROM station_connectors sc \
               WHERE sc.station_id = bookings.station_id AND sc.bookable = 1 AND NOT EXISTS ( \
                 SELECT 1 FROM bookings b2 WHERE b2.station_id = sc.station_id AND b2.connector_id = sc.connector_id \
                 AND b2.id <> bookings.id AND b2.status IN ('Approved', 'CheckedIn') \
                 AND b2.starts_at < bookings.ends_at AND b2.ends_at > bookings.starts_at) \
               AND NOT EXISTS ( \
                 SELECT 1 FROM maintenance_windows mw WHERE mw.station_id = sc.station_id AND mw.cancelled_at IS NULL \
                 AND (mw.connector_id IS NULL OR mw.connector_id = sc.connector_id) \
                 AND mw.starts_at < bookings.ends_at AND mw.ends_at > bookings.starts_at) \
               ORDER BY sc.connector_id LIMIT 1) \
             WHERE id = $1 AND connector_id IS NULL",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        let assigned: Option<Option<i64>> = sqlx::query_scalar("SELECT connector_id FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(assigned.flatten())
    })
}

/// Changes the status if it is still `from`; false when someone else changed it first.
pub async fn set_status(tx: &mut Tx, id: i64, from: Status, to: Status, now: i64) -> Result<bool, sqlx::Error> {
    let r = on_tx!(tx, |conn| {
        sqlx::query("UPDATE bookings SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .bind(from.as_str())
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Moves a booking to another slot if its status is still `from`.
pub async fn move_to(
    tx: &mut Tx,
    id: i64,
    from: Status,
    to: Status,
    slot: (i64, i64, i64),
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE bookings SET slot_id = $1, starts_at = $2, ends_at = $3, status = $4, updated_at = $5, connector_id = NULL \
             WHERE id = $6 AND status = $7",
        )
        .bind(slot.0)
        .bind(slot.1)
        .bind(slot.2)
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(from.as_str())
        .execute(conn)
        .await.map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Filters of a booking list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// Only this status.
    pub status: Option<&'a str>,
    /// Only this station.
    pub station_id: Option<i64>,
    /// Starting at or after (ms).
    pub from: Option<i64>,
    /// Starting before (ms).
    pub to: Option<i64>,
}

/// Bookings the caller may see (owners their own, operators their stations', a BackOffice its
/// stations', admins all), filtered, newest first.
pub async fn list(
    db: &Db,
    role: Role,
    caller_id: i64,
    filter: &Filter<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Booking>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bookings WHERE \
         ($1 = 'admin' OR ($1 = 'owner' AND owner_id = $2) \
          OR ($1 = 'operator' AND station_id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2)) \
          OR ($1 = 'backoffice' AND station_id IN (SELECT id FROM stations WHERE backoffice_id = $2))) \
         AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR station_id = $4) AND ($5 IS NULL OR id < $5) \
         AND ($6 IS NULL OR starts_at >= $6) AND ($7 IS NULL OR starts_at < $7) ORDER BY id DESC LIMIT $8"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(role.as_str())
            .bind(caller_id)
            .bind(filter.status)
            .bind(filter.station_id)
            .bind(before)
            .bind(filter.from)
            .bind(filter.to)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

/// A station's Approved and CheckedIn bookings starting in `[from, to)`, by start (the
/// operator's day).
pub async fn day_list(db: &Db, station_id: i64, from: i64, to: i64) -> Result<Vec<Booking>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bookings WHERE station_id = $1 AND status IN ('Approved', 'CheckedIn') \
         AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at, id"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(station_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}

/// Records the exception that closed a booking, inside the transaction that moved it.
pub async fn set_exception(tx: &mut Tx, id: i64, kind: &str, reason: Option<&str>) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| sqlx::query(
        "UPDATE bookings SET exception = $2, exception_reason = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(kind)
    .bind(reason)
    .execute(conn)
    .await
    .map(|_| ()))
}

/// Approved bookings whose end lies before `cutoff` (no-show candidates).
pub async fn overdue(db: &Db, cutoff: i64) -> Result<Vec<Booking>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM bookings WHERE status = 'Approved' AND ends_at < $1 ORDER BY id LIMIT 500");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(cutoff)
        .fetch_all(pool)
        .await)?)
}

/// A stored idempotent response.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status_code: i64,
    pub response: String,
}

/// The live stored response of `key` for `account_id`.
pub async fn idempotent(db: &Db, account_id: i64, key: &str, now: i64) -> Result<Option<StoredResponse>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT request_hash, status_code, response FROM idempotency_keys \
             WHERE account_id = $1 AND idempotency_key = $2 AND expires_at > $3",
        )
        .bind(account_id)
        .bind(key)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?)
}

/// Stores a response under `key` inside `tx` (replacing an expired one); a live one held by a
/// concurrent request is a unique violation.
#[allow(clippy::too_many_arguments)]
pub async fn store_idempotent(
    tx: &mut Tx,
    account_id: i64,
    key: &str,
    request_hash: &str,
    status_code: u16,
    response: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND idempotency_key = $2 AND expires_at <= $3")
            .bind(account_id)
            .bind(key)
            .bind(now)
            .execute(&mut *conn)
            .await.map(|r| r.rows_affected())?;
        sqlx::query(
            "INSERT INTO idempotency_keys (account_id, idempotency_key, request_hash, status_code, response, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(account_id)
        .bind(key)
        .bind(request_hash)
        .bind(i64::from(status_code))
        .bind(response)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await.map(|r| r.rows_affected())
    })
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

/// Forgets expired idempotency keys.
pub async fn purge_idempotency(db: &Db, now: i64) -> Result<u64, StoreError> {
    let r = on_db!(db, |pool| {
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(r)
}

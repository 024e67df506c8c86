//! Charging-session queries (table `charging_sessions`, migration 0006).

use super::reconcile::{EndedBy, Facts};
use crate::api::auth::Role;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub central_station_id: String,
    pub transaction_id: String,
    pub station_id: Option<i64>,
    pub connector_id: Option<i64>,
    pub booking_id: Option<i64>,
    pub id_token: Option<String>,
    pub remote_start_id: Option<i64>,
    pub status: String,
    pub started_at: Option<i64>,
    pub meter_start_wh: Option<i64>,
    pub first_register_wh: Option<i64>,
    pub register_wh: Option<i64>,
    pub summary_at: Option<i64>,
    pub power_w: Option<f64>,
    pub soc_percent: Option<f64>,
    pub current_a: Option<f64>,
    pub ended_at: Option<i64>,
    pub meter_stop_wh: Option<i64>,
    pub stop_reason: Option<String>,
    pub ended_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Counts the row's saved changes (billing prices each revision once).
    pub revision: i64,
    /// The booking's owner (joined), when the session has a booking.
    pub owner_id: Option<i64>,
}

impl SessionRow {
    /// What the reconciliation works on.
    pub fn facts(&self) -> Facts {
        Facts {
            connector_id: self.connector_id,
            id_token: self.id_token.clone(),
            remote_start_id: self.remote_start_id,
            completed: self.status == "Completed",
            started_at: self.started_at,
            meter_start_wh: self.meter_start_wh,
            first_register_wh: self.first_register_wh,
            register_wh: self.register_wh,
            summary_at: self.summary_at,
            power_w: self.power_w,
            soc_percent: self.soc_percent,
            current_a: self.current_a,
            ended_at: self.ended_at,
            meter_stop_wh: self.meter_stop_wh,
            stop_reason: self.stop_reason.clone(),
            ended_by: self.ended_by.as_deref().and_then(EndedBy::parse),
        }
    }

    /// The row with `facts` written back.
    pub fn with(self, facts: Facts) -> SessionRow {
        SessionRow {
            connector_id: facts.connector_id,
            id_token: facts.id_token,
            remote_start_id: facts.remote_start_id,
            status: if facts.completed { "Completed" } else { "Active" }.into(),
            started_at: facts.started_at,
            meter_start_wh: facts.meter_start_wh,
            first_register_wh: facts.first_register_wh,
            register_wh: facts.register_wh,
            summary_at: facts.summary_at,
            power_w: facts.power_w,
            soc_percent: facts.soc_percent,
            current_a: facts.current_a,
            ended_at: facts.ended_at,
            meter_stop_wh: facts.meter_stop_wh,
            stop_reason: facts.stop_reason,
            ended_by: facts.ended_by.map(|e| e.as_str().to_string()),
            ..self
        }
    }
}

pub(crate) const SELECT: &str =
    "SELECT cs.id, cs.central_station_id, cs.transaction_id, cs.station_id, cs.connector_id, \
     cs.booking_id, cs.id_token, cs.remote_start_id, cs.status, cs.started_at, cs.meter_start_wh, \
     cs.first_register_wh, cs.register_wh, cs.summary_at, cs.power_w, cs.soc_percent, cs.current_a, \
     cs.ended_at, cs.meter_stop_wh, cs.stop_reason, cs.ended_by, cs.created_at, cs.updated_at, \
     cs.revision, b.owner_id AS owner_id \
     FROM charging_sessions cs LEFT JOIN bookings b ON b.id = cs.booking_id";

/// The session of a charger's transaction, created (Active, nothing known) if new, and locked
/// for the rest of `tx`: the no-op UPDATE takes PostgreSQL's row lock, so two replicas that
/// receive events of one transaction apply them one after the other (SQLite's write
/// transactions are serial anyway).
pub async fn lock_or_create(
    tx: &mut Tx,
    central_station_id: &str,
    transaction_id: &str,
    station_id: i64,
    now: i64,
) -> Result<SessionRow, sqlx::Error> {
    let sql = format!("{SELECT} WHERE cs.central_station_id = $1 AND cs.transaction_id = $2");
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO charging_sessions (central_station_id, transaction_id, station_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'Active', $4, $4) ON CONFLICT (central_station_id, transaction_id) DO NOTHING",
        )
        .bind(central_station_id)
        .bind(transaction_id)
        .bind(station_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE charging_sessions SET updated_at = updated_at WHERE central_station_id = $1 AND transaction_id = $2",
        )
        .bind(central_station_id)
        .bind(transaction_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query_as(&sql)
            .bind(central_station_id)
            .bind(transaction_id)
            .fetch_one(&mut *conn)
            .await
    })
}

/// One session by id, locked for the rest of `tx` (see [`lock_or_create`]).
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<SessionRow>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE cs.id = $1");
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE charging_sessions SET updated_at = updated_at WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await
    })
}

/// Writes the reconciled row back.
pub async fn save(tx: &mut Tx, row: &SessionRow) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE charging_sessions SET connector_id = $2, booking_id = $3, id_token = $4, remote_start_id = $5, \
             status = $6, started_at = $7, meter_start_wh = $8, first_register_wh = $9, register_wh = $10, \
             summary_at = $11, power_w = $12, soc_percent = $13, current_a = $14, ended_at = $15, \
             meter_stop_wh = $16, stop_reason = $17, ended_by = $18, updated_at = $19, revision = revision + 1 \
             WHERE id = $1",
        )
        .bind(row.id)
        .bind(row.connector_id)
        .bind(row.booking_id)
        .bind(&row.id_token)
        .bind(row.remote_start_id)
        .bind(&row.status)
        .bind(row.started_at)
        .bind(row.meter_start_wh)
        .bind(row.first_register_wh)
        .bind(row.register_wh)
        .bind(row.summary_at)
        .bind(row.power_w)
        .bind(row.soc_percent)
        .bind(row.current_a)
        .bind(row.ended_at)
        .bind(row.meter_stop_wh)
        .bind(&row.stop_reason)
        .bind(&row.ended_by)
        .bind(row.updated_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The booking station linked to a charger, if any.
pub async fn linked_station(tx: &mut Tx, central_station_id: &str) -> Result<Option<i64>, sqlx::Error> {
    on_tx!(tx, |conn| sqlx::query_scalar(
        "SELECT id FROM stations WHERE central_station_id = $1"
    )
    .bind(central_station_id)
    .fetch_optional(conn)
    .await)
}

/// Re-reads a session (with its owner) inside `tx`.
pub async fn get_in(tx: &mut Tx, id: i64) -> Result<Option<SessionRow>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE cs.id = $1");
    on_tx!(tx, |conn| sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)
}

/// One session.
pub async fn get(db: &Db, id: i64) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("{SELECT} WHERE cs.id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The newest session of a booking.
pub async fn of_booking(db: &Db, booking_id: i64) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("{SELECT} WHERE cs.booking_id = $1 ORDER BY cs.id DESC LIMIT 1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(booking_id)
        .fetch_optional(pool)
        .await)?)
}

/// Filters of a session list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub status: Option<&'a str>,
    pub station_id: Option<i64>,
}

/// Sessions the caller may see (owners those of their bookings, operators their stations',
/// a BackOffice its stations', admins all), newest first.
pub async fn list(
    db: &Db,
    role: Role,
    caller_id: i64,
    filter: &Filter<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE \
         ($1 = 'admin' OR ($1 = 'owner' AND b.owner_id = $2) \
          OR ($1 = 'operator' AND cs.station_id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2)) \
          OR ($1 = 'backoffice' AND cs.station_id IN (SELECT id FROM stations WHERE backoffice_id = $2))) \
         AND ($3 IS NULL OR cs.status = $3) AND ($4 IS NULL OR cs.station_id = $4) AND ($5 IS NULL OR cs.id < $5) \
         ORDER BY cs.id DESC LIMIT $6"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(role.as_str())
            .bind(caller_id)
            .bind(filter.status)
            .bind(filter.station_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

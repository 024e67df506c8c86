//! Station and connector queries.

use super::schedule::Schedule;
use serde::Serialize;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::sql_types::{Flag, Ts};
use utoipa::ToSchema;

/// A station row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StationRow {
    pub id: i64,
    pub backoffice_id: i64,
    pub central_station_id: String,
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: String,
    pub slot_minutes: i64,
    pub auto_approve: Flag,
    pub tariff_ref: Option<String>,
    pub active: Flag,
    pub schedule: String,
    pub created_at: Ts,
    /// The Admin's decision on the BackOffice's claim of the charger ([`super::claim`]).
    pub claim_status: String,
}

impl StationRow {
    /// The stored schedule (an empty one if it cannot be read).
    pub fn schedule(&self) -> Schedule {
        serde_json::from_str(&self.schedule).unwrap_or(Schedule {
            weekly: vec![],
            exceptions: vec![],
        })
    }

    /// The time zone (UTC if the stored name is unknown, which validation prevents).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// A connector (EVSE) of a station.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    /// Connector id at the charger (1, 2, ...).
    pub connector_id: i64,
    /// `Type2`, `CCS2`, `CHAdeMO`, ...
    pub connector_type: String,
    /// Maximum power in W.
    pub max_power_w: i64,
    /// Whether it can be booked (counts towards slot capacity).
    #[schema(value_type = bool)]
    pub bookable: Flag,
}

pub(crate) const COLUMNS: &str =
    "id, backoffice_id, central_station_id, name, address, latitude, longitude, time_zone, slot_minutes, \
                       auto_approve, tariff_ref, active, schedule, created_at, claim_status";

/// A new station.
#[derive(Debug)]
pub struct NewStation<'a> {
    pub backoffice_id: i64,
    pub central_station_id: &'a str,
    pub name: &'a str,
    pub address: &'a str,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: &'a str,
    pub slot_minutes: i64,
    pub auto_approve: bool,
    pub tariff_ref: Option<&'a str>,
    pub schedule: &'a str,
}

/// Inserts a station and its connectors; a taken central-system id is a conflict.
pub async fn insert(tx: &mut Tx, s: &NewStation<'_>, connectors: &[Connector], now: i64) -> Result<i64, StoreError> {
    let id: i64 = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO stations (backoffice_id, central_station_id, name, address, latitude, longitude, time_zone, slot_minutes, \
             auto_approve, tariff_ref, active, schedule, created_at, updated_at, claim_status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $12, 'Pending') RETURNING id",
        )
        .bind(s.backoffice_id)
        .bind(s.central_station_id)
        .bind(s.name)
        .bind(s.address)
        .bind(s.latitude)
        .bind(s.longitude)
        .bind(s.time_zone)
        .bind(s.slot_minutes)
        .bind(i64::from(s.auto_approve))
        .bind(s.tariff_ref)
        .bind(s.schedule)
        .bind(now)
        .fetch_one(conn)
        .await
    })
    .map_err(StoreError::from_sqlx)?;
    insert_connectors(tx, id, connectors).await?;
    Ok(id)
}

/// Replaces a station's connectors.
pub async fn replace_connectors(tx: &mut Tx, id: i64, connectors: &[Connector]) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM station_connectors WHERE station_id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    insert_connectors(tx, id, connectors).await
}

async fn insert_connectors(tx: &mut Tx, id: i64, connectors: &[Connector]) -> Result<(), StoreError> {
    for c in connectors {
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO station_connectors (station_id, connector_id, connector_type, max_power_w, bookable) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(c.connector_id)
            .bind(&c.connector_type)
            .bind(c.max_power_w)
            .bind(i64::from(c.bookable.0))
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// One station.
pub async fn get(db: &Db, id: i64) -> Result<Option<StationRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM stations WHERE id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The BackOffice owning a station.
pub async fn owner_of(db: &Db, id: i64) -> Result<Option<i64>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_scalar("SELECT backoffice_id FROM stations WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })?)
}

/// A station's connectors.
pub async fn connectors(db: &Db, id: i64) -> Result<Vec<Connector>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT connector_id, connector_type, max_power_w, bookable FROM station_connectors WHERE station_id = $1 ORDER BY connector_id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?)
}

/// Stations visible to a listing: all (`backoffice` None, `operator` None), a BackOffice's, an
/// operator's, or only bookable ones (active with an approved claim); optionally only those
/// whose claim is `claim_status`; after the cursor id.
pub async fn list(
    db: &Db,
    backoffice: Option<i64>,
    operator: Option<i64>,
    only_bookable: bool,
    claim_status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<StationRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM stations WHERE ($1 IS NULL OR backoffice_id = $1) \
         AND ($2 IS NULL OR id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2)) \
         AND ($3 = 0 OR (active = 1 AND claim_status = 'Approved')) AND ($4 IS NULL OR id > $4) \
         AND ($6 IS NULL OR claim_status = $6) ORDER BY id LIMIT $5"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(backoffice)
            .bind(operator)
            .bind(i64::from(only_bookable))
            .bind(after)
            .bind(limit)
            .bind(claim_status)
            .fetch_all(pool)
            .await
    })?)
}

/// Records an Admin's decision on a station's pending claim inside `tx`; false when the claim
/// was no longer pending (decided concurrently).
pub async fn decide_claim(
    tx: &mut Tx,
    id: i64,
    status: &str,
    admin_id: i64,
    note: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE stations SET claim_status = $2, claim_decided_by = $3, claim_decided_at = $4, claim_note = $5, \
             updated_at = $4 WHERE id = $1 AND claim_status = 'Pending'",
        )
        .bind(id)
        .bind(status)
        .bind(admin_id)
        .bind(now)
        .bind(note)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Active stations inside a latitude/longitude box.
pub async fn in_box(db: &Db, lat: (f64, f64), lon: (f64, f64)) -> Result<Vec<StationRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM stations WHERE active = 1 AND claim_status = 'Approved' AND latitude BETWEEN $1 AND $2 AND longitude BETWEEN $3 AND $4"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(lat.0)
            .bind(lat.1)
            .bind(lon.0)
            .bind(lon.1)
            .fetch_all(pool)
            .await
    })?)
}

/// Changeable station settings.
#[derive(Debug)]
pub struct StationPatch<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub auto_approve: bool,
    pub tariff_ref: Option<&'a str>,
    pub slot_minutes: i64,
    pub schedule: &'a str,
}

/// Updates settings.
pub async fn update(tx: &mut Tx, id: i64, p: &StationPatch<'_>, now: i64) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE stations SET name = $1, address = $2, auto_approve = $3, tariff_ref = $4, slot_minutes = $5, schedule = $6, \
             updated_at = $7 WHERE id = $8",
        )
        .bind(p.name)
        .bind(p.address)
        .bind(i64::from(p.auto_approve))
        .bind(p.tariff_ref)
        .bind(p.slot_minutes)
        .bind(p.schedule)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Sets the active flag.
pub async fn set_active(tx: &mut Tx, id: i64, active: bool, now: i64) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE stations SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(active))
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Bookings of a station that start after `now` and still hold a slot.
pub async fn future_bookings(tx: &mut Tx, id: i64, now: i64) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM bookings WHERE station_id = $1 AND starts_at > $2 AND status IN ('Pending', 'Approved')",
        )
        .bind(id)
        .bind(now)
        .fetch_one(conn)
        .await
    })?)
}

/// Ids of every active station (for the inventory worker).
pub async fn active_ids(db: &Db) -> Result<Vec<i64>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_scalar(
        "SELECT id FROM stations WHERE active = 1 ORDER BY id"
    )
    .fetch_all(pool)
    .await)?)
}

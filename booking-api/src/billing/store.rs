//! Tariff queries (tables `tariffs`, `tariff_versions`, `station_tariffs`, migration 0007).
//! Versions and assignments are only ever inserted: history is never edited.

use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};

/// A tariff (the series of versions).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TariffRow {
    pub id: i64,
    pub backoffice_id: Option<i64>,
    pub name: String,
    pub created_at: i64,
}

/// One version of a tariff.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub tariff_id: i64,
    pub version: i64,
    pub valid_from: i64,
    pub currency: String,
    /// The OCPI JSON.
    pub body: String,
    pub created_at: i64,
}

/// A station's tariff assignment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssignmentRow {
    pub id: i64,
    pub station_id: i64,
    pub connector_type: String,
    pub tariff_id: i64,
    pub valid_from: i64,
    pub created_at: i64,
}

/// Inserts a tariff without versions; returns its id.
pub async fn insert_tariff(
    tx: &mut Tx,
    backoffice_id: Option<i64>,
    name: &str,
    by: i64,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO tariffs (backoffice_id, name, created_at, created_by) VALUES ($1, $2, $3, $4) RETURNING id"
    )
    .bind(backoffice_id)
    .bind(name)
    .bind(now)
    .bind(by)
    .fetch_one(conn)
    .await)?)
}

/// The newest version of a tariff inside `tx` (to number and order the next one).
pub async fn latest_version_in(tx: &mut Tx, tariff_id: i64) -> Result<Option<VersionRow>, StoreError> {
    Ok(on_tx!(tx, |conn| sqlx::query_as(
        "SELECT tariff_id, version, valid_from, currency, body, created_at FROM tariff_versions \
         WHERE tariff_id = $1 ORDER BY version DESC LIMIT 1"
    )
    .bind(tariff_id)
    .fetch_optional(conn)
    .await)?)
}

/// Appends a version; a taken number or instant (a concurrent writer) is a conflict.
pub async fn insert_version(tx: &mut Tx, v: &VersionRow, by: i64) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO tariff_versions (tariff_id, version, valid_from, currency, body, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(v.tariff_id)
    .bind(v.version)
    .bind(v.valid_from)
    .bind(&v.currency)
    .bind(&v.body)
    .bind(v.created_at)
    .bind(by)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<TariffRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT id, backoffice_id, name, created_at FROM tariffs WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?)
}

/// Tariffs a caller may see: all (`backoffice` None) or one BackOffice's and the shared ones;
/// by id, descending, before the cursor.
pub async fn list(
    db: &Db,
    backoffice: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<TariffRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT id, backoffice_id, name, created_at FROM tariffs \
         WHERE ($1 IS NULL OR backoffice_id = $1 OR backoffice_id IS NULL) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )
    .bind(backoffice)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await)?)
}

/// Every version of a tariff, oldest first.
pub async fn versions(db: &Db, tariff_id: i64) -> Result<Vec<VersionRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT tariff_id, version, valid_from, currency, body, created_at FROM tariff_versions \
         WHERE tariff_id = $1 ORDER BY version"
    )
    .bind(tariff_id)
    .fetch_all(pool)
    .await)?)
}

/// The version of a tariff in force at `at`: the greatest valid_from at or before it.
pub async fn version_at(db: &Db, tariff_id: i64, at: i64) -> Result<Option<VersionRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT tariff_id, version, valid_from, currency, body, created_at FROM tariff_versions \
         WHERE tariff_id = $1 AND valid_from <= $2 ORDER BY valid_from DESC LIMIT 1"
    )
    .bind(tariff_id)
    .bind(at)
    .fetch_optional(pool)
    .await)?)
}

/// Appends an assignment; one at the same station, connector type and instant is a conflict.
pub async fn insert_assignment(
    tx: &mut Tx,
    station_id: i64,
    connector_type: &str,
    tariff_id: i64,
    valid_from: i64,
    by: i64,
    now: i64,
) -> Result<i64, StoreError> {
    on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO station_tariffs (station_id, connector_type, tariff_id, valid_from, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
    )
    .bind(station_id)
    .bind(connector_type)
    .bind(tariff_id)
    .bind(valid_from)
    .bind(now)
    .bind(by)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from_sqlx)
}

/// A station's assignments, oldest first.
pub async fn assignments(db: &Db, station_id: i64) -> Result<Vec<AssignmentRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT id, station_id, connector_type, tariff_id, valid_from, created_at FROM station_tariffs \
         WHERE station_id = $1 ORDER BY valid_from, id"
    )
    .bind(station_id)
    .fetch_all(pool)
    .await)?)
}

/// The tariff a station applies at `at` to a connector of `connector_type`: the newest
/// assignment in force for that type, else the newest for every type ('').
pub async fn assigned_at(
    db: &Db,
    station_id: i64,
    connector_type: Option<&str>,
    at: i64,
) -> Result<Option<AssignmentRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT id, station_id, connector_type, tariff_id, valid_from, created_at FROM station_tariffs \
         WHERE station_id = $1 AND valid_from <= $3 AND (connector_type = '' OR connector_type = $2) \
         ORDER BY CASE WHEN connector_type = '' THEN 1 ELSE 0 END, valid_from DESC, id DESC LIMIT 1"
    )
    .bind(station_id)
    .bind(connector_type.unwrap_or(""))
    .bind(at)
    .fetch_optional(pool)
    .await)?)
}

//! Reading the charger projection.

use serde::Serialize;
use service_kit::db::{on_db, Db, StoreError};
use service_kit::sql_types::{Flag, Ts};
use utoipa::ToSchema;

/// A charger row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChargerRow {
    pub central_station_id: String,
    pub online: Flag,
    pub ocpp_version: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware_version: Option<String>,
    pub booted_at: Option<Ts>,
    pub last_seen_at: Ts,
}

/// A connector as the charger last reported it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ChargerConnector {
    /// The 1.6 connectorId or the 2.0.1 evseId: what a station's `connectorId` names.
    #[sqlx(rename = "connector_key")]
    pub connector_id: i64,
    /// The last reported status (`Available`, `Occupied`, `Faulted`, ...).
    pub status: String,
    /// When the charger reported it.
    pub status_at: Ts,
    /// When this projection recorded it.
    pub updated_at: Ts,
}

/// Every known charger, by id.
pub async fn list(db: &Db) -> Result<Vec<ChargerRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT central_station_id, online, ocpp_version, vendor, model, firmware_version, booted_at, last_seen_at \
         FROM chargers ORDER BY central_station_id"
    )
    .fetch_all(pool)
    .await)?)
}

/// Whether the projection knows the charger.
pub async fn known(db: &Db, central_station_id: &str) -> Result<bool, StoreError> {
    let n: i64 = on_db!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM chargers WHERE central_station_id = $1"
    )
    .bind(central_station_id)
    .fetch_one(pool)
    .await)?;
    Ok(n > 0)
}

/// The connectors a charger has reported, by key.
pub async fn connectors(db: &Db, central_station_id: &str) -> Result<Vec<ChargerConnector>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT connector_key, status, status_at, updated_at FROM charger_connectors \
         WHERE central_station_id = $1 ORDER BY connector_key"
    )
    .bind(central_station_id)
    .fetch_all(pool)
    .await)?)
}

/// Whether `event_id` has been applied (for tests and diagnostics).
pub async fn processed(db: &Db, event_id: &str) -> Result<bool, StoreError> {
    let n: i64 = on_db!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM processed_events WHERE event_id = $1"
    )
    .bind(event_id)
    .fetch_one(pool)
    .await)?;
    Ok(n > 0)
}

/// The OCPP version a charger last connected with (`1.6`, `2.0.1`), if known.
pub async fn ocpp_version(db: &Db, central_station_id: &str) -> Result<Option<String>, StoreError> {
    let v: Option<Option<String>> = on_db!(db, |pool| sqlx::query_scalar(
        "SELECT ocpp_version FROM chargers WHERE central_station_id = $1"
    )
    .bind(central_station_id)
    .fetch_optional(pool)
    .await)?;
    Ok(v.flatten())
}

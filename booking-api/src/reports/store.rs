//! The rows reports read, each query limited to the caller's stations (the scope is part of the
//! SQL, never a filter applied afterwards) and to a UTC window; the exact local-date cut is
//! [`super::figures::Range::local_date`]'s.

use crate::api::auth::Caller;
use crate::sessions::store::SessionRow;
use crate::stations::store::StationRow;
use service_kit::db::{on_db, Db, StoreError};

/// The stations of the caller's scope: `$1` role, `$2` caller id, `$3` one station or NULL.
const SCOPE: &str = "SELECT id FROM stations WHERE \
     ($1 = 'admin' OR ($1 = 'backoffice' AND backoffice_id = $2) \
      OR ($1 = 'operator' AND id IN (SELECT station_id FROM operator_stations WHERE operator_id = $2))) \
     AND ($3 IS NULL OR id = $3)";

/// Who asks, and about which station.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub caller: &'a Caller,
    pub station_id: Option<i64>,
}

/// The stations in scope, by id.
pub async fn stations(db: &Db, scope: Scope<'_>) -> Result<Vec<StationRow>, StoreError> {
    let sql = format!(
        "SELECT id, backoffice_id, central_station_id, name, address, latitude, longitude, time_zone, slot_minutes, \
         auto_approve, tariff_ref, active, schedule, created_at, claim_status FROM stations WHERE id IN ({SCOPE}) ORDER BY id"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .fetch_all(pool)
        .await)?)
}

/// A booking as the reports count it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookingRow {
    pub station_id: i64,
    pub status: String,
    pub exception: Option<String>,
    pub starts_at: i64,
}

/// Bookings of the scope whose slot starts in `[lo, hi)`.
pub async fn bookings(db: &Db, scope: Scope<'_>, lo: i64, hi: i64) -> Result<Vec<BookingRow>, StoreError> {
    let sql = format!(
        "SELECT station_id, status, exception, starts_at FROM bookings \
         WHERE station_id IN ({SCOPE}) AND starts_at >= $4 AND starts_at < $5"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(pool)
        .await)?)
}

/// Sessions at the scope's stations that started in `[lo, hi)`.
pub async fn sessions(db: &Db, scope: Scope<'_>, lo: i64, hi: i64) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "{} WHERE cs.station_id IN ({SCOPE}) AND cs.started_at >= $4 AND cs.started_at < $5",
        crate::sessions::store::SELECT
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(pool)
        .await)?)
}

/// An invoice or credit note (negative) as revenue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevenueRow {
    pub station_id: i64,
    pub currency: String,
    pub total_incl_vat: i64,
    pub issued_at: i64,
}

/// Invoices and credit notes of the scope's stations issued in `[lo, hi)`.
pub async fn revenue(db: &Db, scope: Scope<'_>, lo: i64, hi: i64) -> Result<Vec<RevenueRow>, StoreError> {
    let sql = format!(
        "SELECT station_id, currency, total_incl_vat, issued_at FROM invoices \
         WHERE station_id IN ({SCOPE}) AND issued_at >= $4 AND issued_at < $5"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(pool)
        .await)?)
}

/// A slot's capacity and bookings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlotRow {
    pub station_id: i64,
    pub starts_at: i64,
    pub capacity: i64,
    pub booked: i64,
}

/// Slots of the scope's stations starting in `[lo, hi)`.
pub async fn slots(db: &Db, scope: Scope<'_>, lo: i64, hi: i64) -> Result<Vec<SlotRow>, StoreError> {
    let sql = format!(
        "SELECT station_id, starts_at, capacity, booked FROM slots \
         WHERE station_id IN ({SCOPE}) AND starts_at >= $4 AND starts_at < $5"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(pool)
        .await)?)
}

/// A station's bookable connector ids.
pub async fn bookable_connectors(db: &Db, station_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_scalar(
        "SELECT connector_id FROM station_connectors WHERE station_id = $1 AND bookable = 1 ORDER BY connector_id"
    )
    .bind(station_id)
    .fetch_all(pool)
    .await)?)
}

/// One recorded status (`connector_key` 0: the charger's Online/Offline).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusRow {
    pub connector_key: i64,
    pub status: String,
    pub at: i64,
}

/// A charger's status history relevant to `[lo, hi)`: the last change of each connector (and of
/// the charger) before `lo`, then every change up to `hi`, in time order.
pub async fn status_history(db: &Db, central_station_id: &str, lo: i64, hi: i64) -> Result<Vec<StatusRow>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_as(
        "SELECT connector_key, status, at FROM ( \
           SELECT connector_key, status, at, id, \
                  ROW_NUMBER() OVER (PARTITION BY connector_key ORDER BY at DESC, id DESC) AS n \
           FROM status_history WHERE central_station_id = $1 AND at < $2 \
         ) earlier WHERE n = 1 \
         UNION ALL \
         SELECT connector_key, status, at FROM status_history WHERE central_station_id = $1 AND at >= $2 AND at < $3 \
         ORDER BY at"
    )
    .bind(central_station_id)
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await)?)
}

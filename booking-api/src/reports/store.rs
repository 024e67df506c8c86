//! The rows reports read, each query limited to the caller's stations (the scope is part of the
//! SQL, never a filter applied afterwards) and to a UTC window; the exact local-date cut is
//! [`super::figures::Range::local_date`]'s.

use crate::api::auth::Caller;
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
        "SELECT {} FROM stations WHERE id IN ({SCOPE}) ORDER BY id",
        crate::stations::store::COLUMNS
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .fetch_all(pool)
        .await)?)
}

/// Rows are summed per 15 minutes of UTC time: every time zone's offset is a multiple of 15
/// minutes, so one bucket never straddles a local midnight or hour, and the service places each
/// bucket on its local date and hour.
pub const BUCKET_MS: i64 = 900_000;

/// Whether an aggregate is per 15-minute bucket (a series) or over the whole range (a summary,
/// far fewer groups to build and send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Bucket,
    Range,
}

impl Per {
    /// The bucket column of `at_column`'s rows (0 for the whole range).
    fn bucket(self, at_column: &str) -> String {
        match self {
            Per::Bucket => format!("{at_column} / {BUCKET_MS}"),
            Per::Range => "CAST(0 AS BIGINT)".into(),
        }
    }

    /// The GROUP BY list: the bucket (column 1, per bucket only) and `others` more columns.
    fn group_by(self, others: usize) -> String {
        let first = if self == Per::Bucket { 1 } else { 2 };
        (first..=1 + others)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The stations of the caller's scope in one time zone (`$4`).
fn in_zone() -> String {
    format!("{SCOPE} AND time_zone = $4")
}

/// Runs an aggregate `sql` over the scope's stations in one zone: `$1`-`$3` the scope, `$4`
/// the zone, `$5` and `$6` the UTC bounds.
async fn in_zone_query<T>(
    db: &Db,
    sql: &str,
    scope: Scope<'_>,
    zone: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    Ok(on_db!(db, |pool| sqlx::query_as(sql)
        .bind(scope.caller.role.as_str())
        .bind(scope.caller.id)
        .bind(scope.station_id)
        .bind(zone)
        .bind(lo)
        .bind(hi)
        .fetch_all(pool)
        .await)?)
}

/// Bookings whose slot starts in one 15-minute bucket, by status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookingCount {
    pub bucket: i64,
    pub status: String,
    pub exception: Option<String>,
    pub n: i64,
}

/// Bookings of the scope's stations in `zone` whose slot starts in `[lo, hi)`, counted.
pub async fn booking_counts(
    db: &Db,
    scope: Scope<'_>,
    per: Per,
    zone: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<BookingCount>, StoreError> {
    let sql = format!(
        "SELECT {} AS bucket, status, exception, COUNT(*) AS n FROM bookings \
         WHERE station_id IN ({}) AND starts_at >= $5 AND starts_at < $6 GROUP BY {}",
        per.bucket("starts_at"),
        in_zone(),
        per.group_by(2)
    );
    in_zone_query(db, &sql, scope, zone, lo, hi).await
}

/// Sessions that started in one bucket: how many, their energy, and the length of those ended.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SessionSum {
    pub bucket: i64,
    pub sessions: i64,
    pub energy_wh: i64,
    pub ended: i64,
    pub seconds: i64,
}

/// Sessions at the scope's stations in `zone` that started in `[lo, hi)`, summed. The energy is
/// the receipt's rule ([`crate::sessions::reconcile::energy`]) written in SQL: the stop (or the
/// latest register) less the start (or the first register), a negative difference or a missing
/// reading counting 0.
pub async fn session_sums(
    db: &Db,
    scope: Scope<'_>,
    per: Per,
    zone: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<SessionSum>, StoreError> {
    let group = match per {
        Per::Bucket => " GROUP BY 1",
        Per::Range => "",
    };
    let sql = format!(
        "SELECT {} AS bucket, COUNT(*) AS sessions, \
         CAST(COALESCE(SUM(CASE WHEN COALESCE(meter_stop_wh, register_wh) - COALESCE(meter_start_wh, first_register_wh) >= 0 \
              THEN COALESCE(meter_stop_wh, register_wh) - COALESCE(meter_start_wh, first_register_wh) ELSE 0 END), 0) AS BIGINT) AS energy_wh, \
         CAST(COALESCE(SUM(CASE WHEN ended_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS ended, \
         CAST(COALESCE(SUM(CASE WHEN ended_at > started_at THEN (ended_at - started_at) / 1000 ELSE 0 END), 0) AS BIGINT) AS seconds \
         FROM charging_sessions WHERE station_id IN ({}) AND started_at >= $5 AND started_at < $6{group}",
        per.bucket("started_at"),
        in_zone()
    );
    in_zone_query(db, &sql, scope, zone, lo, hi).await
}

/// Invoices less credit notes (negative) issued in one bucket, per currency.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevenueSum {
    pub bucket: i64,
    pub currency: String,
    pub total: i64,
}

/// Revenue of the scope's stations in `zone` issued in `[lo, hi)`.
pub async fn revenue_sums(
    db: &Db,
    scope: Scope<'_>,
    per: Per,
    zone: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<RevenueSum>, StoreError> {
    let sql = format!(
        "SELECT {} AS bucket, currency, CAST(SUM(total_incl_vat) AS BIGINT) AS total FROM invoices \
         WHERE station_id IN ({}) AND issued_at >= $5 AND issued_at < $6 GROUP BY {}",
        per.bucket("issued_at"),
        in_zone(),
        per.group_by(1)
    );
    in_zone_query(db, &sql, scope, zone, lo, hi).await
}

/// A station's slots starting in one bucket: how many, their capacity and booked units.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlotSum {
    pub station_id: i64,
    pub bucket: i64,
    pub slots: i64,
    pub capacity: i64,
    pub booked: i64,
}

/// Slots of the scope's stations in `zone` starting in `[lo, hi)`, per station and bucket.
pub async fn slot_sums(db: &Db, scope: Scope<'_>, zone: &str, lo: i64, hi: i64) -> Result<Vec<SlotSum>, StoreError> {
    let sql = format!(
        "SELECT station_id, starts_at / {BUCKET_MS} AS bucket, COUNT(*) AS slots, \
         CAST(SUM(capacity) AS BIGINT) AS capacity, CAST(SUM(booked) AS BIGINT) AS booked FROM slots \
         WHERE station_id IN ({}) AND starts_at >= $5 AND starts_at < $6 GROUP BY 1, 2",
        in_zone()
    );
    in_zone_query(db, &sql, scope, zone, lo, hi).await
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

/// A charger's status history relevant to `[lo, hi)` for the station's bookable connectors and
/// the charger itself (key 0): the last change of each before `lo` (one indexed lookup per key),
/// then every change up to `hi`, in time order.
pub async fn status_history(
    db: &Db,
    central_station_id: &str,
    station_id: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<StatusRow>, StoreError> {
    let latest = |column: &str| {
        format!(
            "(SELECT h.{column} FROM status_history h WHERE h.central_station_id = $1 AND h.connector_key = k.connector_key \
             AND h.at < $2 ORDER BY h.at DESC, h.id DESC LIMIT 1)"
        )
    };
    let sql = format!(
        "SELECT connector_key, status, at FROM ( \
           SELECT k.connector_key, {} AS status, {} AS at FROM ( \
             SELECT connector_id AS connector_key FROM station_connectors WHERE station_id = $4 AND bookable = 1 \
             UNION SELECT 0 \
           ) k \
         ) earlier WHERE status IS NOT NULL \
         UNION ALL \
         SELECT connector_key, status, at FROM status_history WHERE central_station_id = $1 AND at >= $2 AND at < $3 \
         ORDER BY at",
        latest("status"),
        latest("at")
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(central_station_id)
        .bind(lo)
        .bind(hi)
        .bind(station_id)
        .fetch_all(pool)
        .await)?)
}

//! Meter readings: batched inserts (the hot path) and reads for the REST API.

use super::types::Ts;
use super::{on_db, Store, StoreError};
use ocpp::model::Sample;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A reading to store.
#[derive(Debug, Clone)]
pub struct MeterRow {
    /// Station.
    pub station_id: Arc<str>,
    /// CSMS transaction id, when the reading belongs to one.
    pub transaction_id: Option<i64>,
    /// EVSE id.
    pub evse_id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// The normalised reading.
    pub sample: Sample,
}

/// A stored reading.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterValue {
    /// Row id (the pagination cursor).
    pub id: i64,
    /// Station.
    pub station_id: String,
    /// CSMS transaction id.
    pub transaction_id: Option<i64>,
    /// EVSE id.
    pub evse_id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// Measurement instant.
    pub sampled_at: Ts,
    /// OCPP measurand.
    pub measurand: String,
    /// Phase (empty when none).
    pub phase: String,
    /// Location.
    pub location: String,
    /// Context.
    pub context: String,
    /// Normalised unit (`Wh`, `W`, `A`, `V`, `Percent`, ...).
    pub unit: String,
    /// Value in that unit.
    pub value: f64,
}

/// Filters of the reading list.
#[derive(Debug, Clone, Default)]
pub struct MeterFilter {
    /// Only this station.
    pub station_id: Option<String>,
    /// Only this transaction.
    pub transaction_id: Option<i64>,
    /// Only this measurand.
    pub measurand: Option<String>,
}

/// Rows per INSERT statement: 11 binds each stays far below SQLite's 32,766-variable limit.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Inserts readings in one database transaction; replayed readings are ignored.
    pub async fn insert_meter_values(&self, rows: &[MeterRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        on_db!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO meter_values (station_id, transaction_id, evse_id, connector_id, sampled_at, \
                     measurand, phase, location, context, unit, value) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&*r.station_id)
                        .push_bind(r.transaction_id)
                        .push_bind(r.evse_id)
                        .push_bind(r.connector_id)
                        .push_bind(Ts::from_datetime(r.sample.timestamp))
                        .push_bind(r.sample.measurand.as_str())
                        .push_bind(r.sample.phase.as_deref().unwrap_or(""))
                        .push_bind(r.sample.location.as_str())
                        .push_bind(r.sample.context.as_str())
                        .push_bind(r.sample.unit.as_str())
                        .push_bind(r.sample.value);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A page of readings in insertion order, after the cursor `after`.
    pub async fn meter_values(
        &self,
        filter: &MeterFilter,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MeterValue>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, MeterValue>(
                "SELECT id, station_id, transaction_id, evse_id, connector_id, sampled_at, measurand, phase, \
                 location, context, unit, value FROM meter_values \
                 WHERE id > $1 AND ($2 = '' OR station_id = $2) AND ($3 < 0 OR transaction_id = $3) \
                 AND ($4 = '' OR measurand = $4) ORDER BY id LIMIT $5",
            )
            .bind(after.unwrap_or(0))
            .bind(filter.station_id.as_deref().unwrap_or(""))
            .bind(filter.transaction_id.unwrap_or(-1))
            .bind(filter.measurand.as_deref().unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}

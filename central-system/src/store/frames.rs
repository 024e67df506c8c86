//! The recent OCPP frame log per station, with bounded retention.

use super::types::Ts;
use super::{on_db, Store, StoreError};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A frame to log.
#[derive(Debug, Clone)]
pub struct FrameRow {
    /// Station.
    pub station_id: Arc<str>,
    /// When it was sent or received.
    pub at: Ts,
    /// `in` (from the station) or `out` (to the station).
    pub direction: &'static str,
    /// The frame text.
    pub frame: String,
}

/// A logged frame.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedFrame {
    /// Row id (the pagination cursor).
    pub id: i64,
    /// When.
    pub logged_at: Ts,
    /// `in` or `out`.
    pub direction: String,
    /// The frame text.
    pub frame: String,
}

impl Store {
    /// Appends frames in one database transaction.
    pub async fn insert_frames(&self, rows: &[FrameRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        on_db!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(1000) {
                let mut qb =
                    sqlx::QueryBuilder::new("INSERT INTO ocpp_frames (station_id, logged_at, direction, frame) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&*r.station_id)
                        .push_bind(r.at)
                        .push_bind(r.direction)
                        .push_bind(r.frame.as_str());
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Keeps only the newest `keep` frames of a station.
    pub async fn prune_frames(&self, station_id: &str, keep: i64) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query(
                "DELETE FROM ocpp_frames WHERE station_id = $1 AND id < \
                 (SELECT id FROM ocpp_frames WHERE station_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(station_id)
            .bind(keep - 1)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// The newest frames of a station, newest first, below the cursor `before`.
    pub async fn frames(
        &self,
        station_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoggedFrame>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, LoggedFrame>(
                "SELECT id, logged_at, direction, frame FROM ocpp_frames WHERE station_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(station_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}

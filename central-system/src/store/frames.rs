//! The recent OCPP frame log per station, with bounded retention.
//!
//! A frame is stored cut to at most `--max-frame-bytes` (with its size as received, so the API
//! can say it was truncated); how many bytes the log may hold per station, in total and for
//! stations that are not Accepted is enforced by [`super::retention`].

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
    /// The frame text, possibly cut to the size limit.
    pub frame: String,
    /// Size of the frame as received, when `frame` was cut short.
    pub original_size: Option<i64>,
}

impl FrameRow {
    /// A row holding at most `max_bytes` of `text` (cut at a character boundary); only what is
    /// kept is copied, so a huge frame costs no more than a small one.
    pub fn new(station_id: Arc<str>, direction: &'static str, text: &str, max_bytes: usize) -> FrameRow {
        let (kept, original_size) = truncate(text, max_bytes);
        FrameRow {
            station_id,
            at: Ts::now(),
            direction,
            frame: kept.to_owned(),
            original_size,
        }
    }

    /// Bytes this row stores.
    pub fn size(&self) -> i64 {
        self.frame.len() as i64
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character
/// boundary, and the original size when that prefix is not the whole text.
pub fn truncate(text: &str, max_bytes: usize) -> (&str, Option<i64>) {
    if text.len() <= max_bytes {
        return (text, None);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], Some(text.len() as i64))
}

/// A logged frame.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedFrame {
    /// Row id (the pagination cursor).
    pub id: i64,
    /// When.
    pub logged_at: Ts,
    /// `in` or `out`.
    pub direction: String,
    /// The frame text (its beginning only, when `truncated`).
    pub frame: String,
    /// Whether the frame was longer than the stored text (cut to `--max-frame-bytes`).
    pub truncated: bool,
    /// The frame's size in bytes as sent or received.
    pub original_size: i64,
}

#[derive(sqlx::FromRow)]
struct FrameRecord {
    id: i64,
    logged_at: Ts,
    direction: String,
    frame: String,
    original_size: Option<i64>,
}

impl From<FrameRecord> for LoggedFrame {
    fn from(r: FrameRecord) -> LoggedFrame {
        LoggedFrame {
            id: r.id,
            logged_at: r.logged_at,
            direction: r.direction,
            truncated: r.original_size.is_some(),
            original_size: r.original_size.unwrap_or(r.frame.len() as i64),
            frame: r.frame,
        }
    }
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
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO ocpp_frames (station_id, logged_at, direction, frame, size, original_size) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&*r.station_id)
                        .push_bind(r.at)
                        .push_bind(r.direction)
                        .push_bind(r.frame.as_str())
                        .push_bind(r.size())
                        .push_bind(r.original_size);
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest frames of a station, newest first, below the cursor `before`.
    pub async fn frames(
        &self,
        station_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoggedFrame>, StoreError> {
        let rows = on_db!(self.db(), |pool| {
            sqlx::query_as::<_, FrameRecord>(
                "SELECT id, logged_at, direction, frame, original_size FROM ocpp_frames \
                 WHERE station_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(station_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(LoggedFrame::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters_and_reports_the_original_size() {
        assert_eq!(truncate("abc", 3), ("abc", None));
        assert_eq!(truncate("abcd", 3), ("abc", Some(4)));
        // "é" is two bytes: a cut inside it steps back to the character before.
        assert_eq!(truncate("aé", 2), ("a", Some(3)));
        assert_eq!(truncate("é", 0), ("", Some(2)));
    }
}

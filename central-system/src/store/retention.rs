//! Storage budgets of the frame log and the stored charger messages: what a charger can make
//! the central system keep is bounded in bytes, whoever it is.
//!
//! Rules (each budget in bytes of stored text, pruned oldest first):
//! - **Frame log, per station**: the newest `rows_per_station` frames within
//!   `bytes_per_station`. Every 30 s the stations that logged a quarter of either budget since
//!   their last prune are pruned (so a station may hold up to 1.25 times its row budget, and
//!   10,000 stations sending a reading a minute cost a few prunes a second, not 10,000 every
//!   sweep), and a station that logged more than half its byte budget is pruned at once.
//! - **Frame log, total**: `total_bytes` across all stations. The writer keeps an estimate of
//!   the stored total (measured once, then updated with every insert and prune) and prunes the
//!   whole log oldest first whenever the estimate goes over.
//! - **Stations that are not Accepted** (auto-registered `Pending` ones in particular): their
//!   frames share one small budget, `pending_bytes`. It is checked before a frame is even
//!   copied: once the stored and queued frames of such stations reach it, their frames are not
//!   logged until the next 30 s sweep prunes them (oldest first, down to half the budget).
//! - **Messages** (`station_messages`: DataTransfer, NotifyReport, security events...): kept
//!   `retention`, within a per-station and a total budget, enforced by [`MessageRetention`]
//!   on the insert path (same half-budget trigger) and by a periodic sweep.
//!
//! All pruning runs either on the batch writer's thread (frames: the only writer of that table,
//! so a prune never races an insert) or on the inserting request (messages).

use super::frames::FrameRow;
use super::messages::truncate_payload;
use super::types::Ts;
use super::{on_db, Store, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which rows a prune looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One station's rows.
    Station(&'a str),
    /// All rows.
    All,
    /// Rows of stations that are not registered as Accepted (or not registered at all).
    NotAccepted,
}

/// The tables with budgets.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// `ocpp_frames`.
    Frames,
    /// `station_messages`.
    Messages,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Frames => "ocpp_frames",
            Table::Messages => "station_messages",
        }
    }
}

impl Scope<'_> {
    /// The SQL condition; a station id is bound as `$n`.
    fn filter(self, n: usize) -> String {
        match self {
            Scope::Station(_) => format!("station_id = ${n}"),
            Scope::All => "1 = 1".to_string(),
            Scope::NotAccepted => {
                "station_id NOT IN (SELECT id FROM stations WHERE registration_status = 'Accepted')".to_string()
            }
        }
    }
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows deleted.
    pub rows: u64,
    /// Bytes deleted.
    pub bytes: i64,
    /// Bytes left in the scope.
    pub kept_bytes: i64,
}

#[derive(sqlx::FromRow)]
struct Cutoff {
    cutoff: i64,
    dropped: i64,
    total: i64,
}

impl Store {
    /// Deletes the oldest rows of `scope` beyond the newest `keep_rows` rows or `keep_bytes`
    /// bytes, whichever is reached first.
    pub async fn prune_oldest(
        &self,
        table: Table,
        scope: Scope<'_>,
        keep_rows: i64,
        keep_bytes: i64,
    ) -> Result<Pruned, StoreError> {
        let table_name = table.name();
        let select = format!(
            "SELECT CAST(COALESCE(MAX(CASE WHEN rn > $1 OR running > $2 THEN id END), 0) AS BIGINT) AS cutoff, \
               CAST(COALESCE(SUM(CASE WHEN rn > $1 OR running > $2 THEN size ELSE 0 END), 0) AS BIGINT) AS dropped, \
               CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total \
             FROM (SELECT id, size, ROW_NUMBER() OVER (ORDER BY id DESC) AS rn, \
                     SUM(size) OVER (ORDER BY id DESC) AS running \
                   FROM {table_name} WHERE {}) ranked",
            scope.filter(3)
        );
        let delete = format!("DELETE FROM {table_name} WHERE id <= $1 AND {}", scope.filter(2));
        let station = match scope {
            Scope::Station(s) => Some(s),
            _ => None,
        };
        Ok(on_db!(self.db(), |pool| {
            let mut query = sqlx::query_as::<_, Cutoff>(&select).bind(keep_rows).bind(keep_bytes);
            if let Some(s) = station {
                query = query.bind(s);
            }
            let c = query.fetch_one(pool).await?;
            if c.cutoff == 0 {
                Pruned {
                    rows: 0,
                    bytes: 0,
                    kept_bytes: c.total,
                }
            } else {
                let mut delete = sqlx::query(&delete).bind(c.cutoff);
                if let Some(s) = station {
                    delete = delete.bind(s);
                }
                let rows = delete.execute(pool).await?.rows_affected();
                Pruned {
                    rows,
                    bytes: c.dropped,
                    kept_bytes: c.total - c.dropped,
                }
            }
        }))
    }

    /// Bytes stored in `table` for `scope`.
    pub async fn stored_bytes(&self, table: Table, scope: Scope<'_>) -> Result<i64, StoreError> {
        // Nothing is deleted: i64::MAX keeps everything and returns the total.
        self.prune_oldest(table, scope, i64::MAX, i64::MAX)
            .await
            .map(|p| p.kept_bytes)
    }

    /// Deletes messages received before `cutoff`.
    pub async fn delete_messages_before(&self, cutoff: Ts) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM station_messages WHERE received_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Stations whose stored messages exceed `bytes`.
    pub async fn stations_over_message_budget(&self, bytes: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT station_id FROM station_messages GROUP BY station_id HAVING SUM(size) > $1",
            )
            .bind(bytes)
            .fetch_all(pool)
            .await?
        }))
    }
}

/// Budgets of the frame log.
#[derive(Debug, Clone, Copy)]
pub struct FrameBudget {
    /// Frames kept per station.
    pub rows_per_station: i64,
    /// Bytes kept per station.
    pub bytes_per_station: i64,
    /// Bytes kept in total.
    pub total_bytes: i64,
    /// Bytes kept in total for stations that are not Accepted.
    pub not_accepted_bytes: i64,
}

impl Default for FrameBudget {
    fn default() -> Self {
        FrameBudget {
            rows_per_station: 500,
            bytes_per_station: 4 << 20,
            total_bytes: 1 << 30,
            not_accepted_bytes: 1 << 20,
        }
    }
}

/// The admission check for frames of stations that are not Accepted, shared by the sessions
/// (which ask before copying a frame) and the writer (which prunes and recounts).
#[derive(Debug)]
pub struct NotAcceptedFrames {
    budget: i64,
    /// Stored plus queued bytes of such frames.
    bytes: AtomicI64,
}

impl NotAcceptedFrames {
    /// A check against `budget` bytes.
    pub fn new(budget: i64) -> NotAcceptedFrames {
        NotAcceptedFrames {
            budget,
            bytes: AtomicI64::new(0),
        }
    }

    /// Whether another frame may be logged; its size is added once it is built.
    pub fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) < self.budget
    }

    /// Counts a queued frame.
    pub fn add(&self, bytes: i64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn set(&self, bytes: i64) {
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

/// The frame log's pruning state, owned by the batch writer.
#[derive(Debug)]
pub struct FrameRetention {
    budget: FrameBudget,
    not_accepted: Arc<NotAcceptedFrames>,
    /// Rows and bytes logged per station since its last prune.
    since_prune: HashMap<Arc<str>, (i64, i64)>,
    /// Estimate of the bytes stored in total (None until measured).
    total: Option<i64>,
    last_sweep: Instant,
    measured: bool,
}

/// How often every station that logged frames is pruned to its row and byte budget.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

impl FrameRetention {
    /// Pruning state for `budget`.
    pub fn new(budget: FrameBudget) -> FrameRetention {
        FrameRetention {
            budget,
            not_accepted: Arc::new(NotAcceptedFrames::new(budget.not_accepted_bytes)),
            since_prune: HashMap::new(),
            total: None,
            last_sweep: Instant::now(),
            measured: false,
        }
    }

    /// The admission check sessions share.
    pub fn not_accepted(&self) -> Arc<NotAcceptedFrames> {
        self.not_accepted.clone()
    }

    /// Counts rows about to be committed.
    pub fn note(&mut self, rows: &[FrameRow]) {
        for row in rows {
            let size = row.size();
            match self.since_prune.get_mut(&row.station_id) {
                Some((rows, bytes)) => {
                    *rows += 1;
                    *bytes += size;
                }
                None => {
                    self.since_prune.insert(row.station_id.clone(), (1, size));
                }
            }
            if let Some(total) = self.total.as_mut() {
                *total += size;
            }
        }
    }

    /// Prunes whatever is over budget; called after each commit. Errors are logged: the frame
    /// log is best effort and the next call tries again.
    pub async fn prune(&mut self, store: &Store) {
        if let Err(e) = self.try_prune(store).await {
            tracing::warn!(error = %e, "pruning the frame log failed");
        }
    }

    async fn try_prune(&mut self, store: &Store) -> Result<(), StoreError> {
        let b = self.budget;
        if !self.measured {
            // The first call measures what earlier runs left, and trims it to the budgets.
            self.measured = true;
            let kept = store
                .prune_oldest(Table::Frames, Scope::NotAccepted, i64::MAX, b.not_accepted_bytes / 2)
                .await?;
            self.not_accepted.set(kept.kept_bytes);
            self.total = Some(store.stored_bytes(Table::Frames, Scope::All).await?);
        }
        let sweep = self.last_sweep.elapsed() >= SWEEP_EVERY;
        let due: Vec<Arc<str>> = self
            .since_prune
            .iter()
            .filter(|(_, (rows, bytes))| {
                *bytes > b.bytes_per_station / 2
                    || (sweep && (*rows >= b.rows_per_station / 4 || *bytes >= b.bytes_per_station / 4))
            })
            .map(|(station, _)| station.clone())
            .collect();
        for station in due {
            self.since_prune.remove(&station);
            let pruned = store
                .prune_oldest(
                    Table::Frames,
                    Scope::Station(&station),
                    b.rows_per_station,
                    b.bytes_per_station,
                )
                .await?;
            if let Some(total) = self.total.as_mut() {
                *total -= pruned.bytes;
            }
        }
        if sweep {
            self.last_sweep = Instant::now();
        }
        if self.total.is_some_and(|t| t > b.total_bytes) {
            let pruned = store
                .prune_oldest(Table::Frames, Scope::All, i64::MAX, b.total_bytes)
                .await?;
            self.total = Some(pruned.kept_bytes);
        }
        // Only at the sweep, not whenever the budget fills: pruning at once would let such
        // stations churn half the budget per commit through the log (and PostgreSQL's dead
        // rows); this way they add at most the budget per sweep interval.
        if sweep {
            let pruned = store
                .prune_oldest(Table::Frames, Scope::NotAccepted, i64::MAX, b.not_accepted_bytes / 2)
                .await?;
            self.not_accepted.set(pruned.kept_bytes);
        }
        Ok(())
    }
}

/// Budgets of the stored charger messages.
#[derive(Debug, Clone, Copy)]
pub struct MessageBudget {
    /// Largest payload stored whole; longer ones are cut to this size and marked.
    pub max_payload_bytes: usize,
    /// Bytes kept per station.
    pub bytes_per_station: i64,
    /// Bytes kept in total.
    pub total_bytes: i64,
    /// How long a message is kept.
    pub retention: Duration,
}

impl Default for MessageBudget {
    fn default() -> Self {
        MessageBudget {
            max_payload_bytes: 64 << 10,
            bytes_per_station: 16 << 20,
            total_bytes: 1 << 30,
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Stores charger messages within [`MessageBudget`].
#[derive(Debug)]
pub struct MessageRetention {
    budget: MessageBudget,
    /// Bytes stored per station since its last prune, and in total since the last total prune.
    since_prune: Mutex<(HashMap<String, i64>, i64)>,
}

impl MessageRetention {
    /// Retention for `budget`.
    pub fn new(budget: MessageBudget) -> MessageRetention {
        MessageRetention {
            budget,
            since_prune: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Stores a message (cut to the payload limit), then prunes the station's or all messages
    /// when what was added since their last prune passes half a budget.
    pub async fn keep(
        &self,
        store: &Store,
        station_id: &str,
        action: &str,
        payload: &str,
        events: &[evcs_bus::EventEnvelope],
        now: Ts,
    ) -> Result<(), StoreError> {
        let (kept, original_size) = truncate_payload(payload, self.budget.max_payload_bytes);
        store
            .insert_station_message(station_id, action, kept, original_size, events, now)
            .await?;
        let size = kept.len() as i64;
        let (prune_station, prune_all) = {
            let mut guard = self.since_prune.lock().unwrap_or_else(|p| p.into_inner());
            let (stations, total) = &mut *guard;
            *total += size;
            let station_bytes = match stations.get_mut(station_id) {
                Some(bytes) => {
                    *bytes += size;
                    *bytes
                }
                None => {
                    // Bounded: the map is cleared at each sweep.
                    stations.insert(station_id.to_owned(), size);
                    size
                }
            };
            let prune_station = station_bytes > self.budget.bytes_per_station / 2;
            if prune_station {
                stations.remove(station_id);
            }
            let prune_all = *total > self.budget.total_bytes / 2;
            if prune_all {
                *total = 0;
            }
            (prune_station, prune_all)
        };
        if prune_station {
            store
                .prune_oldest(
                    Table::Messages,
                    Scope::Station(station_id),
                    i64::MAX,
                    self.budget.bytes_per_station,
                )
                .await?;
        }
        if prune_all {
            store
                .prune_oldest(Table::Messages, Scope::All, i64::MAX, self.budget.total_bytes)
                .await?;
        }
        Ok(())
    }

    /// Deletes messages older than the retention and trims every station and the total to
    /// their budgets; the service runs it periodically.
    pub async fn sweep(&self, store: &Store, now: Ts) -> Result<u64, StoreError> {
        let age = chrono::Duration::from_std(self.budget.retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = Ts::from_datetime(now.to_datetime() - age);
        let mut deleted = store.delete_messages_before(cutoff).await?;
        for station in store
            .stations_over_message_budget(self.budget.bytes_per_station)
            .await?
        {
            deleted += store
                .prune_oldest(
                    Table::Messages,
                    Scope::Station(&station),
                    i64::MAX,
                    self.budget.bytes_per_station,
                )
                .await?
                .rows;
        }
        deleted += store
            .prune_oldest(Table::Messages, Scope::All, i64::MAX, self.budget.total_bytes)
            .await?
            .rows;
        let mut guard = self.since_prune.lock().unwrap_or_else(|p| p.into_inner());
        *guard = (HashMap::new(), 0);
        Ok(deleted)
    }
}

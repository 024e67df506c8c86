//! The batch writer: meter readings and frame-log rows reach the database in batches.
//!
//! Durability contract: a handler hands its readings (and a 2.0.1 seqNo, see [`SeqNoSeen`]) to
//! [`BatchWriter::commit`], which returns only once they are committed, and only then does the
//! charger get its CALLRESULT. A charger deletes a message once it is acknowledged, so an
//! acknowledgement before the commit loses the readings for good when the process dies.
//!
//! Group commit keeps that cheap: the writer commits as soon as anything is queued, and whatever
//! queues while that commit runs forms the next batch, which is acknowledged as a whole. Under
//! load batches grow by themselves; an idle charger waits one commit. `max_wait` (the service's
//! `--meter-flush-ms`, default 0) optionally holds a batch open a little longer for more rows.
//!
//! A commit that fails is retried `commit_attempts` times with backoff; if it still fails,
//! every waiter of the batch learns [`CommitFailed`] and its charger gets an InternalError
//! CALLERROR, so it keeps the message and sends it again. When the channel is full, senders
//! wait (back-pressure reaches the chargers as slower answers). On a clean shutdown the service
//! waits for its sessions and then calls [`BatchWriter::flush`] for the frame log.
//!
//! What a commit means after a power loss depends on the database: PostgreSQL with
//! `synchronous_commit = on` (its default) has it on disk; SQLite in WAL mode with
//! `synchronous=NORMAL` (our default) survives a process crash but may lose the last commits
//! on power loss, `synchronous=FULL` does not (see docs/architecture.md).
//!
//! Frame-log rows are best effort and never slow a charger down: they go to a separate buffer
//! capped at `max_frames_per_flush` rows per `frame_flush_interval`; beyond that they are
//! dropped and counted. They are written after the readings' commit is acknowledged, and
//! their byte budgets are kept by [`FrameRetention`].

use super::frames::FrameRow;
use super::meter_values::MeterRow;
use super::retention::{FrameBudget, FrameRetention, NotAcceptedFrames};
use super::types::Ts;
use super::Store;
use evcs_bus::EventEnvelope;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};

/// Tuning of the batch writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// How long a batch stays open for more rows after its first one (zero: commit at once and
    /// let the next batch gather while this one commits).
    pub max_wait: Duration,
    /// Rows that close a batch.
    pub max_batch_rows: usize,
    /// Attempts at committing a batch before its waiters are told it failed.
    pub commit_attempts: u32,
    /// Row and byte budgets of the frame log.
    pub frame_budget: FrameBudget,
    /// Whether frames are logged at all.
    pub log_frames: bool,
    /// How often buffered frame-log rows are written.
    pub frame_flush_interval: Duration,
    /// Frame-log rows kept per `frame_flush_interval`; more are dropped (and counted).
    pub max_frames_per_flush: usize,
    /// Notified after a commit that wrote outbox rows (the service's publisher waits on it).
    pub outbox_wake: Arc<Notify>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_wait: Duration::ZERO,
            max_batch_rows: 20_000,
            commit_attempts: 8,
            frame_budget: FrameBudget::default(),
            log_frames: true,
            frame_flush_interval: Duration::from_millis(100),
            max_frames_per_flush: 1_000,
            outbox_wake: Arc::default(),
        }
    }
}

/// The readings handed to [`BatchWriter::commit`] were not stored: the charger must not get a
/// CALLRESULT for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch writer could not commit the readings")]
pub struct CommitFailed;

/// Tells one sender how its batch ended.
type Ack = oneshot::Sender<Result<(), CommitFailed>>;

enum Op {
    /// Rows, an optional seqNo and outbox events to commit, and whom to tell.
    Commit(Vec<MeterRow>, Option<SeqNoSeen>, Vec<EventEnvelope>, Ack),
    /// Write the frame log now too, then answer.
    Flush(Ack),
}

/// A 2.0.1 seqNo seen in an event that changed nothing else in its transaction: recorded with
/// the batch (the highest per transaction) instead of by a statement per event.
#[derive(Debug, Clone, Copy)]
pub struct SeqNoSeen {
    /// CSMS transaction id.
    pub transaction_id: i64,
    /// The event's seqNo.
    pub seq_no: i64,
    /// When the event was received.
    pub at: Ts,
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Readings committed.
    pub meter_rows_written: AtomicU64,
    /// Frame rows dropped because the queue was full.
    pub frames_dropped: AtomicU64,
    /// Batches that failed to commit after all retries.
    pub failed_batches: AtomicU64,
    /// Batches of readings committed (readings per batch show how well commits are grouped).
    pub batches_committed: AtomicU64,
}

/// Handle to the batch writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct BatchWriter {
    tx: mpsc::Sender<Op>,
    log_frames: bool,
    max_frames: usize,
    frames: Arc<Mutex<Vec<FrameRow>>>,
    not_accepted: Arc<NotAcceptedFrames>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Commit(rows, seen, events, _) => {
                write!(f, "Commit({} rows, {seen:?}, {} events)", rows.len(), events.len())
            }
            Op::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl BatchWriter {
    /// Starts the writer on its own thread with its own connection to `database_url` (already
    /// migrated); the thread ends after every handle is dropped and the last batch is written.
    ///
    /// Why a thread: as a task among thousands of busy charger sessions, every wake-up of the
    /// writer (one per statement it awaits) queued behind all of them, so with 10,000 stations
    /// a commit took most of a second and the full queue stalled every charger.
    pub async fn spawn(database_url: &str, config: WriterConfig) -> anyhow::Result<BatchWriter> {
        let (tx, rx) = mpsc::channel(16_384);
        let stats = Arc::new(WriterStats::default());
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (opened, open_result) = oneshot::channel::<anyhow::Result<()>>();
        let url = database_url.to_owned();
        let retention = FrameRetention::new(config.frame_budget);
        let not_accepted = retention.not_accepted();
        let (thread_config, thread_frames, thread_stats) = (config.clone(), frames.clone(), stats.clone());
        std::thread::Builder::new()
            .name("evcs-batch-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = opened.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match Store::open(&url, 2).await {
                        Ok(store) => store.with_outbox_wake(thread_config.outbox_wake.clone()),
                        Err(e) => {
                            let _ = opened.send(Err(e));
                            return;
                        }
                    };
                    let _ = opened.send(Ok(()));
                    run(store.clone(), thread_config, rx, thread_frames, thread_stats, retention).await;
                    store.close().await;
                });
            })?;
        open_result
            .await
            .map_err(|_| anyhow::anyhow!("the batch writer thread ended before opening the database"))??;
        Ok(BatchWriter {
            tx,
            log_frames: config.log_frames,
            max_frames: config.max_frames_per_flush,
            frames,
            not_accepted,
            stats,
        })
    }

    /// Stores readings and, for a 2.0.1 event that changed nothing else, its seqNo; returns once
    /// they are committed (waiting first while the queue is full). Only then may the charger be
    /// answered.
    pub async fn commit(&self, rows: Vec<MeterRow>, seq_no: Option<SeqNoSeen>) -> Result<(), CommitFailed> {
        self.commit_with_events(rows, seq_no, Vec::new()).await
    }

    /// Like [`BatchWriter::commit`], with outbox events (a transaction's `meterSummary`)
    /// committed in the same database transaction as the batch they arrive in.
    pub async fn commit_with_events(
        &self,
        rows: Vec<MeterRow>,
        seq_no: Option<SeqNoSeen>,
        events: Vec<EventEnvelope>,
    ) -> Result<(), CommitFailed> {
        if rows.is_empty() && seq_no.is_none() && events.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        if self.tx.send(Op::Commit(rows, seq_no, events, done)).await.is_err() {
            tracing::error!("readings handed over after the writer stopped");
            return Err(CommitFailed);
        }
        committed.await.unwrap_or(Err(CommitFailed))
    }

    /// Whether frames are logged (callers skip building rows otherwise).
    pub fn logs_frames(&self) -> bool {
        self.log_frames
    }

    /// Adds a frame-log row unless this interval's quota (or, for a station that is not
    /// `accepted`, their shared byte budget) is used up; the row is only built (its text
    /// copied) when it will be kept.
    pub fn frame_with(&self, accepted: bool, row: impl FnOnce() -> FrameRow) {
        if !self.log_frames {
            return;
        }
        let mut frames = lock(&self.frames);
        if frames.len() < self.max_frames && (accepted || self.not_accepted.has_room()) {
            let row = row();
            if !accepted {
                self.not_accepted.add(row.size());
            }
            frames.push(row);
        } else {
            drop(frames);
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued before this call is committed, the frame log included.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

fn lock(frames: &Mutex<Vec<FrameRow>>) -> std::sync::MutexGuard<'_, Vec<FrameRow>> {
    // Pushing and swapping a Vec cannot leave it inconsistent, so a poisoned lock is usable.
    frames.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one commit writes, and whom it answers.
#[derive(Default)]
struct Batch {
    meters: Vec<MeterRow>,
    seq_nos: HashMap<i64, SeqNoSeen>,
    events: Vec<EventEnvelope>,
    acks: Vec<Ack>,
    /// A flush asked for the frame log to be written with this batch.
    flush_frames: bool,
}

impl Batch {
    fn add(&mut self, op: Op) {
        match op {
            Op::Commit(rows, seen, events, done) => {
                self.meters.extend(rows);
                self.events.extend(events);
                if let Some(seen) = seen {
                    let entry = self.seq_nos.entry(seen.transaction_id).or_insert(seen);
                    if seen.seq_no > entry.seq_no {
                        *entry = seen;
                    }
                }
                self.acks.push(done);
            }
            Op::Flush(done) => {
                self.flush_frames = true;
                self.acks.push(done);
            }
        }
    }

    fn is_full(&self, config: &WriterConfig) -> bool {
        self.meters.len() >= config.max_batch_rows
    }
}

/// Why gathering a batch stopped.
#[derive(PartialEq, Eq)]
enum Gathered {
    /// Nothing more is queued, the wait is over or the batch is full.
    Ready,
    /// Every handle is gone: this is the last batch.
    Closed,
}

/// Moves everything already queued into the batch, without waiting.
fn drain(rx: &mut mpsc::Receiver<Op>, batch: &mut Batch, config: &WriterConfig) -> Gathered {
    while !batch.is_full(config) {
        match rx.try_recv() {
            Ok(op) => batch.add(op),
            Err(mpsc::error::TryRecvError::Empty) => return Gathered::Ready,
            Err(mpsc::error::TryRecvError::Disconnected) => return Gathered::Closed,
        }
    }
    Gathered::Ready
}

/// After the first op: takes what is queued, then (with a `max_wait`) waits for more until
/// the wait ends or the batch fills.
async fn gather(rx: &mut mpsc::Receiver<Op>, batch: &mut Batch, config: &WriterConfig) -> Gathered {
    if drain(rx, batch, config) == Gathered::Closed {
        return Gathered::Closed;
    }
    if config.max_wait.is_zero() || batch.flush_frames {
        return Gathered::Ready;
    }
    let deadline = tokio::time::Instant::now() + config.max_wait;
    while !batch.is_full(config) {
        tokio::select! {
            op = rx.recv() => match op {
                Some(op) => batch.add(op),
                None => return Gathered::Closed,
            },
            _ = tokio::time::sleep_until(deadline) => return Gathered::Ready,
        }
    }
    Gathered::Ready
}

async fn run(
    store: Store,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Op>,
    frame_buffer: Arc<Mutex<Vec<FrameRow>>>,
    stats: Arc<WriterStats>,
    mut retention: FrameRetention,
) {
    let mut last_frames = Instant::now();
    let mut ticker = tokio::time::interval(config.frame_flush_interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Wait for the first op of a batch (or a tick, for frames alone). Whatever queued while
        // the previous commit ran is already waiting here: that is the group commit.
        let mut batch = Batch::default();
        let gathered = tokio::select! {
            op = rx.recv() => match op {
                Some(op) => {
                    batch.add(op);
                    gather(&mut rx, &mut batch, &config).await
                }
                None => Gathered::Closed,
            },
            _ = ticker.tick() => Gathered::Ready,
        };
        let result = commit_readings(&store, &mut batch, &config, &stats).await;
        let frames_due =
            batch.flush_frames || gathered == Gathered::Closed || last_frames.elapsed() >= config.frame_flush_interval;
        if !batch.flush_frames {
            // Readings are acknowledged before the frame log is written: chargers never wait
            // for it. A flush waits for both.
            answer(&mut batch.acks, result);
        }
        if frames_due {
            let frames = std::mem::take(&mut *lock(&frame_buffer));
            retention.note(&frames);
            write_frames(&store, frames).await;
            last_frames = Instant::now();
            retention.prune(&store).await;
        }
        answer(&mut batch.acks, result);
        if gathered == Gathered::Closed {
            break;
        }
    }
    tracing::debug!("batch writer stopped");
}

fn answer(acks: &mut Vec<Ack>, result: Result<(), CommitFailed>) {
    for done in acks.drain(..) {
        let _ = done.send(result);
    }
}

/// Commits a batch's readings and seqNos, retrying with backoff.
async fn commit_readings(
    store: &Store,
    batch: &mut Batch,
    config: &WriterConfig,
    stats: &WriterStats,
) -> Result<(), CommitFailed> {
    if batch.meters.is_empty() && batch.seq_nos.is_empty() && batch.events.is_empty() {
        return Ok(());
    }
    let seen: Vec<SeqNoSeen> = batch.seq_nos.drain().map(|(_, s)| s).collect();
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=config.commit_attempts.max(1) {
        // One database transaction: the readings, the seqNos and the outbox events commit
        // together or not at all. Replayed rows are ignored, a seqNo only ever rises and an
        // event id is written once, so a retry writes nothing twice.
        let result = store.commit_batch(&batch.meters, &seen, &batch.events).await;
        match result {
            Ok(()) => {
                stats
                    .meter_rows_written
                    .fetch_add(batch.meters.len() as u64, Ordering::Relaxed);
                stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => {
                tracing::error!(attempt, error = %e, rows = batch.meters.len(), "committing a batch failed");
                if attempt < config.commit_attempts {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        rows = batch.meters.len(),
        waiters = batch.acks.len(),
        "giving up on a batch: its chargers get InternalError and will resend"
    );
    Err(CommitFailed)
}

/// Writes frame-log rows; best effort, a failure is logged and the rows are dropped.
async fn write_frames(store: &Store, frames: Vec<FrameRow>) {
    if frames.is_empty() {
        return;
    }
    if let Err(e) = store.insert_frames(&frames).await {
        tracing::warn!(error = %e, frames = frames.len(), "writing the frame log failed; rows dropped");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::on_db;

    /// A migrated database per backend: a SQLite file always, PostgreSQL when
    /// `EVCS_TEST_POSTGRES_URL` is set. The temp dir must outlive the test.
    async fn databases() -> Vec<(String, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let mut out = vec![(format!("sqlite://{}", dir.path().join("w.db").display()), dir)];
        if let Ok(base) = std::env::var("EVCS_TEST_POSTGRES_URL") {
            if !base.is_empty() {
                let (url, _) = service_kit::test_db::create(&base, "evcs_test").await;
                out.push((url, tempfile::tempdir().unwrap()));
            }
        }
        for (url, _) in &out {
            Store::connect(url).await.unwrap().close().await;
        }
        out
    }

    fn row(station: &str, ms: i64) -> MeterRow {
        MeterRow {
            station_id: Arc::from(station),
            transaction_id: None,
            evse_id: 1,
            connector_id: 1,
            sampled_at: Ts(ms),
            sample_key: "k".into(),
            energy_wh: Some(ms),
            samples: "[]".into(),
        }
    }

    async fn stored(store: &Store) -> i64 {
        on_db!(store.db(), |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM meter_values")
                .fetch_one(pool)
                .await
                .unwrap()
        })
    }

    async fn execute(store: &Store, sql: &str) {
        on_db!(store.db(), |pool| {
            sqlx::query(sql).execute(pool).await.unwrap();
        });
    }

    #[tokio::test]
    async fn a_commit_returns_once_its_rows_are_readable_elsewhere() {
        for (url, _dir) in databases().await {
            let writer = BatchWriter::spawn(&url, WriterConfig::default()).await.unwrap();
            let reader = Store::open(&url, 1).await.unwrap();
            for i in 0..5 {
                writer.commit(vec![row("CP", i)], None).await.unwrap();
                // No flush, no wait: the acknowledgement itself means committed.
                assert_eq!(stored(&reader).await, i + 1, "{url}");
            }
        }
    }

    #[tokio::test]
    async fn concurrent_commits_share_one_batch_within_max_wait() {
        for (url, _dir) in databases().await {
            let config = WriterConfig {
                max_wait: Duration::from_secs(30),
                max_batch_rows: 200,
                ..WriterConfig::default()
            };
            let writer = BatchWriter::spawn(&url, config).await.unwrap();
            // 200 one-row commits: the batch is full, so it commits long before max_wait ends.
            let commits: Vec<_> = (0..200)
                .map(|i| {
                    let writer = writer.clone();
                    tokio::spawn(async move { writer.commit(vec![row("CP", i)], None).await })
                })
                .collect();
            for commit in commits {
                commit.await.unwrap().unwrap();
            }
            let reader = Store::open(&url, 1).await.unwrap();
            assert_eq!(stored(&reader).await, 200, "{url}");
            assert_eq!(writer.stats().batches_committed.load(Ordering::Relaxed), 1, "{url}");
        }
    }

    #[tokio::test]
    async fn a_batch_that_cannot_commit_fails_every_waiter_and_a_resend_succeeds() {
        for (url, _dir) in databases().await {
            let config = WriterConfig {
                commit_attempts: 2,
                ..WriterConfig::default()
            };
            let writer = BatchWriter::spawn(&url, config).await.unwrap();
            let admin = Store::open(&url, 1).await.unwrap();
            execute(&admin, "ALTER TABLE meter_values RENAME TO meter_values_away").await;
            let commits: Vec<_> = (0..10)
                .map(|i| {
                    let writer = writer.clone();
                    tokio::spawn(async move { writer.commit(vec![row("CP", i)], None).await })
                })
                .collect();
            for commit in commits {
                assert_eq!(commit.await.unwrap(), Err(CommitFailed), "{url}");
            }
            assert!(writer.stats().failed_batches.load(Ordering::Relaxed) >= 1);
            execute(&admin, "ALTER TABLE meter_values_away RENAME TO meter_values").await;
            // The charger resends what was refused; now it is stored.
            writer.commit(vec![row("CP", 3)], None).await.unwrap();
            assert_eq!(stored(&admin).await, 1, "{url}");
        }
    }

    fn summary_event() -> EventEnvelope {
        let station = evcs_bus::StationId::parse("CP").unwrap();
        EventEnvelope::new(
            station,
            chrono::Utc::now(),
            evcs_bus::Event::MeterSummary {
                transaction_id: "1".into(),
                location: evcs_bus::Location::default(),
                energy_wh: Some(5),
                power_w: None,
                soc_percent: None,
                current_a: None,
                at: chrono::Utc::now(),
            },
        )
    }

    #[tokio::test]
    async fn outbox_events_commit_with_their_batch_or_not_at_all() {
        for (url, _dir) in databases().await {
            let config = WriterConfig {
                commit_attempts: 1,
                ..WriterConfig::default()
            };
            let wake = config.outbox_wake.clone();
            let writer = BatchWriter::spawn(&url, config).await.unwrap();
            let admin = Store::open(&url, 1).await.unwrap();
            execute(&admin, "ALTER TABLE meter_values RENAME TO meter_values_away").await;
            let failed = writer
                .commit_with_events(vec![row("CP", 1)], None, vec![summary_event()])
                .await;
            assert_eq!(failed, Err(CommitFailed), "{url}");
            // The readings rolled back, and their summary with them.
            assert!(admin.outbox_rows().await.unwrap().is_empty(), "{url}");
            execute(&admin, "ALTER TABLE meter_values_away RENAME TO meter_values").await;
            let event = summary_event();
            writer
                .commit_with_events(vec![row("CP", 1)], None, vec![event.clone()])
                .await
                .unwrap();
            let rows = admin.outbox_rows().await.unwrap();
            assert_eq!(rows.len(), 1, "{url}");
            assert_eq!(
                (rows[0].event_id.as_str(), rows[0].kind.as_str()),
                (event.event_id.as_str(), "meterSummary")
            );
            assert_eq!(stored(&admin).await, 1, "{url}");
            // The publisher's signal was raised by the commit (a stored permit: no waiting).
            tokio::time::timeout(Duration::from_secs(5), wake.notified())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn flush_writes_the_frame_log() {
        for (url, _dir) in databases().await {
            let config = WriterConfig {
                frame_flush_interval: Duration::from_secs(3600),
                ..WriterConfig::default()
            };
            let writer = BatchWriter::spawn(&url, config).await.unwrap();
            writer.frame_with(true, || FrameRow {
                station_id: Arc::from("CP"),
                at: Ts(1),
                direction: "in",
                frame: "[2,\"1\",\"Heartbeat\",{}]".into(),
                original_size: None,
            });
            writer.flush().await;
            let reader = Store::open(&url, 1).await.unwrap();
            let frames = on_db!(reader.db(), |pool| {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ocpp_frames")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            });
            assert_eq!(frames, 1, "{url}");
        }
    }
}

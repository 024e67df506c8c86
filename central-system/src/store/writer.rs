//! The batch writer: meter readings and frame-log rows reach the database in batches.
//!
//! Handlers hand meter rows to a bounded channel and acknowledge the charger at once; this task
//! commits whatever has accumulated every `flush_interval` (or sooner when a batch fills).
//! Durability contract: an acknowledged reading is committed within `flush_interval` plus the
//! commit time; on a clean shutdown the service waits for its sessions to end and then calls
//! [`BatchWriter::flush`], which commits everything queued before the process exits. When the
//! channel is full, meter senders wait (back-pressure reaches the chargers as slower answers,
//! never as lost readings). A commit that fails is retried 8 times with backoff, then dropped
//! and counted (`failed_batches`).
//!
//! Frame-log rows are best effort and never slow a charger down: they go to a separate buffer
//! capped at `max_frames_per_flush` rows per interval; beyond that they are dropped and counted.
//! Their byte budgets are kept by [`FrameRetention`] after each commit.

use super::frames::FrameRow;
use super::meter_values::MeterRow;
use super::retention::{FrameBudget, FrameRetention, NotAcceptedFrames};
use super::types::Ts;
use super::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Tuning of the batch writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Longest time an acknowledged row waits before its commit starts.
    pub flush_interval: Duration,
    /// Rows that trigger an early commit.
    pub max_batch_rows: usize,
    /// Row and byte budgets of the frame log.
    pub frame_budget: FrameBudget,
    /// Whether frames are logged at all.
    pub log_frames: bool,
    /// Frame-log rows kept per flush interval; more are dropped (and counted).
    pub max_frames_per_flush: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            flush_interval: Duration::from_millis(100),
            max_batch_rows: 20_000,
            frame_budget: FrameBudget::default(),
            log_frames: true,
            max_frames_per_flush: 1_000,
        }
    }
}

enum Op {
    Meter(Vec<MeterRow>),
    SeqNo(SeqNoSeen),
    Flush(oneshot::Sender<()>),
}

/// A 2.0.1 seqNo seen in an event that changed nothing else in its transaction: recorded with
/// the next batch (the highest per transaction) instead of by a statement per event.
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
}

/// Handle to the batch writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct BatchWriter {
    tx: mpsc::Sender<Op>,
    log_frames: bool,
    max_frames: usize,
    frames: Arc<Mutex<Vec<FrameRow>>>,
    not_accepted: Arc<NotAcceptedFrames>,
    flush_now: Arc<tokio::sync::Notify>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Meter(rows) => write!(f, "Meter({} rows)", rows.len()),
            Op::SeqNo(seen) => write!(f, "SeqNo({seen:?})"),
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
        let flush_now = Arc::new(tokio::sync::Notify::new());
        let (opened, open_result) = oneshot::channel::<anyhow::Result<()>>();
        let url = database_url.to_owned();
        let retention = FrameRetention::new(config.frame_budget);
        let not_accepted = retention.not_accepted();
        let (thread_config, thread_frames, thread_flush, thread_stats) =
            (config.clone(), frames.clone(), flush_now.clone(), stats.clone());
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
                        Ok(store) => store,
                        Err(e) => {
                            let _ = opened.send(Err(e));
                            return;
                        }
                    };
                    let _ = opened.send(Ok(()));
                    run(
                        store.clone(),
                        thread_config,
                        rx,
                        thread_frames,
                        thread_flush,
                        thread_stats,
                        retention,
                    )
                    .await;
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
            flush_now,
            stats,
        })
    }

    /// Queues readings, waiting while the queue is full.
    pub async fn meter(&self, rows: Vec<MeterRow>) {
        if rows.is_empty() {
            return;
        }
        if self.tx.send(Op::Meter(rows)).await.is_err() {
            tracing::error!("meter readings queued after the writer stopped");
        }
    }

    /// Queues a seqNo to record, with the same durability as readings.
    pub async fn seq_no(&self, seen: SeqNoSeen) {
        if self.tx.send(Op::SeqNo(seen)).await.is_err() {
            tracing::error!("a seqNo queued after the writer stopped");
        }
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

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Flush(done)).await.is_ok() {
            // Cut short the writer's interval sleep, so a flush waits for a commit, not a tick.
            self.flush_now.notify_one();
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

async fn run(
    store: Store,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Op>,
    frame_buffer: Arc<Mutex<Vec<FrameRow>>>,
    flush_now: Arc<tokio::sync::Notify>,
    stats: Arc<WriterStats>,
    mut retention: FrameRetention,
) {
    let mut meters: Vec<MeterRow> = Vec::new();
    let mut seq_nos: HashMap<i64, SeqNoSeen> = HashMap::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut ticker = tokio::time::interval(config.flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Wait for the first meter op of a batch (or a tick, for frames alone), then gather
        // until the interval ends or the batch fills.
        let first = tokio::select! {
            op = rx.recv() => match op {
                Some(op) => Some(op),
                None => break,
            },
            _ = ticker.tick() => None,
        };
        let mut closed = false;
        if let Some(first) = first {
            // Sleep through the interval and then drain, rather than waking per op: a wake-up per
            // message costs the chargers more than the batching saves.
            let mut op = Some(first);
            if !matches!(op, Some(Op::Flush(_))) {
                tokio::select! {
                    _ = tokio::time::sleep(config.flush_interval) => {}
                    _ = flush_now.notified() => {}
                }
            }
            loop {
                match op.take() {
                    Some(Op::Meter(rows)) => meters.extend(rows),
                    Some(Op::SeqNo(seen)) => {
                        let entry = seq_nos.entry(seen.transaction_id).or_insert(seen);
                        if seen.seq_no > entry.seq_no {
                            *entry = seen;
                        }
                    }
                    Some(Op::Flush(done)) => waiters.push(done),
                    None => {}
                }
                if meters.len() >= config.max_batch_rows {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => op = Some(next),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        let mut frames = std::mem::take(&mut *lock(&frame_buffer));
        retention.note(&frames);
        commit(&store, &mut meters, &mut seq_nos, &mut frames, &stats).await;
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
        retention.prune(&store).await;
        if closed {
            break;
        }
    }
    let mut frames = std::mem::take(&mut *lock(&frame_buffer));
    commit(&store, &mut meters, &mut seq_nos, &mut frames, &stats).await;
    tracing::debug!("batch writer stopped");
}

async fn commit(
    store: &Store,
    meters: &mut Vec<MeterRow>,
    seq_nos: &mut HashMap<i64, SeqNoSeen>,
    frames: &mut Vec<FrameRow>,
    stats: &WriterStats,
) {
    let mut delay = Duration::from_millis(50);
    let seen: Vec<SeqNoSeen> = seq_nos.drain().map(|(_, s)| s).collect();
    for attempt in 1..=8 {
        let result = async {
            store.insert_meter_values(meters).await?;
            store.record_seq_nos(&seen).await?;
            store.insert_frames(frames).await
        }
        .await;
        match result {
            Ok(()) => {
                stats
                    .meter_rows_written
                    .fetch_add(meters.len() as u64, Ordering::Relaxed);
                meters.clear();
                frames.clear();
                return;
            }
            Err(e) => {
                tracing::error!(attempt, error = %e, rows = meters.len(), "committing a batch failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        rows = meters.len(),
        frames = frames.len(),
        "dropping a batch after repeated failures"
    );
    meters.clear();
    frames.clear();
}

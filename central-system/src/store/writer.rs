//! The batch writer: meter readings and frame-log rows reach the database in batches.
//!
//! Handlers hand rows to a bounded channel and acknowledge the charger at once; this task
//! commits whatever has accumulated every `flush_interval` (or sooner when a batch fills), in
//! one database transaction. Durability contract: an acknowledged reading is written within
//! `flush_interval` plus the commit time; on a clean shutdown every sender is dropped, the
//! channel drains and the final batch is committed before the process exits. When the channel is
//! full, meter senders wait (back-pressure reaches the chargers as slower answers, never as lost
//! readings); frame-log rows are best effort and are dropped and counted instead.

use super::frames::FrameRow;
use super::meter_values::MeterRow;
use super::Store;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Tuning of the batch writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Longest time an acknowledged row waits before its commit starts.
    pub flush_interval: Duration,
    /// Rows that trigger an early commit.
    pub max_batch_rows: usize,
    /// Frames kept per station in the frame log.
    pub frames_per_station: i64,
    /// Whether frames are logged at all.
    pub log_frames: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            flush_interval: Duration::from_millis(100),
            max_batch_rows: 20_000,
            frames_per_station: 500,
            log_frames: true,
        }
    }
}

enum Op {
    Meter(Vec<MeterRow>),
    Frame(FrameRow),
    Flush(oneshot::Sender<()>),
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
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

impl BatchWriter {
    /// Starts the writer; the task ends after every handle is dropped and the last batch is written.
    pub fn spawn(store: Store, config: WriterConfig) -> (BatchWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16_384);
        let stats = Arc::new(WriterStats::default());
        let handle = tokio::spawn(run(store, config.clone(), rx, stats.clone()));
        (
            BatchWriter {
                tx,
                log_frames: config.log_frames,
                stats,
            },
            handle,
        )
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

    /// Queues a frame-log row unless the queue is full.
    pub fn frame(&self, row: FrameRow) {
        if !self.log_frames {
            return;
        }
        if self.tx.try_send(Op::Frame(row)).is_err() {
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued before this call is committed.
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

async fn run(store: Store, config: WriterConfig, mut rx: mpsc::Receiver<Op>, stats: Arc<WriterStats>) {
    let mut meters: Vec<MeterRow> = Vec::new();
    let mut frames: Vec<FrameRow> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut logged_stations: HashSet<Arc<str>> = HashSet::new();
    let mut last_prune = Instant::now();
    loop {
        // Wait for the first op of a batch, then gather until the interval ends or it fills.
        let Some(first) = rx.recv().await else { break };
        let deadline = tokio::time::Instant::now() + config.flush_interval;
        let mut closed = false;
        let mut op = Some(first);
        loop {
            match op.take() {
                Some(Op::Meter(rows)) => meters.extend(rows),
                Some(Op::Frame(row)) => {
                    logged_stations.insert(row.station_id.clone());
                    frames.push(row);
                }
                Some(Op::Flush(done)) => {
                    waiters.push(done);
                    break;
                }
                None => {}
            }
            if meters.len() + frames.len() >= config.max_batch_rows {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => op = Some(next),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&store, &mut meters, &mut frames, &stats).await;
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
        if last_prune.elapsed() > Duration::from_secs(30) {
            for station in logged_stations.drain() {
                if let Err(e) = store.prune_frames(&station, config.frames_per_station).await {
                    tracing::warn!(station = %station, error = %e, "pruning the frame log failed");
                }
            }
            last_prune = Instant::now();
        }
        if closed {
            break;
        }
    }
    commit(&store, &mut meters, &mut frames, &stats).await;
    tracing::debug!("batch writer stopped");
}

async fn commit(store: &Store, meters: &mut Vec<MeterRow>, frames: &mut Vec<FrameRow>, stats: &WriterStats) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=8 {
        let result = async {
            store.insert_meter_values(meters).await?;
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

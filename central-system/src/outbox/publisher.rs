//! The outbox publisher: one task per process sends unsent outbox rows onto the bus.
//!
//! Order: rows are read in `id` order and published one after another; the first failure
//! stops the round, so a later event of a station never overtakes an earlier one. A row is
//! marked sent only once `Bus::publish` returned `Ok` (for MQTT: the broker's PUBACK), so a
//! crash or a lost connection can only repeat an event, never lose one: delivery is at least
//! once and consumers deduplicate on the event id.
//!
//! One node at a time: with several central-system nodes on one PostgreSQL database, the node
//! holding the publishing lease (an advisory lock) publishes and the others stand by, polling
//! for the lease, so an event goes out once rather than once per node.
//!
//! Wake-ups: the store notifies after each commit that wrote rows; a poll interval covers
//! rows another process (or a missed notification) wrote. After a failure the task backs off
//! exponentially (with the bus's own reconnect doing the real work) and then retries from the
//! oldest unsent row. Sent rows are deleted after `retention`.

use crate::store::outbox::PublishLease;
use crate::store::types::Ts;
use crate::store::Store;
use evcs_bus::{Bus, EventEnvelope};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tuning of the publisher.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Rows read per round.
    pub batch: i64,
    /// How often the outbox is read without a wake-up.
    pub poll: Duration,
    /// First and longest wait after a failed publish.
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// How long sent rows are kept (for diagnosis) before they are deleted.
    pub retention: Duration,
    /// How often sent rows are pruned.
    pub prune_every: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            batch: 256,
            poll: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            retention: Duration::from_secs(3600),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Events the bus acknowledged.
    pub published: AtomicU64,
    /// Publish attempts that failed (each is retried).
    pub failures: AtomicU64,
    /// Rows whose envelope could not be read back (skipped, logged).
    pub malformed: AtomicU64,
}

/// A running publisher.
#[derive(Debug)]
pub struct Publisher {
    stop: CancellationToken,
    task: JoinHandle<()>,
    stats: Arc<PublisherStats>,
}

impl Publisher {
    /// Starts publishing `store`'s outbox onto `bus`, counting into `stats`.
    pub fn spawn(store: Store, bus: Arc<dyn Bus>, config: PublisherConfig, stats: Arc<PublisherStats>) -> Publisher {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store, bus, config, stop.clone(), stats.clone()));
        Publisher { stop, task, stats }
    }

    /// The publisher's counters.
    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }

    /// Publishes what is unsent once more (bounded by `grace`), then stops. Called at
    /// shutdown after the sessions and the batch writer have committed their last events; what
    /// is still unsent then stays in the outbox for the next start.
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                "the outbox publisher did not finish within {grace:?}; unsent events wait for the next start"
            );
        }
    }
}

/// How a round ended.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Nothing more is unsent (as of the read).
    Drained,
    /// A full batch went out: read again at once.
    More,
    /// A publish failed; the rest waits for the retry.
    Failed,
    /// Another node holds the publishing lease.
    Standby,
}

async fn run(
    store: Store,
    bus: Arc<dyn Bus>,
    config: PublisherConfig,
    stop: CancellationToken,
    stats: Arc<PublisherStats>,
) {
    let wake = store.outbox_wake().clone();
    let mut backoff = config.min_backoff;
    let mut next_prune = tokio::time::Instant::now();
    let mut lease: Option<PublishLease> = None;
    loop {
        // One node publishes at a time (see `PublishLease`); the others stand by and poll.
        if let Some(held) = lease.as_mut() {
            if !held.holds().await {
                tracing::warn!("lost the outbox publishing lease");
                lease = None;
            }
        }
        if lease.is_none() {
            lease = match store.try_lease_publishing().await {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::warn!(error = %e, "taking the outbox publishing lease failed");
                    None
                }
            };
            if lease.is_some() {
                tracing::info!("publishing the outbox from this node");
            }
        }
        let round = if lease.is_some() {
            publish_round(&store, bus.as_ref(), config.batch, &stats).await
        } else {
            Round::Standby
        };
        if tokio::time::Instant::now() >= next_prune {
            prune(&store, config.retention).await;
            next_prune = tokio::time::Instant::now() + config.prune_every;
        }
        let wait = match round {
            Round::More => {
                backoff = config.min_backoff;
                continue;
            }
            Round::Drained | Round::Standby => {
                backoff = config.min_backoff;
                config.poll
            }
            Round::Failed => {
                let wait = jittered(backoff);
                backoff = (backoff * 2).min(config.max_backoff);
                wait
            }
        };
        if stop.is_cancelled() {
            // The final pass ran above (the caller cancels after the last commits).
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            // A failed round waits out its backoff even when new rows arrive, and a node on
            // standby polls for the lease instead of asking at every commit.
            _ = wake.notified(), if round == Round::Drained => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Publishes up to `batch` unsent rows in order; stops at the first failure.
async fn publish_round(store: &Store, bus: &dyn Bus, batch: i64, stats: &PublisherStats) -> Round {
    let rows = match store.unsent_events(batch).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "reading the outbox failed");
            return Round::Failed;
        }
    };
    let full = rows.len() as i64 >= batch;
    let mut sent = Vec::with_capacity(rows.len());
    let mut malformed = 0;
    let mut failed = false;
    for row in rows {
        let envelope = match serde_json::from_str::<EventEnvelope>(&row.envelope) {
            Ok(envelope) => envelope,
            Err(e) => {
                // Only this process writes the rows, so this is a bug; holding the queue up
                // behind it for ever would be worse than skipping it.
                tracing::error!(outbox_id = row.id, error = %e, "unreadable outbox row skipped");
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                malformed += 1;
                sent.push(row.id);
                continue;
            }
        };
        match bus.publish(envelope).await {
            Ok(()) => sent.push(row.id),
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(outbox_id = row.id, error = %e, "publishing an event failed; retrying with backoff");
                failed = true;
                break;
            }
        }
    }
    // Counted once the bus acknowledged them, before they are marked (a reader that saw the
    // rows marked sees them counted).
    stats
        .published
        .fetch_add((sent.len() as u64).saturating_sub(malformed), Ordering::Relaxed);
    if let Err(e) = store.mark_events_sent(&sent, Ts::now()).await {
        // They are published again later: a duplicate, which consumers absorb.
        tracing::warn!(error = %e, events = sent.len(), "marking events sent failed");
        return Round::Failed;
    }
    match (failed, full) {
        (true, _) => Round::Failed,
        (false, true) => Round::More,
        (false, false) => Round::Drained,
    }
}

async fn prune(store: &Store, retention: Duration) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = Ts(Ts::now().0.saturating_sub(retention_ms));
    match store.prune_sent_events(cutoff).await {
        Ok(0) => {}
        Ok(deleted) => tracing::debug!(deleted, "sent outbox rows pruned"),
        Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
    }
}

/// `base` plus up to a quarter more, so many nodes do not retry in step.
fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    let extra = rand::rng().random_range(0.0..0.25);
    base.mul_f64(1.0 + extra)
}

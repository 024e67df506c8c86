//! One supervised MQTT connection: backoff, watchdog, restored subscriptions, PUBACK waiters.

use crate::transport::BusError;
use rand::Rng;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::MqttConfig;

/// One supervised MQTT connection: the event loop runs in a task that backs off, restores
/// subscriptions and rebuilds the loop when it wedges.
pub(super) struct Connection {
    client: Arc<RwLock<AsyncClient>>,
    pubacks: Arc<Mutex<PubAcks>>,
    /// Held while queueing a publish, so waiters line up in the order rumqttc sends.
    send_order: tokio::sync::Mutex<()>,
    filters: Arc<Mutex<Vec<String>>>,
    requested: Arc<AtomicU64>,
    acked: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const REQUEST_CAP: usize = 1024;

impl Connection {
    pub(super) fn start(config: &MqttConfig, options: MqttOptions, incoming: mpsc::Sender<Publish>) -> Self {
        let (client, eventloop) = AsyncClient::new(options.clone(), REQUEST_CAP);
        let client = Arc::new(RwLock::new(client));
        let filters = Arc::new(Mutex::new(Vec::new()));
        let requested = Arc::new(AtomicU64::new(0));
        let (acked_tx, acked) = watch::channel(0);
        let pubacks = Arc::new(Mutex::new(PubAcks::default()));
        let task = tokio::spawn(supervise(Supervisor {
            pubacks: pubacks.clone(),
            options,
            eventloop,
            client: client.clone(),
            filters: filters.clone(),
            requested: requested.clone(),
            acked: acked_tx,
            incoming,
            keep_alive: config.keep_alive,
            max_backoff: config.max_backoff,
        }));
        Self {
            client,
            pubacks,
            send_order: tokio::sync::Mutex::new(()),
            filters,
            requested,
            acked,
            task,
        }
    }

    pub(super) fn client(&self) -> AsyncClient {
        self.client.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues a QoS 1 publish; the receiver resolves when the broker acknowledges it and fails
    /// when the message was lost (session gone, loop rebuilt).
    pub(super) async fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        properties: Option<PublishProperties>,
    ) -> Result<oneshot::Receiver<()>, BusError> {
        let (tx, rx) = oneshot::channel();
        let _order = self.send_order.lock().await;
        self.pubacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .queued
            .push_back(tx);
        let client = self.client();
        let sent = match properties {
            Some(p) => {
                client
                    .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, p)
                    .await
            }
            None => client.publish(topic, QoS::AtLeastOnce, false, payload).await,
        };
        if let Err(e) = sent {
            // Never reached the event loop: take our waiter back off the queue.
            self.pubacks.lock().unwrap_or_else(|p| p.into_inner()).queued.pop_back();
            return Err(transport(e));
        }
        Ok(rx)
    }

    /// Subscribes and waits for the broker's SUBACK, so a message published after this
    /// returns is routed to us.
    pub(super) async fn subscribe(&self, filter: String, wait: Duration) -> Result<(), BusError> {
        self.filters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(filter.clone());
        let n = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.client()
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(transport)?;
        self.wait_acks(n, wait).await
    }

    pub(super) async fn unsubscribe(&self, filter: String, wait: Duration) -> Result<(), BusError> {
        self.filters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|f| *f != filter);
        let n = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.client().unsubscribe(filter).await.map_err(transport)?;
        self.wait_acks(n, wait).await
    }

    async fn wait_acks(&self, n: u64, wait: Duration) -> Result<(), BusError> {
        let mut acked = self.acked.clone();
        let outcome = tokio::time::timeout(wait, acked.wait_for(|a| *a >= n))
            .await
            .map(|r| r.is_ok());
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout(wait)),
        }
    }
}

pub(super) fn transport(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(e.to_string())
}

/// Publishers waiting for their PUBACK. rumqttc does not return packet ids, but it assigns them
/// in request order and reports each as `Outgoing::Publish(pkid)`: the queue maps the next new
/// packet id to the oldest waiter.
#[derive(Default)]
struct PubAcks {
    queued: VecDeque<oneshot::Sender<()>>,
    inflight: HashMap<u16, oneshot::Sender<()>>,
}

struct Supervisor {
    pubacks: Arc<Mutex<PubAcks>>,
    options: MqttOptions,
    eventloop: EventLoop,
    client: Arc<RwLock<AsyncClient>>,
    filters: Arc<Mutex<Vec<String>>>,
    requested: Arc<AtomicU64>,
    acked: watch::Sender<u64>,
    incoming: mpsc::Sender<Publish>,
    keep_alive: Duration,
    max_backoff: Duration,
}

/// Failures in a row after which the event loop is rebuilt rather than retried.
const REBUILD_AFTER_FAILURES: u32 = 8;

async fn supervise(mut s: Supervisor) {
    let mut failures: u32 = 0;
    let stall = s.keep_alive.max(Duration::from_secs(5)).saturating_mul(3);
    loop {
        let polled = tokio::time::timeout(stall, s.eventloop.poll()).await;
        let wedged = match polled {
            Ok(Ok(event)) => {
                handle(&mut s, event, &mut failures).await;
                false
            }
            Ok(Err(e)) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "MQTT connection failed");
                let exp = 100u64.saturating_mul(1 << failures.min(16));
                let cap = u64::try_from(s.max_backoff.as_millis()).unwrap_or(u64::MAX).max(1);
                let ms = exp.min(cap);
                // Full jitter on the upper half: a fleet of nodes does not reconnect in step.
                let ms = rand::rng().random_range(ms / 2..=ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                failures >= REBUILD_AFTER_FAILURES
            }
            Err(_) => {
                tracing::warn!("MQTT event loop yielded nothing for three keep-alives");
                true
            }
        };
        if wedged {
            // A fresh loop and client; holders of the old client see it through the RwLock.
            let (client, eventloop) = AsyncClient::new(s.options.clone(), REQUEST_CAP);
            *s.client.write().unwrap_or_else(|p| p.into_inner()) = client;
            s.eventloop = eventloop;
            failures = 0;
            // Whatever the old loop held is lost: its publishers learn it now.
            let mut acks = s.pubacks.lock().unwrap_or_else(|p| p.into_inner());
            acks.queued.clear();
            acks.inflight.clear();
            drop(acks);
            // Requests the old loop never sent are gone; the new session's CONNACK restores
            // every tracked subscription, and those SUBACKs release the waiters.
        }
    }
}

async fn handle(s: &mut Supervisor, event: MqttEvent, failures: &mut u32) {
    let packet = match event {
        MqttEvent::Outgoing(rumqttc::Outgoing::Publish(pkid)) => {
            let mut acks = s.pubacks.lock().unwrap_or_else(|p| p.into_inner());
            // A resend after reconnect reuses its packet id and already has its waiter.
            if pkid != 0 && !acks.inflight.contains_key(&pkid) {
                if let Some(waiter) = acks.queued.pop_front() {
                    acks.inflight.insert(pkid, waiter);
                }
            }
            return;
        }
        MqttEvent::Outgoing(_) => return,
        MqttEvent::Incoming(packet) => packet,
    };
    match packet {
        Packet::PubAck(ack) => {
            let waiter = s
                .pubacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .inflight
                .remove(&ack.pkid);
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
        }
        Packet::ConnAck(ack) => {
            *failures = 0;
            if !ack.session_present {
                // rumqttc drops unacknowledged publishes when the session is new.
                s.pubacks.lock().unwrap_or_else(|p| p.into_inner()).inflight.clear();
                let filters = s.filters.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let client = s.client.read().unwrap_or_else(|p| p.into_inner()).clone();
                for f in filters {
                    s.requested.fetch_add(1, Ordering::SeqCst);
                    // try_: the supervisor must not wait on its own request queue.
                    if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, "restoring an MQTT subscription");
                    }
                }
            }
        }
        Packet::SubAck(_) | Packet::UnsubAck(_) => {
            s.acked.send_modify(|a| *a += 1);
        }
        Packet::Publish(publish) => {
            let client = s.client.read().unwrap_or_else(|p| p.into_inner()).clone();
            // Acknowledge only once the message is queued for its consumer.
            if s.incoming.send(publish.clone()).await.is_ok() {
                if let Err(e) = client.try_ack(&publish) {
                    tracing::warn!(error = %e, "acknowledging an MQTT message");
                }
            }
        }
        _ => {}
    }
}

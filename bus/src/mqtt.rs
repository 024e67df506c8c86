//! The MQTT 5 bus (`rumqttc`).
//!
//! # Choices
//! - QoS 1 everywhere (at least once; consumers dedup on the event id); `publish` returns once
//!   the broker acknowledged the event, so an outbox marks a row sent only then.
//! - Event consumers: one connection per group member, clean start off and a bounded session
//!   expiry, so a restarted member gets what was published while it was away and a member that
//!   never returns stops holding messages at the broker; shared subscription
//!   `$share/{group}/{prefix}/v1/events/+/+`; acknowledged once the event is in the consumer's
//!   queue (manual acks), so a crash before that gets it redelivered.
//! - Commands: published with a response topic, correlation data (the command id) and a
//!   message expiry equal to the caller's timeout, so the broker drops a command nobody took in
//!   time; [`crate::CommandServer::next`] also drops commands past `expiresAt`.
//! - Command servers use clean sessions: a node that restarts has no stations until they
//!   reconnect to it, and a command for a station nobody holds should time out, not queue.
//! - Reconnects back off exponentially with jitter (rumqttc retries at once by itself); a
//!   watchdog rebuilds the event loop when it yields nothing for three keep-alive periods or
//!   fails too often in a row (rumqttc can wedge after a broker restart that lost the session);
//!   when the broker lost the session, subscriptions are restored.
//! - The incoming packet limit is set on purpose (rumqttc's default is 10 KiB).

use crate::contract::{CommandEnvelope, CommandReply, EventEnvelope, ReplyEnvelope};
use crate::transport::{
    BoxFuture, Bus, BusError, CommandServer, EventStream, IncomingCommand, ReplySink, StationRouting,
};
use crate::StationId;
use bytes::Bytes;
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

/// How to reach the broker and lay out topics.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    /// First topic level(s), e.g. `evcs`; lets several deployments share one broker.
    pub prefix: String,
    /// How long the broker keeps a consumer's session (and its queued events) while it is away.
    pub session_expiry: Duration,
    /// Largest packet this client accepts (events and commands are small; a generic call's
    /// payload may not be).
    pub max_packet_bytes: u32,
    /// At least 5 s (rumqttc refuses less); the watchdog fires after three of these.
    pub keep_alive: Duration,
    /// Ceiling of the reconnect backoff.
    pub max_backoff: Duration,
    /// How long [`Bus::publish`] waits for the broker's PUBACK before reporting failure.
    pub ack_timeout: Duration,
}

impl MqttConfig {
    /// Reads `mqtt://[user:password@]host[:port]`.
    pub fn from_url(url: &str, prefix: &str) -> Result<Self, BusError> {
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| BusError::Transport(format!("unsupported MQTT URL (want mqtt://host:port): {url}")))?;
        let rest = rest.trim_end_matches('/');
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((user.to_owned(), password.to_owned())), hostport)
            }
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse()
                    .map_err(|_| BusError::Transport(format!("bad port in {url}")))?;
                (host.to_owned(), port)
            }
            None => (hostport.to_owned(), 1883),
        };
        if host.is_empty() || prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(BusError::Transport(
                "MQTT host and a wildcard-free topic prefix are required".into(),
            ));
        }
        Ok(Self {
            host,
            port,
            credentials,
            prefix: prefix.trim_matches('/').to_owned(),
            session_expiry: Duration::from_secs(3600),
            max_packet_bytes: 256 * 1024,
            keep_alive: Duration::from_secs(10),
            max_backoff: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
        })
    }

    fn options(&self, client_id: &str, persistent: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, &self.host, self.port);
        // rumqttc panics below 5 s.
        o.set_keep_alive(self.keep_alive.max(Duration::from_secs(5)))
            .set_clean_start(!persistent)
            .set_max_packet_size(Some(self.max_packet_bytes))
            .set_manual_acks(true);
        if persistent {
            o.set_session_expiry_interval(Some(u32::try_from(self.session_expiry.as_secs()).unwrap_or(u32::MAX)));
        }
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user, password);
        }
        o
    }

    fn event_topic(&self, event: &EventEnvelope) -> String {
        format!(
            "{}/v1/events/{}/{}",
            self.prefix,
            event.station_id.topic_level(),
            event.event.kind()
        )
    }

    fn command_topic(&self, station: &StationId) -> String {
        format!("{}/v1/commands/{}", self.prefix, station.topic_level())
    }
}

/// MQTT client ids allow more, but brokers only promise `0-9a-zA-Z`; keep ours readable.
fn client_id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// One supervised MQTT connection: the event loop runs in a task that backs off, restores
/// subscriptions and rebuilds the loop when it wedges.
struct Connection {
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
    fn start(config: &MqttConfig, options: MqttOptions, incoming: mpsc::Sender<Publish>) -> Self {
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

    fn client(&self) -> AsyncClient {
        self.client.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues a QoS 1 publish; the receiver resolves when the broker acknowledges it and fails
    /// when the message was lost (session gone, loop rebuilt).
    async fn publish(
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
    async fn subscribe(&self, filter: String, wait: Duration) -> Result<(), BusError> {
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

    async fn unsubscribe(&self, filter: String, wait: Duration) -> Result<(), BusError> {
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

fn transport(e: impl std::fmt::Display) -> BusError {
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

/// The MQTT 5 bus of one process (node).
pub struct MqttBus {
    config: MqttConfig,
    node: String,
    main: Connection,
    reply_topic: String,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<CommandReply>>>>,
    _replies: JoinHandle<()>,
}

/// How long to wait for the broker to acknowledge a (un)subscription.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);

impl MqttBus {
    /// Connects node `node` (unique per process, stable across restarts) to the broker.
    pub async fn connect(config: MqttConfig, node: &str) -> Result<Self, BusError> {
        let (tx, mut rx) = mpsc::channel::<Publish>(1024);
        let main_id = client_id(&[&config.prefix, node, "main"]);
        let main = Connection::start(&config, config.options(&main_id, false), tx);
        let reply_topic = format!("{}/v1/replies/{}", config.prefix, main_id);
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<CommandReply>>>> = Arc::default();
        let waiting = pending.clone();
        let replies = tokio::spawn(async move {
            while let Some(publish) = rx.recv().await {
                let Ok(reply) = serde_json::from_slice::<ReplyEnvelope>(&publish.payload) else {
                    tracing::warn!("malformed command reply ignored");
                    continue;
                };
                let waiter = waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&reply.command_id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply.reply);
                }
            }
        });
        main.subscribe(reply_topic.clone(), SUBSCRIBE_WAIT).await?;
        Ok(Self {
            config,
            node: node.to_owned(),
            main,
            reply_topic,
            pending,
            _replies: replies,
        })
    }
}

impl Drop for MqttBus {
    fn drop(&mut self) {
        self._replies.abort();
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(value).map_err(|e| BusError::Malformed(e.to_string()))
}

impl Bus for MqttBus {
    fn publish(&self, event: EventEnvelope) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let topic = self.config.event_topic(&event);
            let payload = to_json(&event)?;
            let acked = self.main.publish(topic, payload, None).await?;
            match tokio::time::timeout(self.config.ack_timeout, acked).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(BusError::Transport(
                    "the broker connection was lost before PUBACK".into(),
                )),
                Err(_) => Err(BusError::Timeout(self.config.ack_timeout)),
            }
        })
    }

    fn subscribe<'a>(&'a self, group: &'a str, member: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            if group.is_empty() || group.contains(['/', '+', '#', '\0']) {
                return Err(BusError::Transport(format!("invalid consumer group {group:?}")));
            }
            let (raw_tx, mut raw_rx) = mpsc::channel::<Publish>(256);
            let id = client_id(&[&self.config.prefix, group, member]);
            let conn = Connection::start(&self.config, self.config.options(&id, true), raw_tx);
            let (tx, rx) = mpsc::channel(256);
            let decoder = tokio::spawn(async move {
                while let Some(publish) = raw_rx.recv().await {
                    match serde_json::from_slice::<EventEnvelope>(&publish.payload) {
                        Ok(event) => {
                            if tx.send(event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "malformed event skipped"),
                    }
                }
            });
            let filter = format!("$share/{group}/{}/v1/events/+/+", self.config.prefix);
            conn.subscribe(filter, SUBSCRIBE_WAIT).await?;
            Ok(EventStream {
                rx,
                _guard: Some(Box::new(SubscriptionGuard { _conn: conn, decoder })),
            })
        })
    }

    fn send_command(
        &self,
        command: CommandEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandReply, BusError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            let id = command.command_id.clone();
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), tx);
            let properties = PublishProperties {
                // Whole seconds, rounded up: the broker must not drop it before the caller
                // gives up; the server's `expires_at` check covers the remainder.
                message_expiry_interval: Some(
                    u32::try_from(timeout.as_millis().div_ceil(1000))
                        .unwrap_or(u32::MAX)
                        .max(1),
                ),
                response_topic: Some(self.reply_topic.clone()),
                correlation_data: Some(Bytes::from(id.clone().into_bytes())),
                ..Default::default()
            };
            let topic = self.config.command_topic(&command.station_id);
            let sent = async {
                let payload = to_json(&command)?;
                // The reply is the acknowledgement that matters; the PUBACK is not awaited.
                let _puback = self.main.publish(topic, payload, Some(properties)).await?;
                rx.await.map_err(|_| BusError::Closed)
            };
            let result = match tokio::time::timeout(timeout, sent).await {
                Ok(result) => result,
                Err(_) => Err(BusError::Timeout(timeout)),
            };
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            result
        })
    }

    fn serve_commands<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<CommandServer, BusError>> {
        Box::pin(async move {
            let (raw_tx, mut raw_rx) = mpsc::channel::<Publish>(256);
            let id = client_id(&[&self.config.prefix, &self.node, node, "commands"]);
            let conn = Arc::new(Connection::start(&self.config, self.config.options(&id, false), raw_tx));
            let (tx, rx) = mpsc::channel(256);
            let replier = conn.clone();
            let decoder = tokio::spawn(async move {
                while let Some(publish) = raw_rx.recv().await {
                    let props = publish.properties.clone().unwrap_or_default();
                    let (Some(topic), Ok(envelope)) = (
                        props.response_topic,
                        serde_json::from_slice::<CommandEnvelope>(&publish.payload),
                    ) else {
                        tracing::warn!("command without response topic or malformed: skipped");
                        continue;
                    };
                    let correlation = props
                        .correlation_data
                        .unwrap_or_else(|| Bytes::from(envelope.command_id.clone().into_bytes()));
                    let sink = MqttReplySink {
                        conn: replier.clone(),
                        topic,
                        correlation,
                        command_id: envelope.command_id.clone(),
                    };
                    if tx
                        .send(IncomingCommand {
                            envelope,
                            sink: Box::new(sink),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let routing = MqttRouting {
                conn,
                prefix: self.config.clone(),
                decoder,
            };
            Ok(CommandServer {
                routing: Box::new(routing),
                rx,
            })
        })
    }
}

struct SubscriptionGuard {
    _conn: Connection,
    decoder: JoinHandle<()>,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.decoder.abort();
    }
}

struct MqttRouting {
    conn: Arc<Connection>,
    prefix: MqttConfig,
    decoder: JoinHandle<()>,
}

impl Drop for MqttRouting {
    fn drop(&mut self) {
        self.decoder.abort();
        // The decoder held the other reference; aborting it lets the connection drop too.
    }
}

impl StationRouting for MqttRouting {
    fn serve(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>> {
        let filter = self.prefix.command_topic(station);
        Box::pin(async move { self.conn.subscribe(filter, SUBSCRIBE_WAIT).await })
    }

    fn leave(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>> {
        let filter = self.prefix.command_topic(station);
        Box::pin(async move { self.conn.unsubscribe(filter, SUBSCRIBE_WAIT).await })
    }
}

struct MqttReplySink {
    conn: Arc<Connection>,
    topic: String,
    correlation: Bytes,
    command_id: String,
}

impl ReplySink for MqttReplySink {
    fn send(self: Box<Self>, reply: CommandReply) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            let payload = to_json(&ReplyEnvelope {
                command_id: self.command_id,
                reply,
            })?;
            let properties = PublishProperties {
                correlation_data: Some(self.correlation),
                ..Default::default()
            };
            let _puback = self.conn.publish(self.topic, payload, Some(properties)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let c = MqttConfig::from_url("mqtt://u:p@127.0.0.1:1884", "evcs").expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1884));
        assert_eq!(c.credentials, Some(("u".into(), "p".into())));
        assert_eq!(
            MqttConfig::from_url("mqtt://broker", "a/b/").expect("valid").prefix,
            "a/b"
        );
        assert!(MqttConfig::from_url("http://x", "evcs").is_err());
        assert!(MqttConfig::from_url("mqtt://x", "a/#").is_err());
    }
}

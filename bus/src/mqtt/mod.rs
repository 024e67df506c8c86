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

mod config;
mod connection;

pub use config::MqttConfig;

use crate::contract::{CommandEnvelope, CommandReply, EventEnvelope, ReplyEnvelope};
use crate::transport::{
    BoxFuture, Bus, BusError, CommandServer, EventStream, IncomingCommand, ReplySink, StationRouting,
};
use crate::StationId;
use bytes::Bytes;
use config::client_id;
use connection::Connection;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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

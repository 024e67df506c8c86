//! The [`Bus`] trait both transports implement, and the handles it gives out.

use crate::contract::{Command, CommandEnvelope, CommandReply, EventEnvelope, SCHEMA_VERSION};
use crate::StationId;
use chrono::Utc;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;

/// A boxed future, so `dyn Bus` works and services can pick a transport at start-up.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Transport failures. A station that is offline or a charger that says no is not an error
/// here: those are [`CommandReply`] values.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nobody answered the command within {0:?}")]
    Timeout(Duration),
    #[error("the bus is closed")]
    Closed,
    #[error("bus transport: {0}")]
    Transport(String),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The event and command bus.
///
/// Semantics both transports keep:
/// - every event reaches each consumer group once, and one member of the group (load sharing);
/// - a command reaches the one node that serves its station; if none does, or the node does not
///   reply in time, [`Bus::send_command`] returns [`BusError::Timeout`];
/// - a command whose `expires_at` has passed is never handed to a server.
pub trait Bus: Send + Sync {
    fn publish(&self, event: EventEnvelope) -> BoxFuture<'_, Result<(), BusError>>;

    /// Joins the consumer group `group` (MQTT: a shared subscription, and a persistent session
    /// named after `member` so a restarted consumer misses nothing).
    fn subscribe<'a>(&'a self, group: &'a str, member: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>>;

    /// Sends `command` to its station and waits up to `timeout` for the reply. The command
    /// expires at the same instant, so it never reaches a charger after the caller gave up.
    fn send_command(
        &self,
        command: CommandEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandReply, BusError>>;

    /// Starts serving commands on this node; add and remove stations as they connect and leave.
    fn serve_commands<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<CommandServer, BusError>>;
}

/// Builds a command envelope that expires `ttl` from now.
pub fn command(station_id: StationId, command: Command, ttl: Duration) -> CommandEnvelope {
    let issued_at = Utc::now();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    CommandEnvelope {
        command_id: uuid::Uuid::new_v4().to_string(),
        station_id,
        issued_at,
        expires_at: issued_at.checked_add_signed(ttl).unwrap_or(issued_at),
        schema_version: SCHEMA_VERSION,
        command,
    }
}

/// Events delivered to one consumer-group member.
pub struct EventStream {
    pub(crate) rx: mpsc::Receiver<EventEnvelope>,
    /// Keeps the transport's per-subscription resources (an MQTT connection) alive.
    pub(crate) _guard: Option<Box<dyn Send + Sync>>,
}

impl EventStream {
    /// The next event; `None` once the bus or this subscription is closed.
    pub async fn next(&mut self) -> Option<EventEnvelope> {
        self.rx.recv().await
    }
}

/// Which stations a node serves: the transport-specific half of a [`CommandServer`].
pub(crate) trait StationRouting: Send + Sync {
    fn serve(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>>;
    fn leave(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>>;
}

/// Where a reply goes back to.
pub(crate) trait ReplySink: Send {
    fn send(self: Box<Self>, reply: CommandReply) -> BoxFuture<'static, Result<(), BusError>>;
}

/// A command handed to the node that holds the station.
pub struct IncomingCommand {
    pub envelope: CommandEnvelope,
    pub(crate) sink: Box<dyn ReplySink>,
}

impl IncomingCommand {
    /// Answers the command. Fails only when the transport is gone; a sender that already gave
    /// up simply never sees the reply.
    pub async fn reply(self, reply: CommandReply) -> Result<(), BusError> {
        self.sink.send(reply).await
    }
}

/// The commands for the stations this node holds.
pub struct CommandServer {
    pub(crate) routing: Box<dyn StationRouting>,
    pub(crate) rx: mpsc::Receiver<IncomingCommand>,
}

impl CommandServer {
    /// Starts receiving the station's commands (call when its WebSocket connects here).
    pub async fn serve(&self, station: &StationId) -> Result<(), BusError> {
        self.routing.serve(station).await
    }

    /// Stops receiving the station's commands (call when its WebSocket leaves this node).
    pub async fn leave(&self, station: &StationId) -> Result<(), BusError> {
        self.routing.leave(station).await
    }

    /// The next live command; stale ones (past `expires_at`) are dropped here, whatever the
    /// transport did, so a late command never reaches a charger.
    pub async fn next(&mut self) -> Option<IncomingCommand> {
        loop {
            let incoming = self.rx.recv().await?;
            if incoming.envelope.expires_at > Utc::now() {
                return Some(incoming);
            }
            tracing::debug!(command = %incoming.envelope.command_id, "dropping expired command");
        }
    }
}

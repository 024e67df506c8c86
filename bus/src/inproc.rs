//! The in-process bus: tokio channels, the default for the all-in-one binary.
//!
//! It keeps the [`Bus`] semantics of the MQTT bus so services cannot tell them apart:
//! consumer groups share events round-robin, a command goes to whichever server serves the
//! station last, stale commands are dropped. There is no persistence: when the process stops,
//! so does everything on this bus (the outbox is what survives a restart).

use crate::contract::{CommandEnvelope, CommandReply, EventEnvelope};
use crate::transport::{
    BoxFuture, Bus, BusError, CommandServer, EventStream, IncomingCommand, ReplySink, StationRouting,
};
use crate::StationId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Events buffered per consumer before `publish` waits for it (back-pressure, not loss).
const EVENT_BUFFER: usize = 1024;
const COMMAND_BUFFER: usize = 256;

#[derive(Default)]
struct Group {
    members: Vec<(String, mpsc::Sender<EventEnvelope>)>,
    next: usize,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, Group>,
    /// Station -> (server serial, that server's command queue).
    stations: HashMap<StationId, (u64, mpsc::Sender<IncomingCommand>)>,
    next_server: u64,
}

/// The in-process bus; clone it freely, clones share the same channels.
#[derive(Clone, Default)]
pub struct InProcBus {
    inner: Arc<Mutex<Inner>>,
}

impl InProcBus {
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding this lock leaves only maps behind, which stay consistent.
    inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Bus for InProcBus {
    fn publish(&self, event: EventEnvelope) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let targets: Vec<mpsc::Sender<EventEnvelope>> = {
                let mut inner = lock(&self.inner);
                inner
                    .groups
                    .values_mut()
                    .filter_map(|group| {
                        group.members.retain(|(_, tx)| !tx.is_closed());
                        if group.members.is_empty() {
                            return None;
                        }
                        let i = group.next % group.members.len();
                        group.next = group.next.wrapping_add(1);
                        group.members.get(i).map(|(_, tx)| tx.clone())
                    })
                    .collect()
            };
            for tx in targets {
                // A member that left between the pick and the send loses nothing it had.
                let _ = tx.send(event.clone()).await;
            }
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, group: &'a str, member: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(EVENT_BUFFER);
            let mut inner = lock(&self.inner);
            let group = inner.groups.entry(group.to_owned()).or_default();
            group.members.retain(|(name, _)| name != member);
            group.members.push((member.to_owned(), tx));
            Ok(EventStream { rx, _guard: None })
        })
    }

    fn send_command(
        &self,
        command: CommandEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandReply, BusError>> {
        Box::pin(async move {
            let server = lock(&self.inner)
                .stations
                .get(&command.station_id)
                .map(|(_, tx)| tx.clone());
            // Nobody serves the station: the MQTT bus would wait out the timeout for the same
            // answer; here we know at once.
            let Some(server) = server else {
                return Err(BusError::Timeout(timeout));
            };
            let (tx, rx) = oneshot::channel();
            let incoming = IncomingCommand {
                envelope: command,
                sink: Box::new(OneshotSink(tx)),
            };
            match tokio::time::timeout(timeout, async {
                server.send(incoming).await.map_err(|_| BusError::Closed)?;
                rx.await.map_err(|_| BusError::Closed)
            })
            .await
            {
                Ok(result) => result,
                Err(_) => Err(BusError::Timeout(timeout)),
            }
        })
    }

    fn serve_commands<'a>(&'a self, _node: &'a str) -> BoxFuture<'a, Result<CommandServer, BusError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(COMMAND_BUFFER);
            let serial = {
                let mut inner = lock(&self.inner);
                inner.next_server += 1;
                inner.next_server
            };
            let routing = InProcRouting {
                inner: self.inner.clone(),
                serial,
                tx,
            };
            Ok(CommandServer {
                routing: Box::new(routing),
                rx,
            })
        })
    }
}

struct OneshotSink(oneshot::Sender<CommandReply>);

impl ReplySink for OneshotSink {
    fn send(self: Box<Self>, reply: CommandReply) -> BoxFuture<'static, Result<(), BusError>> {
        // The sender may have timed out and gone: that is not this side's failure.
        let _ = self.0.send(reply);
        Box::pin(async { Ok(()) })
    }
}

struct InProcRouting {
    inner: Arc<Mutex<Inner>>,
    serial: u64,
    tx: mpsc::Sender<IncomingCommand>,
}

impl StationRouting for InProcRouting {
    fn serve(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>> {
        lock(&self.inner)
            .stations
            .insert(station.clone(), (self.serial, self.tx.clone()));
        Box::pin(async { Ok(()) })
    }

    fn leave(&self, station: &StationId) -> BoxFuture<'_, Result<(), BusError>> {
        let mut inner = lock(&self.inner);
        // Only our own entry: the station may already serve from another node.
        if inner
            .stations
            .get(station)
            .is_some_and(|(serial, _)| *serial == self.serial)
        {
            inner.stations.remove(station);
        }
        Box::pin(async { Ok(()) })
    }
}

impl Drop for InProcRouting {
    fn drop(&mut self) {
        let serial = self.serial;
        lock(&self.inner).stations.retain(|_, (s, _)| *s != serial);
    }
}

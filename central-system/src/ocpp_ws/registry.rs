//! Which station is connected to this node, and the handle that reaches its session.

use ocpp::Version;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};

/// What a station answered to a central-system call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// CALLRESULT payload.
    Result(Value),
    /// CALLERROR.
    Error {
        /// Wire code.
        code: String,
        /// Description.
        description: String,
        /// Details object.
        details: Value,
    },
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// No live connection for the station.
    #[error("station is offline")]
    Offline,
    /// No answer within the timeout.
    #[error("station did not answer in time")]
    Timeout,
    /// The connection closed before the answer came.
    #[error("connection closed before the answer")]
    Disconnected,
}

/// A call queued for a session.
#[derive(Debug)]
pub struct OutboundCall {
    /// Action.
    pub action: String,
    /// Validated payload.
    pub payload: Value,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<CallOutcome, CallFailure>>,
}

/// Messages to a running session.
#[derive(Debug)]
pub enum SessionCommand {
    /// Send a call and report the answer.
    Call(OutboundCall),
    /// Close the connection (a newer one replaced it).
    Replace,
}

/// A live session's handle.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Connection serial, so a closing old session cannot unregister its successor.
    pub conn_id: u64,
    /// Protocol version of the connection.
    pub version: Version,
    /// Command channel.
    pub tx: mpsc::Sender<SessionCommand>,
}

/// A station arriving at or leaving this node, for whoever must follow (the bus command
/// server subscribes to a station's commands while it is here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The station connected and had no connection here before.
    Connected(Arc<str>),
    /// The station's last connection here closed.
    Left(Arc<str>),
}

/// How many presence changes a slow watcher may fall behind before it must resynchronise
/// from [`Registry::stations`].
const PRESENCE_BUFFER: usize = 1024;

/// The connected stations of this node.
#[derive(Debug)]
pub struct Registry {
    sessions: Mutex<HashMap<Arc<str>, SessionHandle>>,
    next_conn: AtomicU64,
    presence: broadcast::Sender<Presence>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            sessions: Mutex::default(),
            next_conn: AtomicU64::default(),
            presence: broadcast::channel(PRESENCE_BUFFER).0,
        }
    }
}

impl Registry {
    /// A fresh connection serial.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a session and returns the one it replaces, if any.
    pub fn insert(&self, station: Arc<str>, handle: SessionHandle) -> Option<SessionHandle> {
        let mut map = self.lock();
        let old = map.insert(station.clone(), handle);
        if old.is_none() {
            // Sent under the lock, so watchers see changes in the order the map made them.
            // No watcher is not an error.
            let _ = self.presence.send(Presence::Connected(station));
        }
        old
    }

    /// Unregisters a session unless a newer one already took its place.
    pub fn remove(&self, station: &str, conn_id: u64) -> bool {
        let mut map = self.lock();
        match map.get_key_value(station) {
            Some((key, h)) if h.conn_id == conn_id => {
                let key = key.clone();
                map.remove(station);
                let _ = self.presence.send(Presence::Left(key));
                true
            }
            _ => false,
        }
    }

    /// Follows stations arriving and leaving. Subscribe before reading [`Registry::stations`],
    /// so no change falls between the two; on `Lagged`, read `stations` again.
    pub fn watch(&self) -> broadcast::Receiver<Presence> {
        self.presence.subscribe()
    }

    /// The stations connected now.
    pub fn stations(&self) -> Vec<Arc<str>> {
        self.lock().keys().cloned().collect()
    }

    /// The session of a station.
    pub fn get(&self, station: &str) -> Option<SessionHandle> {
        self.lock().get(station).cloned()
    }

    /// The ids of the connected stations (a snapshot).
    pub fn station_ids(&self) -> Vec<String> {
        self.lock().keys().map(|k| k.to_string()).collect()
    }

    /// Number of connected stations.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no station is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, SessionHandle>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still safe to use.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn handle(conn_id: u64) -> SessionHandle {
        SessionHandle {
            conn_id,
            version: Version::V16,
            tx: mpsc::channel(1).0,
        }
    }

    #[test]
    fn watchers_see_arrivals_and_last_departures_only() {
        let registry = Registry::default();
        let mut watch = registry.watch();
        let cp: Arc<str> = Arc::from("CP-1");
        assert!(registry.insert(cp.clone(), handle(1)).is_none());
        // A replacing connection on this node: still here, nothing to tell.
        assert!(registry.insert(cp.clone(), handle(2)).is_some());
        // The replaced session closing does not unregister its successor.
        assert!(!registry.remove("CP-1", 1));
        assert!(registry.remove("CP-1", 2));
        assert_eq!(watch.try_recv().unwrap(), Presence::Connected(cp.clone()));
        assert_eq!(watch.try_recv().unwrap(), Presence::Left(cp));
        assert!(watch.try_recv().is_err());
        assert!(registry.stations().is_empty());
    }
}

//! Which station is connected to this node, and the handle that reaches its session.

use ocpp::Version;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

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

/// The connected stations of this node.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<Arc<str>, SessionHandle>>,
    next_conn: AtomicU64,
}

impl Registry {
    /// A fresh connection serial.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a session and returns the one it replaces, if any.
    pub fn insert(&self, station: Arc<str>, handle: SessionHandle) -> Option<SessionHandle> {
        self.lock().insert(station, handle)
    }

    /// Unregisters a session unless a newer one already took its place.
    pub fn remove(&self, station: &str, conn_id: u64) -> bool {
        let mut map = self.lock();
        if map.get(station).is_some_and(|h| h.conn_id == conn_id) {
            map.remove(station);
            true
        } else {
            false
        }
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

//! The live WebSocket at `GET /api/v1/live`: owners see their own sessions and bookings change,
//! operators and BackOffices their stations' connectors, sessions and alerts, admins everything.
//!
//! - [`Live`]: what the service publishes into, after the commit of the change it reports
//!   (the bus consumer for charger events, the booking and session handlers for theirs).
//! - [`hub`]: sequence numbers and the bounded resume buffer.
//! - [`socket`]: the endpoint: authentication, resume (`?since=N&stream=S`), per-account
//!   connection limit, bounded send backlog (a slow reader is dropped, not buffered for ever).
//!
//! Sequence numbers are per booking-API process (the `stream` id names it): a replica or a
//! restart has its own, and a client that comes back with another stream's number gets a
//! `resync`.

pub mod hub;
pub mod socket;

use crate::bookings::store::Booking;
use crate::sessions::store::SessionRow;
use crate::sessions::Session;
use hub::Sequencer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Messages the ring keeps for clients that reconnect.
pub const RESUME_BUFFER: usize = 1024;
/// Messages a connection may fall behind before it is dropped (it may resume with `since`).
pub const SEND_BACKLOG: usize = 256;
/// Live connections one account may hold at once.
pub const MAX_CONNECTIONS_PER_ACCOUNT: usize = 5;

/// What a message is about; decides which roles get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A charging session (owners: their bookings'; staff: their stations').
    Session,
    /// A booking (owners: their own).
    Booking,
    /// A connector status (staff: their stations').
    Connector,
    /// An operator alert (staff: their stations').
    Alert,
}

impl Kind {
    /// The `type` of the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Booking => "booking",
            Kind::Connector => "connector",
            Kind::Alert => "alert",
        }
    }
}

/// Who a message concerns: the owner of the booking, the booking station. Admins see every
/// message; a message with neither reaches admins only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Audience {
    pub owner_id: Option<i64>,
    pub station_id: Option<i64>,
}

/// A committed change the live socket reports.
#[derive(Debug, Clone)]
pub enum Change {
    /// A session's new state (with its booking's owner).
    Session(Box<SessionRow>),
    /// A booking's new state.
    Booking(Booking),
    /// A connector of a linked station reported a status.
    Connector {
        station_id: i64,
        central_station_id: String,
        connector_id: i64,
        status: String,
        at: i64,
    },
    /// An alert raised (or moved along its lifecycle) at a station.
    Alert(Box<crate::alerts::Alert>),
}

/// The live side of the shared state.
#[derive(Debug)]
pub struct Live {
    sequencer: Sequencer,
    connections: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Default for Live {
    fn default() -> Live {
        Live::new()
    }
}

impl Live {
    /// With the default bounds.
    pub fn new() -> Live {
        Live {
            sequencer: Sequencer::new(RESUME_BUFFER, SEND_BACKLOG),
            connections: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The sequencer (sequence numbers, resume buffer).
    pub fn sequencer(&self) -> &Sequencer {
        &self.sequencer
    }

    /// Publishes a message; returns its sequence number. For features that report their own
    /// changes (alerts), after the commit.
    pub fn publish(&self, kind: Kind, audience: Audience, data: &serde_json::Value) -> u64 {
        self.sequencer.publish(kind, audience, data)
    }

    /// Reports a booking's new state to its owner.
    pub fn booking_changed(&self, booking: &Booking) {
        let data = serde_json::to_value(booking).unwrap_or_default();
        self.publish(
            Kind::Booking,
            Audience {
                owner_id: Some(booking.owner_id),
                station_id: Some(booking.station_id),
            },
            &data,
        );
    }

    /// Reports committed changes; `now_ms` dates the sessions' running durations.
    pub fn publish_changes(&self, changes: Vec<Change>, now_ms: i64) {
        for change in changes {
            match change {
                Change::Session(row) => {
                    let data = serde_json::to_value(Session::from_row(&row, now_ms)).unwrap_or_default();
                    self.publish(
                        Kind::Session,
                        Audience {
                            owner_id: row.owner_id,
                            station_id: row.station_id,
                        },
                        &data,
                    );
                }
                Change::Booking(booking) => self.booking_changed(&booking),
                Change::Connector {
                    station_id,
                    central_station_id,
                    connector_id,
                    status,
                    at,
                } => {
                    let data = serde_json::json!({
                        "stationId": station_id,
                        "centralStationId": central_station_id,
                        "connectorId": connector_id,
                        "status": status,
                        "at": service_kit::sql_types::Ts(at),
                    });
                    self.publish(
                        Kind::Connector,
                        Audience {
                            owner_id: None,
                            station_id: Some(station_id),
                        },
                        &data,
                    );
                }
                Change::Alert(alert) => {
                    let data = serde_json::to_value(&alert).unwrap_or_default();
                    self.publish(
                        Kind::Alert,
                        Audience {
                            owner_id: None,
                            station_id: Some(alert.station_id),
                        },
                        &data,
                    );
                }
            }
        }
    }

    /// Takes one of `account_id`'s connection places; None when it holds the most already.
    pub fn admit(&self, account_id: i64) -> Option<Permit> {
        let mut held = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(account_id).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_ACCOUNT {
            return None;
        }
        *n += 1;
        Some(Permit {
            connections: self.connections.clone(),
            account_id,
        })
    }
}

/// A held connection place, given back on drop.
#[derive(Debug)]
pub struct Permit {
    connections: Arc<Mutex<HashMap<i64, usize>>>,
    account_id: i64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.account_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.account_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_holds_at_most_the_limit_and_gets_places_back() {
        let live = Live::new();
        let permits: Vec<_> = (0..MAX_CONNECTIONS_PER_ACCOUNT).filter_map(|_| live.admit(1)).collect();
        assert_eq!(permits.len(), MAX_CONNECTIONS_PER_ACCOUNT);
        assert!(live.admit(1).is_none());
        assert!(live.admit(2).is_some(), "another account is not affected");
        drop(permits);
        assert!(live.admit(1).is_some());
    }
}

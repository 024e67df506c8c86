//! Sending commands to a linked charger over the bus, and the one rule that turns a station
//! connector into the charger's own location.

use super::store;
use crate::app::AppState;
use evcs_bus::{BusError, Command, CommandReply, Location, StationId};
use service_kit::db::{Db, StoreError};
use std::time::Duration;

/// How long a command may take end to end (bus, central system, charger, reply). The command
/// expires at the same instant, so a charger never sees it after the caller gave up.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `command` to `station` and waits for the charger's reply (or [`TIMEOUT`]).
pub async fn send(state: &AppState, station: &StationId, command: Command) -> Result<CommandReply, BusError> {
    let envelope = evcs_bus::command(station.clone(), command, TIMEOUT);
    state.bus.send_command(envelope, TIMEOUT).await
}

/// The location on the charger of a station connector (`station_connectors.connector_id`): the
/// 2.0.1 EVSE id for a 2.0.1 charger, the 1.6 connector id otherwise (the linking rule of
/// [`super::projection::connector_key`] read backwards).
pub async fn location(db: &Db, central_station_id: &str, connector_id: i64) -> Result<Location, StoreError> {
    let id = u32::try_from(connector_id).unwrap_or(0);
    Ok(match store::ocpp_version(db, central_station_id).await?.as_deref() {
        Some("2.0.1") => Location {
            evse_id: Some(id),
            connector_id: None,
        },
        _ => Location {
            evse_id: None,
            connector_id: Some(id),
        },
    })
}

/// Whether a reply is the charger's `Accepted`.
pub fn accepted(reply: &CommandReply) -> bool {
    matches!(reply, CommandReply::Status { status, .. } if status == "Accepted")
}

/// What a sent command came to, in words: the charger's reply described, or why there was none.
pub fn outcome(reply: &Result<CommandReply, BusError>) -> String {
    match reply {
        Ok(r) => describe(r),
        Err(BusError::Timeout(_)) => "station offline".into(),
        Err(e) => e.to_string(),
    }
}

/// A short, human-readable reason for a reply that is not `Accepted` (recorded on bookings and
/// shown in alerts).
pub fn describe(reply: &CommandReply) -> String {
    match reply {
        CommandReply::Status { status, .. } => status.clone(),
        CommandReply::Offline => "station offline".into(),
        CommandReply::Timeout => "charger did not answer".into(),
        CommandReply::CallError { code, description } => match description {
            Some(d) => format!("CALLERROR {code}: {d}"),
            None => format!("CALLERROR {code}"),
        },
        CommandReply::Invalid { reason } => format!("invalid for this charger: {reason}"),
        CommandReply::Unknown => "unknown reply".into(),
    }
}

//! Commands as OCPP 1.6 actions and payloads: the one place that knows the 1.6 names.
//!
//! 1.6 addresses connectors by one number: [`Location::evse_id`](super::Location) carries it
//! and the 2.0.1-only connector id is ignored. Id tokens go out as a bare `idTag`.

use super::{insert, object, Command, Request, ResetKind, TranslateError};
use chrono::SecondsFormat;
use serde_json::{json, Value};

/// The 1.6 action and payload of `command`.
pub fn request(command: &Command) -> Result<Request, TranslateError> {
    let (action, payload) = match command {
        Command::RemoteStart(start) => {
            let mut p = object(json!({ "idTag": start.id_token.value }));
            insert(&mut p, "connectorId", start.evse_id.map(Value::from));
            ("RemoteStartTransaction", Value::Object(p))
        }
        Command::RemoteStop { station_transaction_id } => {
            let id: i64 = station_transaction_id
                .parse()
                .map_err(|_| TranslateError::NotAnIntegerTransactionId(station_transaction_id.clone()))?;
            ("RemoteStopTransaction", json!({ "transactionId": id }))
        }
        Command::ReserveNow(reserve) => (
            "ReserveNow",
            json!({
                // 0 reserves any connector of the station.
                "connectorId": reserve.evse_id.unwrap_or(0),
                "expiryDate": reserve.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "idTag": reserve.id_token.value,
                "reservationId": reserve.reservation_id,
            }),
        ),
        Command::CancelReservation { reservation_id } => {
            ("CancelReservation", json!({ "reservationId": reservation_id }))
        }
        Command::ChangeAvailability { location, availability } => (
            "ChangeAvailability",
            // Connector 0 is the whole station.
            json!({ "connectorId": location.evse_id.unwrap_or(0), "type": availability.as_str() }),
        ),
        Command::Reset { kind, .. } => {
            let kind = match kind {
                ResetKind::Soft => "Soft",
                ResetKind::Hard => "Hard",
            };
            ("Reset", json!({ "type": kind }))
        }
        Command::UnlockConnector { evse_id, .. } => ("UnlockConnector", json!({ "connectorId": evse_id })),
        Command::TriggerMessage { message, location } => {
            let mut p = object(json!({ "requestedMessage": message }));
            insert(&mut p, "connectorId", location.evse_id.map(Value::from));
            ("TriggerMessage", Value::Object(p))
        }
        Command::Call { action, payload } => {
            return Ok(Request {
                action: action.clone(),
                payload: payload.clone(),
            })
        }
    };
    Ok(Request {
        action: action.to_string(),
        payload,
    })
}

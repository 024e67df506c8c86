//! Commands as OCPP 2.0.1 actions and payloads: the one place that knows the 2.0.1 names.
//!
//! Id tokens go out with their own `IdTokenEnumType` ([`Token::kind`](super::Token)); Reset
//! kinds become OnIdle/Immediate; locations become `evseId` or an `evse` object.

use super::{insert, object, Command, Location, Request, ResetKind, Token, TranslateError};
use chrono::SecondsFormat;
use serde_json::{json, Value};

/// The 2.0.1 action and payload of `command`.
pub fn request(command: &Command) -> Result<Request, TranslateError> {
    let (action, payload) = match command {
        Command::RemoteStart(start) => {
            let mut p = object(json!({
                "idToken": id_token(&start.id_token),
                "remoteStartId": start.remote_start_id,
            }));
            insert(&mut p, "evseId", start.evse_id.map(Value::from));
            ("RequestStartTransaction", Value::Object(p))
        }
        Command::RemoteStop { station_transaction_id } => (
            "RequestStopTransaction",
            json!({ "transactionId": station_transaction_id }),
        ),
        Command::ReserveNow(reserve) => {
            let mut p = object(json!({
                "id": reserve.reservation_id,
                "expiryDateTime": reserve.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "idToken": id_token(&reserve.id_token),
            }));
            insert(&mut p, "evseId", reserve.evse_id.map(Value::from));
            ("ReserveNow", Value::Object(p))
        }
        Command::CancelReservation { reservation_id } => {
            ("CancelReservation", json!({ "reservationId": reservation_id }))
        }
        Command::ChangeAvailability { location, availability } => {
            let mut p = object(json!({ "operationalStatus": availability.as_str() }));
            insert(&mut p, "evse", evse(location));
            ("ChangeAvailability", Value::Object(p))
        }
        Command::Reset { kind, evse_id } => {
            let kind = match kind {
                ResetKind::Soft => "OnIdle",
                ResetKind::Hard => "Immediate",
            };
            let mut p = object(json!({ "type": kind }));
            insert(&mut p, "evseId", evse_id.map(Value::from));
            ("Reset", Value::Object(p))
        }
        Command::UnlockConnector { evse_id, connector_id } => (
            "UnlockConnector",
            // 2.0.1 requires the connector; most EVSEs have exactly one, numbered 1.
            json!({ "evseId": evse_id, "connectorId": connector_id.unwrap_or(1) }),
        ),
        Command::TriggerMessage { message, location } => {
            let mut p = object(json!({ "requestedMessage": message }));
            insert(&mut p, "evse", evse(location));
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

fn id_token(token: &Token) -> Value {
    json!({ "idToken": token.value, "type": token.kind.as_str() })
}

/// The `EVSEType` object of a location, if it names an EVSE.
fn evse(location: &Location) -> Option<Value> {
    let id = location.evse_id?;
    let mut target = object(json!({ "id": id }));
    insert(&mut target, "connectorId", location.connector_id.map(Value::from));
    Some(Value::Object(target))
}

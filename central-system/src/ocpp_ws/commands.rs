//! Sending a central-system call to a connected station and waiting for its answer.

use super::registry::{CallFailure, CallOutcome, OutboundCall, SessionCommand};
use crate::app::AppState;
use ocpp::catalogue;
use ocpp::schema::{self, Direction};
use ocpp::{Version, Violation};
use serde_json::Value;
use tokio::sync::oneshot;

/// Why a command could not be delivered or answered.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No live connection.
    #[error("station is offline")]
    Offline,
    /// The station did not answer in time.
    #[error("station did not answer in time")]
    Timeout,
    /// The connection closed while waiting.
    #[error("connection closed before the answer")]
    Disconnected,
    /// The action does not exist in the station's version, or chargers send it.
    #[error("{action} cannot be sent to an OCPP {version} station")]
    UnknownAction {
        /// The action.
        action: String,
        /// The station's version.
        version: Version,
    },
    /// The payload fails the official schema.
    #[error("invalid payload: {0}")]
    InvalidPayload(Violation),
    /// The station's CALLRESULT fails the official response schema.
    #[error("the station answered {action} with an invalid payload: {violation}")]
    InvalidResponse {
        /// The action called.
        action: String,
        /// What is wrong with the answer.
        violation: Violation,
    },
}

/// The version of a connected station, if it is connected.
pub fn connected_version(state: &AppState, station_id: &str) -> Option<Version> {
    state.registry.get(station_id).map(|h| h.version)
}

/// Sends `action` with `payload` to the station and returns its answer.
pub async fn call(
    state: &AppState,
    station_id: &str,
    action: &str,
    payload: Value,
) -> Result<CallOutcome, CommandError> {
    let handle = state.registry.get(station_id).ok_or(CommandError::Offline)?;
    let allowed = catalogue::initiator(handle.version, action).is_some_and(|i| i.csms_may_send());
    if !allowed {
        return Err(CommandError::UnknownAction {
            action: action.to_string(),
            version: handle.version,
        });
    }
    schema::validate(handle.version, action, Direction::Request, &payload).map_err(CommandError::InvalidPayload)?;
    let (reply, answer) = oneshot::channel();
    let command = SessionCommand::Call(OutboundCall {
        action: action.to_string(),
        payload,
        reply,
    });
    handle.tx.send(command).await.map_err(|_| CommandError::Offline)?;
    // The session times out the call once it is on the wire; this bound also covers the wait in
    // its queue behind other calls.
    let limit = state.config.call_timeout() * 3;
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(Ok(CallOutcome::Result(response)))) => {
            // An answer that breaks the schema is no answer: passing it on as success would let
            // a faulty station confirm what it never did (a reservation, a start).
            schema::validate(handle.version, action, Direction::Response, &response).map_err(|violation| {
                CommandError::InvalidResponse {
                    action: action.to_string(),
                    violation,
                }
            })?;
            Ok(CallOutcome::Result(response))
        }
        Ok(Ok(Ok(outcome))) => Ok(outcome),
        Ok(Ok(Err(CallFailure::Timeout))) | Err(_) => Err(CommandError::Timeout),
        Ok(Ok(Err(CallFailure::Offline))) => Err(CommandError::Offline),
        Ok(Ok(Err(CallFailure::Disconnected))) | Ok(Err(_)) => Err(CommandError::Disconnected),
    }
}

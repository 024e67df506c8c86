//! Sending a central-system call to a connected station and waiting for its answer.
//!
//! [`send`] is the way typed commands (from the operator REST API and from the bus) reach a
//! station: the command is translated by `ocpp::commands` for the station's version, sent with
//! [`call`], the answer read back by `ocpp::commands::answer`, and what the answer changed (a
//! reservation) recorded. [`call`] alone serves the generic REST endpoint.

use super::registry::{CallFailure, CallOutcome, OutboundCall, SessionCommand};
use crate::app::AppState;
use crate::store::messages::Reservation;
use crate::store::types::Ts;
use crate::store::StoreError;
use ocpp::catalogue;
use ocpp::commands::{Answer, AnswerError, Command, Status, TokenKind, TranslateError};
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
    /// The command cannot be expressed in the station's version.
    #[error(transparent)]
    Untranslatable(#[from] TranslateError),
    /// The station's CALLRESULT passed the schema but is not an answer to the command.
    #[error("the station answered {action} unusably: {error}")]
    UnreadableAnswer {
        /// The action called.
        action: String,
        /// What is wrong with the answer.
        error: AnswerError,
    },
    /// Recording what the answer changed failed.
    #[error("recording the answer: {0}")]
    Store(#[from] StoreError),
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

/// What a station did with a typed command.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The OCPP action the command became.
    pub action: String,
    /// The station's answer.
    pub outcome: Outcome,
}

/// A typed command's answer: a CALLRESULT, read, or a CALLERROR.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The station answered (its status may still be a refusal).
    Answered(Answer),
    /// The station answered with a CALLERROR.
    CallError {
        /// Wire code.
        code: String,
        /// Description.
        description: String,
        /// Details object.
        details: Value,
    },
}

/// Sends a typed command to a connected station, reads its answer and records what the answer
/// changed (ReserveNow and CancelReservation update the station's reservations).
pub async fn send(state: &AppState, station_id: &str, command: &Command) -> Result<Sent, CommandError> {
    let version = connected_version(state, station_id).ok_or(CommandError::Offline)?;
    let request = command.request(version)?;
    let action = request.action;
    let outcome = match call(state, station_id, &action, request.payload).await? {
        CallOutcome::Result(payload) => {
            let answer = command
                .read_answer(payload)
                .map_err(|error| CommandError::UnreadableAnswer {
                    action: action.clone(),
                    error,
                })?;
            record(state, station_id, command, &answer).await?;
            Outcome::Answered(answer)
        }
        CallOutcome::Error {
            code,
            description,
            details,
        } => Outcome::CallError {
            code,
            description,
            details,
        },
    };
    Ok(Sent { action, outcome })
}

/// Keeps the reservations table in step with what stations answered.
async fn record(state: &AppState, station_id: &str, command: &Command, answer: &Answer) -> Result<(), StoreError> {
    let status = answer.status.as_ref().map_or("Unknown", Status::as_str);
    match command {
        Command::ReserveNow(reserve) => {
            let now = Ts::now();
            let r = Reservation {
                reservation_id: i64::from(reserve.reservation_id),
                evse_id: i64::from(reserve.evse_id.unwrap_or(0)),
                id_token: reserve.id_token.value.clone(),
                expires_at: Ts::from_datetime(reserve.expires_at),
                status: status.to_string(),
                updated_at: now,
            };
            state.store.upsert_reservation(station_id, &r).await
        }
        Command::CancelReservation { reservation_id } if answer.status == Some(Status::Accepted) => state
            .store
            .set_reservation_status(station_id, i64::from(*reservation_id), "Cancelled", Ts::now())
            .await
            .map(drop),
        _ => Ok(()),
    }
}

/// The 2.0.1 type an id token goes out with: the caller's, else the type stored with the token
/// (`/id-tokens`), else `Central` (the spec's type for an id the CSMS made up, the truth for a
/// token it has never seen).
pub async fn token_kind(state: &AppState, token: &str, explicit: Option<TokenKind>) -> Result<TokenKind, StoreError> {
    if let Some(kind) = explicit {
        return Ok(kind);
    }
    let stored = state.store.id_token(token).await?;
    // A stored type that is no IdTokenEnumType (1.6 tokens are `IdTag`) says nothing for 2.0.1.
    Ok(stored
        .and_then(|t| TokenKind::parse(&t.token_type).ok())
        .unwrap_or(TokenKind::CENTRAL))
}

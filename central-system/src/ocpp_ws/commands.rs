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
    /// Forwarding the call to the node that holds the station's socket failed.
    #[error("forwarding to the station's node: {0}")]
    Forwarded(String),
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

/// Sends `action` with `payload` to the station, on this node or, through the bus, on the node
/// that holds its socket, and returns its answer.
pub async fn call(
    state: &AppState,
    station_id: &str,
    action: &str,
    payload: Value,
) -> Result<CallOutcome, CommandError> {
    if state.registry.get(station_id).is_some() {
        return call_local(state, station_id, action, payload).await;
    }
    let version = remote_version(state, station_id).await?;
    forward(state, station_id, version, action, payload).await
}

/// The version of a station connected to this node or, per the store, to another node of the
/// cluster; `Offline` when it is connected nowhere.
pub async fn station_version(state: &AppState, station_id: &str) -> Result<Version, CommandError> {
    match connected_version(state, station_id) {
        Some(version) => Ok(version),
        None => remote_version(state, station_id).await,
    }
}

/// The version of a station connected to another node, per the store (`Offline` when the
/// store says it is connected nowhere).
async fn remote_version(state: &AppState, station_id: &str) -> Result<Version, CommandError> {
    let station = state.store.station(station_id).await?.ok_or(CommandError::Offline)?;
    if !station.online.0 {
        return Err(CommandError::Offline);
    }
    station
        .ocpp_version
        .as_deref()
        .and_then(Version::from_label)
        .ok_or(CommandError::Offline)
}

/// Checks a call this node would send to a `version` station: the action is one the CSMS may
/// send in that version and the payload passes its schema.
fn check_request(version: Version, action: &str, payload: &Value) -> Result<(), CommandError> {
    let allowed = catalogue::initiator(version, action).is_some_and(|i| i.csms_may_send());
    if !allowed {
        return Err(CommandError::UnknownAction {
            action: action.to_string(),
            version,
        });
    }
    schema::validate(version, action, Direction::Request, payload).map_err(CommandError::InvalidPayload)
}

/// Sends a call to a station connected to another node: a generic bus command, answered by the
/// node that serves the station (which validates and sends it like [`call_local`]). The answer
/// is checked against the response schema here too.
async fn forward(
    state: &AppState,
    station_id: &str,
    version: Version,
    action: &str,
    payload: Value,
) -> Result<CallOutcome, CommandError> {
    check_request(version, action, &payload)?;
    let station = evcs_bus::StationId::parse(station_id).map_err(|_| CommandError::Offline)?;
    let limit = state.config.call_timeout() * 3;
    let command = evcs_bus::Command::Call {
        action: action.to_string(),
        payload,
    };
    let reply = state
        .bus
        .send_command(evcs_bus::command(station, command, limit), limit)
        .await;
    match reply {
        Ok(evcs_bus::CommandReply::Status {
            payload: Some(response),
            ..
        }) => {
            schema::validate(version, action, Direction::Response, &response).map_err(|violation| {
                CommandError::InvalidResponse {
                    action: action.to_string(),
                    violation,
                }
            })?;
            Ok(CallOutcome::Result(response))
        }
        Ok(evcs_bus::CommandReply::CallError { code, description }) => Ok(CallOutcome::Error {
            code,
            description: description.unwrap_or_default(),
            details: Value::Object(Default::default()),
        }),
        Ok(evcs_bus::CommandReply::Timeout) | Err(evcs_bus::BusError::Timeout(_)) => Err(CommandError::Timeout),
        Ok(evcs_bus::CommandReply::Invalid { reason }) => Err(CommandError::Forwarded(reason)),
        Ok(evcs_bus::CommandReply::Status { payload: None, .. })
        | Ok(evcs_bus::CommandReply::Offline)
        | Ok(evcs_bus::CommandReply::Unknown) => Err(CommandError::Offline),
        Err(e) => Err(CommandError::Forwarded(e.to_string())),
    }
}

/// Sends `action` with `payload` to a station connected to this node and returns its answer.
pub async fn call_local(
    state: &AppState,
    station_id: &str,
    action: &str,
    payload: Value,
) -> Result<CallOutcome, CommandError> {
    let handle = state.registry.get(station_id).ok_or(CommandError::Offline)?;
    check_request(handle.version, action, &payload)?;
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
/// A station connected to another node is reached through the bus (see the module docs).
pub async fn send(state: &AppState, station_id: &str, command: &Command) -> Result<Sent, CommandError> {
    match connected_version(state, station_id) {
        Some(_) => send_local(state, station_id, command).await,
        None => {
            let version = remote_version(state, station_id).await?;
            let request = command.request(version)?;
            let outcome = forward(state, station_id, version, &request.action, request.payload).await?;
            read(state, station_id, command, request.action, outcome).await
        }
    }
}

/// Like [`send`], for a station connected to this node only (commands served from the bus).
pub async fn send_local(state: &AppState, station_id: &str, command: &Command) -> Result<Sent, CommandError> {
    let version = connected_version(state, station_id).ok_or(CommandError::Offline)?;
    let request = command.request(version)?;
    let outcome = call_local(state, station_id, &request.action, request.payload).await?;
    read(state, station_id, command, request.action, outcome).await
}

/// Reads a typed command's answer and records what it changed.
async fn read(
    state: &AppState,
    station_id: &str,
    command: &Command,
    action: String,
    outcome: CallOutcome,
) -> Result<Sent, CommandError> {
    let outcome = match outcome {
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

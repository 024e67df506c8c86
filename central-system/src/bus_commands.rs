//! Serving bus commands: the node that holds a station's WebSocket answers the commands sent to
//! that station over the bus.
//!
//! One task per node ([`serve`]): it follows the registry's presence changes and tells the bus
//! which stations this node serves (`serve` on connect, `leave` on the last disconnect here, so a
//! station that moved to another node gets its commands there), and answers each command in a
//! task of its own: `evcs_bus::Command` -> `ocpp::commands::Command` ([`to_ocpp`]) ->
//! [`commands::send`] (the path the operator REST API takes) -> `CommandReply`.

use crate::app::AppState;
use crate::ocpp_ws::commands::{self, CommandError, Outcome, Sent};
use crate::ocpp_ws::registry::Presence;
use evcs_bus::contract::{Availability as BusAvailability, ResetKind as BusResetKind};
use evcs_bus::{BusError, CommandReply, CommandServer, IncomingCommand, StationId};
use ocpp::commands::{Availability, Command, Location, RemoteStart, ReserveNow, ResetKind, Token};
use ocpp::Version;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Serves the commands of the stations connected to this node until shutdown.
pub async fn serve(state: AppState, node: String) {
    // Watch before the first snapshot, so no arrival falls between the two.
    let mut presence = state.registry.watch();
    let mut server = match state.bus.serve_commands(&node).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, node, "cannot serve bus commands; stations get none");
            return;
        }
    };
    tracing::info!(node, "serving bus commands");
    let mut served = HashSet::new();
    resync(&server, &state, &mut served).await;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            change = presence.recv() => match change {
                Ok(Presence::Connected(station)) => {
                    if served.insert(station.clone()) {
                        route(&server, &station, true).await;
                    }
                }
                Ok(Presence::Left(station)) => {
                    if served.remove(&station) {
                        route(&server, &station, false).await;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "presence changes missed; resynchronising bus routes");
                    resync(&server, &state, &mut served).await;
                }
                Err(RecvError::Closed) => break,
            },
            incoming = server.next() => match incoming {
                Some(incoming) => {
                    let state = state.clone();
                    state.tracker.clone().spawn(answer(state, incoming));
                }
                None => {
                    tracing::error!(node, "the bus stopped delivering commands");
                    break;
                }
            },
        }
    }
    for station in served {
        route(&server, &station, false).await;
    }
}

/// Makes the served set equal to the stations connected now.
async fn resync(server: &CommandServer, state: &AppState, served: &mut HashSet<Arc<str>>) {
    let now: HashSet<Arc<str>> = state.registry.stations().into_iter().collect();
    for gone in served.difference(&now) {
        route(server, gone, false).await;
    }
    for new in now.difference(served) {
        route(server, new, true).await;
    }
    *served = now;
}

/// Starts or stops receiving a station's commands; a failure is logged (the bus retries its
/// own subscriptions after reconnects, and a command that cannot reach us times out).
async fn route(server: &CommandServer, station: &str, serve: bool) {
    let Ok(id) = StationId::parse(station) else {
        // The upgrade enforces the same rule, so this is a station the bus cannot address.
        tracing::warn!(station, "station id not valid on the bus; its commands cannot reach it");
        return;
    };
    let result: Result<(), BusError> = if serve {
        server.serve(&id).await
    } else {
        server.leave(&id).await
    };
    if let Err(e) = result {
        tracing::warn!(station, serve, error = %e, "updating the bus route failed");
    }
}

/// Answers one command.
async fn answer(state: AppState, incoming: IncomingCommand) {
    let station = incoming.envelope.station_id.as_str().to_owned();
    let command_id = incoming.envelope.command_id.clone();
    let reply = reply_to(&state, &station, &incoming.envelope.command).await;
    tracing::debug!(station, command = %command_id, ?reply, "bus command answered");
    if let Err(e) = incoming.reply(reply).await {
        tracing::warn!(station, command = %command_id, error = %e, "could not send the command reply");
    }
}

/// The reply to `command` for `station`.
pub async fn reply_to(state: &AppState, station: &str, command: &evcs_bus::Command) -> CommandReply {
    if let Some(reply) = scoped_token(state, station, command).await {
        return reply;
    }
    let Some(version) = commands::connected_version(state, station) else {
        return CommandReply::Offline;
    };
    let command = match to_ocpp(state, station, version, command).await {
        Ok(command) => command,
        Err(reason) => return CommandReply::Invalid { reason },
    };
    match commands::send_local(state, station, &command).await {
        Ok(Sent {
            outcome: Outcome::Answered(answer),
            ..
        }) => CommandReply::Status {
            // A generic call's answer may have no status (GetVariables): the payload says it all.
            status: answer
                .status
                .as_ref()
                .map_or_else(|| ANSWERED.to_string(), |s| s.as_str().to_string()),
            payload: (!command.is_typed()).then_some(answer.payload),
        },
        Ok(Sent {
            outcome: Outcome::CallError { code, description, .. },
            ..
        }) => CommandReply::CallError {
            code,
            description: Some(description).filter(|d| !d.is_empty()),
        },
        // The socket left meanwhile.
        Err(CommandError::Offline | CommandError::Disconnected) => CommandReply::Offline,
        Err(CommandError::Timeout) => CommandReply::Timeout,
        Err(CommandError::Store(e)) => {
            // The station answered; only our record of it failed. Saying so beats a false status.
            tracing::error!(station, error = %e, "recording a bus command's answer failed");
            CommandReply::Invalid {
                reason: "the station answered but the central system could not record it".into(),
            }
        }
        Err(
            e @ (CommandError::UnknownAction { .. }
            | CommandError::InvalidPayload(_)
            | CommandError::Untranslatable(_)
            | CommandError::InvalidResponse { .. }
            | CommandError::UnreadableAnswer { .. }
            | CommandError::Forwarded(_)),
        ) => CommandReply::Invalid { reason: e.to_string() },
    }
}

/// Answers the token commands, which the central system serves itself (no call to the
/// charger): the station's Authorize, StartTransaction and TransactionEvent read the scoped
/// token from the store. `None` for every other command.
async fn scoped_token(state: &AppState, station: &str, command: &evcs_bus::Command) -> Option<CommandReply> {
    use crate::store::types::Ts;
    use evcs_bus::Command as Bus;
    let status = |ok: bool| CommandReply::Status {
        status: if ok { "Accepted" } else { "Rejected" }.into(),
        payload: None,
    };
    let result = match command {
        Bus::AuthorizeToken {
            id_token,
            valid_from,
            valid_until,
        } => {
            if id_token.is_empty() || id_token.len() > 20 || valid_until <= valid_from {
                // 20: the longest 1.6 idTag; a token a 1.6 charger cannot carry is useless.
                return Some(CommandReply::Invalid {
                    reason: "authorizeToken needs a 1-20 character idToken and validFrom before validUntil".into(),
                });
            }
            state
                .store
                .grant_scoped_token(
                    id_token,
                    station,
                    Ts::from_datetime(*valid_from),
                    Ts::from_datetime(*valid_until),
                    Ts::from_datetime(chrono::Utc::now()),
                )
                .await
        }
        // Revoking what is not there is done: the caller retries until it hears an answer.
        Bus::RevokeToken { id_token } => state.store.revoke_scoped_token(id_token, station).await.map(|_| true),
        _ => return None,
    };
    Some(match result {
        Ok(ok) => status(ok),
        Err(e) => {
            tracing::error!(station, error = %e, "storing a scoped id token failed");
            CommandReply::Invalid {
                reason: "the central system could not store the token".into(),
            }
        }
    })
}

/// The status of a generic call whose CALLRESULT has no `status` field.
pub const ANSWERED: &str = "Answered";

/// Reads a bus command as the OCPP command model, looking up what the bus does not carry: the
/// 2.0.1 token type (stored with the token, else `Central`) and, for a remote stop, the id the
/// station knows the transaction by (the bus names the central system's transaction id).
pub async fn to_ocpp(
    state: &AppState,
    station: &str,
    version: Version,
    command: &evcs_bus::Command,
) -> Result<Command, String> {
    use evcs_bus::Command as Bus;
    // The command model's `evse_id` is the 1.6 `connectorId` for a 1.6 station; a bus location
    // of a 1.6 connector names it `connectorId` (the booking API's rule,
    // `chargers::commands::location`), so that is read as well. (Without this, a 1.6 location
    // fell back to connector 0: ReserveNow was Rejected, ChangeAvailability hit the station.)
    let evse = |l: &evcs_bus::Location| match version {
        Version::V16 => l.evse_id.or(l.connector_id),
        Version::V201 => l.evse_id,
    };
    let location = |l: &evcs_bus::Location| Location {
        evse_id: evse(l),
        connector_id: l.connector_id,
    };
    Ok(match command {
        Bus::RemoteStart {
            remote_start_id,
            id_token,
            location: at,
        } => Command::RemoteStart(RemoteStart {
            remote_start_id: id32("remoteStartId", *remote_start_id)?,
            id_token: token(state, id_token).await?,
            evse_id: evse(at),
        }),
        Bus::RemoteStop { transaction_id } => Command::RemoteStop {
            station_transaction_id: station_transaction_id(state, station, version, transaction_id).await?,
        },
        Bus::ReserveNow {
            reservation_id,
            id_token,
            location: at,
            expires_at,
        } => Command::ReserveNow(ReserveNow {
            reservation_id: id32("reservationId", *reservation_id)?,
            id_token: token(state, id_token).await?,
            evse_id: evse(at),
            expires_at: *expires_at,
        }),
        Bus::CancelReservation { reservation_id } => Command::CancelReservation {
            reservation_id: id32("reservationId", *reservation_id)?,
        },
        Bus::ChangeAvailability {
            location: at,
            availability,
        } => Command::ChangeAvailability {
            location: location(at),
            availability: match availability {
                BusAvailability::Operative => Availability::Operative,
                BusAvailability::Inoperative => Availability::Inoperative,
            },
        },
        Bus::Reset { kind } => Command::Reset {
            kind: match kind {
                BusResetKind::Soft => ResetKind::Soft,
                BusResetKind::Hard => ResetKind::Hard,
            },
            evse_id: None,
        },
        Bus::UnlockConnector { location: at } => Command::UnlockConnector {
            evse_id: evse(at).ok_or("unlockConnector needs location.evseId (1.6: connectorId)")?,
            connector_id: at.connector_id,
        },
        Bus::TriggerMessage { message, location: at } => Command::TriggerMessage {
            message: message.clone(),
            location: location(at),
        },
        Bus::Call { action, payload } => Command::Call {
            action: action.clone(),
            payload: payload.clone(),
        },
        Bus::AuthorizeToken { .. } | Bus::RevokeToken { .. } => {
            return Err("token commands are answered by the central system, not sent to the charger".into())
        }
    })
}

/// OCPP ids are 32-bit; the bus carries 64.
fn id32(field: &str, id: i64) -> Result<i32, String> {
    i32::try_from(id).map_err(|_| format!("{field} {id} does not fit OCPP's 32-bit integer"))
}

async fn token(state: &AppState, value: &str) -> Result<Token, String> {
    let kind = commands::token_kind(state, value, None)
        .await
        .map_err(|e| format!("looking up the id token: {e}"))?;
    Ok(Token {
        value: value.to_string(),
        kind,
    })
}

/// The id `station` knows the central system's transaction `id` by: 1.6 stations were given
/// the central system's id itself; 2.0.1 stations chose their own.
async fn station_transaction_id(state: &AppState, station: &str, version: Version, id: &str) -> Result<String, String> {
    let central: i64 = id
        .parse()
        .map_err(|_| format!("transactionId {id:?} is not a central-system transaction id"))?;
    if version == Version::V16 {
        return Ok(central.to_string());
    }
    let transaction = state
        .store
        .transaction(central)
        .await
        .map_err(|e| format!("looking up transaction {central}: {e}"))?
        .filter(|t| t.station_id == station)
        .ok_or_else(|| format!("station {station} has no transaction {central}"))?;
    Ok(transaction.station_transaction_id)
}

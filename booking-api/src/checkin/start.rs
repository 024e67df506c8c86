//! RemoteStart after a check-in, and what the charger answered, as a stable code.
//!
//! A charger that refuses, errs or is offline does not undo the check-in: the driver proved
//! presence and the token is spent. The booking stays CheckedIn with its connector and
//! remote-start id; the answer is returned with its code and audited, and the driver can still
//! start by presenting the booking's id token at the charger (it is valid there inside the
//! booking's window), or staff can start it from the charger.

use crate::api::auth::Caller;
use crate::app::AppState;
use crate::audit;
use crate::bookings::store::Booking;
use crate::chargers::commands;
use evcs_bus::{BusError, Command, CommandReply, Location, StationId};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// How a RemoteStart went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandCode {
    /// The charger accepted: it will start when the vehicle is plugged in.
    Accepted,
    /// The charger answered with another status (Rejected, ...).
    ChargerRejected,
    /// The charger is not connected (or no central-system node serves it).
    ChargerOffline,
    /// The charger did not answer in time.
    ChargerTimeout,
    /// The charger answered with a CALLERROR, or the command does not fit it.
    ChargerError,
    /// The command could not be sent (bus failure, station without a valid charger link).
    NotSent,
}

/// The charger's answer to the RemoteStart, as returned to the scanner.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartAnswer {
    /// `ACCEPTED`, `CHARGER_REJECTED`, `CHARGER_OFFLINE`, `CHARGER_TIMEOUT`, `CHARGER_ERROR`
    /// or `NOT_SENT`.
    pub code: CommandCode,
    pub accepted: bool,
    /// The charger's status or the reason, in words.
    pub detail: String,
    /// Where on the charger: 2.0.1 EVSE id or 1.6 connector id.
    #[schema(value_type = Object)]
    pub location: Option<Location>,
}

/// The code of a reply.
pub fn classify(reply: &Result<CommandReply, BusError>) -> CommandCode {
    match reply {
        Ok(r) if commands::accepted(r) => CommandCode::Accepted,
        Ok(CommandReply::Status { .. }) => CommandCode::ChargerRejected,
        Ok(CommandReply::Offline) | Err(BusError::Timeout(_)) => CommandCode::ChargerOffline,
        Ok(CommandReply::Timeout) => CommandCode::ChargerTimeout,
        Ok(CommandReply::CallError { .. } | CommandReply::Invalid { .. } | CommandReply::Unknown) => {
            CommandCode::ChargerError
        }
        Err(_) => CommandCode::NotSent,
    }
}

/// Sends RemoteStart for a checked-in booking on `connector_id` with the booking's id token,
/// then audits the answer. Never fails: every outcome is an answer.
pub async fn remote_start(
    state: &AppState,
    actor: &Caller,
    booking: &Booking,
    connector_id: i64,
    remote_start_id: i64,
) -> StartAnswer {
    let answer = send(state, booking, connector_id, remote_start_id).await;
    let payload = json!({
        "remoteStartId": remote_start_id,
        "connectorId": connector_id,
        "code": answer.code,
        "detail": answer.detail,
    });
    audit::record_alone(
        state,
        "booking",
        &booking.id.to_string(),
        "booking.remote_start",
        Some(actor),
        &payload,
    )
    .await;
    answer
}

async fn send(state: &AppState, booking: &Booking, connector_id: i64, remote_start_id: i64) -> StartAnswer {
    let not_sent = |detail: String| StartAnswer {
        code: CommandCode::NotSent,
        accepted: false,
        detail,
        location: None,
    };
    let station = match crate::stations::store::get(&state.db, booking.station_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_sent("the station is gone".into()),
        Err(e) => return not_sent(format!("reading the station failed: {e}")),
    };
    let Ok(central) = StationId::parse(&station.central_station_id) else {
        return not_sent("the station is not linked to a valid charger id".into());
    };
    let Some(id_token) = booking.id_token.clone() else {
        return not_sent("the booking has no id token".into());
    };
    let location = match commands::location(&state.db, central.as_str(), connector_id).await {
        Ok(l) => l,
        Err(e) => return not_sent(format!("reading the charger failed: {e}")),
    };
    // The worker pushes an approved booking's token in the background; a check-in right after
    // the approval can overtake that push, and the charger's start would then meet a token the
    // central system does not know yet (refused, DeAuthorized). Granting again here is
    // idempotent and puts the token in place before the start can arrive.
    let grant = crate::reservations::grant(state, id_token.clone(), booking.starts_at.0, booking.ends_at.0);
    let granted = commands::send(state, &central, grant).await;
    if !matches!(&granted, Ok(r) if commands::accepted(r)) {
        tracing::info!(booking = booking.id, reply = ?granted, "granting the booking's token before RemoteStart failed");
    }
    let reply = commands::send(
        state,
        &central,
        Command::RemoteStart {
            remote_start_id,
            id_token,
            location,
        },
    )
    .await;
    let code = classify(&reply);
    let detail = commands::outcome(&reply);
    if code != CommandCode::Accepted {
        tracing::info!(booking = booking.id, %detail, "the charger did not accept the check-in's RemoteStart");
    }
    StartAnswer {
        code,
        accepted: code == CommandCode::Accepted,
        detail,
        location: Some(location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_reply_has_a_code() {
        let status = |s: &str| {
            Ok(CommandReply::Status {
                status: s.into(),
                payload: None,
            })
        };
        assert_eq!(classify(&status("Accepted")), CommandCode::Accepted);
        assert_eq!(classify(&status("Rejected")), CommandCode::ChargerRejected);
        assert_eq!(classify(&Ok(CommandReply::Offline)), CommandCode::ChargerOffline);
        assert_eq!(
            classify(&Err(BusError::Timeout(Duration::from_secs(1)))),
            CommandCode::ChargerOffline
        );
        assert_eq!(classify(&Ok(CommandReply::Timeout)), CommandCode::ChargerTimeout);
        assert_eq!(
            classify(&Ok(CommandReply::CallError {
                code: "InternalError".into(),
                description: None
            })),
            CommandCode::ChargerError
        );
        assert_eq!(classify(&Err(BusError::Closed)), CommandCode::NotSent);
    }
}

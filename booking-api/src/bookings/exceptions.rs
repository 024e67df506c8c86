//! Exceptions staff record at the station, each with a reason: `NoShow` (the driver did not
//! come), `Aborted` (a checked-in session ended abnormally) and `CancelOnSite` (the driver came
//! but the booking cannot go ahead: a vehicle that does not fit, a blocked bay). Each one:
//! - moves the booking through the one state machine ([`super::apply_with`]), with its time
//!   rules (a no-show only after the grace period);
//! - releases the slot unit when the slot is still ahead, revokes the booking's id token and
//!   cancels the charger's reservation (the reservation worker follows the status);
//! - stops the booking's session on the charger (RemoteStop) when one is still running, and
//!   says how the charger answered;
//! - records the kind and reason on the booking and in the audit trail, and notifies the owner.

use super::rules::Action;
use super::store::{self, Booking};
use crate::api::auth::Caller;
use crate::app::AppState;
use crate::chargers::commands;
use crate::checkin::start::{classify, CommandCode};
use evcs_bus::{Command, StationId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::extract::parse_json;
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// The most characters a reason may have.
pub const MAX_REASON: usize = 500;

/// Which exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ExceptionKind {
    NoShow,
    Aborted,
    CancelOnSite,
}

impl ExceptionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::NoShow => "NoShow",
            ExceptionKind::Aborted => "Aborted",
            ExceptionKind::CancelOnSite => "CancelOnSite",
        }
    }

    /// The state machine's action.
    pub fn action(self) -> Action {
        match self {
            ExceptionKind::NoShow => Action::NoShow,
            ExceptionKind::Aborted => Action::Abort,
            ExceptionKind::CancelOnSite => Action::CancelOnSite,
        }
    }
}

/// Body of `POST /bookings/{id}/exceptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionRequest {
    pub kind: ExceptionKind,
    /// Why (1 to 500 characters).
    pub reason: String,
}

/// Optional body of `POST /bookings/{id}/abort` and `/no-show`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (1 to 500 characters).
    pub reason: Option<String>,
}

/// How the charger answered the RemoteStop of the booking's running session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopAnswer {
    /// `ACCEPTED`, `CHARGER_REJECTED`, `CHARGER_OFFLINE`, `CHARGER_TIMEOUT`, `CHARGER_ERROR`
    /// or `NOT_SENT`.
    pub code: CommandCode,
    pub accepted: bool,
    /// The charger's status or the reason, in words.
    pub detail: String,
    /// The central system's transaction id of the stopped session.
    pub transaction_id: String,
}

/// The booking after an exception, and the charger's answer when a running session was
/// stopped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionOutcome {
    #[serde(flatten)]
    pub booking: Booking,
    /// Present when the booking's session was still running on the charger.
    pub charger_stop: Option<StopAnswer>,
}

/// A reason trimmed and checked (400 `VALIDATION_FAILED` naming `reason`).
pub fn check_reason(reason: &str) -> Result<String, Problem> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Problem::invalid_field("reason", "required", "say why"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(Problem::invalid_field("reason", "too_long", "at most 500 characters"));
    }
    Ok(reason.to_string())
}

/// Parses the body of `POST /bookings/{id}/exceptions` (after the caller was authorized, so a
/// role without the right gets 403 whatever it sent).
pub fn parse_request(body: &[u8]) -> Result<(ExceptionKind, String), Problem> {
    let req: ExceptionRequest = parse_json(body)?;
    Ok((req.kind, check_reason(&req.reason)?))
}

/// Parses the optional body of `/abort` and `/no-show`.
pub fn parse_optional_reason(body: &[u8]) -> Result<Option<String>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let req: ReasonBody = parse_json(body)?;
    req.reason.as_deref().map(check_reason).transpose()
}

/// Records `kind` on booking `id` for `caller` (staff of its station), then stops its running
/// session on the charger if there is one.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    booking: Booking,
    kind: ExceptionKind,
    reason: Option<String>,
) -> Result<ExceptionOutcome, Problem> {
    let was = booking.status();
    let updated = apply(state, Some(caller), booking, kind, reason).await?;
    let charger_stop = if was == super::rules::Status::CheckedIn {
        stop_running_session(state, caller, &updated).await
    } else {
        None
    };
    Ok(ExceptionOutcome {
        booking: updated,
        charger_stop,
    })
}

/// Moves `booking` by `kind` for `actor` (None: the system, the no-show sweeper) and keeps the
/// kind and reason on it, in one transaction; then wakes the workers and tells the live socket.
pub async fn apply(
    state: &AppState,
    actor: Option<&Caller>,
    booking: Booking,
    kind: ExceptionKind,
    reason: Option<String>,
) -> Result<Booking, Problem> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let extra = json!({ "exception": kind.as_str(), "reason": reason });
    let mut updated =
        super::apply_with(&mut tx, &state.config.policy, actor, booking, kind.action(), extra, now).await?;
    store::set_exception(&mut tx, updated.id, kind.as_str(), reason.as_deref()).await?;
    tx.commit().await?;
    updated.exception = Some(kind.as_str().to_string());
    updated.exception_reason = reason;
    state.wake_dispatcher();
    state.wake_charger_work();
    state.live.booking_changed(&updated);
    Ok(updated)
}

/// RemoteStop for the booking's session if the charger still runs it; the answer is audited.
async fn stop_running_session(state: &AppState, caller: &Caller, booking: &Booking) -> Option<StopAnswer> {
    let session = match crate::sessions::store::of_booking(&state.db, booking.id).await {
        Ok(Some(s)) if s.status == "Active" && s.ended_at.is_none() => s,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(booking = booking.id, error = %e, "reading the booking's session failed");
            return None;
        }
    };
    let answer = match StationId::parse(&session.central_station_id) {
        Err(_) => StopAnswer {
            code: CommandCode::NotSent,
            accepted: false,
            detail: "the session's charger id is not valid".into(),
            transaction_id: session.transaction_id.clone(),
        },
        Ok(station) => {
            let reply = commands::send(
                state,
                &station,
                Command::RemoteStop {
                    transaction_id: session.transaction_id.clone(),
                },
            )
            .await;
            let code = classify(&reply);
            let detail = commands::outcome(&reply);
            StopAnswer {
                code,
                accepted: code == CommandCode::Accepted,
                detail,
                transaction_id: session.transaction_id.clone(),
            }
        }
    };
    let payload = json!({
        "sessionId": session.id,
        "transactionId": answer.transaction_id,
        "code": answer.code,
        "detail": answer.detail,
    });
    crate::audit::record_alone(
        state,
        "booking",
        &booking.id.to_string(),
        "booking.remote_stop",
        Some(caller),
        &payload,
    )
    .await;
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_required_and_bounded() {
        assert_eq!(check_reason("  car too wide  ").ok().as_deref(), Some("car too wide"));
        assert_eq!(check_reason("   ").map_err(|p| p.status), Err(400));
        assert!(check_reason(&"é".repeat(MAX_REASON)).is_ok());
        assert!(check_reason(&"é".repeat(MAX_REASON + 1)).is_err());
    }

    #[test]
    fn bodies() {
        assert!(matches!(
            parse_request(br#"{"kind":"CancelOnSite","reason":"blocked bay"}"#),
            Ok((ExceptionKind::CancelOnSite, r)) if r == "blocked bay"
        ));
        assert!(parse_request(br#"{"kind":"Completed","reason":"x"}"#).is_err());
        assert!(parse_request(br#"{"kind":"NoShow"}"#).is_err());
        assert!(parse_request(br#"{"kind":"NoShow","reason":"x","extra":1}"#).is_err());
        assert_eq!(parse_optional_reason(b"").ok(), Some(None));
        assert_eq!(
            parse_optional_reason(br#"{"reason":"late"}"#).ok(),
            Some(Some("late".to_string()))
        );
        assert!(parse_optional_reason(br#"{"reason":""}"#).is_err());
    }
}

//! A scan: issuing a booking's token, verifying a scanned one, and the check-in it leads to.
//! Returns domain errors ([`CheckinError`]); the HTTP edge turns them into problems.
//!
//! Nothing changes on a refused scan: every check that can refuse runs before the check-in's
//! transaction or inside it (token consumed, connector assigned, status changed, all or none).

use super::store;
use super::tokens::{BookingClaim, ConnectorClaim, TokenError};
use crate::accounts::tokens::sha256_hex;
use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::bookings::rules::{self, Action};
use crate::bookings::store::Booking;
use service_kit::db::StoreError;
use service_kit::problem::Problem;

/// Why a scan (or issuing a token) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The booking token is malformed, signed with an unknown key, tampered or expired.
    #[error("check-in token: {0}")]
    Token(TokenError),
    /// The connector code is malformed, signed with an unknown key or tampered.
    #[error("connector code: {0}")]
    ConnectorCode(TokenError),
    /// Well signed, but this service never issued it (or its booking is gone).
    #[error("this check-in token was never issued")]
    NotIssued,
    /// Already used for a check-in.
    #[error("this check-in token was already used")]
    Used,
    /// The booking is not Approved.
    #[error("the booking is {0}, not Approved")]
    NotApproved(String),
    /// An owner checks in by scanning the code on the connector, which proves presence.
    #[error("an owner checks in with the code printed on the connector")]
    ConnectorCodeRequired,
    /// The scanned connector belongs to another station.
    #[error("the connector code is of another station than the booking's")]
    WrongStation,
    /// The scanned connector is not the one reserved for the booking.
    #[error("the booking is reserved on connector {reserved}, not on the scanned connector")]
    WrongConnector { reserved: i64 },
    /// Every bookable connector of the station is held by another booking.
    #[error("no connector of the station is free for this booking")]
    NoConnectorFree,
}

/// A failed issue, verify or check-in.
#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Refused by the booking rules: the state machine, its policy (e.g. outside the check-in
    /// window) or the caller's scope (403); they speak problems already.
    #[error("{}", .0.detail)]
    Booking(Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CheckinError {
    fn from(e: sqlx::Error) -> CheckinError {
        CheckinError::Store(e.into())
    }
}

/// A verified, issued, unused token of an Approved booking in the caller's scope.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claim: BookingClaim,
    pub booking: Booking,
    pub token_hash: String,
}

/// Whether `caller` may act on `booking`: the bookings' own scope rule (admins every booking,
/// BackOffices their stations', operators their assigned stations', owners their own).
pub async fn in_scope(state: &AppState, caller: &Caller, booking: &Booking) -> Result<(), CheckinError> {
    crate::bookings::in_scope(state, caller, booking)
        .await
        .map_err(CheckinError::Booking)
}

/// Refuses unless the state machine lets `booking` be checked in (it is Approved).
fn check_approved(booking: &Booking) -> Result<(), Refusal> {
    rules::next(booking.status(), Action::CheckIn, false)
        .map(|_| ())
        .map_err(|_| Refusal::NotApproved(booking.status.clone()))
}

/// An issued token: the raw string (shown once, never stored) and its claim.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub claim: BookingClaim,
}

/// Issues a token for `booking` (already loaded and authorized): Approved bookings only; it
/// expires after the configured lifetime, or at the slot's end if that comes first.
pub async fn issue(state: &AppState, booking: &Booking) -> Result<Issued, CheckinError> {
    check_approved(booking)?;
    let now = state.clock.now_ms();
    let now_s = now.div_euclid(1000);
    let lifetime = state.config.checkin.checkin_token_minutes.max(1) * 60;
    let expires_at = (now_s + lifetime).min(booking.ends_at.0.div_euclid(1000));
    if expires_at <= now_s {
        return Err(CheckinError::Booking(Problem::conflict(
            "CHECKIN_WINDOW_CLOSED",
            "the slot has ended",
        )));
    }
    let keys = &state.checkin_keys;
    let token = keys.issue(booking.id, expires_at);
    let claim = BookingClaim {
        kid: keys.active_kid().to_string(),
        booking_id: booking.id,
        expires_at,
    };
    store::insert(
        &state.db,
        &sha256_hex(token.as_bytes()),
        booking.id,
        &claim.kid,
        expires_at * 1000,
        now,
    )
    .await?;
    Ok(Issued { token, claim })
}

/// Verifies a scanned token without consuming it: signature and key, expiry, the booking and
/// the caller's scope over it, that it was issued and is unused, that the booking is Approved.
pub async fn verify(state: &AppState, caller: &Caller, token: &str) -> Result<Verified, CheckinError> {
    let now_s = state.clock.now_ms().div_euclid(1000);
    let claim = state
        .checkin_keys
        .verify_booking(token, now_s)
        .map_err(Refusal::Token)?;
    let booking = crate::bookings::store::get(&state.db, claim.booking_id)
        .await?
        .ok_or(Refusal::NotIssued)?;
    in_scope(state, caller, &booking).await?;
    let token_hash = sha256_hex(token.as_bytes());
    let stored = store::get(&state.db, &token_hash)
        .await?
        .filter(|s| s.booking_id == booking.id)
        .ok_or(Refusal::NotIssued)?;
    if stored.used_at.is_some() {
        return Err(Refusal::Used.into());
    }
    check_approved(&booking)?;
    Ok(Verified {
        claim,
        booking,
        token_hash,
    })
}

/// A completed check-in, before the charger is asked to start.
#[derive(Debug, Clone)]
pub struct CheckedIn {
    pub booking: Booking,
    pub connector_id: i64,
    pub remote_start_id: i64,
}

/// Checks in with a scanned token: staff within their scope, or the booking's owner with the
/// code of the connector they stand at (`connector_code`, required for owners). In one
/// transaction: the token is consumed, the connector assigned (and matched against the scanned
/// one), the remote-start id stored, and the booking moved to CheckedIn by the booking state
/// machine (which also enforces the check-in window).
pub async fn check_in(
    state: &AppState,
    caller: &Caller,
    token: &str,
    connector_code: Option<&str>,
) -> Result<CheckedIn, CheckinError> {
    // The cheap, storage-free checks first.
    let scanned: Option<ConnectorClaim> = match connector_code {
        Some(code) => Some(
            state
                .checkin_keys
                .verify_connector(code)
                .map_err(Refusal::ConnectorCode)?,
        ),
        None if caller.role == Role::Owner => return Err(Refusal::ConnectorCodeRequired.into()),
        None => None,
    };
    let verified = verify(state, caller, token).await?;
    let booking = verified.booking;
    if scanned.is_some_and(|c| c.station_id != booking.station_id) {
        return Err(Refusal::WrongStation.into());
    }
    let now = state.clock.now_ms();
    // The booking id is the remote-start id: unique, stable across retries, and within the
    // 2.0.1 integer range for any realistic number of bookings.
    let remote_start_id = booking.id;
    let mut tx = state.db.begin().await?;
    if !store::consume(&mut tx, &verified.token_hash, caller.id, now).await? {
        return Err(Refusal::Used.into());
    }
    let connector_id = crate::bookings::store::assign_connector(&mut tx, booking.id)
        .await?
        .ok_or(Refusal::NoConnectorFree)?;
    if let Some(c) = scanned {
        if c.connector_id != connector_id {
            return Err(Refusal::WrongConnector { reserved: connector_id }.into());
        }
    }
    store::set_remote_start_id(&mut tx, booking.id, remote_start_id).await?;
    let booking = Booking {
        connector_id: Some(connector_id),
        remote_start_id: Some(remote_start_id),
        ..booking
    };
    let updated = crate::bookings::apply_in(
        &mut tx,
        &state.config.policy,
        Some(caller),
        booking,
        Action::CheckIn,
        now,
    )
    .await
    .map_err(CheckinError::Booking)?;
    tx.commit().await?;
    state.wake_dispatcher();
    state.wake_charger_work();
    state.live.booking_changed(&updated);
    Ok(CheckedIn {
        booking: updated,
        connector_id,
        remote_start_id,
    })
}

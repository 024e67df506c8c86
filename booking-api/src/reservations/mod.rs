//! Bookings on the charger (issue 11, section 3).
//!
//! - **Token push.** An approved booking's id token is granted at its station only, for its
//!   window (earliest check-in to slot end), by the bus command `AuthorizeToken`, which the
//!   central system answers itself; cancel, reject, no-show, complete and abort revoke it
//!   (`RevokeToken`); a reschedule grants the new window.
//! - **Reservation.** From `--reservation-lead-minutes` before the slot, `ReserveNow` holds the
//!   booking's connector (assigned here) with the booking's token, `reservationId` = the
//!   booking id, expiring at the slot end. Leaving Approved (cancel, reject, no-show) or moving
//!   the booking sends `CancelReservation`. The charger's `ReservationStatus` events (Expired,
//!   Removed) are recorded on the booking.
//! - **Failures.** A refusal (Occupied, Faulted, Unavailable, Rejected, a CALLERROR) is final:
//!   the booking records it (`reservationStatus`, `reservationNote`), an operator alert is
//!   raised ([`alerts`]) and the owner notified. An offline or silent charger gets the same
//!   alert and notification once, and the command is retried every `--charger-retry-secs`
//!   until the slot ends.
//!
//! Status changes write what is wanted ([`store::after_change`], in the change's transaction);
//! [`run`] does it. The state lives in the bookings table, so a restarted replica picks up where
//! the last stopped, and every command is claimed with a conditional UPDATE of a lease first,
//! so two replicas never both send it. A replica that dies mid-command leaves a lease that
//! expires; the command is then sent again, which OCPP makes harmless (a ReserveNow with the same
//! id replaces the reservation; the token commands are idempotent).

pub mod outcome;
pub mod store;

use crate::alerts;
use crate::app::AppState;
use crate::chargers::commands;
use crate::notifications;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use evcs_bus::{BusError, Command, CommandReply, StationId};
use outcome::Outcome;
use serde_json::json;
use std::time::Duration;

/// Reservation settings.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Minutes before a booking's slot at which ReserveNow holds its connector on the charger.
    #[arg(long, env = "EVCS_BOOKING_RESERVATION_LEAD_MINUTES", default_value_t = 30)]
    pub reservation_lead_minutes: i64,

    /// Seconds between attempts to reach a charger that was offline or silent (token pushes,
    /// ReserveNow, CancelReservation); also the period of the worker that sends them.
    #[arg(long, env = "EVCS_BOOKING_CHARGER_RETRY_SECS", default_value_t = 60)]
    pub charger_retry_secs: u64,

    /// Seconds a command to a charger may take before it counts as unanswered.
    #[arg(long, env = "EVCS_BOOKING_CHARGER_COMMAND_TIMEOUT_SECS", default_value_t = 30)]
    pub charger_command_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            reservation_lead_minutes: 30,
            charger_retry_secs: 60,
            charger_command_timeout_secs: 30,
        }
    }
}

impl Settings {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.charger_command_timeout_secs.max(1))
    }

    /// How long a claim holds: the command's timeout and a margin, after which a replica that
    /// died mid-command is presumed gone.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.charger_command_timeout_secs.max(1).saturating_mul(2_000)).unwrap_or(i64::MAX)
    }

    pub(crate) fn retry_ms(&self) -> i64 {
        i64::try_from(self.charger_retry_secs.max(1).saturating_mul(1_000)).unwrap_or(i64::MAX)
    }
}

/// Most pieces of work of each kind per round; the rest waits for the next one.
const BATCH: i64 = 200;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub tokens: usize,
    pub reservations: usize,
    pub cancellations: usize,
    /// Maintenance windows' ChangeAvailability commands the chargers accepted.
    pub availability: usize,
}

/// One round: token pushes first (a reservation is useless without the token), then due
/// reservations, then cancellations, then maintenance windows' ChangeAvailability
/// ([`crate::maintenance::charger`]). Each piece of work is claimed before it is sent.
pub async fn run(state: &AppState) -> anyhow::Result<Round> {
    let settings = &state.config.reservations;
    let mut round = Round::default();
    let now = state.clock.now_ms();
    for work in store::due_tokens(&state.db, now, BATCH).await? {
        if push_token(state, &work).await? {
            round.tokens += 1;
        }
    }
    let now = state.clock.now_ms();
    let lead_ms = settings.reservation_lead_minutes.max(0).saturating_mul(60_000);
    for work in store::due_reservations(&state.db, now, lead_ms, BATCH).await? {
        if reserve(state, &work).await? {
            round.reservations += 1;
        }
    }
    let now = state.clock.now_ms();
    for work in store::due_cancellations(&state.db, now, BATCH).await? {
        if cancel(state, &work).await? {
            round.cancellations += 1;
        }
    }
    round.availability = crate::maintenance::charger::run(state).await?;
    Ok(round)
}

/// Runs rounds every `--charger-retry-secs` and whenever a booking change asks for one, until
/// shutdown.
pub async fn worker(state: AppState) {
    let period = Duration::from_secs(state.config.reservations.charger_retry_secs.max(1));
    loop {
        if let Err(e) = run(&state).await {
            tracing::warn!(error = %e, "charger reservation round failed");
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.charger_wakeup.notified() => {}
            _ = tokio::time::sleep(period) => {}
        }
    }
}

pub(crate) async fn send(state: &AppState, station: &str, command: Command) -> Result<CommandReply, BusError> {
    let station = StationId::parse(station).map_err(|e| BusError::Malformed(e.to_string()))?;
    let timeout = state.config.reservations.timeout();
    state
        .bus
        .send_command(evcs_bus::command(station, command, timeout), timeout)
        .await
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The grant of a booking's token for its window: from the earliest check-in to the slot's end.
pub(crate) fn grant(state: &AppState, id_token: String, starts_at: i64, ends_at: i64) -> Command {
    let early_ms = state.config.policy.early_checkin_minutes.max(0).saturating_mul(60_000);
    Command::AuthorizeToken {
        id_token,
        valid_from: at(starts_at.saturating_sub(early_ms)),
        valid_until: at(ends_at),
    }
}

/// Grants or revokes one booking's token; true when the central system took it.
async fn push_token(state: &AppState, work: &store::TokenWork) -> anyhow::Result<bool> {
    let settings = &state.config.reservations;
    let now = state.clock.now_ms();
    let lease = now.saturating_add(settings.lease_ms());
    let Some(token) = work.id_token.clone() else {
        // Bookings made before tokens existed have none: nothing to push.
        store::finish_token(&state.db, work, lease, None, now).await?;
        return Ok(false);
    };
    if !store::claim_token(&state.db, work, now, lease).await? {
        return Ok(false);
    }
    let command = if work.token_push == "grant" {
        grant(state, token, work.starts_at, work.ends_at)
    } else {
        Command::RevokeToken { id_token: token }
    };
    let reply = send(state, &work.central_station_id, command).await;
    let now = state.clock.now_ms();
    let done = match outcome::of(&reply) {
        Outcome::Done => true,
        Outcome::Unreachable { note, .. } => {
            tracing::debug!(booking = work.id, note, "token push not answered; retried later");
            store::finish_token(
                &state.db,
                work,
                lease,
                Some(now.saturating_add(settings.retry_ms())),
                now,
            )
            .await?;
            return Ok(false);
        }
        Outcome::Refused { note, .. } => {
            // Retrying cannot help; the operators must look at it (a token registered by hand
            // under the same value, most likely).
            tracing::warn!(
                booking = work.id,
                note,
                "the central system refused the booking's token"
            );
            let mut tx = state.db.begin().await?;
            let mut raised = None;
            if let Some(station_id) = station_of(state, work.id).await? {
                raised = alerts::raise(
                    &mut tx,
                    station_id,
                    work.id,
                    alerts::TOKEN_REFUSED,
                    &format!("booking {}: the central system refused its id token ({note})", work.id),
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            if let Some(alert) = raised {
                alerts::publish(state, &alert);
            }
            false
        }
    };
    store::finish_token(&state.db, work, lease, None, now).await?;
    Ok(done)
}

async fn station_of(state: &AppState, booking: i64) -> anyhow::Result<Option<i64>> {
    Ok(crate::bookings::store::get(&state.db, booking)
        .await?
        .map(|b| b.station_id))
}

/// Sends one booking's ReserveNow; true when the charger accepted it.
async fn reserve(state: &AppState, work: &store::ReservationWork) -> anyhow::Result<bool> {
    let settings = &state.config.reservations;
    let now = state.clock.now_ms();
    let lease = now.saturating_add(settings.lease_ms());
    if !store::claim_reserve(&state.db, work.id, now, lease).await? {
        return Ok(false);
    }
    let connector = {
        let mut tx = state.db.begin().await?;
        let connector = crate::bookings::store::assign_connector(&mut tx, work.id).await?;
        tx.commit().await?;
        connector
    };
    let (token, connector) = match (work.id_token.clone(), connector) {
        (Some(token), Some(connector)) => (token, connector),
        (token, _) => {
            let note = if token.is_none() {
                "the booking has no id token"
            } else {
                "no bookable connector is free for the booking's slot"
            };
            let outcome = Outcome::Refused {
                status: "NoConnector".into(),
                note: note.into(),
            };
            settle_reserve(state, work, lease, &outcome).await?;
            return Ok(false);
        }
    };
    let location = commands::location(&state.db, &work.central_station_id, connector)
        .await
        .context("reading the charger's version")?;
    let reply = send(
        state,
        &work.central_station_id,
        Command::ReserveNow {
            reservation_id: work.id,
            id_token: token,
            location,
            expires_at: at(work.ends_at),
        },
    )
    .await;
    let outcome = outcome::of(&reply);
    settle_reserve(state, work, lease, &outcome).await?;
    Ok(outcome == Outcome::Done)
}

/// Records a ReserveNow's outcome, with the alert and the owner's notification a failure
/// raises, in one transaction.
async fn settle_reserve(
    state: &AppState,
    work: &store::ReservationWork,
    lease: i64,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    let settings = &state.config.reservations;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let (alert, note) = match outcome {
        Outcome::Done => {
            store::settle(
                &mut tx,
                work.id,
                "Reserving",
                lease,
                Some("Reserved"),
                "Accepted",
                None,
                None,
                false,
                now,
            )
            .await?;
            (None, None)
        }
        Outcome::Refused { status, note } => {
            let applied = store::settle(
                &mut tx,
                work.id,
                "Reserving",
                lease,
                Some("Refused"),
                status,
                Some(note),
                None,
                false,
                now,
            )
            .await?;
            (applied.then_some(alerts::RESERVATION_REFUSED), Some(note.clone()))
        }
        Outcome::Unreachable { status, note } => {
            // Back to "no reservation yet", due again after the retry interval.
            let retry = now.saturating_add(settings.retry_ms());
            let applied = store::settle(
                &mut tx,
                work.id,
                "Reserving",
                lease,
                None,
                status,
                Some(note),
                Some(retry),
                false,
                now,
            )
            .await?;
            (applied.then_some(alerts::RESERVATION_UNREACHABLE), Some(note.clone()))
        }
    };
    let mut raised = None;
    if let (Some(code), Some(note)) = (alert, note) {
        let message = format!(
            "booking {}: the charger {} could not hold the reservation: {note}",
            work.id, work.central_station_id
        );
        raised = alerts::raise(&mut tx, work.station_id, work.id, code, &message, now).await?;
        if raised.is_some() {
            notifications::enqueue(
                &mut tx,
                "ReservationFailed",
                work.owner_id,
                "Your charger could not be reserved",
                &format!(
                    "We could not reserve the charger for your booking {} starting {}: {note}. The station's staff have been told.",
                    work.id,
                    at(work.starts_at).to_rfc3339()
                ),
                &json!({ "bookingId": work.id, "code": code }),
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    if alert.is_some() {
        state.wake_dispatcher();
    }
    if let Some(alert) = raised {
        alerts::publish(state, &alert);
    }
    Ok(())
}

/// Sends one CancelReservation; true when the charger took it (or no longer had it).
async fn cancel(state: &AppState, work: &store::ReservationWork) -> anyhow::Result<bool> {
    let settings = &state.config.reservations;
    let now = state.clock.now_ms();
    let lease = now.saturating_add(settings.lease_ms());
    if !store::claim_cancel(&state.db, work.id, now, lease).await? {
        return Ok(false);
    }
    let reply = send(
        state,
        &work.central_station_id,
        Command::CancelReservation {
            reservation_id: work.id,
        },
    )
    .await;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let done = match outcome::of(&reply) {
        // Rejected: the charger holds no such reservation (expired, used, never made): it is
        // gone either way.
        Outcome::Done | Outcome::Refused { .. } => {
            store::settle(
                &mut tx,
                work.id,
                "Cancel",
                lease,
                Some("Cancelled"),
                "Cancelled",
                None,
                None,
                true,
                now,
            )
            .await?;
            true
        }
        Outcome::Unreachable { note, .. } if now >= work.ends_at => {
            // Past the slot the charger has let the reservation expire by itself.
            let note = format!("cancellation not delivered ({note}); the reservation expired with the slot");
            store::settle(
                &mut tx,
                work.id,
                "Cancel",
                lease,
                Some("Cancelled"),
                "Expired",
                Some(&note),
                None,
                true,
                now,
            )
            .await?;
            false
        }
        Outcome::Unreachable { status, note } => {
            let retry = now.saturating_add(settings.retry_ms());
            let note = format!("cancellation not delivered yet ({note}); retrying");
            store::settle(
                &mut tx,
                work.id,
                "Cancel",
                lease,
                Some("Cancel"),
                status,
                Some(&note),
                Some(retry),
                false,
                now,
            )
            .await?;
            false
        }
    };
    tx.commit().await?;
    Ok(done)
}

/// Applies a charger's reservation status event (see [`store::charger_status`]).
pub async fn on_charger_status(
    tx: &mut service_kit::db::Tx,
    central_station_id: &str,
    reservation_id: i64,
    status: &str,
) -> Result<(), sqlx::Error> {
    if !store::charger_status(tx, central_station_id, reservation_id, status).await? {
        tracing::debug!(
            station = central_station_id,
            reservation_id,
            status,
            "reservation status for no booking of this charger"
        );
    }
    Ok(())
}

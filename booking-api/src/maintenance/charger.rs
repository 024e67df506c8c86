//! The charger side of maintenance windows: at a window's start its connector (or the whole
//! station) is set Inoperative with `ChangeAvailability`, at its end Operative again. Run by the
//! charger rounds of [`crate::reservations::run`] (every `--charger-retry-secs` and whenever a
//! change wakes them), so there is one periodic worker for everything sent to chargers.
//!
//! The state lives on the window (`inoperative_applied_at`, `operative_applied_at`, `attempts`,
//! `last_error`, `due_at`): a command that was not accepted (charger offline, silent, a
//! refusal) is due again after the retry interval, until the charger takes it or the phase
//! passes (an Inoperative still not applied at the window's end is replaced by the Operative).
//! Each command is claimed first with a conditional UPDATE of a lease, so two replicas never
//! both send it; a replica that dies mid-command leaves a lease that expires, and the command
//! goes again, which ChangeAvailability makes harmless.

use super::store::{self, ChargerWork, Phase};
use crate::app::AppState;
use crate::chargers::commands;
use anyhow::Context;
use evcs_bus::contract::Availability;
use evcs_bus::{BusError, Command, CommandReply, Location};

/// Most windows of each phase handled per round; the rest wait for the next.
const BATCH: i64 = 100;

/// What a reply means for a window: applied, or why not.
pub fn applied(reply: &Result<CommandReply, BusError>) -> Result<(), String> {
    match reply {
        // Scheduled: a transaction runs on the connector; the charger applies it when it ends.
        Ok(CommandReply::Status { status, .. }) if status == "Accepted" || status == "Scheduled" => Ok(()),
        Ok(reply) => Err(commands::describe(reply)),
        Err(e) => Err(format!("not delivered: {e}")),
    }
}

/// One round: windows that ended get Operative first (a window starting where another of the
/// same connector ends then leaves the connector Inoperative), then windows that started get
/// Inoperative. Returns how many commands the chargers accepted.
pub async fn run(state: &AppState) -> anyhow::Result<usize> {
    let mut accepted = 0;
    for phase in [Phase::Operative, Phase::Inoperative] {
        let now = state.clock.now_ms();
        for work in store::due(&state.db, phase, now, BATCH).await? {
            if apply(state, &work, phase).await? {
                accepted += 1;
            }
        }
    }
    Ok(accepted)
}

/// Where on the charger a window applies: its connector, or the whole station (1.6
/// connectorId 0, 2.0.1 no EVSE).
async fn location(state: &AppState, work: &ChargerWork) -> anyhow::Result<Location> {
    Ok(match work.connector_id {
        None => Location::default(),
        Some(c) => commands::location(&state.db, &work.central_station_id, c)
            .await
            .context("reading the charger's version")?,
    })
}

/// Sends one window's command; true when the charger accepted it.
async fn apply(state: &AppState, work: &ChargerWork, phase: Phase) -> anyhow::Result<bool> {
    let settings = &state.config.reservations;
    let now = state.clock.now_ms();
    let lease = now.saturating_add(settings.lease_ms());
    if !store::claim(&state.db, work.id, phase, now, lease).await? {
        return Ok(false);
    }
    let availability = match phase {
        Phase::Inoperative => Availability::Inoperative,
        Phase::Operative => Availability::Operative,
    };
    let command = Command::ChangeAvailability {
        location: location(state, work).await?,
        availability,
    };
    let reply = crate::reservations::send(state, &work.central_station_id, command).await;
    let now = state.clock.now_ms();
    let outcome = applied(&reply);
    let retry = outcome.is_err().then(|| now.saturating_add(settings.retry_ms()));
    store::settle(
        &state.db,
        work.id,
        phase,
        lease,
        outcome.is_ok(),
        outcome.as_ref().err().map(String::as_str),
        retry,
        now,
    )
    .await?;
    match &outcome {
        Ok(()) => {
            tracing::info!(window = work.id, station = %work.central_station_id, ?availability, "maintenance: charger accepted")
        }
        Err(e) => {
            tracing::info!(window = work.id, station = %work.central_station_id, ?availability, error = %e, "maintenance: charger did not take it; retried later")
        }
    }
    Ok(outcome.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(s: &str) -> Result<CommandReply, BusError> {
        Ok(CommandReply::Status {
            status: s.into(),
            payload: None,
        })
    }

    #[test]
    fn accepted_and_scheduled_apply_everything_else_is_retried_with_its_reason() {
        assert_eq!(applied(&status("Accepted")), Ok(()));
        assert_eq!(applied(&status("Scheduled")), Ok(()));
        assert_eq!(applied(&status("Rejected")), Err("Rejected".into()));
        assert_eq!(applied(&Ok(CommandReply::Offline)), Err("station offline".into()));
        assert_eq!(
            applied(&Ok(CommandReply::Timeout)),
            Err("charger did not answer".into())
        );
        assert!(applied(&Err(BusError::Timeout(Duration::from_secs(1)))).is_err_and(|e| e.starts_with("not delivered")));
    }
}

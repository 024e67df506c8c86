//! The task that feeds the charger projection from the bus.

use super::projection::{self, Applied};
use crate::app::AppState;
use evcs_bus::{EventEnvelope, EventStream};
use std::time::Duration;

/// The consumer group of every booking-API replica: each event reaches one replica.
pub const GROUP: &str = "booking-api";

/// Attempts per event before it is given up (logged): a database that is down for longer than
/// the backoff would otherwise stall the stream forever.
const ATTEMPTS: u32 = 6;

/// Applies events from `stream` until it ends or the service shuts down.
pub async fn run(state: AppState, mut stream: EventStream) {
    loop {
        let event = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            event = stream.next() => event,
        };
        let Some(event) = event else {
            tracing::warn!("the bus closed the booking API's event stream");
            return;
        };
        handle(&state, &event).await;
    }
}

async fn handle(state: &AppState, event: &EventEnvelope) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let now = state.clock.now_ms();
        match projection::apply_live(&state.db, event, now).await {
            Ok((Applied::Applied, changes)) => {
                // Published after the commit, so the live socket never reports a change that
                // rolled back.
                if !changes.is_empty() {
                    let completed = changes
                        .iter()
                        .any(|c| matches!(c, crate::live::Change::Session(s) if s.status == "Completed"));
                    if completed {
                        state.wake_billing();
                    }
                    state.wake_dispatcher();
                    state.live.publish_changes(changes, now);
                }
                return;
            }
            Ok((Applied::Duplicate, _)) => {
                tracing::debug!(event_id = %event.event_id, "duplicate event ignored");
                return;
            }
            Ok((Applied::Skipped, _)) => {
                tracing::debug!(event_id = %event.event_id, "event of an unknown kind skipped");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(event_id = %event.event_id, attempt, error = %e, "applying a bus event failed; retrying");
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(event_id = %event.event_id, station = %event.station_id, error = %e, "bus event dropped after retries");
            }
        }
    }
}

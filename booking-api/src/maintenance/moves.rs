//! Clearing a new window's way: the bookings it leaves no room for move to the next slot of the
//! station with room once the windows are counted, or are cancelled when there is none; a
//! booking that only held the window's connector keeps its slot and gets another connector at
//! its reservation. Each change is audited, its owner notified and its charger side (token
//! window, reservation) follows, all in the window's transaction.

use super::store::{self, WindowRow};
use crate::api::auth::Caller;
use crate::bookings::rules::Action;
use crate::bookings::store::Booking;
use crate::bookings::{self, TransitionError};
use crate::{audit, notifications, slots};
use serde::Serialize;
use serde_json::json;
use service_kit::db::Tx;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Slots tried per booking before giving up and cancelling it (each try lost a race for the
/// slot's last unit).
const TRIES: usize = 20;

/// What happened to a booking in a window's way.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affected {
    pub booking_id: i64,
    /// `Moved` (to `startsAt`), `Reassigned` (same slot, another connector) or `Cancelled`
    /// (no free slot left in the inventory horizon).
    pub outcome: String,
    pub previous_starts_at: Ts,
    /// The booking's start now (the previous one when it was not moved).
    pub starts_at: Ts,
}

/// Moves, reassigns or cancels every booking `window` (inserted, capacities recomputed)
/// collides with, newest booking first; returns what happened and the changed bookings (for
/// the live socket, after the commit).
pub async fn resolve(
    tx: &mut Tx,
    window: &WindowRow,
    caller: &Caller,
    now: i64,
) -> Result<(Vec<Affected>, Vec<Booking>), TransitionError> {
    let mut affected = Vec::new();
    let mut changed = Vec::new();
    for conflict in store::conflicts(tx, window.id).await? {
        // Moving a newer booking of the same slot may have made room for this one.
        if !store::still_conflicts(tx, window.id, conflict.booking_id).await? {
            continue;
        }
        let Some(booking) = bookings::store::get_in(tx, conflict.booking_id).await? else {
            continue;
        };
        if window.connector_id.is_some() && booking.connector_id == window.connector_id {
            store::unassign_connector(tx, booking.id).await?;
            if !store::still_conflicts(tx, window.id, booking.id).await? {
                // Its slot has room elsewhere: a new reservation on another connector follows.
                crate::reservations::store::after_change(tx, booking.id, booking.status(), true).await?;
                let updated = Booking {
                    connector_id: None,
                    ..booking.clone()
                };
                record(tx, &updated, "booking.reassigned", window, caller, &booking, now).await?;
                notify(
                    tx,
                    &updated,
                    "BookingReassigned",
                    "Your booking moved to another connector",
                    &format!(
                        "Connector {} of station {} is under maintenance ({}): your booking {} starting {} keeps its time on another connector.",
                        window.connector_id.unwrap_or_default(),
                        booking.station_id,
                        window.reason,
                        booking.id,
                        booking.starts_at.to_datetime().to_rfc3339()
                    ),
                    window,
                    now,
                )
                .await?;
                affected.push(Affected {
                    booking_id: booking.id,
                    outcome: "Reassigned".into(),
                    previous_starts_at: booking.starts_at,
                    starts_at: booking.starts_at,
                });
                changed.push(updated);
                continue;
            }
        }
        match move_booking(tx, window, &booking, now).await? {
            Some(updated) => {
                record(tx, &updated, "booking.moved", window, caller, &booking, now).await?;
                notify(
                    tx,
                    &updated,
                    "BookingMoved",
                    "Your booking was moved",
                    &format!(
                        "Station {} is under maintenance ({}): your booking {} moved from {} to {}.",
                        booking.station_id,
                        window.reason,
                        booking.id,
                        booking.starts_at.to_datetime().to_rfc3339(),
                        updated.starts_at.to_datetime().to_rfc3339()
                    ),
                    window,
                    now,
                )
                .await?;
                affected.push(Affected {
                    booking_id: booking.id,
                    outcome: "Moved".into(),
                    previous_starts_at: booking.starts_at,
                    starts_at: updated.starts_at,
                });
                changed.push(updated);
            }
            None => {
                // The cancellation notifies the owner (BookingCancelled) and is audited with
                // the window that caused it.
                let extra = json!({ "maintenanceWindowId": window.id, "reason": window.reason });
                let updated =
                    bookings::transition_in(tx, booking.clone(), Action::Cancel, Some(caller), extra, now).await?;
                affected.push(Affected {
                    booking_id: booking.id,
                    outcome: "Cancelled".into(),
                    previous_starts_at: booking.starts_at,
                    starts_at: booking.starts_at,
                });
                changed.push(updated);
            }
        }
    }
    Ok((affected, changed))
}

/// Moves `booking` to the next slot of its station with room after its own start, keeping its
/// status; None when the inventory has none.
async fn move_booking(
    tx: &mut Tx,
    window: &WindowRow,
    booking: &Booking,
    now: i64,
) -> Result<Option<Booking>, TransitionError> {
    let status = booking.status();
    let mut after = booking.starts_at.0.max(window.starts_at);
    for _ in 0..TRIES {
        let Some((slot_id, starts_at, ends_at)) = store::next_free_slot(tx, booking.station_id, after).await? else {
            return Ok(None);
        };
        if !slots::reserve(tx, slot_id).await? {
            after = starts_at;
            continue;
        }
        if !bookings::store::move_to(tx, booking.id, status, status, (slot_id, starts_at, ends_at), now).await? {
            return Err(TransitionError::Changed);
        }
        slots::release(tx, booking.slot_id).await?;
        crate::reservations::store::after_change(tx, booking.id, status, true).await?;
        return Ok(Some(Booking {
            slot_id,
            starts_at: Ts(starts_at),
            ends_at: Ts(ends_at),
            connector_id: None,
            updated_at: Ts(now),
            ..booking.clone()
        }));
    }
    Ok(None)
}

async fn record(
    tx: &mut Tx,
    updated: &Booking,
    action: &str,
    window: &WindowRow,
    caller: &Caller,
    before: &Booking,
    now: i64,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        "booking",
        &updated.id.to_string(),
        action,
        Some(caller),
        &json!({
            "status": updated.status,
            "stationId": updated.station_id,
            "slotId": updated.slot_id,
            "startsAt": updated.starts_at,
            "details": {
                "maintenanceWindowId": window.id,
                "previousSlotId": before.slot_id,
                "previousStartsAt": before.starts_at,
                "previousConnectorId": before.connector_id,
            },
        }),
        now,
    )
    .await
}

async fn notify(
    tx: &mut Tx,
    booking: &Booking,
    kind: &str,
    subject: &str,
    message: &str,
    window: &WindowRow,
    now: i64,
) -> Result<(), sqlx::Error> {
    notifications::enqueue(
        tx,
        kind,
        booking.owner_id,
        subject,
        message,
        &json!({ "bookingId": booking.id, "maintenanceWindowId": window.id, "startsAt": booking.starts_at }),
        now,
    )
    .await
}

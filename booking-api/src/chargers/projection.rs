//! Applying one bus event to the charger projection, idempotently and in one transaction.

use crate::live::Change;
use evcs_bus::{Event, EventEnvelope, Location};
use service_kit::db::{on_tx, Db, StoreError};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed (or was checked against) the projection.
    Applied,
    /// The event id was processed before; nothing changed.
    Duplicate,
    /// An event kind this version does not know; nothing was recorded.
    Skipped,
}

/// The key of a connector in the projection and in a station's `connectorId`: the 2.0.1
/// `evseId` when the event carries one (2.0.1 books and reports per EVSE), else the 1.6
/// `connectorId`. `0` (the charger as a whole, in both versions) and a missing location are not
/// a connector: `None`.
pub fn connector_key(location: &Location) -> Option<i64> {
    let key = location.evse_id.or(location.connector_id)?;
    (key > 0).then_some(i64::from(key))
}

/// Records `event`'s id in `processed_events` and applies it, both in one transaction: a
/// redelivered event (at-least-once delivery) changes nothing. `now_ms` stamps `updated_at`.
pub async fn apply(db: &Db, event: &EventEnvelope, now_ms: i64) -> Result<Applied, StoreError> {
    apply_live(db, event, now_ms).await.map(|(applied, _)| applied)
}

/// [`apply`], also returning the changes the live socket reports once committed.
pub async fn apply_live(db: &Db, event: &EventEnvelope, now_ms: i64) -> Result<(Applied, Vec<Change>), StoreError> {
    let mut changes = Vec::new();
    if matches!(event.event, Event::Unknown) {
        return Ok((Applied::Skipped, changes));
    }
    let station = event.station_id.as_str();
    let at = event.occurred_at.timestamp_millis();
    let mut tx = db.begin().await?;
    let first = on_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(now_ms)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    if first == 0 {
        tx.rollback().await?;
        return Ok((Applied::Duplicate, changes));
    }
    // Any event proves the central system has seen the charger. A charger first heard of
    // through an event other than online/booted starts offline as of the epoch, so the first
    // real online/offline event wins whatever its time.
    on_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO chargers (central_station_id, online, online_changed_at, last_seen_at) VALUES ($1, 0, 0, $2) \
             ON CONFLICT (central_station_id) DO UPDATE SET last_seen_at = excluded.last_seen_at \
             WHERE chargers.last_seen_at < excluded.last_seen_at",
        )
        .bind(station)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    match &event.event {
        Event::StationOnline { ocpp_version } => {
            set_online(&mut tx, station, true, (at, now_ms), Some(ocpp_version)).await?;
        }
        Event::StationOffline { .. } => {
            set_online(&mut tx, station, false, (at, now_ms), None).await?;
        }
        Event::Booted {
            vendor,
            model,
            firmware_version,
            ..
        } => {
            // A boot notification arrives over a live connection, so it also means online.
            set_online(&mut tx, station, true, (at, now_ms), None).await?;
            on_tx!(&mut tx, |conn| {
                sqlx::query(
                    "UPDATE chargers SET vendor = $2, model = $3, firmware_version = $4, booted_at = $5 \
                     WHERE central_station_id = $1 AND (booted_at IS NULL OR booted_at <= $5)",
                )
                .bind(station)
                .bind(vendor)
                .bind(model)
                .bind(firmware_version)
                .bind(at)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        Event::ConnectorStatus { location, status } => {
            if let Some(key) = connector_key(location) {
                remember(&mut tx, station, key, status, (at, now_ms)).await?;
                // The WHERE keeps a newer status when an older one arrives late.
                let applied = on_tx!(&mut tx, |conn| {
                    sqlx::query(
                        "INSERT INTO charger_connectors (central_station_id, connector_key, status, status_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (central_station_id, connector_key) DO UPDATE \
                         SET status = excluded.status, status_at = excluded.status_at, updated_at = excluded.updated_at \
                         WHERE charger_connectors.status_at <= excluded.status_at",
                    )
                    .bind(station)
                    .bind(key)
                    .bind(status)
                    .bind(at)
                    .bind(now_ms)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
                })?;
                if applied > 0 {
                    if let Some(station_id) = crate::sessions::store::linked_station(&mut tx, station).await? {
                        changes.push(Change::Connector {
                            station_id,
                            central_station_id: station.to_string(),
                            connector_id: key,
                            status: status.clone(),
                            at,
                        });
                    }
                }
            }
        }
        Event::TransactionStarted { .. } | Event::MeterSummary { .. } | Event::TransactionEnded { .. } => {
            changes.extend(crate::sessions::on_event(&mut tx, event, now_ms).await?);
        }
        Event::ReservationStatus { reservation_id, status } => {
            crate::reservations::on_charger_status(&mut tx, station, *reservation_id, status).await?;
        }
        // Updates carry nothing a session keeps; security events and faults raise alerts below.
        _ => {}
    }
    for alert in crate::alerts::charger::on_event(&mut tx, station, &event.event, now_ms).await? {
        changes.push(Change::Alert(Box::new(alert)));
    }
    tx.commit().await?;
    Ok((Applied::Applied, changes))
}

async fn set_online(
    tx: &mut service_kit::db::Tx,
    station: &str,
    online: bool,
    (at, now_ms): (i64, i64),
    ocpp_version: Option<&str>,
) -> Result<(), StoreError> {
    remember(tx, station, 0, if online { "Online" } else { "Offline" }, (at, now_ms)).await?;
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE chargers SET online = $2, online_changed_at = $3, ocpp_version = COALESCE($4, ocpp_version) \
             WHERE central_station_id = $1 AND online_changed_at <= $3",
        )
        .bind(station)
        .bind(i64::from(online))
        .bind(at)
        .bind(ocpp_version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Appends a status to the history the reports read (`connector_key` 0: the charger's
/// `Online`/`Offline`), `at` when it happened, `now_ms` when it is applied. Inside the event's
/// transaction, so a redelivered event adds nothing.
async fn remember(
    tx: &mut service_kit::db::Tx,
    station: &str,
    connector_key: i64,
    status: &str,
    (at, now_ms): (i64, i64),
) -> Result<(), StoreError> {
    crate::reports::days::invalidate(tx, station, at, now_ms).await?;
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO status_history (central_station_id, connector_key, status, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(station)
        .bind(connector_key)
        .bind(status)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connector_key;
    use evcs_bus::Location;

    #[test]
    fn evse_id_wins_then_connector_id_and_zero_is_the_charger() {
        let loc = |evse_id, connector_id| Location { evse_id, connector_id };
        assert_eq!(connector_key(&loc(None, Some(2))), Some(2));
        assert_eq!(connector_key(&loc(Some(3), Some(1))), Some(3));
        assert_eq!(connector_key(&loc(Some(0), None)), None);
        assert_eq!(connector_key(&loc(None, Some(0))), None);
        assert_eq!(connector_key(&loc(None, None)), None);
    }
}

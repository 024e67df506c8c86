//! Alerts from the charger's own reports (bus events, in the projection's transaction) and
//! from its silence (the offline sweep). Only chargers linked to a booking station raise
//! alerts: a station is what staff are assigned to.

use super::{
    raise_for_charger, Alert, ChargerAlert, CHARGER_BOOT_REJECTED, CHARGER_FAULT, CHARGER_OFFLINE, CONNECTOR_FAULTED,
    SECURITY_EVENT,
};
use crate::app::AppState;
use crate::chargers::projection::connector_key;
use evcs_bus::Event;
use service_kit::db::{on_db, on_tx, StoreError, Tx};

/// The alert an event asks for at `station_id`, if any.
pub fn of_event(station_id: i64, central_id: &str, event: &Event) -> Option<ChargerAlert> {
    match event {
        Event::ConnectorStatus { location, status } if status == "Faulted" => {
            let connector = connector_key(location);
            Some(ChargerAlert {
                station_id,
                code: CONNECTOR_FAULTED,
                connector_id: connector,
                key: format!("{CONNECTOR_FAULTED}:{station_id}:{}", connector.unwrap_or(0)),
                message: match connector {
                    Some(c) => format!("charger {central_id}: connector {c} reports Faulted"),
                    None => format!("charger {central_id} reports Faulted"),
                },
            })
        }
        Event::Fault {
            location,
            error_code,
            info,
        } if error_code != "NoError" => {
            let connector = connector_key(location);
            Some(ChargerAlert {
                station_id,
                code: CHARGER_FAULT,
                connector_id: connector,
                key: format!("{CHARGER_FAULT}:{station_id}:{}:{error_code}", connector.unwrap_or(0)),
                message: format!(
                    "charger {central_id}: fault {error_code}{}{}",
                    connector.map(|c| format!(" on connector {c}")).unwrap_or_default(),
                    info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default()
                ),
            })
        }
        Event::SecurityEvent { kind, tech_info } => Some(ChargerAlert {
            station_id,
            code: SECURITY_EVENT,
            connector_id: None,
            key: format!("{SECURITY_EVENT}:{station_id}:{kind}"),
            message: format!(
                "charger {central_id}: security event {kind}{}",
                tech_info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default()
            ),
        }),
        // Pending is a new charger waiting for acceptance; Rejected needs someone to look.
        Event::Booted {
            registration: Some(r),
            ..
        } if r == "Rejected" => Some(ChargerAlert {
            station_id,
            code: CHARGER_BOOT_REJECTED,
            connector_id: None,
            key: format!("{CHARGER_BOOT_REJECTED}:{station_id}"),
            message: format!(
                "charger {central_id} booted and the central system refused its registration (Rejected): it takes no charging until accepted there"
            ),
        }),
        _ => None,
    }
}

/// Raises the alert `event` asks for, inside the projection's transaction; returns it when new.
pub async fn on_event(tx: &mut Tx, central_id: &str, event: &Event, now: i64) -> Result<Vec<Alert>, StoreError> {
    if !matches!(
        event,
        Event::ConnectorStatus { .. }
            | Event::Fault { .. }
            | Event::SecurityEvent { .. }
            | Event::Booted { .. }
            | Event::StationOnline { .. }
    ) {
        return Ok(vec![]);
    }
    let Some(station_id) = crate::sessions::store::linked_station(tx, central_id).await? else {
        return Ok(vec![]);
    };
    let mut changed = Vec::new();
    if let Some((key, note)) = cleared_by(station_id, event) {
        changed.extend(clear(tx, &key, &note, now).await?);
    }
    if let Some(alert) = of_event(station_id, central_id, event) {
        changed.extend(raise_for_charger(tx, &alert, now).await?);
    }
    Ok(changed)
}

/// The unresolved alert an event shows to be over, by key, with the note it is resolved with:
/// a connector reporting anything but `Faulted` ends its `CONNECTOR_FAULTED`; a charger back
/// online ends `CHARGER_OFFLINE`; an accepted boot ends `CHARGER_BOOT_REJECTED`. Faults and
/// security events are reports of something that happened and stay for a person to close.
pub fn cleared_by(station_id: i64, event: &Event) -> Option<(String, String)> {
    match event {
        Event::ConnectorStatus { location, status } if status != "Faulted" => {
            let connector = connector_key(location)?;
            Some((
                format!("{CONNECTOR_FAULTED}:{station_id}:{connector}"),
                format!("cleared by the charger: connector {connector} reported {status}"),
            ))
        }
        Event::StationOnline { .. } => Some((
            format!("{CHARGER_OFFLINE}:{station_id}"),
            "cleared by the charger: it connected again".into(),
        )),
        Event::Booted {
            registration: Some(r), ..
        } if r == "Accepted" => Some((
            format!("{CHARGER_BOOT_REJECTED}:{station_id}"),
            "cleared by the charger: its registration was accepted".into(),
        )),
        _ => None,
    }
}

/// Resolves the unresolved alert with `key`, by the system (no person), audited; returns it.
async fn clear(tx: &mut Tx, key: &str, note: &str, now: i64) -> Result<Option<Alert>, sqlx::Error> {
    let sql = format!("{} WHERE id = $1", super::SELECT);
    let cleared: Option<Alert> = on_tx!(tx, |conn| {
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE alerts SET status = 'Resolved', resolved_at = $2, resolution_note = $3 \
             WHERE dedup_key = $1 AND status <> 'Resolved' RETURNING id",
        )
        .bind(key)
        .bind(now)
        .bind(note)
        .fetch_optional(&mut *conn)
        .await?;
        match id {
            Some(id) => sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await,
            None => Ok(None),
        }
    })?;
    if let Some(alert) = &cleared {
        crate::audit::record(
            tx,
            "alert",
            &alert.id.to_string(),
            "alert.resolved",
            None,
            &serde_json::json!({ "stationId": alert.station_id, "code": alert.code, "note": note }),
            now,
        )
        .await?;
    }
    Ok(cleared)
}

/// Raises `CHARGER_OFFLINE` for every linked charger disconnected for longer than
/// `--alert-offline-minutes` (one unresolved alert per station); returns the new alerts,
/// published on the live socket.
pub async fn sweep_offline(state: &AppState) -> Result<Vec<Alert>, StoreError> {
    let minutes = state.config.policy.alert_offline_minutes;
    if minutes <= 0 {
        return Ok(vec![]);
    }
    let now = state.clock.now_ms();
    let before = now.saturating_sub(minutes.saturating_mul(60_000));
    // online_changed_at 0: never heard online; not "disconnected for long".
    let offline: Vec<(i64, String, i64)> = on_db!(&state.db, |pool| sqlx::query_as(
        "SELECT s.id, c.central_station_id, c.online_changed_at FROM chargers c \
         JOIN stations s ON s.central_station_id = c.central_station_id \
         WHERE c.online = 0 AND c.online_changed_at > 0 AND c.online_changed_at <= $1"
    )
    .bind(before)
    .fetch_all(pool)
    .await)?;
    let mut raised = Vec::new();
    for (station_id, central_id, since) in offline {
        let since = chrono::DateTime::from_timestamp_millis(since)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let alert = ChargerAlert {
            station_id,
            code: CHARGER_OFFLINE,
            connector_id: None,
            key: format!("{CHARGER_OFFLINE}:{station_id}"),
            message: format!("charger {central_id} has been offline since {since}"),
        };
        let mut tx = state.db.begin().await?;
        let new = raise_for_charger(&mut tx, &alert, now).await?;
        tx.commit().await?;
        if let Some(a) = new {
            super::publish(state, &a);
            raised.push(a);
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use evcs_bus::Location;

    fn at(evse: Option<u32>, connector: Option<u32>) -> Location {
        Location {
            evse_id: evse,
            connector_id: connector,
        }
    }

    #[test]
    fn faults_and_security_events_raise_keyed_alerts_and_other_statuses_do_not() {
        let faulted = Event::ConnectorStatus {
            location: at(Some(2), Some(1)),
            status: "Faulted".into(),
        };
        let a = of_event(7, "CP", &faulted).unwrap_or_else(|| panic!("no alert"));
        assert_eq!((a.code, a.connector_id), (CONNECTOR_FAULTED, Some(2)));
        assert_eq!(a.key, "CONNECTOR_FAULTED:7:2");
        let available = Event::ConnectorStatus {
            location: at(None, Some(1)),
            status: "Available".into(),
        };
        assert!(of_event(7, "CP", &available).is_none());
        let fault = Event::Fault {
            location: at(None, Some(1)),
            error_code: "GroundFailure".into(),
            info: Some("RCD tripped".into()),
        };
        let f = of_event(7, "CP", &fault).unwrap_or_else(|| panic!("no alert"));
        assert_eq!(f.key, "CHARGER_FAULT:7:1:GroundFailure");
        assert!(f.message.contains("RCD tripped"), "{}", f.message);
        let no_error = Event::Fault {
            location: at(None, Some(1)),
            error_code: "NoError".into(),
            info: None,
        };
        assert!(of_event(7, "CP", &no_error).is_none());
        let security = Event::SecurityEvent {
            kind: "TamperDetectionActivated".into(),
            tech_info: None,
        };
        let s = of_event(7, "CP", &security).unwrap_or_else(|| panic!("no alert"));
        assert_eq!(
            (s.code, s.key.as_str()),
            (SECURITY_EVENT, "SECURITY_EVENT:7:TamperDetectionActivated")
        );
    }

    #[test]
    fn recoveries_name_the_alert_they_clear_and_reports_of_the_past_clear_nothing() {
        let status = |s: &str| Event::ConnectorStatus {
            location: at(None, Some(2)),
            status: s.into(),
        };
        assert_eq!(
            cleared_by(7, &status("Available")).map(|c| c.0).as_deref(),
            Some("CONNECTOR_FAULTED:7:2")
        );
        assert!(cleared_by(7, &status("Faulted")).is_none());
        let online = Event::StationOnline {
            ocpp_version: "2.0.1".into(),
        };
        assert_eq!(
            cleared_by(7, &online).map(|c| c.0).as_deref(),
            Some("CHARGER_OFFLINE:7")
        );
        let boot = |r: &str| Event::Booted {
            vendor: "V".into(),
            model: "M".into(),
            firmware_version: None,
            registration: Some(r.into()),
        };
        assert_eq!(
            cleared_by(7, &boot("Accepted")).map(|c| c.0).as_deref(),
            Some("CHARGER_BOOT_REJECTED:7")
        );
        assert!(cleared_by(7, &boot("Pending")).is_none());
        let fault = Event::Fault {
            location: at(None, Some(2)),
            error_code: "NoError".into(),
            info: None,
        };
        assert!(cleared_by(7, &fault).is_none());
    }

    #[test]
    fn only_a_rejected_boot_raises_an_alert() {
        let boot = |registration: Option<&str>| Event::Booted {
            vendor: "V".into(),
            model: "M".into(),
            firmware_version: None,
            registration: registration.map(str::to_string),
        };
        let r = of_event(7, "CP", &boot(Some("Rejected"))).unwrap_or_else(|| panic!("no alert"));
        assert_eq!(
            (r.code, r.key.as_str()),
            (CHARGER_BOOT_REJECTED, "CHARGER_BOOT_REJECTED:7")
        );
        for ok in [Some("Accepted"), Some("Pending"), None] {
            assert!(of_event(7, "CP", &boot(ok)).is_none(), "{ok:?}");
        }
    }
}

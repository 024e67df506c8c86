//! Conversions from typed OCPP 2.0.1 requests to the version-neutral events.
//!
//! 2.0.1 ids are signed integers on the wire (the schemas set no minimum) while [`Location`] is
//! unsigned, so conversions that take an EVSE or connector id fail with `PropertyConstraint` on
//! negative ids rather than guessing a location.

use crate::error_code::{Fault, Violation};
use crate::model::events::{
    BootInfo, ConnectorStatus, IdToken, Location, MeterReport, ReservationStatus, StationEvent, StatusChange,
    TransactionEnded, TransactionStarted, TransactionUpdated,
};
use crate::model::from_v16::DEFAULT_STOP_REASON;
use crate::model::meter::{self, energy_register_wh, ocpp_name, Sample};
use rust_ocpp::v2_0_1::datatypes::evse_type::EVSEType;
use rust_ocpp::v2_0_1::datatypes::id_token_type::IdTokenType;
use rust_ocpp::v2_0_1::enumerations::connector_status_enum_type::ConnectorStatusEnumType;
use rust_ocpp::v2_0_1::enumerations::transaction_event_enum_type::TransactionEventEnumType;
use rust_ocpp::v2_0_1::messages::boot_notification::BootNotificationRequest;
use rust_ocpp::v2_0_1::messages::meter_values::MeterValuesRequest;
use rust_ocpp::v2_0_1::messages::reservation_status_update::ReservationStatusUpdateRequest;
use rust_ocpp::v2_0_1::messages::status_notification::StatusNotificationRequest;
use rust_ocpp::v2_0_1::messages::transaction_event::TransactionEventRequest;

/// The station identity from a BootNotification.
pub fn boot(req: &BootNotificationRequest) -> BootInfo {
    let station = &req.charging_station;
    let modem = station.modem.as_ref();
    BootInfo {
        vendor: station.vendor_name.clone(),
        model: station.model.clone(),
        serial_number: station.serial_number.clone(),
        firmware_version: station.firmware_version.clone(),
        iccid: modem.and_then(|m| m.iccid.clone()),
        imsi: modem.and_then(|m| m.imsi.clone()),
        meter_type: None,
        meter_serial_number: None,
        reason: Some(ocpp_name(&req.reason)),
    }
}

/// The status change from a StatusNotification; fails on negative EVSE or connector ids.
pub fn status(req: &StatusNotificationRequest) -> Result<StatusChange, Violation> {
    Ok(StatusChange {
        location: Location {
            evse_id: non_negative(req.evse_id, "evseId")?,
            connector_id: non_negative(req.connector_id, "connectorId")?,
        },
        status: match req.connector_status {
            ConnectorStatusEnumType::Available => ConnectorStatus::Available,
            ConnectorStatusEnumType::Occupied => ConnectorStatus::Occupied,
            ConnectorStatusEnumType::Reserved => ConnectorStatus::Reserved,
            ConnectorStatusEnumType::Unavailable => ConnectorStatus::Unavailable,
            ConnectorStatusEnumType::Faulted => ConnectorStatus::Faulted,
        },
        error_code: None,
        info: None,
        timestamp: req.timestamp,
    })
}

/// A 2.0.1 id token; its kind is the `IdTokenEnumType` name (`ISO14443`, `eMAID`, ...).
pub fn id_token(token: &IdTokenType) -> IdToken {
    IdToken {
        value: token.id_token.clone(),
        kind: ocpp_name(&token.kind),
    }
}

/// The transaction event as a start, update or end; fails on bad ids or meter values.
///
/// Meter start is the energy register of the `Transaction.Begin` samples, else of the earliest
/// samples; meter stop that of the `Transaction.End` samples, else the latest reading. A missing
/// `stoppedReason` means `Local`, the only reason the spec allows to be omitted.
pub fn transaction_event(req: &TransactionEventRequest) -> Result<StationEvent, Violation> {
    let samples = meter::from_v201(req.meter_value.as_deref().unwrap_or_default())?;
    let location = req.evse.as_ref().map(evse_location).transpose()?;
    let info = &req.transaction_info;
    let offline = req.offline.unwrap_or(false);
    let trigger_reason = ocpp_name(&req.trigger_reason);
    let id_token = req.id_token.as_ref().map(id_token);
    Ok(match req.event_type {
        TransactionEventEnumType::Started => StationEvent::TransactionStarted(TransactionStarted {
            location: location.unwrap_or(Location::STATION),
            station_transaction_id: Some(info.transaction_id.clone()),
            id_token,
            meter_start_wh: register_in_context(&samples, "Transaction.Begin")
                .or_else(|| energy_register_wh(&earliest(&samples))),
            timestamp: req.timestamp,
            reservation_id: req.reservation_id,
            trigger_reason: Some(trigger_reason),
            seq_no: Some(req.seq_no),
            offline,
            samples,
        }),
        TransactionEventEnumType::Updated => StationEvent::TransactionUpdated(TransactionUpdated {
            station_transaction_id: info.transaction_id.clone(),
            location,
            timestamp: req.timestamp,
            trigger_reason,
            charging_state: info.charging_state.as_ref().map(ocpp_name),
            id_token,
            seq_no: req.seq_no,
            offline,
            samples,
        }),
        TransactionEventEnumType::Ended => StationEvent::TransactionEnded(TransactionEnded {
            transaction_ref: info.transaction_id.clone(),
            location,
            id_token,
            meter_stop_wh: register_in_context(&samples, "Transaction.End").or_else(|| energy_register_wh(&samples)),
            timestamp: req.timestamp,
            stop_reason: Some(
                info.stopped_reason
                    .as_ref()
                    .map_or_else(|| DEFAULT_STOP_REASON.to_owned(), ocpp_name),
            ),
            trigger_reason: Some(trigger_reason),
            seq_no: Some(req.seq_no),
            offline,
            samples,
        }),
    })
}

/// The readings of a MeterValues; `evseId` 0 is the station's main meter.
pub fn meter_values(req: &MeterValuesRequest) -> Result<MeterReport, Violation> {
    Ok(MeterReport {
        location: Location {
            evse_id: non_negative(req.evse_id, "evseId")?,
            connector_id: 0,
        },
        transaction_ref: None,
        samples: meter::from_v201(&req.meter_value)?,
    })
}

/// The reservation status from a ReservationStatusUpdate (`Expired` or `Removed`).
pub fn reservation_status(req: &ReservationStatusUpdateRequest) -> ReservationStatus {
    ReservationStatus {
        reservation_id: req.reservation_id,
        status: ocpp_name(&req.reservation_update_status),
    }
}

/// The location of an `evse` field; an EVSE without connector means its first connector, the
/// 1.6-style single-connector EVSE the rest of the system assumes.
fn evse_location(evse: &EVSEType) -> Result<Location, Violation> {
    Ok(Location {
        evse_id: non_negative(evse.id, "evse.id")?,
        connector_id: non_negative(evse.connector_id.unwrap_or(1), "evse.connectorId")?,
    })
}

/// An id as unsigned, or a violation naming the field.
fn non_negative(value: i32, field: &str) -> Result<u32, Violation> {
    u32::try_from(value).map_err(|_| Violation::new(Fault::PropertyConstraint, format!("{field} {value} is negative")))
}

/// The energy register among the samples of one reading context.
fn register_in_context(samples: &[Sample], context: &str) -> Option<i64> {
    let in_context: Vec<Sample> = samples.iter().filter(|s| s.context == context).cloned().collect();
    energy_register_wh(&in_context)
}

/// The samples taken at the earliest timestamp.
fn earliest(samples: &[Sample]) -> Vec<Sample> {
    let first = samples.iter().map(|s| s.timestamp).min();
    samples.iter().filter(|s| Some(s.timestamp) == first).cloned().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::meter::Unit;
    use chrono::{DateTime, Utc};
    use serde_json::{json, Value};

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn ts(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn energy(ts: &str, context: &str, wh: f64) -> Value {
        json!({
            "timestamp": ts,
            "sampledValue": [{ "value": wh, "context": context }]
        })
    }

    fn tx_event(event_type: &str, extra: Value) -> TransactionEventRequest {
        let mut req = json!({
            "eventType": event_type,
            "timestamp": "2024-05-01T10:00:00.000Z",
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": { "transactionId": "tx-1" }
        });
        for (key, value) in extra.as_object().unwrap() {
            req[key] = value.clone();
        }
        parse(req)
    }

    #[test]
    fn boot_copies_every_field() {
        let req = parse(json!({
            "reason": "FirmwareUpdate",
            "chargingStation": {
                "serialNumber": "SN-1", "model": "Volt 22", "vendorName": "Acme",
                "firmwareVersion": "2.0.0", "modem": { "iccid": "8931", "imsi": "2620" }
            }
        }));
        assert_eq!(
            boot(&req),
            BootInfo {
                vendor: "Acme".into(),
                model: "Volt 22".into(),
                serial_number: Some("SN-1".into()),
                firmware_version: Some("2.0.0".into()),
                iccid: Some("8931".into()),
                imsi: Some("2620".into()),
                meter_type: None,
                meter_serial_number: None,
                reason: Some("FirmwareUpdate".into()),
            }
        );
        let req = parse(json!({
            "reason": "PowerUp", "chargingStation": { "model": "M", "vendorName": "V" }
        }));
        assert_eq!(
            boot(&req),
            BootInfo {
                vendor: "V".into(),
                model: "M".into(),
                reason: Some("PowerUp".into()),
                ..BootInfo::default()
            }
        );
    }

    #[test]
    fn status_copies_every_field_and_maps_every_status() {
        let table = [
            ("Available", ConnectorStatus::Available),
            ("Occupied", ConnectorStatus::Occupied),
            ("Reserved", ConnectorStatus::Reserved),
            ("Unavailable", ConnectorStatus::Unavailable),
            ("Faulted", ConnectorStatus::Faulted),
        ];
        for (name, want) in table {
            let req = parse(json!({
                "timestamp": "2024-05-01T10:00:00Z", "connectorStatus": name,
                "evseId": 2, "connectorId": 3
            }));
            assert_eq!(
                status(&req).unwrap(),
                StatusChange {
                    location: Location {
                        evse_id: 2,
                        connector_id: 3
                    },
                    status: want,
                    error_code: None,
                    info: None,
                    timestamp: ts("2024-05-01T10:00:00Z"),
                }
            );
        }
    }

    #[test]
    fn status_rejects_negative_ids() {
        for (evse, connector, field) in [(-1, 1, "evseId"), (1, -1, "connectorId")] {
            let req = parse(json!({
                "timestamp": "2024-05-01T10:00:00Z", "connectorStatus": "Available",
                "evseId": evse, "connectorId": connector
            }));
            let err = status(&req).unwrap_err();
            assert_eq!(err.fault, Fault::PropertyConstraint);
            assert!(err.description.contains(field), "{}", err.description);
        }
    }

    #[test]
    fn id_token_kind_is_the_enum_name() {
        let table = [
            "Central",
            "eMAID",
            "ISO14443",
            "ISO15693",
            "KeyCode",
            "Local",
            "MacAddress",
            "NoAuthorization",
        ];
        for kind in table {
            let token = parse(json!({
                "idToken": "04A2B3C4", "type": kind,
                "additionalInfo": [{ "additionalIdToken": "x", "type": "y" }]
            }));
            assert_eq!(
                id_token(&token),
                IdToken {
                    value: "04A2B3C4".into(),
                    kind: kind.into()
                }
            );
        }
    }

    #[test]
    fn started_copies_every_field() {
        let req = tx_event(
            "Started",
            json!({
                "seqNo": 0, "offline": true, "reservationId": 9, "triggerReason": "CablePluggedIn",
                "idToken": { "idToken": "TAG1", "type": "ISO14443" },
                "evse": { "id": 2, "connectorId": 2 },
                "meterValue": [
                    energy("2024-05-01T09:59:00Z", "Sample.Periodic", 900.0),
                    energy("2024-05-01T10:00:00Z", "Transaction.Begin", 1000.4)
                ]
            }),
        );
        let StationEvent::TransactionStarted(started) = transaction_event(&req).unwrap() else {
            panic!("not a start");
        };
        let samples = started.samples.clone();
        assert_eq!(
            started,
            TransactionStarted {
                location: Location {
                    evse_id: 2,
                    connector_id: 2
                },
                station_transaction_id: Some("tx-1".into()),
                id_token: Some(IdToken {
                    value: "TAG1".into(),
                    kind: "ISO14443".into()
                }),
                meter_start_wh: Some(1000),
                timestamp: ts("2024-05-01T10:00:00Z"),
                reservation_id: Some(9),
                trigger_reason: Some("CablePluggedIn".into()),
                seq_no: Some(0),
                offline: true,
                samples,
            }
        );
        assert_eq!(started.samples.len(), 2);
        assert_eq!(started.samples[1].context, "Transaction.Begin");
        assert_eq!((started.samples[1].unit, started.samples[1].value), (Unit::Wh, 1000.4));
    }

    #[test]
    fn started_defaults() {
        let req = tx_event("Started", json!({}));
        assert_eq!(
            transaction_event(&req).unwrap(),
            StationEvent::TransactionStarted(TransactionStarted {
                location: Location::STATION,
                station_transaction_id: Some("tx-1".into()),
                id_token: None,
                meter_start_wh: None,
                timestamp: ts("2024-05-01T10:00:00Z"),
                reservation_id: None,
                trigger_reason: Some("Authorized".into()),
                seq_no: Some(0),
                offline: false,
                samples: vec![],
            })
        );
    }

    #[test]
    fn started_location_and_meter_start_fallbacks() {
        let req = tx_event(
            "Started",
            json!({
                "evse": { "id": 3 },
                "meterValue": [
                    energy("2024-05-01T10:01:00Z", "Sample.Periodic", 1100.0),
                    energy("2024-05-01T10:00:00Z", "Sample.Periodic", 1000.0)
                ]
            }),
        );
        let StationEvent::TransactionStarted(started) = transaction_event(&req).unwrap() else {
            panic!("not a start");
        };
        assert_eq!(
            started.location,
            Location {
                evse_id: 3,
                connector_id: 1
            }
        );
        assert_eq!(started.meter_start_wh, Some(1000));
    }

    #[test]
    fn updated_copies_every_field() {
        let req = tx_event(
            "Updated",
            json!({
                "seqNo": 4, "triggerReason": "ChargingStateChanged",
                "transactionInfo": { "transactionId": "tx-1", "chargingState": "SuspendedEV" },
                "idToken": { "idToken": "TAG2", "type": "Local" },
                "evse": { "id": 1, "connectorId": 1 },
                "meterValue": [{
                    "timestamp": "2024-05-01T10:00:00Z",
                    "sampledValue": [{ "value": 7.2, "measurand": "Power.Active.Import", "unitOfMeasure": { "unit": "kW" } }]
                }]
            }),
        );
        let StationEvent::TransactionUpdated(updated) = transaction_event(&req).unwrap() else {
            panic!("not an update");
        };
        assert_eq!(
            updated,
            TransactionUpdated {
                station_transaction_id: "tx-1".into(),
                location: Some(Location {
                    evse_id: 1,
                    connector_id: 1
                }),
                timestamp: ts("2024-05-01T10:00:00Z"),
                trigger_reason: "ChargingStateChanged".into(),
                charging_state: Some("SuspendedEV".into()),
                id_token: Some(IdToken {
                    value: "TAG2".into(),
                    kind: "Local".into()
                }),
                seq_no: 4,
                offline: false,
                samples: vec![Sample {
                    timestamp: ts("2024-05-01T10:00:00Z"),
                    measurand: "Power.Active.Import".into(),
                    phase: None,
                    location: "Outlet".into(),
                    context: "Sample.Periodic".into(),
                    unit: Unit::W,
                    value: 7200.0,
                }],
            }
        );
        let req = tx_event("Updated", json!({ "offline": true }));
        let StationEvent::TransactionUpdated(updated) = transaction_event(&req).unwrap() else {
            panic!("not an update");
        };
        assert_eq!(
            (updated.location, updated.charging_state, updated.offline),
            (None, None, true)
        );
    }

    #[test]
    fn ended_copies_every_field() {
        let req = tx_event(
            "Ended",
            json!({
                "seqNo": 7, "offline": false, "triggerReason": "EVDeparted",
                "transactionInfo": { "transactionId": "tx-1", "stoppedReason": "EVDisconnected" },
                "idToken": { "idToken": "TAG1", "type": "ISO14443" },
                "evse": { "id": 1, "connectorId": 1 },
                "meterValue": [
                    energy("2024-05-01T11:00:00Z", "Transaction.End", 5000.0),
                    energy("2024-05-01T11:00:01Z", "Sample.Periodic", 5001.0)
                ]
            }),
        );
        let StationEvent::TransactionEnded(ended) = transaction_event(&req).unwrap() else {
            panic!("not an end");
        };
        let samples = ended.samples.clone();
        assert_eq!(
            ended,
            TransactionEnded {
                transaction_ref: "tx-1".into(),
                location: Some(Location {
                    evse_id: 1,
                    connector_id: 1
                }),
                id_token: Some(IdToken {
                    value: "TAG1".into(),
                    kind: "ISO14443".into()
                }),
                meter_stop_wh: Some(5000),
                timestamp: ts("2024-05-01T10:00:00Z"),
                stop_reason: Some("EVDisconnected".into()),
                trigger_reason: Some("EVDeparted".into()),
                seq_no: Some(7),
                offline: false,
                samples,
            }
        );
        assert_eq!(ended.samples.len(), 2);
    }

    #[test]
    fn ended_defaults_and_meter_stop_fallback() {
        let req = tx_event(
            "Ended",
            json!({
                "meterValue": [
                    energy("2024-05-01T10:59:00Z", "Sample.Periodic", 4900.0),
                    energy("2024-05-01T11:00:00Z", "Sample.Periodic", 5000.0)
                ]
            }),
        );
        let StationEvent::TransactionEnded(ended) = transaction_event(&req).unwrap() else {
            panic!("not an end");
        };
        assert_eq!(ended.meter_stop_wh, Some(5000));
        assert_eq!(ended.stop_reason.as_deref(), Some("Local"));
        assert_eq!((ended.location, ended.id_token, ended.offline), (None, None, false));

        let req = tx_event("Ended", json!({}));
        let StationEvent::TransactionEnded(ended) = transaction_event(&req).unwrap() else {
            panic!("not an end");
        };
        assert_eq!(ended.meter_stop_wh, None);
        assert!(ended.samples.is_empty());
    }

    #[test]
    fn transaction_event_rejects_negative_ids_and_bad_values() {
        for evse in [json!({ "id": -1 }), json!({ "id": 1, "connectorId": -2 })] {
            for event_type in ["Started", "Updated", "Ended"] {
                let req = tx_event(event_type, json!({ "evse": evse }));
                let err = transaction_event(&req).unwrap_err();
                assert_eq!(err.fault, Fault::PropertyConstraint, "{event_type} {evse}");
                assert!(err.description.contains("evse."), "{}", err.description);
            }
        }
        let req = tx_event(
            "Updated",
            json!({ "meterValue": [{
                "timestamp": "2024-05-01T10:00:00Z",
                "sampledValue": [{ "value": 1, "unitOfMeasure": { "multiplier": 400 } }]
            }] }),
        );
        assert_eq!(transaction_event(&req).unwrap_err().fault, Fault::PropertyConstraint);
    }

    #[test]
    fn meter_values_copies_every_field() {
        let req = parse(json!({
            "evseId": 2,
            "meterValue": [{
                "timestamp": "2024-05-01T10:00:00Z",
                "sampledValue": [
                    { "value": 12.5, "unitOfMeasure": { "unit": "kWh" } },
                    { "value": 16, "measurand": "Current.Import", "phase": "L1", "unitOfMeasure": { "unit": "A" } }
                ]
            }]
        }));
        let report = meter_values(&req).unwrap();
        assert_eq!(
            report.location,
            Location {
                evse_id: 2,
                connector_id: 0
            }
        );
        assert_eq!(report.transaction_ref, None);
        assert_eq!(report.samples.len(), 2);
        assert_eq!((report.samples[0].unit, report.samples[0].value), (Unit::Wh, 12500.0));
        assert_eq!(report.samples[1].phase.as_deref(), Some("L1"));
        assert_eq!((report.samples[1].unit, report.samples[1].value), (Unit::A, 16.0));

        let req = parse(json!({
            "evseId": 0,
            "meterValue": [{ "timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{ "value": 1 }] }]
        }));
        assert_eq!(meter_values(&req).unwrap().location, Location::STATION);

        let req = parse(json!({
            "evseId": -1,
            "meterValue": [{ "timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{ "value": 1 }] }]
        }));
        assert_eq!(meter_values(&req).unwrap_err().fault, Fault::PropertyConstraint);
    }

    #[test]
    fn reservation_status_copies_every_field() {
        for name in ["Expired", "Removed"] {
            let req = parse(json!({ "reservationId": 17, "reservationUpdateStatus": name }));
            assert_eq!(
                reservation_status(&req),
                ReservationStatus {
                    reservation_id: 17,
                    status: name.into()
                }
            );
        }
    }
}

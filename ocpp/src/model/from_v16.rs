//! Conversions from typed OCPP 1.6 requests to the version-neutral events.
//!
//! 1.6 id tags carry no token type; they get the kind [`IdToken::V16_KIND`] (`IdTag`), which is
//! deliberately not a 2.0.1 `IdTokenEnumType` name so the two can never be confused.

use crate::error_code::Violation;
use crate::model::events::{
    BootInfo, ConnectorStatus, IdToken, Location, MeterReport, StatusChange, TransactionEnded, TransactionStarted,
};
use crate::model::meter::{self, ocpp_name};
use chrono::{DateTime, Utc};
use rust_ocpp::v1_6::messages::authorize::AuthorizeRequest;
use rust_ocpp::v1_6::messages::boot_notification::BootNotificationRequest;
use rust_ocpp::v1_6::messages::meter_values::MeterValuesRequest;
use rust_ocpp::v1_6::messages::start_transaction::StartTransactionRequest;
use rust_ocpp::v1_6::messages::status_notification::StatusNotificationRequest;
use rust_ocpp::v1_6::messages::stop_transaction::StopTransactionRequest;
use rust_ocpp::v1_6::types::ChargePointStatus;

/// The stop reason 1.6 implies when StopTransaction gives none.
pub const DEFAULT_STOP_REASON: &str = "Local";

/// The station identity from a BootNotification.
pub fn boot(req: &BootNotificationRequest) -> BootInfo {
    BootInfo {
        vendor: req.charge_point_vendor.clone(),
        model: req.charge_point_model.clone(),
        // chargePointSerialNumber is deprecated in favour of chargeBoxSerialNumber, but older
        // firmware only sends the former.
        serial_number: non_empty(&req.charge_box_serial_number).or_else(|| non_empty(&req.charge_point_serial_number)),
        firmware_version: req.firmware_version.clone(),
        iccid: req.iccid.clone(),
        imsi: req.imsi.clone(),
        meter_type: req.meter_type.clone(),
        meter_serial_number: req.meter_serial_number.clone(),
        reason: None,
    }
}

/// The status change from a StatusNotification; `now` stands in for a missing timestamp.
///
/// `info`, `vendorId` and `vendorErrorCode` are joined into [`StatusChange::info`] as
/// `info; vendorId=..; vendorErrorCode=..`, leaving out the absent or empty parts.
pub fn status(req: &StatusNotificationRequest, now: DateTime<Utc>) -> StatusChange {
    let parts: Vec<String> = [
        non_empty(&req.info),
        non_empty(&req.vendor_id).map(|v| format!("vendorId={v}")),
        non_empty(&req.vendor_error_code).map(|c| format!("vendorErrorCode={c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    StatusChange {
        location: Location::from_v16_connector(req.connector_id),
        status: connector_status(&req.status),
        error_code: Some(ocpp_name(&req.error_code)),
        info: (!parts.is_empty()).then(|| parts.join("; ")),
        timestamp: req.timestamp.unwrap_or(now),
    }
}

/// The token presented in an Authorize.
pub fn authorize(req: &AuthorizeRequest) -> IdToken {
    id_tag(&req.id_tag)
}

/// The transaction start from a StartTransaction (meterStart is in Wh by definition in 1.6).
pub fn start_transaction(req: &StartTransactionRequest) -> TransactionStarted {
    TransactionStarted {
        location: Location::from_v16_connector(req.connector_id),
        station_transaction_id: None,
        id_token: Some(id_tag(&req.id_tag)),
        meter_start_wh: Some(i64::from(req.meter_start)),
        timestamp: req.timestamp,
        reservation_id: req.reservation_id,
        trigger_reason: None,
        seq_no: None,
        offline: false,
        samples: Vec::new(),
    }
}

/// The transaction end from a StopTransaction; fails only on unparsable `transactionData`.
pub fn stop_transaction(req: &StopTransactionRequest) -> Result<TransactionEnded, Violation> {
    let samples = meter::from_v16(req.transaction_data.as_deref().unwrap_or_default())?;
    Ok(TransactionEnded {
        transaction_ref: req.transaction_id.to_string(),
        location: None,
        id_token: req.id_tag.as_deref().map(id_tag),
        meter_stop_wh: Some(i64::from(req.meter_stop)),
        timestamp: req.timestamp,
        stop_reason: Some(
            req.reason
                .as_ref()
                .map_or_else(|| DEFAULT_STOP_REASON.to_owned(), ocpp_name),
        ),
        trigger_reason: None,
        seq_no: None,
        offline: false,
        samples,
    })
}

/// The readings of a MeterValues.
pub fn meter_values(req: &MeterValuesRequest) -> Result<MeterReport, Violation> {
    Ok(MeterReport {
        location: Location::from_v16_connector(req.connector_id),
        transaction_ref: req.transaction_id.map(|id| id.to_string()),
        samples: meter::from_v16(&req.meter_value)?,
    })
}

/// A 1.6 id tag as a version-neutral token.
fn id_tag(value: &str) -> IdToken {
    IdToken {
        value: value.to_owned(),
        kind: IdToken::V16_KIND.to_owned(),
    }
}

/// Maps the 1.6 connector status (all of its names exist in the neutral vocabulary).
fn connector_status(status: &ChargePointStatus) -> ConnectorStatus {
    match status {
        ChargePointStatus::Available => ConnectorStatus::Available,
        ChargePointStatus::Preparing => ConnectorStatus::Preparing,
        ChargePointStatus::Charging => ConnectorStatus::Charging,
        ChargePointStatus::SuspendedEVSE => ConnectorStatus::SuspendedEVSE,
        ChargePointStatus::SuspendedEV => ConnectorStatus::SuspendedEV,
        ChargePointStatus::Finishing => ConnectorStatus::Finishing,
        ChargePointStatus::Reserved => ConnectorStatus::Reserved,
        ChargePointStatus::Unavailable => ConnectorStatus::Unavailable,
        ChargePointStatus::Faulted => ConnectorStatus::Faulted,
    }
}

/// The string if present and not empty; the 1.6 schemas set no minimum length.
fn non_empty(text: &Option<String>) -> Option<String> {
    text.as_ref().filter(|t| !t.is_empty()).cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::meter::{Sample, Unit};
    use serde_json::json;

    fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn ts(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn boot_copies_every_field() {
        let req = parse(json!({
            "chargePointVendor": "Acme", "chargePointModel": "Volt 22",
            "chargeBoxSerialNumber": "CB-1", "chargePointSerialNumber": "CP-1",
            "firmwareVersion": "1.2.3", "iccid": "8931", "imsi": "2620",
            "meterType": "EM340", "meterSerialNumber": "M-9"
        }));
        assert_eq!(
            boot(&req),
            BootInfo {
                vendor: "Acme".into(),
                model: "Volt 22".into(),
                serial_number: Some("CB-1".into()),
                firmware_version: Some("1.2.3".into()),
                iccid: Some("8931".into()),
                imsi: Some("2620".into()),
                meter_type: Some("EM340".into()),
                meter_serial_number: Some("M-9".into()),
                reason: None,
            }
        );
    }

    #[test]
    fn boot_minimal_falls_back_to_the_charge_point_serial() {
        let req = parse(json!({
            "chargePointVendor": "Acme", "chargePointModel": "Volt 22",
            "chargePointSerialNumber": "CP-1"
        }));
        assert_eq!(
            boot(&req),
            BootInfo {
                vendor: "Acme".into(),
                model: "Volt 22".into(),
                serial_number: Some("CP-1".into()),
                ..BootInfo::default()
            }
        );
        let req = parse(json!({
            "chargePointVendor": "Acme", "chargePointModel": "Volt 22",
            "chargeBoxSerialNumber": "", "chargePointSerialNumber": "CP-1"
        }));
        assert_eq!(boot(&req).serial_number.as_deref(), Some("CP-1"));
    }

    #[test]
    fn status_maps_connector_status_and_defaults_the_timestamp() {
        let now = ts("2024-05-01T12:00:00Z");
        let req = parse(json!({ "connectorId": 2, "errorCode": "NoError", "status": "Charging" }));
        assert_eq!(
            status(&req, now),
            StatusChange {
                location: Location {
                    evse_id: 2,
                    connector_id: 1
                },
                status: ConnectorStatus::Charging,
                error_code: Some("NoError".into()),
                info: None,
                timestamp: now,
            }
        );
    }

    #[test]
    fn status_keeps_charger_timestamp_error_and_info() {
        let req = parse(json!({
            "connectorId": 0, "errorCode": "EVCommunicationError", "status": "Faulted",
            "timestamp": "2024-05-01T11:59:58Z", "info": "pilot lost",
            "vendorId": "com.acme", "vendorErrorCode": "E42"
        }));
        assert_eq!(
            status(&req, ts("2024-05-01T12:00:00Z")),
            StatusChange {
                location: Location::STATION,
                status: ConnectorStatus::Faulted,
                error_code: Some("EVCommunicationError".into()),
                info: Some("pilot lost; vendorId=com.acme; vendorErrorCode=E42".into()),
                timestamp: ts("2024-05-01T11:59:58Z"),
            }
        );
        let req = parse(json!({
            "connectorId": 1, "errorCode": "OtherError", "status": "Available",
            "info": "", "vendorErrorCode": "E7"
        }));
        assert_eq!(
            status(&req, ts("2024-05-01T12:00:00Z")).info.as_deref(),
            Some("vendorErrorCode=E7")
        );
    }

    #[test]
    fn status_maps_every_status() {
        let table = [
            ("Available", ConnectorStatus::Available),
            ("Preparing", ConnectorStatus::Preparing),
            ("Charging", ConnectorStatus::Charging),
            ("SuspendedEVSE", ConnectorStatus::SuspendedEVSE),
            ("SuspendedEV", ConnectorStatus::SuspendedEV),
            ("Finishing", ConnectorStatus::Finishing),
            ("Reserved", ConnectorStatus::Reserved),
            ("Unavailable", ConnectorStatus::Unavailable),
            ("Faulted", ConnectorStatus::Faulted),
        ];
        for (name, want) in table {
            let req = parse(json!({ "connectorId": 1, "errorCode": "NoError", "status": name }));
            let got = status(&req, Utc::now()).status;
            assert_eq!(got, want);
            assert_eq!(got.as_str(), name);
        }
    }

    #[test]
    fn authorize_uses_the_id_tag_kind() {
        let req = parse(json!({ "idTag": "04A2B3C4" }));
        assert_eq!(
            authorize(&req),
            IdToken {
                value: "04A2B3C4".into(),
                kind: "IdTag".into()
            }
        );
    }

    #[test]
    fn start_transaction_copies_every_field() {
        let req = parse(json!({
            "connectorId": 3, "idTag": "TAG1", "meterStart": 123456,
            "reservationId": 7, "timestamp": "2024-05-01T10:00:00Z"
        }));
        assert_eq!(
            start_transaction(&req),
            TransactionStarted {
                location: Location {
                    evse_id: 3,
                    connector_id: 1
                },
                station_transaction_id: None,
                id_token: Some(IdToken {
                    value: "TAG1".into(),
                    kind: "IdTag".into()
                }),
                meter_start_wh: Some(123456),
                timestamp: ts("2024-05-01T10:00:00Z"),
                reservation_id: Some(7),
                trigger_reason: None,
                seq_no: None,
                offline: false,
                samples: vec![],
            }
        );
        let req = parse(json!({
            "connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2024-05-01T10:00:00Z"
        }));
        assert_eq!(start_transaction(&req).reservation_id, None);
    }

    #[test]
    fn stop_transaction_copies_every_field() {
        let req = parse(json!({
            "transactionId": 42, "idTag": "TAG1", "meterStop": 133456,
            "timestamp": "2024-05-01T11:00:00Z", "reason": "EVDisconnected",
            "transactionData": [{
                "timestamp": "2024-05-01T11:00:00Z",
                "sampledValue": [{ "value": "133.456", "unit": "kWh", "context": "Transaction.End" }]
            }]
        }));
        assert_eq!(
            stop_transaction(&req).unwrap(),
            TransactionEnded {
                transaction_ref: "42".into(),
                location: None,
                id_token: Some(IdToken {
                    value: "TAG1".into(),
                    kind: "IdTag".into()
                }),
                meter_stop_wh: Some(133456),
                timestamp: ts("2024-05-01T11:00:00Z"),
                stop_reason: Some("EVDisconnected".into()),
                trigger_reason: None,
                seq_no: None,
                offline: false,
                samples: vec![Sample {
                    timestamp: ts("2024-05-01T11:00:00Z"),
                    measurand: "Energy.Active.Import.Register".into(),
                    phase: None,
                    location: "Outlet".into(),
                    context: "Transaction.End".into(),
                    unit: Unit::Wh,
                    value: 133456.0,
                }],
            }
        );
    }

    #[test]
    fn stop_transaction_defaults_reason_to_local() {
        let req = parse(json!({
            "transactionId": -1, "meterStop": 0, "timestamp": "2024-05-01T11:00:00Z"
        }));
        let ended = stop_transaction(&req).unwrap();
        assert_eq!(ended.transaction_ref, "-1");
        assert_eq!(ended.stop_reason.as_deref(), Some("Local"));
        assert_eq!(ended.id_token, None);
        assert!(ended.samples.is_empty());
    }

    #[test]
    fn stop_transaction_rejects_bad_transaction_data() {
        let req = parse(json!({
            "transactionId": 1, "meterStop": 0, "timestamp": "2024-05-01T11:00:00Z",
            "transactionData": [{ "timestamp": "2024-05-01T11:00:00Z", "sampledValue": [{ "value": "n/a" }] }]
        }));
        let err = stop_transaction(&req).unwrap_err();
        assert_eq!(err.fault, crate::Fault::PropertyConstraint);
        assert!(err.description.contains("n/a"));
    }

    #[test]
    fn meter_values_copies_every_field() {
        let req = parse(json!({
            "connectorId": 1, "transactionId": 42,
            "meterValue": [{
                "timestamp": "2024-05-01T10:30:00Z",
                "sampledValue": [
                    { "value": "7.2", "measurand": "Power.Active.Import", "unit": "kW" },
                    { "value": "1500" }
                ]
            }]
        }));
        let report = meter_values(&req).unwrap();
        assert_eq!(
            report.location,
            Location {
                evse_id: 1,
                connector_id: 1
            }
        );
        assert_eq!(report.transaction_ref.as_deref(), Some("42"));
        assert_eq!(report.samples.len(), 2);
        assert_eq!(report.samples[0].measurand, "Power.Active.Import");
        assert_eq!((report.samples[0].unit, report.samples[0].value), (Unit::W, 7200.0));
        assert_eq!((report.samples[1].unit, report.samples[1].value), (Unit::Wh, 1500.0));

        let req = parse(json!({
            "connectorId": 0,
            "meterValue": [{ "timestamp": "2024-05-01T10:30:00Z", "sampledValue": [{ "value": "1" }] }]
        }));
        let report = meter_values(&req).unwrap();
        assert_eq!(report.location, Location::STATION);
        assert_eq!(report.transaction_ref, None);

        let req = parse(json!({
            "connectorId": 1,
            "meterValue": [{ "timestamp": "2024-05-01T10:30:00Z", "sampledValue": [{ "value": "x" }] }]
        }));
        assert_eq!(meter_values(&req).unwrap_err().fault, crate::Fault::PropertyConstraint);
    }
}

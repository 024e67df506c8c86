//! Version-neutral events a charger produces.
//!
//! Locations: OCPP 2.0.1 addresses an EVSE and a connector on it; a 1.6 connector `k > 0` maps to
//! EVSE `k`, connector 1, and 1.6 connector 0 (the whole charge point) to EVSE 0, connector 0.

use crate::model::meter::Sample;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where on a station something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// EVSE id; 0 is the station as a whole.
    pub evse_id: u32,
    /// Connector id on the EVSE; 0 when the event concerns the whole EVSE.
    pub connector_id: u32,
}

impl Location {
    /// The station as a whole.
    pub const STATION: Location = Location {
        evse_id: 0,
        connector_id: 0,
    };

    /// Maps an OCPP 1.6 connector id.
    pub fn from_v16_connector(connector_id: u32) -> Location {
        if connector_id == 0 {
            Location::STATION
        } else {
            Location {
                evse_id: connector_id,
                connector_id: 1,
            }
        }
    }

    /// The OCPP 1.6 connector id of this location (its EVSE id).
    pub fn v16_connector(self) -> u32 {
        self.evse_id
    }
}

/// Connector status, the union of both versions' vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectorStatus {
    /// Free for a new user.
    Available,
    /// 1.6: EV plugged or token presented, not yet charging.
    Preparing,
    /// 1.6: energy flowing.
    Charging,
    /// 1.6: EV does not take energy.
    SuspendedEV,
    /// 1.6: EVSE does not offer energy.
    SuspendedEVSE,
    /// 1.6: transaction stopped, cable still plugged.
    Finishing,
    /// 2.0.1: a connector in use (EV plugged); 1.6 reports the finer states above instead.
    Occupied,
    /// Reserved for an id token.
    Reserved,
    /// Not available for charging (operator decision).
    Unavailable,
    /// In an error state.
    Faulted,
}

impl ConnectorStatus {
    /// The status as written in OCPP (identical names in both versions).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorStatus::Available => "Available",
            ConnectorStatus::Preparing => "Preparing",
            ConnectorStatus::Charging => "Charging",
            ConnectorStatus::SuspendedEV => "SuspendedEV",
            ConnectorStatus::SuspendedEVSE => "SuspendedEVSE",
            ConnectorStatus::Finishing => "Finishing",
            ConnectorStatus::Occupied => "Occupied",
            ConnectorStatus::Reserved => "Reserved",
            ConnectorStatus::Unavailable => "Unavailable",
            ConnectorStatus::Faulted => "Faulted",
        }
    }

    /// Parses an OCPP status name.
    pub fn parse(s: &str) -> Option<ConnectorStatus> {
        [
            ConnectorStatus::Available,
            ConnectorStatus::Preparing,
            ConnectorStatus::Charging,
            ConnectorStatus::SuspendedEV,
            ConnectorStatus::SuspendedEVSE,
            ConnectorStatus::Finishing,
            ConnectorStatus::Occupied,
            ConnectorStatus::Reserved,
            ConnectorStatus::Unavailable,
            ConnectorStatus::Faulted,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A station's identity as reported at boot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootInfo {
    /// Manufacturer.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial number of the station (1.6: chargeBoxSerialNumber, falling back to chargePointSerialNumber).
    pub serial_number: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// SIM ICCID of the modem.
    pub iccid: Option<String>,
    /// SIM IMSI of the modem.
    pub imsi: Option<String>,
    /// 1.6 meter type.
    pub meter_type: Option<String>,
    /// 1.6 meter serial number.
    pub meter_serial_number: Option<String>,
    /// 2.0.1 boot reason (e.g. `PowerUp`); `None` on 1.6.
    pub reason: Option<String>,
}

/// A status change of a connector (or of the whole station for location 0/0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// Where.
    pub location: Location,
    /// The new status.
    pub status: ConnectorStatus,
    /// 1.6 error code (`NoError` when fine); `None` on 2.0.1.
    pub error_code: Option<String>,
    /// Free-form info / vendor error code, if any.
    pub info: Option<String>,
    /// When the charger says it happened (the CSMS clock when the charger gave none).
    pub timestamp: DateTime<Utc>,
}

/// Why an id token is (not) allowed to charge; the union of both versions' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthorizationStatus {
    /// Allowed.
    Accepted,
    /// Blocked.
    Blocked,
    /// Expired.
    Expired,
    /// Unknown or otherwise invalid.
    Invalid,
    /// Already in another transaction.
    ConcurrentTx,
    /// Valid, but not at this station (2.0.1; 1.6 has no such status and answers `Invalid`).
    NotAtThisLocation,
    /// Valid, but not now (2.0.1; 1.6 answers `Invalid`).
    NotAtThisTime,
}

impl AuthorizationStatus {
    /// The status name as written in OCPP.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationStatus::Accepted => "Accepted",
            AuthorizationStatus::Blocked => "Blocked",
            AuthorizationStatus::Expired => "Expired",
            AuthorizationStatus::Invalid => "Invalid",
            AuthorizationStatus::ConcurrentTx => "ConcurrentTx",
            AuthorizationStatus::NotAtThisLocation => "NotAtThisLocation",
            AuthorizationStatus::NotAtThisTime => "NotAtThisTime",
        }
    }

    /// The status a 1.6 charger is told: 1.6 knows no location or time refusal, so those are
    /// `Invalid` there.
    pub fn v16(self) -> AuthorizationStatus {
        match self {
            AuthorizationStatus::NotAtThisLocation | AuthorizationStatus::NotAtThisTime => AuthorizationStatus::Invalid,
            other => other,
        }
    }

    /// Parses a status name.
    pub fn parse(s: &str) -> Option<AuthorizationStatus> {
        match s {
            "Accepted" => Some(AuthorizationStatus::Accepted),
            "Blocked" => Some(AuthorizationStatus::Blocked),
            "Expired" => Some(AuthorizationStatus::Expired),
            "Invalid" => Some(AuthorizationStatus::Invalid),
            "ConcurrentTx" => Some(AuthorizationStatus::ConcurrentTx),
            "NotAtThisLocation" => Some(AuthorizationStatus::NotAtThisLocation),
            "NotAtThisTime" => Some(AuthorizationStatus::NotAtThisTime),
            _ => None,
        }
    }
}

/// An id token presented at a charger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdToken {
    /// The token value (RFID UID, contract id, ...).
    pub value: String,
    /// 2.0.1 token type (`ISO14443`, `Central`, ...); 1.6 tokens are `Unknown`.
    pub kind: String,
}

impl IdToken {
    /// The kind given to OCPP 1.6 id tags, which carry no token type.
    ///
    /// Deliberately not a 2.0.1 `IdTokenEnumType` name (`Central`, `ISO14443`, ...), so a 1.6 tag
    /// is never mistaken for a typed 2.0.1 token.
    pub const V16_KIND: &'static str = "IdTag";

    /// The OCPP 2.0.1 IdTokenEnumType names.
    pub const V201_KINDS: [&'static str; 8] = [
        "Central",
        "eMAID",
        "ISO14443",
        "ISO15693",
        "KeyCode",
        "Local",
        "MacAddress",
        "NoAuthorization",
    ];
}

/// A transaction began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionStarted {
    /// Where.
    pub location: Location,
    /// The charger's transaction id (2.0.1); `None` on 1.6, where the CSMS assigns it.
    pub station_transaction_id: Option<String>,
    /// Who started it, if known.
    pub id_token: Option<IdToken>,
    /// Energy register at start in Wh, if reported.
    pub meter_start_wh: Option<i64>,
    /// When it started.
    pub timestamp: DateTime<Utc>,
    /// The reservation it consumes, if any.
    pub reservation_id: Option<i32>,
    /// 2.0.1 trigger reason, e.g. `Authorized`, `CablePluggedIn`.
    pub trigger_reason: Option<String>,
    /// 2.0.1 sequence number of the message.
    pub seq_no: Option<i32>,
    /// Whether the charger sent this while offline (replayed).
    pub offline: bool,
    /// Meter readings carried by the start message.
    pub samples: Vec<Sample>,
}

/// A running transaction changed (2.0.1 `Updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionUpdated {
    /// The charger's transaction id.
    pub station_transaction_id: String,
    /// Where, if reported.
    pub location: Option<Location>,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Trigger reason.
    pub trigger_reason: String,
    /// Charging state (`Charging`, `EVConnected`, `SuspendedEV`, `SuspendedEVSE`, `Idle`).
    pub charging_state: Option<String>,
    /// Token presented during the transaction, if any.
    pub id_token: Option<IdToken>,
    /// Sequence number.
    pub seq_no: i32,
    /// Sent while offline.
    pub offline: bool,
    /// Meter readings carried by the message.
    pub samples: Vec<Sample>,
}

/// A transaction ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionEnded {
    /// 1.6: the CSMS-assigned id as a string; 2.0.1: the charger's transaction id.
    pub transaction_ref: String,
    /// Where, if reported.
    pub location: Option<Location>,
    /// Token that stopped it, if any.
    pub id_token: Option<IdToken>,
    /// Energy register at stop in Wh, if reported.
    pub meter_stop_wh: Option<i64>,
    /// When it ended.
    pub timestamp: DateTime<Utc>,
    /// Why (`Local`, `Remote`, `EVDisconnected`, ...), if given.
    pub stop_reason: Option<String>,
    /// 2.0.1 trigger reason.
    pub trigger_reason: Option<String>,
    /// 2.0.1 sequence number.
    pub seq_no: Option<i32>,
    /// Sent while offline.
    pub offline: bool,
    /// Meter readings carried by the stop message (1.6 transactionData, 2.0.1 meterValue).
    pub samples: Vec<Sample>,
}

/// Meter readings outside of transaction start/stop messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterReport {
    /// Where.
    pub location: Location,
    /// 1.6: the CSMS transaction id as a string; `None` when not in a transaction.
    pub transaction_ref: Option<String>,
    /// Normalised readings.
    pub samples: Vec<Sample>,
}

/// A reservation's status as reported by the station (2.0.1 ReservationStatusUpdate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationStatus {
    /// Reservation id.
    pub reservation_id: i32,
    /// `Expired` or `Removed`.
    pub status: String,
}

/// Anything a station reported that the rest of the system cares about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StationEvent {
    /// BootNotification.
    Booted(BootInfo),
    /// StatusNotification.
    StatusChanged(StatusChange),
    /// Authorize.
    AuthorizationRequested(IdToken),
    /// StartTransaction / TransactionEvent(Started).
    TransactionStarted(TransactionStarted),
    /// TransactionEvent(Updated).
    TransactionUpdated(TransactionUpdated),
    /// StopTransaction / TransactionEvent(Ended).
    TransactionEnded(TransactionEnded),
    /// MeterValues.
    Metered(MeterReport),
    /// ReservationStatusUpdate.
    ReservationStatusChanged(ReservationStatus),
}

//! The bus contract: versioned envelopes, events (central system -> booking API), commands
//! (booking API -> central system) and their replies.
//!
//! Plain serde types, camelCase JSON, internally tagged with `"type"`. Consumers tolerate
//! what a newer producer may send: unknown fields are ignored and an unknown event type
//! deserializes into [`Event::Unknown`], which a consumer skips.

use crate::StationId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The schema version this crate writes. A consumer reads any envelope; the version tells it
/// which fields a producer knew about.
pub const SCHEMA_VERSION: u32 = 1;

/// Every event on the bus travels in one envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Unique per event; consumers are idempotent on it (see [`crate::Dedup`]).
    pub event_id: String,
    pub station_id: StationId,
    pub occurred_at: DateTime<Utc>,
    pub schema_version: u32,
    pub event: Event,
}

impl EventEnvelope {
    /// A new envelope with a fresh event id.
    pub fn new(station_id: StationId, occurred_at: DateTime<Utc>, event: Event) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            station_id,
            occurred_at,
            schema_version: SCHEMA_VERSION,
            event,
        }
    }
}

/// Where on a station something happened. 1.6 stations fill `connector_id` only; 2.0.1
/// stations fill `evse_id` and, when they report it, `connector_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<u32>,
}

/// The events the central system publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Event {
    StationOnline {
        ocpp_version: String,
    },
    StationOffline {
        reason: Option<String>,
    },
    Booted {
        vendor: String,
        model: String,
        firmware_version: Option<String>,
        /// What the central system answered: `Accepted`, `Pending` or `Rejected` (absent from
        /// publishers older than this field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration: Option<String>,
    },
    ConnectorStatus {
        location: Location,
        status: String,
    },
    TransactionStarted {
        /// The central system's transaction id (1.6: its integer as text; 2.0.1: the charger's).
        transaction_id: String,
        id_token: Option<String>,
        location: Location,
        meter_start_wh: Option<i64>,
        /// The remote-start id this transaction answers, when the charger reports one.
        remote_start_id: Option<i64>,
    },
    TransactionUpdated {
        transaction_id: String,
        location: Location,
        trigger: Option<String>,
    },
    TransactionEnded {
        transaction_id: String,
        id_token: Option<String>,
        location: Location,
        meter_stop_wh: Option<i64>,
        stop_reason: Option<String>,
    },
    /// One summary per transaction at a cadence (and at every transaction event), never one
    /// message per sampled value.
    MeterSummary {
        transaction_id: String,
        location: Location,
        energy_wh: Option<i64>,
        #[serde(default, deserialize_with = "float::option")]
        power_w: Option<f64>,
        #[serde(default, deserialize_with = "float::option")]
        soc_percent: Option<f64>,
        #[serde(default, deserialize_with = "float::option")]
        current_a: Option<f64>,
        at: DateTime<Utc>,
    },
    ReservationStatus {
        reservation_id: i64,
        status: String,
    },
    SecurityEvent {
        kind: String,
        tech_info: Option<String>,
    },
    Fault {
        location: Location,
        error_code: String,
        info: Option<String>,
    },
    /// An event type this version does not know; consumers skip it.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// The event's kind as used in topics (`{prefix}/v1/events/{station}/{kind}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StationOnline { .. } => "stationOnline",
            Self::StationOffline { .. } => "stationOffline",
            Self::Booted { .. } => "booted",
            Self::ConnectorStatus { .. } => "connectorStatus",
            Self::TransactionStarted { .. } => "transactionStarted",
            Self::TransactionUpdated { .. } => "transactionUpdated",
            Self::TransactionEnded { .. } => "transactionEnded",
            Self::MeterSummary { .. } => "meterSummary",
            Self::ReservationStatus { .. } => "reservationStatus",
            Self::SecurityEvent { .. } => "securityEvent",
            Self::Fault { .. } => "fault",
            Self::Unknown => "unknown",
        }
    }
}

/// Floats inside the internally tagged enums.
///
/// serde buffers an internally tagged variant before reading its fields, and with serde_json's
/// `arbitrary_precision` feature (which `rust_decimal` turns on for every crate of a workspace
/// that uses it) a buffered non-integer number is a map, not a float: a plain `Option<f64>`
/// field then fails to deserialize. Reading it through `serde_json::Value` works either way.
mod float {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("expected a number, got {value}"))),
        }
    }
}

/// A command to one station, with the id its reply carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandEnvelope {
    pub command_id: String,
    pub station_id: StationId,
    pub issued_at: DateTime<Utc>,
    /// After this instant the command is stale and must not reach the charger.
    pub expires_at: DateTime<Utc>,
    pub schema_version: u32,
    pub command: Command,
}

/// Availability a ChangeAvailability command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    Operative,
    Inoperative,
}

/// How a Reset should happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetKind {
    /// 1.6 Soft, 2.0.1 OnIdle.
    Soft,
    /// 1.6 Hard, 2.0.1 Immediate.
    Hard,
}

/// The version-neutral commands. Ids (reservation, remote start) are inputs chosen by the
/// caller, never derived from the clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Command {
    RemoteStart {
        remote_start_id: i64,
        id_token: String,
        location: Location,
    },
    RemoteStop {
        transaction_id: String,
    },
    ReserveNow {
        reservation_id: i64,
        id_token: String,
        location: Location,
        expires_at: DateTime<Utc>,
    },
    CancelReservation {
        reservation_id: i64,
    },
    ChangeAvailability {
        location: Location,
        availability: Availability,
    },
    Reset {
        kind: ResetKind,
    },
    UnlockConnector {
        location: Location,
    },
    TriggerMessage {
        message: String,
        location: Location,
    },
    /// Any other OCPP action, passed through as JSON in the station's own version.
    Call {
        action: String,
        payload: serde_json::Value,
    },
    /// Makes `id_token` valid at this station only, from `valid_from` until `valid_until`
    /// (a booking's window). The central system answers it itself, with no call to the
    /// charger; it is routed like every command (to the node holding the station's socket), so
    /// an offline station answers `Offline` or times out and the sender retries. Answered
    /// `Accepted`, or `Rejected` when the token exists without a station scope (a token the
    /// operator registered is never narrowed by a booking).
    AuthorizeToken {
        id_token: String,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    },
    /// Withdraws a token [`Command::AuthorizeToken`] granted at this station; `Accepted` also
    /// when there was none (a revocation is retried until it is answered).
    RevokeToken {
        id_token: String,
    },
}

/// What a station answered, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum CommandReply {
    /// The charger answered with a status (`Accepted`, `Rejected`, `Occupied`, ...), and for a
    /// generic call its full payload.
    Status {
        status: String,
        payload: Option<serde_json::Value>,
    },
    /// The station is not connected to the node that got the command.
    Offline,
    /// The charger did not answer in time.
    Timeout,
    /// The charger answered with a CALLERROR.
    CallError { code: String, description: Option<String> },
    /// The command could not be translated for this station (e.g. a 2.0.1-only field on 1.6).
    Invalid { reason: String },
    #[serde(other)]
    Unknown,
}

/// The reply envelope: which command it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyEnvelope {
    pub command_id: String,
    pub reply: CommandReply,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn station() -> StationId {
        StationId::parse("CP+1").expect("valid id")
    }

    #[test]
    fn events_round_trip_as_camel_case_tagged_json() {
        let env = EventEnvelope::new(
            station(),
            Utc::now(),
            Event::MeterSummary {
                transaction_id: "42".into(),
                location: Location {
                    evse_id: Some(1),
                    connector_id: Some(1),
                },
                energy_wh: Some(1234),
                power_w: Some(7200.0),
                soc_percent: None,
                current_a: Some(31.3),
                at: Utc::now(),
            },
        );
        let json = serde_json::to_value(&env).expect("serializes");
        assert_eq!(json["event"]["type"], "meterSummary");
        assert_eq!(json["event"]["energyWh"], 1234);
        assert_eq!(json["stationId"], "CP+1");
        assert_eq!(json["schemaVersion"], SCHEMA_VERSION);
        let back: EventEnvelope = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, env);
    }

    #[test]
    fn unknown_event_types_and_fields_are_tolerated() {
        let raw = json!({
            "eventId": "e1", "stationId": "CP1", "occurredAt": "2026-01-01T00:00:00Z",
            "schemaVersion": 9, "newTopLevel": true,
            "event": {"type": "somethingNew", "x": 1}
        });
        let env: EventEnvelope = serde_json::from_value(raw).expect("tolerated");
        assert_eq!(env.event, Event::Unknown);
        let raw = json!({
            "eventId": "e2", "stationId": "CP1", "occurredAt": "2026-01-01T00:00:00Z",
            "schemaVersion": 2,
            "event": {"type": "stationOffline", "reason": null, "futureField": [1]}
        });
        let env: EventEnvelope = serde_json::from_value(raw).expect("tolerated");
        assert_eq!(env.event, Event::StationOffline { reason: None });
    }

    #[test]
    fn envelope_with_an_invalid_station_id_is_refused() {
        let raw = json!({
            "eventId": "e1", "stationId": "a/b", "occurredAt": "2026-01-01T00:00:00Z",
            "schemaVersion": 1, "event": {"type": "stationOffline", "reason": null}
        });
        assert!(serde_json::from_value::<EventEnvelope>(raw).is_err());
    }

    #[test]
    fn every_command_round_trips() {
        let loc = Location {
            evse_id: Some(1),
            connector_id: Some(2),
        };
        let commands = vec![
            Command::RemoteStart {
                remote_start_id: 7,
                id_token: "TOK".into(),
                location: loc,
            },
            Command::RemoteStop {
                transaction_id: "t".into(),
            },
            Command::ReserveNow {
                reservation_id: 3,
                id_token: "TOK".into(),
                location: loc,
                expires_at: Utc::now(),
            },
            Command::CancelReservation { reservation_id: 3 },
            Command::ChangeAvailability {
                location: loc,
                availability: Availability::Inoperative,
            },
            Command::Reset { kind: ResetKind::Hard },
            Command::UnlockConnector { location: loc },
            Command::TriggerMessage {
                message: "StatusNotification".into(),
                location: loc,
            },
            Command::Call {
                action: "DataTransfer".into(),
                payload: json!({"vendorId": "x"}),
            },
            Command::AuthorizeToken {
                id_token: "TOK".into(),
                valid_from: Utc::now(),
                valid_until: Utc::now(),
            },
            Command::RevokeToken { id_token: "TOK".into() },
        ];
        for command in commands {
            let env = CommandEnvelope {
                command_id: "c1".into(),
                station_id: station(),
                issued_at: Utc::now(),
                expires_at: Utc::now(),
                schema_version: SCHEMA_VERSION,
                command,
            };
            let text = serde_json::to_string(&env).expect("serializes");
            assert_eq!(
                serde_json::from_str::<CommandEnvelope>(&text).expect("deserializes"),
                env
            );
        }
        let v = serde_json::to_value(Command::CancelReservation { reservation_id: 3 }).expect("ser");
        assert_eq!(v, json!({"type": "cancelReservation", "reservationId": 3}));
        let v = serde_json::to_value(Command::RevokeToken { id_token: "T".into() }).expect("ser");
        assert_eq!(v, json!({"type": "revokeToken", "idToken": "T"}));
    }

    #[test]
    fn replies_round_trip_and_unknown_replies_are_tolerated() {
        for reply in [
            CommandReply::Status {
                status: "Accepted".into(),
                payload: None,
            },
            CommandReply::Offline,
            CommandReply::Timeout,
            CommandReply::CallError {
                code: "NotSupported".into(),
                description: None,
            },
            CommandReply::Invalid {
                reason: "no evse".into(),
            },
        ] {
            let env = ReplyEnvelope {
                command_id: "c".into(),
                reply,
            };
            let text = serde_json::to_string(&env).expect("serializes");
            assert_eq!(serde_json::from_str::<ReplyEnvelope>(&text).expect("deserializes"), env);
        }
        let r: CommandReply = serde_json::from_value(json!({"type": "later"})).expect("tolerated");
        assert_eq!(r, CommandReply::Unknown);
    }
}

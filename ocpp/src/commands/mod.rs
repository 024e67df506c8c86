//! The version-neutral commands the central system sends to stations, whoever asks (the
//! operator REST API or the bus).
//!
//! ## Layout
//! - this module: the typed [`Command`] and its parts ([`Token`], [`Location`], ...);
//! - [`to_v16`] / [`to_v201`]: the only places a command becomes an OCPP action and payload
//!   (the mirror of `model::from_v16` / `model::from_v201` for the other direction);
//! - [`answer`]: the only place a station's CALLRESULT is read back into a neutral [`Answer`].
//!
//! Ids a station correlates later (the reservation id, the 2.0.1 remote-start id) are fields of
//! the command, chosen by the caller: they are never derived from the clock, so two commands in
//! the same millisecond, or on two nodes, cannot collide by accident.

pub mod answer;
pub mod to_v16;
pub mod to_v201;

pub use answer::{Answer, AnswerError, Status};

use crate::Version;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A command to one station, in no particular OCPP version.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// 1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction.
    RemoteStart(RemoteStart),
    /// 1.6 RemoteStopTransaction / 2.0.1 RequestStopTransaction.
    RemoteStop {
        /// The transaction id the station knows: 1.6 the integer the central system gave it in
        /// StartTransaction.conf, 2.0.1 the station's own `transactionId`.
        station_transaction_id: String,
    },
    /// ReserveNow in both versions.
    ReserveNow(ReserveNow),
    /// CancelReservation in both versions.
    CancelReservation {
        /// The id the reservation was made with.
        reservation_id: i32,
    },
    /// ChangeAvailability in both versions; no location means the whole station.
    ChangeAvailability {
        /// Which EVSE/connector (1.6: `evse_id` is the connector id).
        location: Location,
        /// Operative or Inoperative.
        availability: Availability,
    },
    /// Reset in both versions.
    Reset {
        /// Soft (2.0.1 OnIdle) or Hard (2.0.1 Immediate).
        kind: ResetKind,
        /// 2.0.1 only: reset one EVSE; ignored for 1.6, which resets the whole station.
        evse_id: Option<u32>,
    },
    /// UnlockConnector in both versions.
    UnlockConnector {
        /// 1.6: the connector id; 2.0.1: the EVSE id.
        evse_id: u32,
        /// 2.0.1 connector on the EVSE (1 when not given); ignored for 1.6.
        connector_id: Option<u32>,
    },
    /// TriggerMessage in both versions.
    TriggerMessage {
        /// The message to trigger, as the station's version names it (`StatusNotification`,
        /// `Heartbeat`, ...); the schema check refuses a name the version does not have.
        message: String,
        /// Where (1.6: `evse_id` is the connector id).
        location: Location,
    },
    /// Any other central-system action, already in the station's own version.
    Call {
        /// The OCPP action.
        action: String,
        /// Its payload.
        payload: Value,
    },
}

/// Remote start of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteStart {
    /// 2.0.1 `remoteStartId`, which the station echoes in its TransactionEvent (1.6 has none).
    pub remote_start_id: i32,
    /// Who the transaction is for.
    pub id_token: Token,
    /// 1.6: the connector id; 2.0.1: the EVSE id. None lets the station choose.
    pub evse_id: Option<u32>,
}

/// A reservation of a connector (or of the station, without an EVSE) for a token.
#[derive(Debug, Clone, PartialEq)]
pub struct ReserveNow {
    /// The reservation id, chosen by the caller.
    pub reservation_id: i32,
    /// Who the reservation is for.
    pub id_token: Token,
    /// 1.6: the connector id (0 when not given: any connector); 2.0.1: the EVSE id.
    pub evse_id: Option<u32>,
    /// When the station drops the reservation.
    pub expires_at: DateTime<Utc>,
}

/// An id token as it goes out: its value and its 2.0.1 `IdTokenEnumType` (1.6 sends the value
/// only, as `idTag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token value.
    pub value: String,
    /// The 2.0.1 token type.
    pub kind: TokenKind,
}

/// A 2.0.1 `IdTokenEnumType`, valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKind(&'static str);

/// A string that is no `IdTokenEnumType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IdTokenEnumType (one of {kinds})", kinds = crate::model::IdToken::V201_KINDS.join(", "))]
pub struct InvalidTokenKind(pub String);

impl TokenKind {
    /// The type of an id the central system made up or has never seen: the spec's `Central`.
    pub const CENTRAL: TokenKind = TokenKind("Central");

    /// Parses one of the 2.0.1 `IdTokenEnumType` names.
    pub fn parse(kind: &str) -> Result<TokenKind, InvalidTokenKind> {
        crate::model::IdToken::V201_KINDS
            .iter()
            .find(|k| **k == kind)
            .map(|k| TokenKind(k))
            .ok_or_else(|| InvalidTokenKind(kind.to_string()))
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Where on a station: 1.6 stations know connector ids only (carried in `evse_id`); 2.0.1
/// stations an EVSE and, optionally, a connector on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1.6: the connector id; 2.0.1: the EVSE id. None: the whole station.
    pub evse_id: Option<u32>,
    /// 2.0.1 connector on the EVSE; ignored for 1.6.
    pub connector_id: Option<u32>,
}

/// What ChangeAvailability asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Available for charging.
    Operative,
    /// Out of service.
    Inoperative,
}

impl Availability {
    /// The wire name (the same in both versions).
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Operative => "Operative",
            Availability::Inoperative => "Inoperative",
        }
    }
}

/// How a Reset should happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// 1.6 Soft, 2.0.1 OnIdle: after the ongoing transactions.
    Soft,
    /// 1.6 Hard, 2.0.1 Immediate.
    Hard,
}

/// An OCPP action and its payload, ready for [`crate::schema::validate`] and the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The action.
    pub action: String,
    /// The payload.
    pub payload: Value,
}

/// A command that cannot be expressed in the station's version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// 1.6 transaction ids are integers.
    #[error("OCPP 1.6 transaction ids are integers, not {0:?}")]
    NotAnIntegerTransactionId(String),
}

impl Command {
    /// The action and payload of this command for a station speaking `version`.
    pub fn request(&self, version: Version) -> Result<Request, TranslateError> {
        match version {
            Version::V16 => to_v16::request(self),
            Version::V201 => to_v201::request(self),
        }
    }

    /// Reads the station's CALLRESULT payload to this command (see [`answer`]).
    pub fn read_answer(&self, payload: Value) -> Result<Answer, AnswerError> {
        answer::read(self, payload)
    }

    /// Whether the station must answer with a `status` (every typed command; a generic call
    /// may or may not have one).
    pub fn is_typed(&self) -> bool {
        !matches!(self, Command::Call { .. })
    }
}

/// The map of a `json!({...})` literal, to add optional fields to.
fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Adds `key` when there is a value: OCPP schemas refuse `null` for optional fields.
fn insert(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

#[cfg(test)]
mod tests;

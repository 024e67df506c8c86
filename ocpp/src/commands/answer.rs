//! Reading a station's answer to a command: the one place that interprets CALLRESULTs.
//!
//! Both versions answer every typed command with a `status` (1.6 and 2.0.1 use the same names
//! where they overlap); 2.0.1 may add a `statusInfo`, and RequestStartTransaction the id of a
//! transaction that was already running. The payload has passed the response schema before it
//! gets here, so an unknown status can only come from a generic call.

use super::Command;
use serde_json::Value;
use std::fmt;

/// The status a station answered, as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The station will do it (or did).
    Accepted,
    /// The station will not.
    Rejected,
    /// Will happen later (Reset, ChangeAvailability during a transaction).
    Scheduled,
    /// ReserveNow: the connector is in use.
    Occupied,
    /// ReserveNow: the connector is faulted.
    Faulted,
    /// ReserveNow: the connector is unavailable.
    Unavailable,
    /// UnlockConnector succeeded.
    Unlocked,
    /// UnlockConnector failed.
    UnlockFailed,
    /// 2.0.1 UnlockConnector: a transaction with an authorized user holds the connector.
    OngoingAuthorizedTransaction,
    /// 2.0.1 UnlockConnector: no such connector.
    UnknownConnector,
    /// 1.6 UnlockConnector: the station cannot unlock.
    NotSupported,
    /// TriggerMessage: the station cannot send that message.
    NotImplemented,
    /// Anything else (only generic calls get here).
    Other(String),
}

impl Status {
    /// Reads a wire status.
    pub fn parse(s: &str) -> Status {
        match s {
            "Accepted" => Status::Accepted,
            "Rejected" => Status::Rejected,
            "Scheduled" => Status::Scheduled,
            "Occupied" => Status::Occupied,
            "Faulted" => Status::Faulted,
            "Unavailable" => Status::Unavailable,
            "Unlocked" => Status::Unlocked,
            "UnlockFailed" => Status::UnlockFailed,
            "OngoingAuthorizedTransaction" => Status::OngoingAuthorizedTransaction,
            "UnknownConnector" => Status::UnknownConnector,
            "NotSupported" => Status::NotSupported,
            "NotImplemented" => Status::NotImplemented,
            other => Status::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Accepted => "Accepted",
            Status::Rejected => "Rejected",
            Status::Scheduled => "Scheduled",
            Status::Occupied => "Occupied",
            Status::Faulted => "Faulted",
            Status::Unavailable => "Unavailable",
            Status::Unlocked => "Unlocked",
            Status::UnlockFailed => "UnlockFailed",
            Status::OngoingAuthorizedTransaction => "OngoingAuthorizedTransaction",
            Status::UnknownConnector => "UnknownConnector",
            Status::NotSupported => "NotSupported",
            Status::NotImplemented => "NotImplemented",
            Status::Other(s) => s,
        }
    }

    /// Whether the station agreed (now or later).
    pub fn is_success(&self) -> bool {
        matches!(self, Status::Accepted | Status::Scheduled | Status::Unlocked)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A station's answer, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status; always present for typed commands, present for a generic call when its
    /// answer has a string `status`.
    pub status: Option<Status>,
    /// 2.0.1 `statusInfo.reasonCode`, when the station gave one.
    pub reason: Option<String>,
    /// 2.0.1 RequestStartTransaction: the transaction already running for the token.
    pub transaction_id: Option<String>,
    /// The full CALLRESULT payload.
    pub payload: Value,
}

/// An answer a typed command cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A typed command's answer without a string `status`.
    #[error("the answer has no status")]
    MissingStatus,
}

/// Reads `payload`, the station's CALLRESULT to `command`.
pub fn read(command: &Command, payload: Value) -> Result<Answer, AnswerError> {
    let status = payload.get("status").and_then(Value::as_str).map(Status::parse);
    if status.is_none() && command.is_typed() {
        return Err(AnswerError::MissingStatus);
    }
    let reason = payload
        .pointer("/statusInfo/reasonCode")
        .and_then(Value::as_str)
        .map(str::to_string);
    let transaction_id = match command {
        Command::RemoteStart(_) => payload.get("transactionId").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    Ok(Answer {
        status,
        reason,
        transaction_id,
        payload,
    })
}

//! CALLERROR codes of both versions and the version-neutral faults that map onto them.
//!
//! The rest of the system reasons about *what went wrong* ([`Fault`]); only the wire layer
//! decides how a version spells it, because 1.6 and 2.0.1 disagree (1.6 writes
//! `OccurenceConstraintViolation` and `FormationViolation`, 2.0.1 `OccurrenceConstraintViolation`
//! and `FormatViolation`, and only 2.0.1 has `RpcFrameworkError` and `MessageTypeNotSupported`).

use crate::Version;
use std::fmt;

/// What went wrong with an inbound message, independent of the protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The text is not an RPC frame at all: not JSON, not an array, no readable message id.
    NotRpc,
    /// A message type number that is not 2, 3 or 4.
    UnknownMessageType,
    /// A CALL whose array lacks elements (e.g. no payload).
    IncompleteFrame,
    /// The payload is syntactically wrong for the action (not an object, unknown property).
    Formation,
    /// A field holds a value outside its allowed set or range.
    PropertyConstraint,
    /// A required field is missing or an array has too few/many items.
    OccurrenceConstraint,
    /// A field has the wrong JSON type (or a malformed date-time).
    TypeConstraint,
    /// The action is unknown to this receiver.
    NotImplemented,
    /// The action is known but not accepted in this direction or state.
    NotSupported,
    /// The receiver failed internally (e.g. storage unavailable).
    Internal,
    /// The sender is not allowed to send this now (e.g. before its boot was accepted).
    Security,
    /// Anything else (e.g. a frame over the configured size limit).
    Generic,
}

impl Fault {
    /// Every fault, for table-driven tests.
    pub const ALL: [Fault; 12] = [
        Fault::NotRpc,
        Fault::UnknownMessageType,
        Fault::IncompleteFrame,
        Fault::Formation,
        Fault::PropertyConstraint,
        Fault::OccurrenceConstraint,
        Fault::TypeConstraint,
        Fault::NotImplemented,
        Fault::NotSupported,
        Fault::Internal,
        Fault::Security,
        Fault::Generic,
    ];

    /// The CALLERROR code this fault is reported with in `version`.
    pub fn code(self, version: Version) -> ErrorCode {
        use ErrorCode as E;
        match (self, version) {
            (Fault::NotRpc, Version::V16) => E::FormationViolation,
            (Fault::NotRpc, Version::V201) => E::RpcFrameworkError,
            (Fault::UnknownMessageType, Version::V16) => E::ProtocolError,
            (Fault::UnknownMessageType, Version::V201) => E::MessageTypeNotSupported,
            (Fault::IncompleteFrame, _) => E::ProtocolError,
            (Fault::Formation, Version::V16) => E::FormationViolation,
            (Fault::Formation, Version::V201) => E::FormatViolation,
            (Fault::PropertyConstraint, _) => E::PropertyConstraintViolation,
            (Fault::OccurrenceConstraint, _) => E::OccurrenceConstraintViolation,
            (Fault::TypeConstraint, _) => E::TypeConstraintViolation,
            (Fault::NotImplemented, _) => E::NotImplemented,
            (Fault::NotSupported, _) => E::NotSupported,
            (Fault::Internal, _) => E::InternalError,
            (Fault::Security, _) => E::SecurityError,
            (Fault::Generic, _) => E::GenericError,
        }
    }
}

/// A CALLERROR code as the specifications define it (the union of both versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Requested action is not known by the receiver.
    NotImplemented,
    /// Requested action is recognised but not supported.
    NotSupported,
    /// An internal error occurred.
    InternalError,
    /// Payload for the action is incomplete.
    ProtocolError,
    /// A security issue prevented the receiver from completing the action.
    SecurityError,
    /// 1.6: payload syntactically incorrect or not conform the PDU structure.
    FormationViolation,
    /// 2.0.1: payload syntactically incorrect.
    FormatViolation,
    /// A field contains an invalid value.
    PropertyConstraintViolation,
    /// A field violates occurrence constraints (spelled per version on the wire).
    OccurrenceConstraintViolation,
    /// A field violates data type constraints.
    TypeConstraintViolation,
    /// Any other error.
    GenericError,
    /// 2.0.1: the message type number is not supported.
    MessageTypeNotSupported,
    /// 2.0.1: the content is not a valid RPC request.
    RpcFrameworkError,
}

impl ErrorCode {
    /// The code as written on the wire for `version`.
    pub fn as_str(self, version: Version) -> &'static str {
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::FormatViolation => "FormatViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::OccurrenceConstraintViolation => match version {
                Version::V16 => "OccurenceConstraintViolation",
                Version::V201 => "OccurrenceConstraintViolation",
            },
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::GenericError => "GenericError",
            ErrorCode::MessageTypeNotSupported => "MessageTypeNotSupported",
            ErrorCode::RpcFrameworkError => "RpcFrameworkError",
        }
    }

    /// Parses a code as a peer of `version` writes it; unknown codes give `None`.
    pub fn parse(code: &str, version: Version) -> Option<ErrorCode> {
        Self::codes(version).iter().copied().find(|c| c.as_str(version) == code)
    }

    /// The codes `version` defines, as listed in its specification.
    pub fn codes(version: Version) -> &'static [ErrorCode] {
        use ErrorCode as E;
        match version {
            Version::V16 => &[
                E::NotImplemented,
                E::NotSupported,
                E::InternalError,
                E::ProtocolError,
                E::SecurityError,
                E::FormationViolation,
                E::PropertyConstraintViolation,
                E::OccurrenceConstraintViolation,
                E::TypeConstraintViolation,
                E::GenericError,
            ],
            Version::V201 => &[
                E::FormatViolation,
                E::GenericError,
                E::InternalError,
                E::MessageTypeNotSupported,
                E::NotImplemented,
                E::NotSupported,
                E::OccurrenceConstraintViolation,
                E::PropertyConstraintViolation,
                E::ProtocolError,
                E::RpcFrameworkError,
                E::SecurityError,
                E::TypeConstraintViolation,
            ],
        }
    }
}

/// A fault with a human-readable explanation, ready to become a CALLERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What went wrong.
    pub fault: Fault,
    /// Why, for the charger's logs (kept short).
    pub description: String,
}

impl Violation {
    /// Creates a violation.
    pub fn new(fault: Fault, description: impl Into<String>) -> Self {
        Violation {
            fault,
            description: description.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.fault, self.description)
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_each_version_is_reachable_from_a_fault() {
        for version in [Version::V16, Version::V201] {
            for code in ErrorCode::codes(version) {
                assert!(
                    Fault::ALL.iter().any(|f| f.code(version) == *code),
                    "{code:?} unreachable in {version}"
                );
            }
            for fault in Fault::ALL {
                assert!(
                    ErrorCode::codes(version).contains(&fault.code(version)),
                    "{fault:?} maps outside {version}'s codes"
                );
            }
        }
    }

    #[test]
    fn spellings_follow_each_version() {
        let table = [
            (
                ErrorCode::OccurrenceConstraintViolation,
                Version::V16,
                "OccurenceConstraintViolation",
            ),
            (
                ErrorCode::OccurrenceConstraintViolation,
                Version::V201,
                "OccurrenceConstraintViolation",
            ),
            (ErrorCode::FormationViolation, Version::V16, "FormationViolation"),
            (ErrorCode::FormatViolation, Version::V201, "FormatViolation"),
        ];
        for (code, version, text) in table {
            assert_eq!(code.as_str(version), text);
            assert_eq!(ErrorCode::parse(text, version), Some(code));
        }
        assert_eq!(ErrorCode::parse("RpcFrameworkError", Version::V16), None);
    }
}

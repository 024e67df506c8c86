//! OCPP protocol versions and their WebSocket subprotocol names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An OCPP-J protocol version this project speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Version {
    /// OCPP 1.6J (with the 1.6 security extension).
    #[serde(rename = "1.6")]
    V16,
    /// OCPP 2.0.1.
    #[serde(rename = "2.0.1")]
    V201,
}

impl Version {
    /// All versions, most preferred first (2.0.1 wins a negotiation).
    pub const PREFERENCE: [Version; 2] = [Version::V201, Version::V16];

    /// The WebSocket subprotocol token (`ocpp1.6`, `ocpp2.0.1`).
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }

    /// Parses a subprotocol token as offered in `Sec-WebSocket-Protocol`.
    pub fn from_subprotocol(token: &str) -> Option<Version> {
        match token.trim() {
            "ocpp1.6" => Some(Version::V16),
            "ocpp2.0.1" => Some(Version::V201),
            _ => None,
        }
    }

    /// Picks the preferred version among the tokens a charger offered.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Version> {
        let offered: Vec<Version> = offered.into_iter().filter_map(Version::from_subprotocol).collect();
        Version::PREFERENCE.into_iter().find(|v| offered.contains(v))
    }

    /// The short label used in storage and the REST API (`1.6`, `2.0.1`).
    pub fn label(self) -> &'static str {
        match self {
            Version::V16 => "1.6",
            Version::V201 => "2.0.1",
        }
    }

    /// Parses the short label (`1.6`, `2.0.1`).
    pub fn from_label(label: &str) -> Option<Version> {
        match label {
            "1.6" => Some(Version::V16),
            "2.0.1" => Some(Version::V201),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_201_and_ignores_unknown() {
        assert_eq!(Version::negotiate(["ocpp1.6", "ocpp2.0.1"]), Some(Version::V201));
        assert_eq!(Version::negotiate(["ocpp1.6", "x"]), Some(Version::V16));
        assert_eq!(Version::negotiate(["ocpp2.0", "ocpp1.5"]), None);
        assert_eq!(Version::negotiate([]), None);
    }
}

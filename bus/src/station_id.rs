//! The one station id type both services share, and its topic-safe encoding.
//!
//! The rule is the central system's (`central-system/src/ocpp_ws/upgrade.rs`): 1 to 48
//! characters from RFC 3986's unreserved set plus the few OCPP 2.0.1 allows
//! (`A-Za-z0-9-._~*=:+|@`).
//!
//! # Topic encoding
//! MQTT gives `+`, `#` and `/` a meaning in topics; of these only `+` is a legal station-id
//! character. [`StationId::topic_level`] writes `+` as `%2B`. The id alphabet has no `%`, so the
//! encoding is reversible without escaping `%` itself; [`StationId::from_topic_level`] undoes it
//! and validates the result.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest station id (OCPP 2.0.1 limits the identity to 48 characters).
pub const MAX_STATION_ID_LEN: usize = 48;

/// A validated station id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StationId(String);

/// Why a string is not a station id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("station id must be 1-{MAX_STATION_ID_LEN} characters from A-Za-z0-9-._~*=:+|@")]
pub struct InvalidStationId;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~*=:+|@".contains(c)
}

impl StationId {
    /// Validates `raw` against the one station-id rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidStationId> {
        if raw.is_empty() || raw.len() > MAX_STATION_ID_LEN || !raw.chars().all(allowed) {
            return Err(InvalidStationId);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one MQTT topic level: never contains `+`, `#`, `/` or NUL.
    pub fn topic_level(&self) -> String {
        self.0.replace('+', "%2B")
    }

    /// Reverses [`StationId::topic_level`]; anything it could not have produced is refused.
    pub fn from_topic_level(level: &str) -> Result<Self, InvalidStationId> {
        let decoded = level.replace("%2B", "+");
        if decoded.contains('%') {
            return Err(InvalidStationId);
        }
        Self::parse(&decoded)
    }
}

impl fmt::Display for StationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StationId {
    type Err = InvalidStationId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for StationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for StationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const ALPHABET: &[u8] = b"ABCXYZabcxyz0189-._~*=:+|@";

    #[test]
    fn accepts_the_central_system_alphabet_and_refuses_the_rest() {
        assert!(StationId::parse("CP-1").is_ok());
        assert!(StationId::parse("a.b_c~d*e=f:g+h|i@j").is_ok());
        assert!(StationId::parse(&"x".repeat(48)).is_ok());
        for bad in ["", "a/b", "a#b", "a b", "a%2B", "é", "a\0b", "NO?"] {
            assert!(StationId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(StationId::parse(&"x".repeat(49)).is_err());
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        let ok: StationId = serde_json::from_str("\"CP+1\"").expect("valid id");
        assert_eq!(serde_json::to_string(&ok).expect("serializes"), "\"CP+1\"");
        assert!(serde_json::from_str::<StationId>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<StationId>("\"\"").is_err());
    }

    #[test]
    fn topic_level_round_trips_and_is_topic_safe() {
        // A seeded generator: a property test over 20,000 random ids, reproducible on failure.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let len = rng.random_range(1..=MAX_STATION_ID_LEN);
            let raw: String = (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            let id = StationId::parse(&raw).expect("generated from the alphabet");
            let level = id.topic_level();
            assert!(!level.contains(['+', '#', '/', '\0']), "{level}");
            assert_eq!(StationId::from_topic_level(&level).as_ref(), Ok(&id));
        }
    }

    #[test]
    fn from_topic_level_refuses_what_encoding_never_produces() {
        assert!(StationId::from_topic_level("a%2Fb").is_err());
        assert!(
            StationId::from_topic_level("a+b").is_ok(),
            "a raw + is still a valid id"
        );
        assert!(StationId::from_topic_level("#").is_err());
    }
}

//! Check-in tokens and connector codes: HMAC-SHA256-signed strings with a key id (kid), so keys
//! can rotate: several keys verify, one signs. Pure functions over a [`Keyring`]; no storage,
//! no clock (callers pass "now").
//!
//! Formats (ASCII, dot-separated, so a QR code stays small and a scanner needs no JSON):
//! - booking token `CK1.{kid}.{bookingId}.{expiresAt}.{nonce}.{mac}`: expiresAt in Unix seconds,
//!   nonce 16 random bytes, mac 32 bytes, both base64url without padding;
//! - connector code `CC1.{kid}.{stationId}.{connectorId}.{mac}`: printed on a connector, it does
//!   not expire (retiring its key retires it).
//!
//! The mac covers everything before it, the type prefix included, so a connector code can never
//! pass as a booking token or the other way round.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const BOOKING_PREFIX: &str = "CK1";
const CONNECTOR_PREFIX: &str = "CC1";

/// Longest token or code accepted for parsing; anything longer is refused before any work.
pub const MAX_LEN: usize = 256;

/// Longest key id.
const MAX_KID_LEN: usize = 32;

/// Why a token or code is refused. Each is a distinct refusal at the HTTP edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this kind at all (shape, length, characters).
    #[error("not a well-formed token")]
    Malformed,
    /// Signed with a key this service does not (or no longer) accept.
    #[error("signed with an unknown key")]
    UnknownKey,
    /// The signature does not match: altered or forged.
    #[error("bad signature")]
    Tampered,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

/// A key-configuration mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("check-in keys: expected `kid:secret[,kid:secret...]`, got an entry without `:`")]
    MissingSeparator,
    #[error("check-in key id {0:?}: 1-32 characters of A-Za-z0-9_-")]
    BadKid(String),
    #[error("check-in key {0:?}: the secret must have at least 16 characters")]
    ShortSecret(String),
    #[error("check-in key id {0:?} is listed twice")]
    DuplicateKid(String),
    #[error("the active check-in key {0:?} is not among the configured keys")]
    UnknownActive(String),
    #[error("no check-in keys")]
    Empty,
}

/// The keys: each verifies, the active one signs. Each key is kept as its keyed HMAC state,
/// cloned per use.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, HmacSha256)>,
    active: usize,
}

// By hand: never print key material.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Keyring")
            .field("kids", &kids)
            .field("active", &self.active_kid())
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Keyring {
    /// A keyring of `keys` (kid, secret) whose `active` kid signs (default: the first).
    pub fn new(keys: Vec<(String, Vec<u8>)>, active: Option<&str>) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (i, (kid, secret)) in keys.iter().enumerate() {
            if !valid_kid(kid) {
                return Err(KeyringError::BadKid(kid.clone()));
            }
            if secret.len() < 16 {
                return Err(KeyringError::ShortSecret(kid.clone()));
            }
            if keys[..i].iter().any(|(k, _)| k == kid) {
                return Err(KeyringError::DuplicateKid(kid.clone()));
            }
        }
        let active = match active {
            None => 0,
            Some(a) => keys
                .iter()
                .position(|(k, _)| k == a)
                .ok_or_else(|| KeyringError::UnknownActive(a.to_string()))?,
        };
        let mut keyed = Vec::with_capacity(keys.len());
        for (kid, secret) in keys {
            // HMAC accepts keys of any length; the error exists for other MACs.
            let mac = HmacSha256::new_from_slice(&secret).map_err(|_| KeyringError::ShortSecret(kid.clone()))?;
            keyed.push((kid, mac));
        }
        Ok(Keyring { keys: keyed, active })
    }

    /// Parses `kid:secret,kid:secret` (the `--checkin-keys` form).
    pub fn parse(spec: &str, active: Option<&str>) -> Result<Keyring, KeyringError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, secret) = entry.split_once(':').ok_or(KeyringError::MissingSeparator)?;
            keys.push((kid.trim().to_string(), secret.trim().as_bytes().to_vec()));
        }
        Keyring::new(keys, active)
    }

    /// The signing key's id.
    pub fn active_kid(&self) -> &str {
        self.keys.get(self.active).map(|(k, _)| k.as_str()).unwrap_or_default()
    }

    fn key(&self, kid: &str) -> Option<&HmacSha256> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, m)| m)
    }

    fn mac(key: &HmacSha256, signed: &str) -> HmacSha256 {
        let mut mac = key.clone();
        mac.update(signed.as_bytes());
        mac
    }

    fn sign(&self, signed: String) -> String {
        // `new` guarantees the active index is in range.
        let Some((_, key)) = self.keys.get(self.active) else {
            return signed;
        };
        let tag = Self::mac(key, &signed).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks `mac` (base64url) over `signed` with key `kid`, in constant time.
    fn verify(&self, kid: &str, signed: &str, mac: &str) -> Result<(), TokenError> {
        let key = self.key(kid).ok_or(TokenError::UnknownKey)?;
        let tag = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Malformed)?;
        if tag.len() != 32 {
            return Err(TokenError::Malformed);
        }
        Self::mac(key, signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Tampered)
    }

    /// A new booking token for `booking_id`, valid until `expires_at` (Unix seconds).
    pub fn issue(&self, booking_id: i64, expires_at: i64) -> String {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        self.sign(format!(
            "{BOOKING_PREFIX}.{}.{booking_id}.{expires_at}.{}",
            self.active_kid(),
            URL_SAFE_NO_PAD.encode(nonce)
        ))
    }

    /// Parses and verifies a booking token: shape, key, signature, then expiry against `now`
    /// (Unix seconds). A token is valid up to and excluding its expiry second.
    pub fn verify_booking(&self, token: &str, now: i64) -> Result<BookingClaim, TokenError> {
        let (signed, mac) = split_mac(token)?;
        let parts: Vec<&str> = signed.split('.').collect();
        let [prefix, kid, booking, expires, nonce] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        if *prefix != BOOKING_PREFIX || !valid_kid(kid) {
            return Err(TokenError::Malformed);
        }
        let booking_id = positive(booking)?;
        let expires_at = positive(expires)?;
        if URL_SAFE_NO_PAD.decode(nonce).map(|n| n.len()) != Ok(16) {
            return Err(TokenError::Malformed);
        }
        self.verify(kid, signed, mac)?;
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(BookingClaim {
            kid: (*kid).to_string(),
            booking_id,
            expires_at,
        })
    }

    /// The code printed on connector `connector_id` of station `station_id`.
    pub fn connector_code(&self, station_id: i64, connector_id: i64) -> String {
        self.sign(format!(
            "{CONNECTOR_PREFIX}.{}.{station_id}.{connector_id}",
            self.active_kid()
        ))
    }

    /// Parses and verifies a connector code.
    pub fn verify_connector(&self, code: &str) -> Result<ConnectorClaim, TokenError> {
        let (signed, mac) = split_mac(code)?;
        let parts: Vec<&str> = signed.split('.').collect();
        let [prefix, kid, station, connector] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        if *prefix != CONNECTOR_PREFIX || !valid_kid(kid) {
            return Err(TokenError::Malformed);
        }
        let station_id = positive(station)?;
        let connector_id = positive(connector)?;
        self.verify(kid, signed, mac)?;
        Ok(ConnectorClaim {
            station_id,
            connector_id,
        })
    }
}

/// What a valid booking token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingClaim {
    pub kid: String,
    pub booking_id: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a valid connector code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorClaim {
    pub station_id: i64,
    pub connector_id: i64,
}

/// Splits `signed.mac` after the length and character checks every format shares.
fn split_mac(token: &str) -> Result<(&str, &str), TokenError> {
    if token.is_empty() || token.len() > MAX_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Malformed);
    }
    token.rsplit_once('.').ok_or(TokenError::Malformed)
}

/// A positive decimal integer of at most 18 digits (so it always fits an i64), no sign, no
/// leading zero: one spelling per number, so a token cannot be re-spelled around its mac.
fn positive(s: &str) -> Result<i64, TokenError> {
    if s.is_empty() || s.len() > 18 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    s.parse().map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring(keys: &[(&str, &str)], active: Option<&str>) -> Keyring {
        Keyring::new(
            keys.iter()
                .map(|(k, s)| (k.to_string(), s.as_bytes().to_vec()))
                .collect(),
            active,
        )
        .unwrap()
    }

    fn one() -> Keyring {
        ring(&[("k1", "first-secret-0123456789")], None)
    }

    #[test]
    fn issued_token_verifies_until_its_expiry() {
        let keys = one();
        let token = keys.issue(42, 1_000);
        assert!(token.starts_with("CK1.k1.42.1000."));
        let claim = keys.verify_booking(&token, 999).unwrap();
        assert_eq!(
            claim,
            BookingClaim {
                kid: "k1".into(),
                booking_id: 42,
                expires_at: 1_000
            }
        );
        assert_eq!(keys.verify_booking(&token, 1_000), Err(TokenError::Expired));
        // Two tokens for one booking differ (random nonce), so each is its own single use.
        assert_ne!(keys.issue(42, 1_000), token);
    }

    #[test]
    fn any_change_is_tampering() {
        let keys = one();
        let token = keys.issue(42, 1_000);
        let other_booking = token.replacen(".42.", ".43.", 1);
        assert_eq!(keys.verify_booking(&other_booking, 0), Err(TokenError::Tampered));
        let later = token.replacen(".1000.", ".9000.", 1);
        assert_eq!(keys.verify_booking(&later, 0), Err(TokenError::Tampered));
        // A flipped character in the mac.
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(keys.verify_booking(&flipped, 0), Err(TokenError::Tampered));
        // Signed with a key of the same id but another secret.
        let forged = ring(&[("k1", "attacker-secret-0123456789")], None).issue(42, 1_000);
        assert_eq!(keys.verify_booking(&forged, 0), Err(TokenError::Tampered));
    }

    #[test]
    fn rotation_verifies_with_every_key_and_signs_with_the_active_one() {
        let old = one();
        let old_token = old.issue(7, 1_000);
        let rotated = ring(
            &[("k1", "first-secret-0123456789"), ("k2", "second-secret-0123456789")],
            Some("k2"),
        );
        assert_eq!(rotated.active_kid(), "k2");
        assert_eq!(rotated.verify_booking(&old_token, 0).unwrap().kid, "k1");
        let new_token = rotated.issue(7, 1_000);
        assert!(new_token.starts_with("CK1.k2."));
        // The old keyring does not know k2; once k1 is retired its tokens stop working.
        assert_eq!(old.verify_booking(&new_token, 0), Err(TokenError::UnknownKey));
        let retired = ring(&[("k2", "second-secret-0123456789")], None);
        assert_eq!(retired.verify_booking(&old_token, 0), Err(TokenError::UnknownKey));
        assert!(retired.verify_booking(&new_token, 0).is_ok());
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let keys = one();
        let huge = "A".repeat(100_000);
        let valid = keys.issue(1, 10);
        for bad in [
            "",
            ".",
            "....",
            huge.as_str(),
            "CK1.k1.1.10.AAAAAAAAAAAAAAAAAAAAAA",
            "CK1.k1.-1.10.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "CK1.k1.01.10.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "CK1.k1.99999999999999999999.10.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "CK1.k 1.1.10.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "CK1.k1.1.10.short.AAAA",
            "CK1.k1.1.10.AAAAAAAAAAAAAAAAAAAAAA.not-32-bytes",
            "CK2.k1.1.10.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "CK1.k1.1.10.é.AAAA",
        ] {
            assert_eq!(keys.verify_booking(bad, 0), Err(TokenError::Malformed), "{bad:.40}");
            assert_eq!(keys.verify_connector(bad), Err(TokenError::Malformed), "{bad:.40}");
        }
        assert_eq!(
            keys.verify_booking(&format!("{valid}.x"), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn connector_codes_verify_and_never_pass_as_booking_tokens() {
        let keys = one();
        let code = keys.connector_code(3, 2);
        assert!(code.starts_with("CC1.k1.3.2."));
        assert_eq!(
            keys.verify_connector(&code).unwrap(),
            ConnectorClaim {
                station_id: 3,
                connector_id: 2
            }
        );
        assert_eq!(
            keys.verify_connector(&code.replacen(".2.", ".1.", 1)),
            Err(TokenError::Tampered)
        );
        assert_eq!(keys.verify_booking(&code, 0), Err(TokenError::Malformed));
        assert_eq!(keys.verify_connector(&keys.issue(3, 10)), Err(TokenError::Malformed));
        let unknown = ring(&[("zz", "another-secret-0123456789")], None).connector_code(3, 2);
        assert_eq!(keys.verify_connector(&unknown), Err(TokenError::UnknownKey));
    }

    #[test]
    fn keyring_configuration() {
        let k = Keyring::parse("a:0123456789abcdef, b:fedcba9876543210", Some("b")).unwrap();
        assert_eq!(k.active_kid(), "b");
        assert_eq!(Keyring::parse("a:0123456789abcdef", None).unwrap().active_kid(), "a");
        assert_eq!(Keyring::parse("", None).unwrap_err(), KeyringError::Empty);
        assert_eq!(
            Keyring::parse("a0123456789abcdef", None).unwrap_err(),
            KeyringError::MissingSeparator
        );
        assert_eq!(
            Keyring::parse("a:short", None).unwrap_err(),
            KeyringError::ShortSecret("a".into())
        );
        assert_eq!(
            Keyring::parse("a.b:0123456789abcdef", None).unwrap_err(),
            KeyringError::BadKid("a.b".into())
        );
        assert_eq!(
            Keyring::parse("a:0123456789abcdef,a:0123456789abcdef", None).unwrap_err(),
            KeyringError::DuplicateKid("a".into())
        );
        assert_eq!(
            Keyring::parse("a:0123456789abcdef", Some("c")).unwrap_err(),
            KeyringError::UnknownActive("c".into())
        );
        // Debug shows key ids only.
        let shown = format!("{k:?}");
        assert!(shown.contains("\"a\"") && !shown.contains("0123456789abcdef"));
    }
}

//! HS256 JSON Web Tokens over any claims type (each service defines its own claims).
//!
//! Only HS256 is accepted: the header's `alg` is checked before anything else, so a token
//! claiming `none` or an asymmetric algorithm cannot slip through.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The one claim every token must carry: its expiry (seconds since the epoch).
#[derive(Deserialize)]
struct Expiry {
    exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// Header names another algorithm.
    #[error("unsupported algorithm")]
    Algorithm,
    /// Signature does not match.
    #[error("bad signature")]
    Signature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

/// Signs and verifies tokens with one shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl JwtKeys {
    /// Keys from a secret.
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// Issues a token.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies a token at `now` (seconds since the epoch) and returns its claims.
    pub fn verify<C: DeserializeOwned>(&self, token: &str, now: i64) -> Result<C, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(JwtError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
        let expiry: Expiry = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        if expiry.exp <= now {
            return Err(JwtError::Expired);
        }
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        sub: String,
        role: String,
        exp: i64,
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            role: "operator".into(),
            exp,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims(100));
        assert_eq!(keys.verify::<Claims>(&token, 50).unwrap(), claims(100));
        assert_eq!(keys.verify::<Claims>(&token, 100), Err(JwtError::Expired));
        assert_eq!(
            JwtKeys::new(b"other").verify::<Claims>(&token, 50),
            Err(JwtError::Signature)
        );
        assert_eq!(keys.verify::<Claims>("a.b", 50), Err(JwtError::Malformed));
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(keys.verify::<Claims>(&tampered, 50).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(100)).unwrap())
        );
        assert_eq!(keys.verify::<Claims>(&none, 50), Err(JwtError::Algorithm));
    }
}

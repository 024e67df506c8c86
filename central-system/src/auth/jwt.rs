//! HS256 JSON Web Tokens for the operator API.
//!
//! Only HS256 is accepted: the header's `alg` is checked before anything else, so a token
//! claiming `none` or an asymmetric algorithm cannot slip through.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Operator roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control, including registrations and tokens.
    Admin,
    /// Reads everything and sends commands to stations.
    Operator,
}

/// The claims this service issues and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (who).
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
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
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies a token at `now` (seconds since the epoch) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
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
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        if claims.exp <= now {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            role: Role::Operator,
            iat: 0,
            exp,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims(100));
        assert_eq!(keys.verify(&token, 50).unwrap(), claims(100));
        assert_eq!(keys.verify(&token, 100), Err(JwtError::Expired));
        assert_eq!(JwtKeys::new(b"other").verify(&token, 50), Err(JwtError::Signature));
        assert_eq!(keys.verify("a.b", 50), Err(JwtError::Malformed));
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(keys.verify(&tampered, 50).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(100)).unwrap())
        );
        assert_eq!(keys.verify(&none, 50), Err(JwtError::Algorithm));
    }
}

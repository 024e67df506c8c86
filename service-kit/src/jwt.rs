//! HS256 JSON Web Tokens over any claims type (each service defines its own claims).
//!
//! Only HS256 is accepted: the header's `alg` is checked before anything else, so a token
//! claiming `none` or an asymmetric algorithm cannot slip through.
//!
//! Every token carries an issuer (`iss`) and an audience (`aud`), set from the keys' [`Scope`]
//! when signing and required to match when verifying. Each service has its own scope, so a
//! secret shared between the services by mistake still does not let one service's token open
//! the other's API.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The registered claims every token must carry: its expiry (seconds since the epoch), issuer
/// and audience (a string or a list of strings, RFC 7519 section 4.1.3).
#[derive(Deserialize)]
struct Registered {
    exp: i64,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

/// Who issues a service's tokens and who they are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The `iss` claim written and required.
    pub issuer: &'static str,
    /// The `aud` claim written and required.
    pub audience: &'static str,
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
    /// Issued by someone else (or by no one).
    #[error("wrong issuer")]
    Issuer,
    /// Meant for another service (or for no one).
    #[error("wrong audience")]
    Audience,
}

/// Signs and verifies the tokens of one [`Scope`] with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
    scope: Scope,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtKeys({:?}, ..)", self.scope)
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl JwtKeys {
    /// Keys from a secret, for the tokens of `scope`.
    pub fn new(secret: &[u8], scope: Scope) -> JwtKeys {
        JwtKeys {
            secret: secret.to_vec(),
            scope,
        }
    }

    /// The issuer and audience these keys write and require.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// Issues a token: `claims` (a struct) plus this scope's `iss` and `aud`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let mut body = serde_json::to_value(claims).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.insert("iss".into(), self.scope.issuer.into());
            object.insert("aud".into(), self.scope.audience.into());
        }
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default());
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
        let registered: Registered = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        if registered.exp <= now {
            return Err(JwtError::Expired);
        }
        if registered.iss.as_deref() != Some(self.scope.issuer) {
            return Err(JwtError::Issuer);
        }
        let audience = self.scope.audience;
        let for_us = match &registered.aud {
            Some(serde_json::Value::String(aud)) => aud == audience,
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !for_us {
            return Err(JwtError::Audience);
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

    const SCOPE: Scope = Scope {
        issuer: "issuer-a",
        audience: "api-a",
    };

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            role: "operator".into(),
            exp,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let keys = JwtKeys::new(b"secret", SCOPE);
        let token = keys.sign(&claims(100));
        assert_eq!(keys.verify::<Claims>(&token, 50).unwrap(), claims(100));
        assert_eq!(keys.verify::<Claims>(&token, 100), Err(JwtError::Expired));
        assert_eq!(
            JwtKeys::new(b"other", SCOPE).verify::<Claims>(&token, 50),
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

    /// Signs a raw payload with the right algorithm and secret (what a forger with the secret,
    /// or another service sharing it, could produce).
    fn raw(secret: &[u8], payload: serde_json::Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
        );
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn tokens_carry_and_require_their_issuer_and_audience() {
        let keys = JwtKeys::new(b"shared", SCOPE);
        let other = JwtKeys::new(
            b"shared",
            Scope {
                issuer: "issuer-b",
                audience: "api-b",
            },
        );
        let token = keys.sign(&claims(100));
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(payload["iss"], "issuer-a");
        assert_eq!(payload["aud"], "api-a");
        // Same secret, other service: refused both ways.
        assert_eq!(other.verify::<Claims>(&token, 50), Err(JwtError::Issuer));
        assert_eq!(
            keys.verify::<Claims>(&other.sign(&claims(100)), 50),
            Err(JwtError::Issuer)
        );

        let base = serde_json::json!({"sub": "alice", "role": "operator", "exp": 100});
        let with = |extra: serde_json::Value| {
            let mut p = base.clone();
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            raw(b"shared", p)
        };
        assert_eq!(
            keys.verify::<Claims>(&raw(b"shared", base.clone()), 50),
            Err(JwtError::Issuer)
        );
        assert_eq!(
            keys.verify::<Claims>(&with(serde_json::json!({"iss": "issuer-a"})), 50),
            Err(JwtError::Audience)
        );
        assert_eq!(
            keys.verify::<Claims>(&with(serde_json::json!({"iss": "issuer-a", "aud": "api-b"})), 50),
            Err(JwtError::Audience)
        );
        assert_eq!(
            keys.verify::<Claims>(
                &with(serde_json::json!({"iss": "issuer-a", "aud": ["api-b", "api-a"]})),
                50
            )
            .unwrap(),
            claims(100)
        );
    }
}

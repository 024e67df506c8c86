//! Operator JWTs: the roles and claims of the central system's API, signed HS256 by the shared
//! [`JwtKeys`] under this service's own issuer and audience ([`SCOPE`]), so a booking-API token
//! is refused here even when both services were given the same secret.

use serde::{Deserialize, Serialize};
pub use service_kit::jwt::{JwtError, JwtKeys, Scope};

/// Issuer and audience of operator tokens.
pub const SCOPE: Scope = Scope {
    issuer: "evcs-central-system",
    audience: "evcs-central-system/operator-api",
};

/// The keys of operator tokens signed with `secret`.
pub fn operator_keys(secret: &[u8]) -> JwtKeys {
    JwtKeys::new(secret, SCOPE)
}

/// A signed operator token for `subject` with `role`, valid `ttl_secs` (at least 1) from `now`.
pub fn mint(keys: &JwtKeys, role: Role, subject: &str, now: i64, ttl_secs: i64) -> String {
    keys.sign(&Claims {
        sub: subject.to_string(),
        role,
        iat: now,
        exp: now + ttl_secs.max(1),
    })
}

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

/// `mint-token`: print a signed operator JWT (for bootstrapping API access). Shared by the
/// `central-system` and `evcs` binaries, so both sign with the secret the server would use
/// (`--jwt-secret`, else `DATA_DIR/jwt-secret`).
#[derive(Debug, Clone, clap::Args)]
pub struct MintToken {
    /// Role claim.
    #[arg(long, value_enum, default_value = "admin")]
    pub role: Role,
    /// Subject claim.
    #[arg(long, default_value = "cli")]
    pub subject: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
}

impl MintToken {
    /// The token, signed with the secret `config` resolves to (creating it in the data dir on
    /// first use, exactly as the server would).
    pub fn token(&self, config: &crate::Config) -> anyhow::Result<String> {
        let secret = crate::secrets::jwt_secret(config)?;
        let now = chrono::Utc::now().timestamp();
        Ok(mint(
            &operator_keys(secret.as_bytes()),
            self.role,
            &self.subject,
            now,
            self.ttl,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn operator_claims_round_trip() {
        let keys = operator_keys(b"secret");
        let claims = Claims {
            sub: "alice".into(),
            role: Role::Operator,
            iat: 0,
            exp: 100,
        };
        let token = keys.sign(&claims);
        assert_eq!(keys.verify::<Claims>(&token, 50).unwrap(), claims);
        assert_eq!(keys.verify::<Claims>(&token, 100), Err(JwtError::Expired));
    }
}

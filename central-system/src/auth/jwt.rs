//! Operator JWTs: the roles and claims of the central system's API, signed HS256 by the shared
//! [`JwtKeys`].

use serde::{Deserialize, Serialize};
pub use service_kit::jwt::{JwtError, JwtKeys};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn operator_claims_round_trip() {
        let keys = JwtKeys::new(b"secret");
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

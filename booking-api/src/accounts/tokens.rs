//! Access and refresh tokens.
//!
//! Access tokens are short-lived HS256 JWTs with the role and an operator's station scope.
//! Refresh tokens are random, stored only as SHA-256, and rotated on every use; presenting one
//! that was already used revokes every token of the account (a stolen token is detected the
//! moment both parties use it).

use super::store::{self, Account};
use crate::api::auth::{Claims, Role};
use crate::app::AppState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use service_kit::problem::Problem;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// What login and refresh return.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// Bearer access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// The account's role.
    pub role: Role,
    /// The account id.
    pub account_id: i64,
    /// An operator's station scope.
    pub station_ids: Vec<i64>,
}

/// Hex SHA-256, the stored form of refresh tokens and request fingerprints.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues an access token and a fresh refresh token for `account`.
pub async fn issue(state: &AppState, account: &Account) -> Result<TokenResponse, Problem> {
    let role = account
        .role()
        .ok_or_else(|| Problem::internal("account with an unknown role"))?;
    let stations = if role == Role::Operator {
        store::operator_stations(&state.db, account.id).await?
    } else {
        Vec::new()
    };
    let now = state.clock.now();
    let policy = &state.config.policy;
    let claims = Claims {
        sub: account.id.to_string(),
        role,
        stations: stations.clone(),
        iat: now.timestamp(),
        exp: now.timestamp() + policy.access_token_secs.max(1),
    };
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let refresh = URL_SAFE_NO_PAD.encode(raw);
    let expires = now.timestamp_millis() + policy.refresh_token_days.max(1) * 86_400_000;
    store::insert_refresh(
        &state.db,
        account.id,
        &sha256_hex(refresh.as_bytes()),
        expires,
        now.timestamp_millis(),
    )
    .await?;
    Ok(TokenResponse {
        access_token: state.jwt.sign(&claims),
        token_type: "Bearer",
        expires_in: policy.access_token_secs.max(1),
        refresh_token: refresh,
        role,
        account_id: account.id,
        station_ids: stations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! Access and refresh tokens, and the login rate limit.
//!
//! Access tokens are short-lived HS256 JWTs with the role and an operator's station scope.
//! Refresh tokens are random, stored only as SHA-256, and rotated on every use; presenting one
//! that was already used revokes every token of the account (a stolen token is detected the
//! moment both parties use it).

use super::store::{self, Account};
use crate::api::auth::{Claims, Role};
use crate::app::AppState;
use axum::http::{header, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use service_kit::problem::Problem;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
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

/// Failed logins per identifier in a sliding window. In memory: each replica limits on its own,
/// which bounds guessing to `replicas x max` per window.
#[derive(Debug)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
    max: usize,
    window_ms: i64,
}

impl LoginLimiter {
    /// At most `max` failures per `window_secs`.
    pub fn new(max: usize, window_secs: i64) -> LoginLimiter {
        LoginLimiter {
            failures: Mutex::new(HashMap::new()),
            max: max.max(1),
            window_ms: window_secs.max(1) * 1000,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(seconds to wait)` when `key` has used up its failures.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), i64> {
        let mut map = self.lock();
        let Some(times) = map.get_mut(key) else {
            return Ok(());
        };
        while times.front().is_some_and(|t| *t <= now_ms - self.window_ms) {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now_ms);
            Err(((oldest + self.window_ms - now_ms) / 1000).max(1))
        } else {
            Ok(())
        }
    }

    /// Records a failure.
    pub fn fail(&self, key: &str, now_ms: i64) {
        let mut map = self.lock();
        if map.len() > 100_000 {
            // Keep memory bounded under a spray of identifiers: forget the stale ones.
            let horizon = now_ms - self.window_ms;
            map.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
        }
        map.entry(key.to_string()).or_default().push_back(now_ms);
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The 429 of a rate-limited login.
pub fn rate_limited(retry_after_secs: i64) -> Problem {
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "LOGIN_RATE_LIMITED",
        format!("too many failed logins for this identifier; retry in {retry_after_secs} s"),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string()) {
        p.headers.push((header::RETRY_AFTER, value));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_within_the_window() {
        let l = LoginLimiter::new(3, 60);
        for t in [0, 1_000, 2_000] {
            assert_eq!(l.check("a", t), Ok(()));
            l.fail("a", t);
        }
        assert_eq!(l.check("a", 3_000), Err(57));
        assert_eq!(l.check("b", 3_000), Ok(()));
        // The oldest failure leaves the window.
        assert_eq!(l.check("a", 60_001), Ok(()));
        l.fail("a", 60_001);
        assert!(l.check("a", 60_002).is_err());
        l.clear("a");
        assert_eq!(l.check("a", 60_003), Ok(()));
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

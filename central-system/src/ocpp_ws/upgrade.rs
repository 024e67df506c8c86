//! The WebSocket upgrade at `/ocpp/{stationId}`: station id, subprotocol and authentication.
//!
//! Refusals happen here, before the upgrade, with a plain HTTP status the charger's logs show:
//! 400 for a bad id or no common subprotocol, 401 for missing or wrong credentials, 403 for a
//! client certificate issued to another station, 404 for an unknown station under the
//! `reject` policy, 403 `SECURITY_PROFILE_DOWNGRADE` below the station's security-profile floor
//! (see [`super::security_profile`]), 429 (with Retry-After) when an id that is unknown or not Accepted, or the
//! address it comes from, tries to connect too often, and 503 (with Retry-After) when
//! `--unknown-stations pending` would create more Pending stations than `--pending-limit`, or
//! while the password pool is full.

use super::pending::AttemptKey;
use super::security_profile;
use super::session::{self, SessionInit};
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::auth::basic;
use crate::config::UnknownStations;
use crate::server::{ClientAddr, ConnectionPermit, PeerIdentity};
use crate::store::stations::StationAuth;
use crate::store::types::Ts;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use ocpp::Version;
use service_kit::extract::ApiPath;
use std::sync::Arc;

/// Longest station id (OCPP 2.0.1 limits the identity to 48 characters).
pub const MAX_STATION_ID_LEN: usize = 48;

/// Checks a station id: 1 to 48 characters from RFC 3986's unreserved set plus the few
/// OCPP 2.0.1 allows (`*-_=:+|@.`).
pub fn valid_station_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STATION_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~*=:+|@".contains(c))
}

fn invalid_station_id() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "INVALID_STATION_ID",
        "station id must be 1-48 URL-safe characters",
    )
}

/// Handles `GET /ocpp/{stationId}`.
pub async fn upgrade(
    State(state): State<AppState>,
    // Not UTF-8 (`/ocpp/%FF`): no valid station id either, so the same refusal as below.
    station_id: Result<ApiPath<String>, Problem>,
    peer: Option<Extension<PeerIdentity>>,
    permit: Option<Extension<ConnectionPermit>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Checked first: `prepare` may auto-register an unknown station and verifies passwords,
    // neither of which a request that cannot become a WebSocket should trigger.
    let Ok(ApiPath(station_id)) = station_id else {
        return invalid_station_id().into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return Problem::new(StatusCode::BAD_REQUEST, "NOT_A_WEBSOCKET", rejection.body_text()).into_response();
        }
    };
    let client = client.map(|Extension(ClientAddr(addr))| addr.ip());
    match prepare(&state, &station_id, peer.map(|Extension(p)| p), client, &headers).await {
        Ok((version, registration)) => {
            let init = SessionInit {
                station_id: Arc::from(station_id.as_str()),
                version,
                registration,
            };
            let max_message = state.config.max_frame_bytes.saturating_mul(4).max(1 << 20);
            ws.protocols([version.subprotocol()])
                // Small buffers keep idle chargers cheap (tungstenite's default is 128 KiB each).
                .read_buffer_size(4096)
                .write_buffer_size(4096)
                .max_message_size(max_message)
                .max_frame_size(max_message)
                .on_upgrade(move |socket| async move {
                    // The socket keeps its connection-limit permit, and shutdown waits for it.
                    let _permit = permit;
                    let _tracked = state.tracker.token();
                    session::run(socket, state, init).await;
                })
        }
        Err(problem) => {
            state.metrics.rejected_upgrades.inc();
            tracing::info!(station = %station_id, code = %problem.code, "upgrade refused");
            problem.into_response()
        }
    }
}

async fn prepare(
    state: &AppState,
    station_id: &str,
    peer: Option<PeerIdentity>,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<(Version, String), Problem> {
    if !valid_station_id(station_id) {
        return Err(invalid_station_id());
    }
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let Some(version) = Version::negotiate(offered.iter().copied()) else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_SUBPROTOCOL",
            "offer the subprotocol ocpp2.0.1 or ocpp1.6 in Sec-WebSocket-Protocol",
        ));
    };
    let cert_bound = match peer.as_ref().and_then(|p| p.common_name.as_deref()) {
        Some(cn) if cn == station_id => true,
        Some(_) => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "CERTIFICATE_MISMATCH",
                "the client certificate belongs to another station",
            ));
        }
        None => false,
    };
    let store = &state.store;
    let auth = store.station_auth(station_id).await.map_err(Problem::from)?;
    // Ids that are unknown or not Accepted cost storage and (auto-)registration work without
    // being trusted yet: their attempts are limited per id and per client address.
    let limit_attempts = || {
        let mut keys = vec![AttemptKey::Station(station_id.to_string())];
        keys.extend(client.map(AttemptKey::Address));
        state.attempts.attempt(&keys, std::time::Instant::now()).map_err(|_| {
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_ATTEMPTS",
                "too many connection attempts for a station that is not accepted; retry later",
            )
            .with_header(header::RETRY_AFTER, "60")
        })
    };
    let auth = match auth {
        Some(auth) => {
            if auth.registration_status != "Accepted" {
                limit_attempts()?;
            }
            auth
        }
        None => {
            let status = match state.config.unknown_stations {
                UnknownStations::Reject => {
                    return Err(Problem::new(
                        StatusCode::NOT_FOUND,
                        "UNKNOWN_STATION",
                        "this station id is not registered",
                    ));
                }
                UnknownStations::Pending => "Pending",
                UnknownStations::Accept => "Accepted",
            };
            // Held across the count and the insert, so concurrent upgrades cannot overshoot.
            let _registering = if status == "Pending" {
                limit_attempts()?;
                let guard = state.attempts.registering.lock().await;
                let pending = store
                    .count_stations_with_status("Pending")
                    .await
                    .map_err(Problem::from)?;
                if pending >= state.config.pending_limit {
                    return Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "PENDING_LIMIT",
                        "too many stations are waiting for acceptance; retry later",
                    )
                    .with_header(header::RETRY_AFTER, "60"));
                }
                Some(guard)
            } else {
                None
            };
            store
                .auto_register(station_id, status, Ts::now())
                .await
                .map_err(Problem::from)?;
            tracing::info!(station = %station_id, status, "unknown station registered");
            store
                .station_auth(station_id)
                .await
                .map_err(Problem::from)?
                .ok_or_else(|| Problem::internal("station vanished after registration"))?
        }
    };
    let unauthorized = |detail: &str| {
        Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail.to_string())
            .with_header(header::WWW_AUTHENTICATE, "Basic realm=\"ocpp\", charset=\"UTF-8\"")
    };
    let has_password = auth.password_hash.is_some() || auth.pending_password_hash.is_some();
    let mut used_basic = false;
    match (has_password, cert_bound) {
        // Security profile 3: the verified certificate is the credential; Basic is not used.
        (_, true) => {}
        (true, false) => {
            let password = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| basic::password_for(v, station_id));
            let Some(password) = password else {
                return Err(unauthorized("HTTP Basic credentials for this station id required"));
            };
            // A full pool answers 503 with Retry-After before anything is checked: argon2 holds
            // its memory cost per check, and this runs before the station is authenticated.
            if !verify_password(state, station_id, password, &auth).await? {
                return Err(unauthorized("wrong station id or password"));
            }
            used_basic = true;
        }
        (false, false) if state.config.require_auth => {
            return Err(unauthorized("station has no password and no client certificate"));
        }
        (false, false) => {}
    }
    check_security_profile(state, station_id, peer.is_some(), cert_bound, used_basic, &auth).await?;
    Ok((version, auth.registration_status))
}

/// Checks a Basic password against the current hash and, after a rotation, the pending one.
/// The first connection with the pending password makes it the only one (A01).
async fn verify_password(
    state: &AppState,
    station_id: &str,
    password: String,
    auth: &StationAuth,
) -> Result<bool, Problem> {
    if let Some(hash) = &auth.password_hash {
        if state.passwords.verify(password.clone(), hash.clone()).await? {
            return Ok(true);
        }
    }
    let Some(pending) = &auth.pending_password_hash else {
        return Ok(false);
    };
    if !state.passwords.verify(password, pending.clone()).await? {
        return Ok(false);
    }
    state
        .store
        .promote_pending_password(station_id, pending, Ts::now())
        .await
        .map_err(Problem::from)?;
    tracing::info!(station = %station_id, "password rotation completed: the old password is no longer valid");
    Ok(true)
}

/// Refuses a connection below the station's security-profile floor (A05) and records the
/// profile of one that passes, raising the floor to it.
async fn check_security_profile(
    state: &AppState,
    station_id: &str,
    tls: bool,
    client_cert: bool,
    used_basic: bool,
    auth: &StationAuth,
) -> Result<(), Problem> {
    let profile = security_profile::of_connection(tls, client_cert, used_basic);
    if profile < auth.security_profile_floor {
        state.metrics.security_profile_downgrades.inc();
        tracing::warn!(
            station = %station_id,
            profile,
            floor = auth.security_profile_floor,
            security_event = "SecurityProfileDowngrade",
            "connection below the station's security profile refused"
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "SECURITY_PROFILE_DOWNGRADE",
            format!(
                "this station has connected at security profile {}; profile {profile} is refused",
                auth.security_profile_floor
            ),
        ));
    }
    state
        .store
        .record_security_profile(station_id, profile)
        .await
        .map_err(Problem::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_ids() {
        for ok in ["CP-1", "a", "cp_01.x", "A*B=C:D+E|F@G", &"x".repeat(48)] {
            assert!(valid_station_id(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a%20", &"x".repeat(49)] {
            assert!(!valid_station_id(bad), "{bad}");
        }
    }
}

//! QR check-in (issue 11, section 4).
//!
//! - [`tokens`]: signed booking tokens and connector codes, key rotation (pure).
//! - [`keys`]: where the keys come from (flags, or a generated key in the data directory).
//! - [`qr`]: the QR images (SVG, PNG).
//! - [`scan`]: issue, verify, check in (domain errors; one transaction per check-in).
//! - [`start`]: the RemoteStart that follows a check-in, and its answer code.
//! - [`store`]: the stored token hashes.
//!
//! The HTTP edge is here: thin handlers, and the one mapping from refusals to problems.

pub mod keys;
pub mod qr;
pub mod scan;
pub mod start;
pub mod store;
pub mod tokens;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::bookings::store::Booking;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use scan::{CheckinError, Refusal};
use serde::{Deserialize, Serialize};
use service_kit::extract::{ApiJson, ApiPath};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use start::StartAnswer;
use tokens::TokenError;
use utoipa::ToSchema;

/// Check-in routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings/{id}/checkin-token", post(issue_token))
        .route("/bookings/{id}/checkin-token/qr.svg", get(token_svg))
        .route("/bookings/{id}/checkin-token/qr.png", get(token_png))
        .route("/checkin/verify", post(verify))
        .route("/checkin", post(check_in))
        .route(
            "/stations/{id}/connectors/{connectorId}/checkin-code",
            get(connector_code),
        )
        .route("/stations/{id}/connectors/{connectorId}/qr.svg", get(connector_svg))
        .route("/stations/{id}/connectors/{connectorId}/qr.png", get(connector_png))
}

/// The HTTP form of every refusal: a distinct code each.
impl From<CheckinError> for Problem {
    fn from(e: CheckinError) -> Problem {
        let refusal = match e {
            CheckinError::Refused(r) => r,
            CheckinError::Booking(p) => return p,
            CheckinError::Store(e) => return e.into(),
        };
        let detail = refusal.to_string();
        let (status, code) = match refusal {
            Refusal::Token(t) => token_status(t, "CHECKIN_TOKEN"),
            Refusal::ConnectorCode(t) => token_status(t, "CONNECTOR_CODE"),
            Refusal::NotIssued => (StatusCode::UNPROCESSABLE_ENTITY, "CHECKIN_TOKEN_UNKNOWN".into()),
            Refusal::Used => (StatusCode::CONFLICT, "CHECKIN_TOKEN_USED".into()),
            Refusal::NotApproved(_) => (StatusCode::CONFLICT, "BOOKING_NOT_APPROVED".into()),
            Refusal::ConnectorCodeRequired => (StatusCode::UNPROCESSABLE_ENTITY, "CONNECTOR_CODE_REQUIRED".into()),
            Refusal::WrongStation => (StatusCode::CONFLICT, "WRONG_STATION".into()),
            Refusal::WrongConnector { .. } => (StatusCode::CONFLICT, "WRONG_CONNECTOR".into()),
            Refusal::NoConnectorFree => (StatusCode::CONFLICT, "NO_CONNECTOR_FREE".into()),
        };
        Problem::new(status, &code, detail)
    }
}

/// Malformed input is a bad request (400); a well-formed but unacceptable token 422; an
/// expired one 410.
fn token_status(e: TokenError, prefix: &str) -> (StatusCode, String) {
    match e {
        TokenError::Malformed => (StatusCode::BAD_REQUEST, format!("{prefix}_MALFORMED")),
        TokenError::UnknownKey => (StatusCode::UNPROCESSABLE_ENTITY, format!("{prefix}_UNKNOWN_KEY")),
        TokenError::Tampered => (StatusCode::UNPROCESSABLE_ENTITY, format!("{prefix}_TAMPERED")),
        TokenError::Expired => (StatusCode::GONE, format!("{prefix}_EXPIRED")),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

/// A booking token, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckinToken {
    /// The raw token: show it as a QR code (or use the qr.svg/qr.png URLs, which issue their own).
    pub token: String,
    pub booking_id: i64,
    pub expires_at: DateTime<Utc>,
    /// The id of the key that signed it.
    pub key_id: String,
}

/// Loads a booking the caller (its owner, or an admin) may get a token for.
async fn owned_booking(state: &AppState, caller: &Caller, id: i64) -> Result<Booking, Problem> {
    caller.require(&[Role::Owner, Role::Admin])?;
    let booking = crate::bookings::store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("booking"))?;
    scan::in_scope(state, caller, &booking).await?;
    Ok(booking)
}

/// `POST /bookings/{id}/checkin-token` (the booking's owner, admin): a new single-use token for
/// an Approved booking.
async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Problem> {
    let booking = owned_booking(&state, &caller, id).await?;
    let issued = scan::issue(&state, &booking).await?;
    let body = CheckinToken {
        token: issued.token,
        booking_id: booking.id,
        expires_at: at(issued.claim.expires_at),
        key_id: issued.claim.kid,
    };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// An image response that no cache keeps (it carries a live credential).
fn image(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /bookings/{id}/checkin-token/qr.svg` (the booking's owner, admin): issues a new token
/// and serves it as an SVG QR code.
async fn token_svg(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Problem> {
    let booking = owned_booking(&state, &caller, id).await?;
    let issued = scan::issue(&state, &booking).await?;
    let svg = qr::svg(&issued.token).map_err(Problem::internal)?;
    Ok(image("image/svg+xml", svg))
}

/// `GET /bookings/{id}/checkin-token/qr.png` (the booking's owner, admin): as `qr.svg`, in PNG.
async fn token_png(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Problem> {
    let booking = owned_booking(&state, &caller, id).await?;
    let issued = scan::issue(&state, &booking).await?;
    let png = qr::png(&issued.token).map_err(Problem::internal)?;
    Ok(image("image/png", png))
}

/// Body of `POST /checkin/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The scanned token.
    pub token: String,
}

/// What a scanned token is good for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    /// Always true: a token that is not valid is answered with a problem saying why.
    pub valid: bool,
    pub booking_id: i64,
    pub station_id: i64,
    pub owner_id: i64,
    pub status: String,
    pub starts_at: Ts,
    pub ends_at: Ts,
    /// The assigned connector, if one is assigned yet.
    pub connector_id: Option<i64>,
    pub token_expires_at: DateTime<Utc>,
    pub key_id: String,
    /// Whether a check-in would be inside the earliest-check-in window now.
    pub check_in_open: bool,
}

const STAFF: &[Role] = &[Role::Admin, Role::BackOffice, Role::Operator];

/// `POST /checkin/verify` (operators of the station, its BackOffice, admin): whether a scanned
/// token is valid and for which booking, without consuming it.
async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResult>, Problem> {
    caller.require(STAFF)?;
    let v = scan::verify(&state, &caller, &req.token).await?;
    let b = &v.booking;
    let check_in_open =
        crate::bookings::rules::check_checkin(&state.config.policy, state.clock.now_ms(), b.starts_at.0, b.ends_at.0)
            .is_ok();
    Ok(Json(VerifyResult {
        valid: true,
        booking_id: b.id,
        station_id: b.station_id,
        owner_id: b.owner_id,
        status: b.status.clone(),
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        connector_id: b.connector_id,
        token_expires_at: at(v.claim.expires_at),
        key_id: v.claim.kid,
        check_in_open,
    }))
}

/// Body of `POST /checkin`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckinRequest {
    /// The booking's token (from its QR code).
    pub token: String,
    /// The code printed on the connector (its QR code); required when the owner checks in.
    pub connector_code: Option<String>,
}

/// The handle a check-in returns: what the charger was asked, what it answered, and where to
/// follow the session. A 2.0.1 charger's transaction carries the remote-start id; a 1.6
/// charger's is matched by the id token on the connector inside the booking's window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckinHandle {
    pub booking_id: i64,
    /// `CheckedIn`, whatever the charger answered.
    pub status: String,
    pub remote_start_id: i64,
    /// The station connector the session runs on.
    pub connector_id: i64,
    /// The id token the charger was given.
    pub id_token: Option<String>,
    pub starts_at: Ts,
    pub ends_at: Ts,
    /// The charger's answer to RemoteStart.
    pub remote_start: StartAnswer,
    /// Where the session shows: `/api/v1/bookings/{id}/session`.
    pub session_url: String,
}

/// `POST /checkin`: an operator of the booking's station (or its BackOffice, or an admin)
/// scanning the booking's token, or the booking's owner posting the token with the code of the
/// connector they scanned. Consumes the token, checks in, sends RemoteStart.
async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CheckinRequest>,
) -> Result<Json<CheckinHandle>, Problem> {
    let done = scan::check_in(&state, &caller, &req.token, req.connector_code.as_deref()).await?;
    let answer = start::remote_start(&state, &caller, &done.booking, done.connector_id, done.remote_start_id).await;
    let b = done.booking;
    Ok(Json(CheckinHandle {
        booking_id: b.id,
        status: b.status.clone(),
        remote_start_id: done.remote_start_id,
        connector_id: done.connector_id,
        id_token: b.id_token.clone(),
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        remote_start: answer,
        session_url: format!("/api/v1/bookings/{}/session", b.id),
    }))
}

/// A connector's code.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorCode {
    /// To print on the connector as a QR code.
    pub code: String,
    pub station_id: i64,
    pub connector_id: i64,
}

/// The code of a connector of a station in the caller's scope (staff only).
async fn code_for(state: &AppState, caller: &Caller, station_id: i64, connector_id: i64) -> Result<String, Problem> {
    caller.require(STAFF)?;
    let station = crate::stations::store::get(&state.db, station_id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    let allowed = match caller.role {
        Role::Admin => true,
        Role::BackOffice => station.backoffice_id == caller.id,
        Role::Operator => caller.operates(&state.db, station_id).await?,
        Role::Owner => false,
    };
    if !allowed {
        return Err(Problem::forbidden("this station is outside your scope"));
    }
    let connectors = crate::stations::store::connectors(&state.db, station_id).await?;
    if !connectors.iter().any(|c| c.connector_id == connector_id) {
        return Err(Problem::not_found("connector"));
    }
    Ok(state.checkin_keys.connector_code(station_id, connector_id))
}

/// `GET /stations/{id}/connectors/{connectorId}/checkin-code` (admin; BackOffice of the
/// station; its operators).
async fn connector_code(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((station_id, connector_id)): ApiPath<(i64, i64)>,
) -> Result<Json<ConnectorCode>, Problem> {
    let code = code_for(&state, &caller, station_id, connector_id).await?;
    Ok(Json(ConnectorCode {
        code,
        station_id,
        connector_id,
    }))
}

/// `GET /stations/{id}/connectors/{connectorId}/qr.svg` (as `checkin-code`), to print.
async fn connector_svg(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((station_id, connector_id)): ApiPath<(i64, i64)>,
) -> Result<Response, Problem> {
    let code = code_for(&state, &caller, station_id, connector_id).await?;
    Ok(image("image/svg+xml", qr::svg(&code).map_err(Problem::internal)?))
}

/// `GET /stations/{id}/connectors/{connectorId}/qr.png` (as `checkin-code`), to print.
async fn connector_png(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((station_id, connector_id)): ApiPath<(i64, i64)>,
) -> Result<Response, Problem> {
    let code = code_for(&state, &caller, station_id, connector_id).await?;
    Ok(image("image/png", qr::png(&code).map_err(Problem::internal)?))
}

//! Certificate management endpoints (OCPP 2.0.1 A02/A03, M01-M06; 1.6 security whitepaper):
//! typed InstallCertificate, GetInstalledCertificateIds and DeleteCertificate for either
//! version, the certificates the station CA issued, security events, and renewal.
//!
//! Roles: admin and operator, like the other command endpoints. Station answers map to HTTP as
//! there: 200 with the CALLRESULT, 502 `STATION_CALL_ERROR`, 409 `STATION_OFFLINE`,
//! 504 `STATION_TIMEOUT`, 422 `INVALID_PAYLOAD` (the official schema refused the request).

use super::auth::Caller;
use super::commands::{command_problem, CommandResponse};
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::{ApiJson, ApiQuery};
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::ocpp_ws::commands::{self, CommandError};
use crate::ocpp_ws::registry::CallOutcome;
use crate::store::certificates::{IssuedCertificateRecord, SecurityEvent};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ocpp::Version;
use serde::Deserialize;
use serde_json::{json, Value};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Certificate routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations/{station_id}/certificates", get(issued))
        .route("/stations/{station_id}/certificates/renew", post(renew))
        .route(
            "/stations/{station_id}/installed-certificates",
            get(installed_ids).post(install),
        )
        .route("/stations/{station_id}/installed-certificates/delete", post(delete))
        .route("/security-events", get(security_events))
}

/// Body of InstallCertificate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallCertificateBody {
    /// Which root: 2.0.1 `CSMSRootCertificate`, `ManufacturerRootCertificate`,
    /// `V2GRootCertificate`, `MORootCertificate`; 1.6 `CentralSystemRootCertificate`,
    /// `ManufacturerRootCertificate`. The CSMS root has a name per version; either name is
    /// translated to the station's.
    pub certificate_type: String,
    /// The certificate, PEM.
    pub certificate: String,
}

/// Query of GetInstalledCertificateIds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstalledQuery {
    /// Which type to list, with the names of [`InstallCertificateBody`] (2.0.1 also
    /// `V2GCertificateChain`); required by 1.6, optional (all types) for 2.0.1.
    pub certificate_type: Option<String>,
}

/// Body of DeleteCertificate: the certificate's hash data, as GetInstalledCertificateIds
/// reports it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteCertificateBody {
    /// `SHA256`, `SHA384` or `SHA512`.
    pub hash_algorithm: String,
    /// Hex hash of the issuer's name.
    pub issuer_name_hash: String,
    /// Hex hash of the issuer's public key.
    pub issuer_key_hash: String,
    /// Hex serial number.
    pub serial_number: String,
}

/// Query of the security-event list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventQuery {
    /// Only this station.
    pub station_id: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// The CSMS root's name in `version` (the two versions spell it differently); other types as
/// given.
pub fn certificate_type_for(version: Version, certificate_type: &str) -> String {
    match (version, certificate_type) {
        (Version::V16, "CSMSRootCertificate") => "CentralSystemRootCertificate".into(),
        (Version::V201, "CentralSystemRootCertificate") => "CSMSRootCertificate".into(),
        _ => certificate_type.to_string(),
    }
}

/// The InstallCertificate payload for `version`.
pub fn install_payload(version: Version, body: &InstallCertificateBody) -> Value {
    json!({
        "certificateType": certificate_type_for(version, &body.certificate_type),
        "certificate": body.certificate,
    })
}

/// The GetInstalledCertificateIds payload for `version`, or why there is none.
pub fn installed_ids_payload(version: Version, certificate_type: Option<&str>) -> Result<Value, Problem> {
    match (version, certificate_type) {
        (Version::V16, Some(t)) => Ok(json!({ "certificateType": certificate_type_for(version, t) })),
        (Version::V16, None) => Err(Problem::validation(
            "an OCPP 1.6 station lists one certificateType at a time: give ?certificateType=",
        )),
        (_, Some(t)) => Ok(json!({ "certificateType": [certificate_type_for(version, t)] })),
        (_, None) => Ok(json!({})),
    }
}

/// The DeleteCertificate payload (the same shape in both versions).
pub fn delete_payload(body: &DeleteCertificateBody) -> Value {
    json!({ "certificateHashData": {
        "hashAlgorithm": body.hash_algorithm,
        "issuerNameHash": body.issuer_name_hash,
        "issuerKeyHash": body.issuer_key_hash,
        "serialNumber": body.serial_number,
    }})
}

/// The version of a connected station, or why it cannot take a call: 404 when no such station
/// is registered, else 409 offline.
async fn connected(state: &AppState, station_id: &str) -> Result<Version, Problem> {
    if let Some(version) = commands::connected_version(state, station_id) {
        return Ok(version);
    }
    ensure_station(state, station_id).await?;
    Err(command_problem(CommandError::Offline))
}

async fn ensure_station(state: &AppState, station_id: &str) -> Result<(), Problem> {
    match state.store.station(station_id).await? {
        Some(_) => Ok(()),
        None => Err(Problem::not_found("station")),
    }
}

/// The station's answer as the API returns it.
fn answered(action: &str, outcome: Result<CallOutcome, CommandError>) -> Result<Json<CommandResponse>, Problem> {
    match outcome {
        Ok(CallOutcome::Result(response)) => Ok(Json(CommandResponse {
            action: action.to_string(),
            response,
        })),
        Ok(CallOutcome::Error {
            code,
            description,
            details,
        }) => Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "STATION_CALL_ERROR",
            format!("the station answered {action} with {code}: {description}"),
        )
        .with_errors(json!({ "code": code, "description": description, "details": details }))),
        Err(e) => Err(command_problem(e)),
    }
}

async fn install(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiJson(body): ApiJson<InstallCertificateBody>,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let version = connected(&state, &station_id).await?;
    let action = "InstallCertificate";
    answered(
        action,
        commands::call(&state, &station_id, action, install_payload(version, &body)).await,
    )
}

async fn installed_ids(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<InstalledQuery>,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let version = connected(&state, &station_id).await?;
    let payload = installed_ids_payload(version, q.certificate_type.as_deref())?;
    let action = "GetInstalledCertificateIds";
    answered(action, commands::call(&state, &station_id, action, payload).await)
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiJson(body): ApiJson<DeleteCertificateBody>,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    connected(&state, &station_id).await?;
    let action = "DeleteCertificate";
    answered(
        action,
        commands::call(&state, &station_id, action, delete_payload(&body)).await,
    )
}

async fn renew(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let version = connected(&state, &station_id).await?;
    let (action, _) = crate::certificates::renewal_call(version);
    answered(
        action,
        crate::certificates::trigger_renewal(&state, &station_id)
            .await
            .map(|(_, outcome)| outcome),
    )
}

async fn issued(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<IssuedCertificateRecord>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    ensure_station(&state, &station_id).await?;
    let limit = page.limit()?;
    let items = state
        .store
        .issued_certificates(&station_id, page.int_key()?, limit)
        .await?;
    Ok(Json(Page::new(items, limit, |c| c.id.to_string())))
}

async fn security_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<Page<SecurityEvent>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let items = state
        .store
        .security_events(q.station_id.as_deref(), page.int_key()?, limit)
        .await?;
    Ok(Json(Page::new(items, limit, |e| e.id.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csms_root_is_named_per_version() {
        let body = InstallCertificateBody {
            certificate_type: "CSMSRootCertificate".into(),
            certificate: "PEM".into(),
        };
        assert_eq!(
            install_payload(Version::V16, &body)["certificateType"],
            "CentralSystemRootCertificate"
        );
        assert_eq!(
            install_payload(Version::V201, &body)["certificateType"],
            "CSMSRootCertificate"
        );
        assert_eq!(
            certificate_type_for(Version::V201, "CentralSystemRootCertificate"),
            "CSMSRootCertificate"
        );
        assert_eq!(
            certificate_type_for(Version::V16, "ManufacturerRootCertificate"),
            "ManufacturerRootCertificate"
        );
    }

    #[test]
    fn installed_ids_per_version() {
        assert!(installed_ids_payload(Version::V16, None).is_err());
        assert_eq!(
            installed_ids_payload(Version::V16, Some("CSMSRootCertificate")).ok(),
            Some(json!({"certificateType": "CentralSystemRootCertificate"}))
        );
        assert_eq!(installed_ids_payload(Version::V201, None).ok(), Some(json!({})));
        assert_eq!(
            installed_ids_payload(Version::V201, Some("V2GRootCertificate")).ok(),
            Some(json!({"certificateType": ["V2GRootCertificate"]}))
        );
    }
}

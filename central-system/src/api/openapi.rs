//! The OpenAPI document at `/api/v1/openapi.json`: schemas derived from the Rust types, paths
//! from the route table below (kept next to the routers it describes).

use crate::app::AppState;
use axum::routing::get;
use axum::{Json, Router};
use service_kit::openapi::Route;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::OpenApi as Doc;
use utoipa::OpenApi;

/// Schemas of the API's bodies.
#[derive(OpenApi)]
#[openapi(
    info(title = "EVCS central system operator API", version = "1"),
    components(schemas(
        crate::store::stations::Station,
        crate::store::stations::Connector,
        crate::api::stations::StationDetail,
        crate::api::stations::CreateStation,
        crate::api::stations::UpdateStation,
        crate::store::id_tokens::IdTokenRecord,
        crate::api::id_tokens::IdTokenBody,
        crate::store::transactions::Transaction,
        crate::api::transactions::TransactionDetail,
        crate::api::transactions::EndTransaction,
        crate::store::meter_values::MeterValue,
        crate::store::frames::LoggedFrame,
        crate::store::messages::StationMessage,
        crate::store::messages::DeviceVariable,
        crate::store::messages::Reservation,
        crate::api::commands::GenericCall,
        crate::api::commands::CommandBody,
        crate::api::commands::CommandResponse,
        crate::api::credentials::RotatePassword,
        crate::api::credentials::RotationResult,
        crate::api::certificates::InstallCertificateBody,
        crate::api::certificates::InstalledQuery,
        crate::api::certificates::DeleteCertificateBody,
        crate::store::certificates::IssuedCertificateRecord,
        crate::store::certificates::SecurityEvent,
        crate::store::charging_needs::ChargingNeedsRecord,
        crate::store::charging_needs::ChargingProfileRecord,
        crate::api::charging_needs::ChargingNeedsView,
        crate::api::charging_needs::RenegotiateBody,
        crate::smart_charging::negotiation::Renegotiated,
        crate::api::problem::Problem,
    ))
)]
struct Schemas;

const ROUTES: &[Route] = &[
    (HttpMethod::Get, "/stations", "List stations (cursor paged; ?online=)", "admin, operator", None, Some("Page<Station>")),
    (HttpMethod::Post, "/stations", "Register a station", "admin", Some("CreateStation"), Some("StationDetail")),
    (HttpMethod::Get, "/stations/{stationId}", "A station with its connectors", "admin, operator", None, Some("StationDetail")),
    (HttpMethod::Patch, "/stations/{stationId}", "Change description, password or registration status", "admin", Some("UpdateStation"), Some("StationDetail")),
    (HttpMethod::Delete, "/stations/{stationId}", "Delete a registration", "admin", None, None),
    (HttpMethod::Get, "/stations/{stationId}/frames", "Recent OCPP frames, newest first", "admin, operator", None, Some("Page<LoggedFrame>")),
    (HttpMethod::Get, "/stations/{stationId}/messages", "Messages stored as received (?action=)", "admin, operator", None, Some("Page<StationMessage>")),
    (HttpMethod::Get, "/stations/{stationId}/device-model", "2.0.1 device model from NotifyReport", "admin, operator", None, Some("Vec<DeviceVariable>")),
    (HttpMethod::Get, "/stations/{stationId}/reservations", "Reservations made through the API", "admin, operator", None, Some("Vec<Reservation>")),
    (HttpMethod::Post, "/stations/{stationId}/password-rotation", "Rotate the Basic-auth password (A01): sent to the station, pending until it reconnects with it (409 offline, 502/504)", "admin", Some("RotatePassword"), Some("RotationResult")),
    (HttpMethod::Post, "/stations/{stationId}/calls", "Send any central-system action of the station's version", "admin, operator", Some("GenericCall"), Some("CommandResponse")),
    (HttpMethod::Post, "/stations/{stationId}/commands/{command}", "Typed command: remote-start, remote-stop, reset, unlock, change-availability, get-configuration, change-configuration, get-variables, set-variables, trigger-message, reserve-now, cancel-reservation, clear-cache, data-transfer", "admin, operator", Some("CommandBody"), Some("CommandResponse")),
    (HttpMethod::Get, "/stations/{stationId}/certificates", "Certificates the station CA issued to the station (SignCertificate, A02/A03), newest first", "admin, operator", None, Some("Page<IssuedCertificateRecord>")),
    (HttpMethod::Post, "/stations/{stationId}/certificates/renew", "Ask the station to renew its certificate: 2.0.1 TriggerMessage SignChargingStationCertificate, 1.6 ExtendedTriggerMessage SignChargePointCertificate (409 offline, 502/504)", "admin, operator", None, Some("CommandResponse")),
    (HttpMethod::Post, "/stations/{stationId}/installed-certificates", "InstallCertificate (M05; 1.6 M): install a root certificate on the station", "admin, operator", Some("InstallCertificateBody"), Some("CommandResponse")),
    (HttpMethod::Get, "/stations/{stationId}/installed-certificates", "GetInstalledCertificateIds (M03; 1.6 M) (?certificateType=, required for 1.6)", "admin, operator", None, Some("CommandResponse")),
    (HttpMethod::Post, "/stations/{stationId}/installed-certificates/delete", "DeleteCertificate (M04; 1.6 M) by its hash data", "admin, operator", Some("DeleteCertificateBody"), Some("CommandResponse")),
    (HttpMethod::Get, "/stations/{stationId}/charging-needs", "ISO 15118 charging needs (K15/K17), newest first, each with the TxProfiles sent and the EV schedules checked against them", "admin, operator", None, Some("Page<ChargingNeedsView>")),
    (HttpMethod::Post, "/stations/{stationId}/charging-needs/{needsId}/renegotiate", "K16: send a new TxProfile for these needs, optionally under a new limit (404, 409 TRANSACTION_NOT_ACTIVE/NO_CAPACITY/STATION_OFFLINE, 502/504)", "admin, operator", Some("RenegotiateBody"), Some("Renegotiated")),
    (HttpMethod::Get, "/security-events", "Security events, newest first: refused CSRs and SecurityEventNotification (?stationId=)", "admin, operator", None, Some("Page<SecurityEvent>")),
    (HttpMethod::Get, "/id-tokens", "List id tokens", "admin, operator", None, Some("Page<IdTokenRecord>")),
    (HttpMethod::Post, "/id-tokens", "Create an id token", "admin", Some("IdTokenBody"), Some("IdTokenRecord")),
    (HttpMethod::Get, "/id-tokens/{idToken}", "One id token", "admin, operator", None, Some("IdTokenRecord")),
    (HttpMethod::Put, "/id-tokens/{idToken}", "Replace an id token", "admin", Some("IdTokenBody"), Some("IdTokenRecord")),
    (HttpMethod::Delete, "/id-tokens/{idToken}", "Delete an id token", "admin", None, None),
    (HttpMethod::Get, "/transactions", "List transactions, newest first (?stationId= &status=Active|Ended|Refused &idToken=)", "admin, operator", None, Some("Page<Transaction>")),
    (HttpMethod::Get, "/transactions/{id}", "A transaction with its readings", "admin, operator", None, Some("TransactionDetail")),
    (HttpMethod::Post, "/transactions/{id}/end", "End an Active transaction the station no longer reports, with a reason (404 unknown, 409 TRANSACTION_NOT_ACTIVE)", "admin, operator", Some("EndTransaction"), Some("Transaction")),
    (HttpMethod::Get, "/meter-values", "Readings (?stationId= &transactionId= &measurand=)", "admin, operator", None, Some("Page<MeterValue>")),
];

/// The document.
pub fn document() -> Doc {
    service_kit::openapi::document(Schemas::openapi(), "/api/v1", ROUTES)
}

/// `GET /openapi.json` (public, so tools can discover the API).
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

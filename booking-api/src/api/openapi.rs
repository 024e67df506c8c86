//! The OpenAPI document at `/api/v1/openapi.json`: schemas derived from the Rust types, paths
//! from the route table below, each operation stating the roles it admits.

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
    info(title = "EVCS booking API", version = "1"),
    components(schemas(
        crate::accounts::LoginRequest,
        crate::accounts::RefreshRequest,
        crate::accounts::tokens::TokenResponse,
        crate::accounts::RegisterOwner,
        crate::accounts::NewStaff,
        crate::accounts::OperatorScope,
        crate::accounts::AccountView,
        crate::accounts::passwords::PasswordChange,
        crate::accounts::passwords::PasswordReset,
        crate::accounts::store::Account,
        crate::vehicles::Vehicle,
        crate::vehicles::NewVehicle,
        crate::stations::Station,
        crate::stations::CreateStation,
        crate::stations::UpdateStation,
        crate::stations::ScheduleUpdate,
        crate::stations::ConnectorsUpdate,
        crate::stations::ConnectorInput,
        crate::stations::NearbyStation,
        crate::stations::DayAvailability,
        crate::stations::store::Connector,
        crate::stations::schedule::Schedule,
        crate::stations::schedule::WeeklyHours,
        crate::stations::schedule::ScheduleException,
        crate::stations::schedule::Interval,
        crate::chargers::Charger,
        crate::chargers::store::ChargerConnector,
        crate::slots::Slot,
        crate::bookings::CreateBooking,
        crate::bookings::RescheduleBooking,
        crate::bookings::store::Booking,
        crate::bookings::rules::Status,
        crate::audit::AuditEventView,
        crate::notifications::Notification,
        crate::reservations::alerts::Alert,
        crate::api::auth::Role,
        service_kit::problem::Problem,
        service_kit::problem::FieldError,
    ))
)]
struct Schemas;

const STAFF: &str = "admin; backoffice (own stations); operator (assigned stations)";

/// Every route of `/api/v1`.
pub const ROUTES: &[Route] = &[
    (HttpMethod::Post, "/auth/login", "Log in: NIC for owners, email for others (429 LOGIN_RATE_LIMITED after repeated failures)", "public", Some("LoginRequest"), Some("TokenResponse")),
    (HttpMethod::Post, "/auth/refresh", "Rotate a refresh token for a new token pair", "public (refresh token)", Some("RefreshRequest"), Some("TokenResponse")),
    (HttpMethod::Post, "/auth/logout", "Revoke a refresh token", "public (refresh token)", Some("RefreshRequest"), None),
    (HttpMethod::Get, "/me", "The caller's account", "every role", None, Some("AccountView")),
    (HttpMethod::Put, "/me/password", "Change the caller's password (403 WRONG_PASSWORD; ends the other sessions)", "every role", Some("PasswordChange"), None),
    (HttpMethod::Put, "/accounts/{id}/password", "Reset an account's password (ends its sessions)", "admin", Some("PasswordReset"), None),
    (HttpMethod::Post, "/owners", "Register as an EV owner", "public", Some("RegisterOwner"), Some("AccountView")),
    (HttpMethod::Get, "/owners", "EV owners (?status=active|inactive)", "admin", None, Some("Page<AccountView>")),
    (HttpMethod::Get, "/owners/{nic}", "An owner's account", "admin; owner (self)", None, Some("AccountView")),
    (HttpMethod::Post, "/owners/{nic}/deactivate", "Deactivate an owner", "admin; owner (self)", None, Some("AccountView")),
    (HttpMethod::Post, "/owners/{nic}/reactivate", "Reactivate an owner", "admin", None, Some("AccountView")),
    (HttpMethod::Post, "/admins", "Create an admin", "admin", Some("NewStaff"), Some("AccountView")),
    (HttpMethod::Post, "/backoffice-applications", "Apply as a BackOffice business", "public", Some("NewStaff"), Some("AccountView")),
    (HttpMethod::Get, "/backoffice-applications", "Applications (?status=pending|active|rejected)", "admin", None, Some("Page<AccountView>")),
    (HttpMethod::Post, "/backoffice-applications/{id}/approve", "Approve an application", "admin", None, Some("AccountView")),
    (HttpMethod::Post, "/backoffice-applications/{id}/reject", "Reject an application", "admin", None, Some("AccountView")),
    (HttpMethod::Post, "/operators", "Create an operator with a station scope", "backoffice", Some("NewStaff"), Some("AccountView")),
    (HttpMethod::Get, "/operators", "Operators", "admin; backoffice (own)", None, Some("Page<AccountView>")),
    (HttpMethod::Put, "/operators/{id}/stations", "Replace an operator's station scope", "backoffice (employer)", Some("OperatorScope"), Some("AccountView")),
    (HttpMethod::Get, "/vehicles", "The caller's vehicles", "owner", None, Some("Vec<Vehicle>")),
    (HttpMethod::Post, "/vehicles", "Register a vehicle", "owner", Some("NewVehicle"), Some("Vehicle")),
    (HttpMethod::Delete, "/vehicles/{id}", "Remove a vehicle", "owner (own)", None, None),
    (HttpMethod::Post, "/stations", "Create a station (owned by the caller; 422 INVALID_STATION_ID, UNKNOWN_CHARGER, UNKNOWN_CONNECTOR)", "backoffice", Some("CreateStation"), Some("Station")),
    (HttpMethod::Get, "/stations", "Stations in the caller's scope (owners: active ones)", "every role", None, Some("Page<Station>")),
    (HttpMethod::Get, "/stations/nearby", "Active stations within ?radiusKm of ?lat,lon (&connectorType &minPowerKw &openNow) with 7-day availability", "every role", None, Some("Vec<NearbyStation>")),
    (HttpMethod::Get, "/stations/{id}", "A station", "every role within its scope", None, Some("Station")),
    (HttpMethod::Patch, "/stations/{id}", "Change name, address, auto-approval, tariff", "admin; backoffice (owner)", Some("UpdateStation"), Some("Station")),
    (HttpMethod::Put, "/stations/{id}/schedule", "Replace the opening schedule (regenerates slots)", "admin; backoffice (owner)", Some("ScheduleUpdate"), Some("Station")),
    (HttpMethod::Put, "/stations/{id}/connectors", "Replace the connectors (future slots take the new capacity; 422 UNKNOWN_CONNECTOR)", "admin; backoffice (owner)", Some("ConnectorsUpdate"), Some("Station")),
    (HttpMethod::Post, "/stations/{id}/deactivate", "Deactivate (409 STATION_HAS_FUTURE_BOOKINGS)", "admin; backoffice (owner)", None, Some("Station")),
    (HttpMethod::Post, "/stations/{id}/activate", "Reactivate", "admin; backoffice (owner)", None, Some("Station")),
    (HttpMethod::Get, "/chargers", "Chargers the central system has reported, with their connectors' last statuses (what stations may link to)", "admin; backoffice", None, Some("Vec<Charger>")),
    (HttpMethod::Get, "/stations/{id}/slots", "Slots (?from &days &available)", "every role within the station's scope", None, Some("Vec<Slot>")),
    (HttpMethod::Post, "/bookings", "Book a slot (Idempotency-Key supported; 409 BOOKING_HORIZON_EXCEEDED, SLOT_FULL, SLOT_IN_PAST, STATION_INACTIVE)", "owner", Some("CreateBooking"), Some("Booking")),
    (HttpMethod::Get, "/bookings", "Bookings in the caller's scope (?status &stationId &from &to: e.g. an operator's approved bookings of a day)", "every role (scoped)", None, Some("Page<Booking>")),
    (HttpMethod::Get, "/bookings/{id}", "A booking", "every role (scoped)", None, Some("Booking")),
    (HttpMethod::Put, "/bookings/{id}", "Reschedule (409 BOOKING_CUTOFF_PASSED, SLOT_FULL, ILLEGAL_TRANSITION)", "owner (own)", Some("RescheduleBooking"), Some("Booking")),
    (HttpMethod::Delete, "/bookings/{id}", "Cancel (owners until the cutoff)", "owner (own); admin", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/approve", "Approve a pending booking", "admin; backoffice (station owner)", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/reject", "Reject a pending booking", "admin; backoffice (station owner)", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/check-in", "Check in (409 CHECKIN_TOO_EARLY, CHECKIN_WINDOW_CLOSED)", STAFF, None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/complete", "Complete a checked-in booking", STAFF, None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/abort", "Abort a checked-in booking", STAFF, None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/no-show", "Mark an approved booking NoShow (409 NO_SHOW_TOO_EARLY)", STAFF, None, Some("Booking")),
    (HttpMethod::Get, "/audit-events", "Audit trail (?entityType &entityId &action &actorId &actorRole &from &to)", "admin", None, Some("Page<AuditEventView>")),
    (HttpMethod::Get, "/notifications", "The caller's notifications", "every role", None, Some("Page<Notification>")),
    (HttpMethod::Get, "/alerts", "Operator alerts: chargers that refused or could not be reached for a booking's reservation (?stationId)", STAFF, None, Some("Page<Alert>")),
];

/// The document.
pub fn document() -> Doc {
    // Every `{id}` here is a numeric id (`Path<i64>`); `{nic}` is text.
    service_kit::openapi::document_with(Schemas::openapi(), "/api/v1", ROUTES, &["id"])
}

/// `GET /openapi.json` and `GET /docs` with its script (public).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(document()) }))
        .merge(service_kit::api_docs::router("EVCS booking API", "/api/v1"))
}

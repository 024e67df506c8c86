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
        crate::stations::claim::ClaimDecision,
        crate::stations::claim::ClaimStatus,
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
        crate::sessions::Session,
        crate::sessions::Receipt,
        crate::billing::http::TariffView,
        crate::billing::http::TariffVersion,
        crate::billing::http::CreateTariff,
        crate::billing::http::NewVersion,
        crate::billing::http::AssignTariff,
        crate::billing::http::Assignment,
        crate::billing::invoices::http::InvoiceView,
        crate::billing::invoices::http::LineView,
        crate::billing::invoices::http::VatView,
        crate::billing::invoices::http::CreditRequest,
        crate::checkin::CheckinToken,
        crate::checkin::VerifyRequest,
        crate::checkin::VerifyResult,
        crate::checkin::CheckinRequest,
        crate::checkin::CheckinHandle,
        crate::checkin::ConnectorCode,
        crate::checkin::start::StartAnswer,
        crate::checkin::start::CommandCode,
        crate::audit::AuditEventView,
        crate::notifications::Notification,
        crate::alerts::Alert,
        crate::alerts::http::ResolveRequest,
        crate::inbox::Inbox,
        crate::reports::Summary,
        crate::recommendations::Recommendation,
        crate::recommendations::rank::Basis,
        crate::reports::figures::StatusCounts,
        crate::reports::figures::Interval,
        crate::reports::figures::Cell,
        crate::reports::Metric,
        crate::reports::Point,
        crate::reports::Series,
        crate::reports::TimeSeries,
        crate::reports::UtilizationDay,
        crate::reports::StationUtilization,
        crate::reports::Utilization,
        crate::reports::OccupancyHeatmap,
        crate::bookings::exceptions::ExceptionKind,
        crate::bookings::exceptions::ExceptionRequest,
        crate::bookings::exceptions::ReasonBody,
        crate::bookings::exceptions::StopAnswer,
        crate::bookings::exceptions::ExceptionOutcome,
        crate::inbox::StationDay,
        crate::maintenance::CreateWindow,
        crate::maintenance::MaintenanceWindow,
        crate::maintenance::CreatedWindow,
        crate::maintenance::moves::Affected,
        crate::maintenance::store::Conflict,
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
    (HttpMethod::Post, "/stations", "Create a station (owned by the caller; its claim of the charger is Pending until an Admin decides; 422 INVALID_STATION_ID, UNKNOWN_CHARGER, UNKNOWN_CONNECTOR)", "backoffice", Some("CreateStation"), Some("Station")),
    (HttpMethod::Get, "/stations", "Stations in the caller's scope (owners: active ones with an approved claim; ?claimStatus=Pending|Approved|Rejected)", "every role", None, Some("Page<Station>")),
    (HttpMethod::Post, "/stations/{id}/claim", "Approve or reject the station's claim of its charger (409 CLAIM_ALREADY_DECIDED)", "admin", Some("ClaimDecision"), Some("Station")),
    (HttpMethod::Get, "/stations/nearby", "Active stations within ?radiusKm of ?lat,lon (&connectorType &minPowerKw &openNow) with 7-day availability", "every role", None, Some("Vec<NearbyStation>")),
    (HttpMethod::Get, "/stations/{id}", "A station", "every role within its scope", None, Some("Station")),
    (HttpMethod::Patch, "/stations/{id}", "Change name, address, auto-approval, tariff", "admin; backoffice (owner)", Some("UpdateStation"), Some("Station")),
    (HttpMethod::Put, "/stations/{id}/schedule", "Replace the opening schedule (regenerates slots)", "admin; backoffice (owner)", Some("ScheduleUpdate"), Some("Station")),
    (HttpMethod::Put, "/stations/{id}/connectors", "Replace the connectors (future slots take the new capacity; 422 UNKNOWN_CONNECTOR)", "admin; backoffice (owner)", Some("ConnectorsUpdate"), Some("Station")),
    (HttpMethod::Post, "/stations/{id}/deactivate", "Deactivate (409 STATION_HAS_FUTURE_BOOKINGS)", "admin; backoffice (owner)", None, Some("Station")),
    (HttpMethod::Post, "/stations/{id}/activate", "Reactivate", "admin; backoffice (owner)", None, Some("Station")),
    (HttpMethod::Get, "/chargers", "Chargers the central system has reported, with their connectors' last statuses (what stations may link to)", "admin; backoffice", None, Some("Vec<Charger>")),
    (HttpMethod::Get, "/stations/{id}/slots", "Slots (?from &days &available)", "every role within the station's scope", None, Some("Vec<Slot>")),
    (HttpMethod::Post, "/bookings", "Book a slot (Idempotency-Key supported; 409 BOOKING_HORIZON_EXCEEDED, SLOT_FULL, SLOT_IN_MAINTENANCE, SLOT_IN_PAST, STATION_INACTIVE)", "owner", Some("CreateBooking"), Some("Booking")),
    (HttpMethod::Get, "/bookings", "Bookings in the caller's scope (?status &stationId &from &to: e.g. an operator's approved bookings of a day)", "every role (scoped)", None, Some("Page<Booking>")),
    (HttpMethod::Get, "/bookings/{id}", "A booking", "every role (scoped)", None, Some("Booking")),
    (HttpMethod::Put, "/bookings/{id}", "Reschedule (409 BOOKING_CUTOFF_PASSED, SLOT_FULL, SLOT_IN_MAINTENANCE, ILLEGAL_TRANSITION)", "owner (own)", Some("RescheduleBooking"), Some("Booking")),
    (HttpMethod::Delete, "/bookings/{id}", "Cancel (owners until the cutoff)", "owner (own); admin", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/approve", "Approve a pending booking", "admin; backoffice (station owner)", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/reject", "Reject a pending booking", "admin; backoffice (station owner)", None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/check-in", "Check in (409 CHECKIN_TOO_EARLY, CHECKIN_WINDOW_CLOSED)", STAFF, None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/complete", "Complete a checked-in booking", STAFF, None, Some("Booking")),
    (HttpMethod::Post, "/bookings/{id}/abort", "Abort a checked-in booking, with an optional reason; a session still running on the charger is stopped (chargerStop: its answer)", STAFF, Some("ReasonBody"), Some("ExceptionOutcome")),
    (HttpMethod::Post, "/bookings/{id}/no-show", "Mark an approved booking NoShow, with an optional reason (409 NO_SHOW_TOO_EARLY)", STAFF, Some("ReasonBody"), Some("ExceptionOutcome")),
    (HttpMethod::Post, "/bookings/{id}/exceptions", "Record an exception with a reason: NoShow (approved, after the grace period; 409 NO_SHOW_TOO_EARLY), Aborted (checked in) or CancelOnSite (approved or checked in, to Cancelled); releases the slot if still ahead, revokes the token, cancels the charger's reservation, stops a running session (chargerStop) (409 ILLEGAL_TRANSITION)", STAFF, Some("ExceptionRequest"), Some("ExceptionOutcome")),
    (HttpMethod::Get, "/sessions", "Charging sessions in the caller's scope (?status=Active|Completed &stationId), newest first", "every role (owners: their bookings'; staff: their stations')", None, Some("Page<Session>")),
    (HttpMethod::Get, "/sessions/{id}", "A charging session: energy from the meter, power, SoC, current, duration, stop reason", "every role (scoped)", None, Some("Session")),
    (HttpMethod::Get, "/sessions/{id}/receipt", "The receipt of a completed session: energy from the meter, durations, the booking (409 SESSION_ACTIVE)", "every role (scoped)", None, Some("Receipt")),
    (HttpMethod::Post, "/sessions/{id}/finalize", "Complete a session whose charger never reported the end; returns the receipt (409 SESSION_ALREADY_COMPLETED)", STAFF, None, Some("Receipt")),
    (HttpMethod::Get, "/bookings/{id}/session", "The booking's charging session (404 NO_SESSION before the charger started)", "every role (scoped)", None, Some("Session")),
    (HttpMethod::Get, "/live", "Live WebSocket: sessions, bookings, connectors, alerts in the caller's scope, each with a sequence number; ?since=N&stream=S resumes or answers resync. Token in Authorization or as subprotocol bearer.<token> with evcs.live.v1, never in the URL (400 TOKEN_IN_QUERY); 429 LIVE_CONNECTION_LIMIT", "every role (scoped)", None, None),
    (HttpMethod::Post, "/bookings/{id}/checkin-token", "A new single-use QR check-in token for an approved booking (409 BOOKING_NOT_APPROVED, CHECKIN_WINDOW_CLOSED)", "owner (own); admin", None, Some("CheckinToken")),
    (HttpMethod::Get, "/bookings/{id}/checkin-token/qr.svg", "A new check-in token as an SVG QR code (image/svg+xml, no-store)", "owner (own); admin", None, None),
    (HttpMethod::Get, "/bookings/{id}/checkin-token/qr.png", "A new check-in token as a PNG QR code (image/png, no-store)", "owner (own); admin", None, None),
    (HttpMethod::Post, "/checkin/verify", "Whether a scanned token is valid and for which booking, without consuming it (400 CHECKIN_TOKEN_MALFORMED; 422 CHECKIN_TOKEN_TAMPERED, CHECKIN_TOKEN_UNKNOWN_KEY, CHECKIN_TOKEN_UNKNOWN; 410 CHECKIN_TOKEN_EXPIRED; 409 CHECKIN_TOKEN_USED, BOOKING_NOT_APPROVED)", STAFF, Some("VerifyRequest"), Some("VerifyResult")),
    (HttpMethod::Post, "/checkin", "Check in with a scanned token (owners also post the connector's code) and send RemoteStart; the charger's answer is in remoteStart.code. Refusals as /checkin/verify, plus 409 CHECKIN_TOO_EARLY, CHECKIN_WINDOW_CLOSED, WRONG_STATION, WRONG_CONNECTOR, NO_CONNECTOR_FREE; 422 CONNECTOR_CODE_REQUIRED, CONNECTOR_CODE_TAMPERED, CONNECTOR_CODE_UNKNOWN_KEY; 400 CONNECTOR_CODE_MALFORMED", "admin; backoffice (own stations); operator (assigned stations); owner (own booking, with the connector code)", Some("CheckinRequest"), Some("CheckinHandle")),
    (HttpMethod::Get, "/stations/{id}/connectors/{connectorId}/checkin-code", "The signed code to print on a connector", STAFF, None, Some("ConnectorCode")),
    (HttpMethod::Get, "/stations/{id}/connectors/{connectorId}/qr.svg", "The connector's code as an SVG QR code", STAFF, None, None),
    (HttpMethod::Get, "/stations/{id}/connectors/{connectorId}/qr.png", "The connector's code as a PNG QR code", STAFF, None, None),
    (HttpMethod::Post, "/tariffs", "Create a tariff (OCPI 2.2.1 Tariff object) and its version 1 (422 TARIFF_MALFORMED or a TARIFF_* validation code; 400 validFrom in_the_past)", "admin; backoffice (for itself)", Some("CreateTariff"), Some("TariffView")),
    (HttpMethod::Get, "/tariffs", "Tariffs with their versions", "admin; backoffice (own and shared)", None, Some("Page<TariffView>")),
    (HttpMethod::Get, "/tariffs/{id}", "A tariff with its versions", "admin; backoffice (own and shared)", None, Some("TariffView")),
    (HttpMethod::Post, "/tariffs/{id}/versions", "Add a version, in force from validFrom (409 TARIFF_VERSION_ORDER, TARIFF_VERSION_CONFLICT; 422 TARIFF_*)", "admin; backoffice (own tariffs)", Some("NewVersion"), Some("TariffView")),
    (HttpMethod::Put, "/stations/{id}/tariff", "Assign a tariff to the station from validFrom, optionally for one connector type (409 TARIFF_NOT_USABLE, TARIFF_ASSIGNMENT_EXISTS)", "admin; backoffice (own stations)", Some("AssignTariff"), Some("Assignment")),
    (HttpMethod::Get, "/stations/{id}/tariffs", "The station's tariff assignments, oldest first", "admin; backoffice (own stations)", None, Some("Vec<Assignment>")),
    (HttpMethod::Get, "/invoices", "Invoices and credit notes, newest first (?sessionId &stationId &ownerId)", "admin; backoffice (issued by it); owner (billed to them)", None, Some("Page<InvoiceView>")),
    (HttpMethod::Get, "/invoices/{id}", "An invoice or credit note: number, parties, session, lines, VAT per rate, totals", "admin; backoffice (issued by it); owner (billed to them)", None, Some("InvoiceView")),
    (HttpMethod::Get, "/invoices/{id}/html", "The printable document (text/html, self-contained)", "admin; backoffice (issued by it); owner (billed to them)", None, None),
    (HttpMethod::Post, "/invoices/{id}/credit-note", "Cancel an invoice in full with a credit note (409 INVOICE_ALREADY_CREDITED, NOT_AN_INVOICE)", "admin; backoffice (issued by it)", Some("CreditRequest"), Some("InvoiceView")),
    (HttpMethod::Get, "/audit-events", "Audit trail (?entityType &entityId &action &actorId &actorRole &from &to)", "admin", None, Some("Page<AuditEventView>")),
    (HttpMethod::Get, "/notifications", "The caller's notifications", "every role", None, Some("Page<Notification>")),
    (HttpMethod::Post, "/stations/{id}/maintenance-windows", "Schedule maintenance of the station or one connector: its slots stop being offered, the charger is set Inoperative for the window (400 field errors; 422 UNKNOWN_CONNECTOR; 409 MAINTENANCE_WINDOW_OVERLAPS, MAINTENANCE_CONFLICTS_BOOKINGS listing the bookings in errors unless moveBookings)", STAFF, Some("CreateWindow"), Some("CreatedWindow")),
    (HttpMethod::Get, "/stations/{id}/maintenance-windows", "The station's current and future maintenance windows (?past=true: all)", STAFF, None, Some("Vec<MaintenanceWindow>")),
    (HttpMethod::Get, "/maintenance-windows/{id}", "A maintenance window with its charger state (applied times, attempts, last error)", STAFF, None, Some("MaintenanceWindow")),
    (HttpMethod::Delete, "/maintenance-windows/{id}", "Cancel a window before its start, or end a running one now (Operative sent at once) (409 MAINTENANCE_WINDOW_ENDED, MAINTENANCE_WINDOW_CANCELLED)", STAFF, None, Some("MaintenanceWindow")),
    (HttpMethod::Get, "/alerts", "Operator alerts: reservations refused or unreachable, booking tokens refused, Faulted connectors, charger faults, security events, chargers offline too long (?stationId &status=Open|Acknowledged|Resolved)", STAFF, None, Some("Page<Alert>")),
    (HttpMethod::Get, "/alerts/{id}", "One alert with its lifecycle (who acknowledged and resolved it, when)", STAFF, None, Some("Alert")),
    (HttpMethod::Post, "/alerts/{id}/acknowledge", "Acknowledge an open alert (409 ALERT_ALREADY_ACKNOWLEDGED, ALERT_RESOLVED)", STAFF, None, Some("Alert")),
    (HttpMethod::Post, "/alerts/{id}/resolve", "Resolve an alert, with an optional note (409 ALERT_RESOLVED)", STAFF, Some("ResolveRequest"), Some("Alert")),
    (HttpMethod::Get, "/inbox", "The operator's day: Approved and CheckedIn bookings starting on one local day (?date=YYYY-MM-DD, default each station's today, in the station's time zone) at every station the caller handles (?stationId), with counts and unresolved alerts; at most 100 stations (truncated)", STAFF, None, Some("Inbox")),
    (HttpMethod::Get, "/recommendations", "Free slots starting within ?hours (1-168, default 48) of ?after (default now) at bookable stations within ?radiusKm of ?lat&lon that fit ?vehicleId's connector types, ranked by predicted availability (the station's booked share at that local weekday and hour over the last 8 weeks) and distance, each with its reason (?limit 1-50)", "owner", None, Some("Vec<Recommendation>")),
    (HttpMethod::Get, "/reports/summary", "KPIs of the caller's stations over local dates (?from&to YYYY-MM-DD inclusive, default the last 30 days, at most 366; ?stationId; ?format=csv): bookings by status, approvals, check-in/completion/no-show rates, revenue per currency, sessions, energy, average session, availability from the status history", STAFF, None, Some("Summary")),
    (HttpMethod::Get, "/reports/timeseries", "A time series (?metric=bookings|revenue|energy &interval=day|week|month &from&to&stationId&format=csv), every period of the range included, each row in its station's time zone", STAFF, None, Some("TimeSeries")),
    (HttpMethod::Get, "/reports/utilization", "Per station and local day: reserved units against capacity, and occupancy from connector statuses (?from&to&stationId&format=csv)", STAFF, None, Some("Utilization")),
    (HttpMethod::Get, "/reports/occupancy-heatmap", "Reserved share of capacity by local weekday and hour (?from&to&stationId&format=csv)", STAFF, None, Some("OccupancyHeatmap")),
];

/// The document.
pub fn document() -> Doc {
    // Every `{id}` and `{connectorId}` here is numeric (`Path<i64>`); `{nic}` is text.
    let mut doc = service_kit::openapi::document_with(Schemas::openapi(), "/api/v1", ROUTES, &["id", "connectorId"]);
    describe_images(&mut doc);
    doc
}

/// The route table speaks JSON only: the QR endpoints answer 200 with an image instead.
fn describe_images(doc: &mut Doc) {
    use utoipa::openapi::{ContentBuilder, ObjectBuilder, ResponseBuilder, Type};
    for (path, item) in doc.paths.paths.iter_mut() {
        let media = if path.ends_with("/qr.svg") {
            "image/svg+xml"
        } else if path.ends_with("/qr.png") {
            "image/png"
        } else {
            continue;
        };
        let Some(op) = item.get.as_mut() else { continue };
        op.responses.responses.remove("204");
        let body =
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Binary,
                )));
        let response = ResponseBuilder::new()
            .description("The QR code")
            .content(media, ContentBuilder::new().schema(Some(body)).build())
            .build();
        op.responses.responses.insert("200".into(), response.into());
    }
}

/// `GET /openapi.json` and `GET /docs` with its script (public).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(document()) }))
        .merge(service_kit::api_docs::router("EVCS booking API", "/api/v1"))
}

//! # booking-api: stations, slots and bookings for EV owners, operators and their businesses
//!
//! ## Layout
//! Organised by feature; each holds its thin HTTP handlers, its rules as plain functions with
//! unit tests, and its queries (written once for SQLite and PostgreSQL through
//! [`service_kit::db`]).
//! - [`accounts`]: login/refresh/logout, owners, BackOffice applications, operators and their
//!   station scope, admins, the first admin ([`bootstrap_admin`]).
//! - [`vehicles`]: an owner's vehicles.
//! - [`stations`]: stations, schedules ([`stations::schedule`]), deactivation guard, nearby search.
//! - [`chargers`]: the projection of the central system's bus events (chargers, connector
//!   statuses), its consumer, the rule that links stations to chargers, `GET /chargers`.
//! - [`slots`]: the slot inventory and its atomic reserve/release.
//! - [`bookings`]: the state machine and policies ([`bookings::rules`]), idempotent creation.
//! - [`sessions`]: charging sessions kept from the charger's transaction events and meter
//!   summaries (reconciled in any order), their receipts, the operator's finalize.
//! - [`live`]: the live WebSocket (`/api/v1/live`): sequence numbers, resume buffer, bounds.
//! - [`inbox`]: the operator's day (`GET /inbox`): each station's bookings of one local day.
//! - [`checkin`]: QR check-in: signed single-use tokens, connector codes, RemoteStart.
//! - [`reservations`]: bookings on the charger: the booking's id token pushed to the central
//!   system, ReserveNow at the lead time, cancellations, operator alerts (`GET /alerts`).
//! - [`billing`]: OCPI tariffs and the pricing engine (pure functions: money, periods, lines).
//! - [`maintenance`]: maintenance windows: blocked inventory, bookings moved out of the way,
//!   connectors set Inoperative on the charger for the window (ChangeAvailability).
//! - [`recommendations`]: free slots for an owner's vehicle nearby, ranked by predicted
//!   availability (the station's history at that local hour) and distance, with reasons.
//! - [`reports`]: KPIs, time series, utilization and the occupancy heatmap for staff, per
//!   station time zone, as JSON or CSV, from bookings, sessions, invoices and the status history.
//! - [`audit`], [`notifications`]: the trail of every change and the notification outbox.
//! - [`api`]: routing, roles and claims ([`api::auth`]), OpenAPI; [`validate`]: domain newtypes.
//! - [`app`]: builds the state, runs the server and the background workers; [`config`]; [`clock`];
//!   [`metrics`]: Prometheus metrics, with a request id on every request (service-kit).

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod billing;
pub mod bookings;
pub mod chargers;
pub mod checkin;
pub mod clock;
pub mod config;
pub mod inbox;
pub mod live;
pub mod maintenance;
pub mod metrics;
pub mod notifications;
pub mod recommendations;
pub mod reports;
pub mod reservations;
pub mod sessions;
pub mod slots;
pub mod stations;
pub mod validate;
pub mod vehicles;

pub use accounts::{bootstrap_admin, AdminCredentials};
pub use app::{AppState, Application, Parts};
pub use config::{Config, Policy};

/// Runs the service until Ctrl-C or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    service_kit::shutdown::cancel_on_signal(app.state().shutdown.clone());
    app.run_until_stopped().await
}

/// Creates the first admin of the configured database when it has none, and returns its
/// generated credentials (None when an admin exists). For a host such as `evcs` that prints
/// them itself before [`Application::build`], which then finds the admin and prints nothing.
pub async fn initial_admin(config: &Config) -> anyhow::Result<Option<AdminCredentials>> {
    let db = service_kit::db::Db::connect(&config.database_url(), app::MIGRATIONS).await?;
    let passwords = service_kit::password::Passwords::new(&config.passwords.config())?;
    let created = bootstrap_admin(
        &db,
        &passwords,
        &config.admin_email,
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    db.close().await;
    created
}

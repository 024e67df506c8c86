//! # central-system: the OCPP 1.6J / 2.0.1 CSMS
//!
//! ## Layout
//! - [`config`]: flags and environment variables.
//! - [`app`]: builds the state and routes, runs until stopped, drains on shutdown.
//! - [`server`]: the TCP/TLS accept loop with a connection limit; [`tls`] builds rustls configs.
//! - [`ocpp_ws`]: the `/ocpp/{stationId}` upgrade (subprotocol, authentication), one session
//!   task per charger, the registry of connected stations and outbound command dispatch.
//! - [`handlers`]: what each charger-initiated message does, per version.
//! - [`store`]: one query path over SQLite and PostgreSQL, plus the meter/frame batch writer.
//! - [`api`]: the operator REST API, health and metrics endpoints, OpenAPI document.
//! - [`auth`]: operator JWTs, station passwords, Basic-auth parsing.
//! - [`certificates`]: the station CA, SignCertificate/CertificateSigned, renewal.
//! - [`smart_charging`]: ISO 15118 charging needs (K15-K17): profiles computed from the EV's
//!   needs and the site's limits, EV schedules checked, renegotiation.
//! - [`metrics`]: Prometheus metrics.
//! - [`bus`]: this node's event and command bus (in-process or MQTT); [`bus_commands`]
//!   answers the bus commands of the stations connected here, through the same typed command
//!   path as the operator REST API.
//!
//! The flow of a charger message: socket text -> [`ocpp::Frame::parse`] -> direction and
//! boot-state checks -> [`ocpp::schema::validate`] -> typed payload -> version-neutral model ->
//! storage (readings through the batch writer) -> CALLRESULT, or a CALLERROR whose code the
//! connection's version defines.

pub mod api;
pub mod app;
pub mod auth;
pub mod bus;
pub mod bus_commands;
pub mod certificates;
pub mod config;
pub mod handlers;
pub mod metrics;
pub mod ocpp_ws;
pub mod outbox;
pub mod secrets;
pub mod server;
pub mod smart_charging;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use app::{AppState, Application};
pub use config::Config;

/// Runs the service until Ctrl-C or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    service_kit::shutdown::cancel_on_signal(app.state().shutdown.clone());
    app.run_until_stopped().await
}

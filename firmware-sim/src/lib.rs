//! # firmware-sim: simulated OCPP 1.6J / 2.0.1 charging stations
//!
//! ## Layout
//! - [`spec`]: what a station is (flags or a TOML station file).
//! - [`transport`]: its WebSocket (ws/wss, Basic auth, client certificates, subprotocol).
//! - [`charger`]: the firmware: sessions, meters, smart charging, reservations, configuration,
//!   the offline queue, reconnects; driven by controls, observed through events.
//! - [`run`]: the `run` subcommand: stations from flags or a file, automatic sessions, stdin
//!   control, the frame log.
//! - [`scenario`]: the `scenario` subcommand: scripted steps with assertions and a verdict.
//! - [`load`]: the `load` subcommand: thousands of lean stations and a latency report.
//! - [`answer`]: the `answer` subcommand: a server that only answers, to measure `load` itself.

pub mod answer;
pub mod charger;
pub mod load;
pub mod run;
pub mod scenario;
pub mod spec;
pub mod transport;

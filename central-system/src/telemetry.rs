//! Logging set-up, shared with the booking API.

pub use service_kit::telemetry::init;

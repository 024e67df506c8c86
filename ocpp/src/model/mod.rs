//! The version-neutral model: what happened at a charger, whatever OCPP version it speaks.
//!
//! Handlers convert typed 1.6 / 2.0.1 payloads into these types ([`from_v16`], [`from_v201`]);
//! storage, the REST API and the bus only ever see these.

pub mod events;
pub mod from_v16;
pub mod from_v201;
pub mod meter;

pub use events::*;
pub use meter::{Sample, Unit};

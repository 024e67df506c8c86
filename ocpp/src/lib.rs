//! # ocpp: the OCPP-J wire layer shared by every service of the project
//!
//! ## Layout
//! - [`version`]: the two versions and subprotocol negotiation.
//! - [`frame`]: RPC frames (CALL, CALLRESULT, CALLERROR), parsed strictly and written exactly.
//! - [`error_code`]: version-neutral faults and their per-version CALLERROR spelling.
//! - [`catalogue`]: every action of each version and who may send it.
//! - [`schema`]: validation of payloads against the official OCA JSON schemas (vendored under
//!   `schemas/`) plus the semantic checks the schemas cannot express.
//! - [`messages`]: typed payloads (`rust-ocpp` for 1.6 and 2.0.1, our own for the 1.6 security
//!   extension).
//! - [`commands`]: the version-neutral commands to stations, their one translation to each
//!   version and the one reading of the answers.
//! - [`model`]: the version-neutral events the rest of the system consumes, with conversions from
//!   both versions and meter-value normalisation.
//!
//! The pipeline for an inbound text is: [`Frame::parse`] -> [`schema::validate`] -> typed
//! deserialisation -> [`model`] conversion. Each step reports a [`Violation`] that maps to the
//! exact CALLERROR code of the connection's version.

pub mod catalogue;
pub mod commands;
pub mod error_code;
pub mod fast_path;
pub mod frame;
pub mod messages;
pub mod model;
pub mod schema;
pub mod version;

pub use error_code::{ErrorCode, Fault, Violation};
pub use frame::{Call, CallError, CallResult, Frame, FrameError};
pub use version::Version;

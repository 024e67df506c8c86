//! Typed payloads of both versions.
//!
//! 1.6 and 2.0.1 come from `rust-ocpp`, re-exported so that the rest of the workspace names one
//! path and one pinned version. `rust-ocpp` has no 1.6 security-extension messages, so those are
//! ours, in [`v16_security`], written from the vendored schemas.
//!
//! These types check little by themselves (unknown fields are ignored, most 2.0.1 limits are not
//! enforced): deserialise only payloads that passed [`crate::schema::validate`].

/// OCPP 1.6 payload types (`rust-ocpp`), without the security extension.
pub use rust_ocpp::v1_6 as v16;
/// OCPP 2.0.1 payload types (`rust-ocpp`).
pub use rust_ocpp::v2_0_1 as v201;

pub mod v16_security;

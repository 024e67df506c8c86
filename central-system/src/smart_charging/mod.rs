//! ISO 15118 smart charging (OCPP 2.0.1 K15-K17): the CSMS's side of the negotiation between an
//! EV, its station and the site.
//!
//! # Layout
//! - [`needs`]: NotifyEVChargingNeeds read and checked (pure).
//! - [`curve`], [`plan`]: limits over time and the TxProfile computed from the needs and the
//!   station's and site's limits (pure, unit-tested).
//! - [`check`]: the EV's schedule (NotifyEVChargingSchedule) against the profile sent (pure).
//! - [`negotiation`]: storage and delivery around them: answers, SetChargingProfile, and
//!   renegotiation (K16 by the operator, or after an EV schedule that did not fit).
//!
//! # The flow
//! NotifyEVChargingNeeds on an EVSE with an Active transaction is answered `Accepted` once the
//! profile is computed and stored (computation is synchronous and cheap, so `Processing` is
//! never needed); SetChargingProfile follows from a task of its own, queued behind that answer
//! on the station's connection. The EV's schedule is then checked: `Accepted` when it never
//! exceeds the profile, else `Rejected` and a new profile is sent (K15.FR.13, K16.FR.08,
//! K17.FR.13), at most [`negotiation::AUTOMATIC_RENEGOTIATIONS`] times per needs. A new
//! NotifyEVChargingNeeds in the same transaction is the EV renegotiating (K17): the same path.

pub mod check;
pub mod curve;
pub mod needs;
pub mod negotiation;
pub mod plan;

pub use crate::handlers::rfc3339;

//! Billing: tariffs on the OCPI 2.2.1 model, priced from a session's meter readings.
//!
//! # Layout
//! - [`money`]: currencies, integer minor units, the rounding rules (written down there).
//! - [`tariff`]: the OCPI tariff object and its validation into a [`tariff::ValidTariff`], with
//!   a machine-readable code per problem.
//! - [`periods`]: meter readings and status history into charging periods, split at every price
//!   boundary (time of day and midnight in the station's zone, DST, kWh and duration thresholds).
//! - [`engine`]: periods priced into explained lines, step sizes, plan discounts, min/max price,
//!   VAT per rate and totals.
//! - [`store`]: versioned tariffs and station assignments (migration 0007), append-only.
//! - [`cost`]: a session's cost (receipt, live) by the tariff version in force at its start.
//! - [`http`]: `/tariffs`, `/tariffs/{id}/versions`, `/stations/{id}/tariff(s)`.
//! - [`invoices`]: an invoice per completed session, credit notes, gap-free numbering per
//!   BackOffice, `/invoices` (JSON and printable HTML); a worker issues them.
//!
//! Money, tariff, periods and engine are pure functions: no clock, no database. The same call prices a session
//! that is still running (end = now) and one that has finished.

pub mod cost;
pub mod engine;
pub mod http;
pub mod invoices;
pub mod money;
pub mod periods;
pub mod store;
pub mod tariff;

#[cfg(test)]
mod tests;

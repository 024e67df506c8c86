//! Events onto the bus through the outbox (issue 11 §2).
//!
//! - The rows are written by the store, in the database transaction of the change they report
//!   (`crate::store::outbox`); readings' summaries go with the batch writer's commit.
//! - [`summaries`]: the latest meter values per transaction, so readings cross the bus as one
//!   `meterSummary` per transaction at a cadence and at every transaction event.
//! - [`publisher`]: the task that sends unsent rows in order and marks them sent once the bus
//!   acknowledged them (at least once: consumers deduplicate on the event id).

pub mod publisher;
pub mod summaries;

pub use publisher::{Publisher, PublisherConfig, PublisherStats};
pub use summaries::{MeterSnapshot, MeterSummaries};

//! The bus between the central system and the booking API.
//!
//! - [`contract`]: versioned events, commands and replies (plain serde, camelCase JSON);
//! - [`StationId`]: the one station-id rule both services share, and its topic encoding;
//! - [`Bus`]: publish events, consume them in groups, send commands and serve them;
//! - [`InProcBus`] (tokio channels, the all-in-one default) and [`MqttBus`] (MQTT 5).
//!
//! # Topics (MQTT)
//! - `{prefix}/v1/events/{station}/{kind}`: events, QoS 1; `{station}` is
//!   [`StationId::topic_level`], `{kind}` is [`Event::kind`]. Consumers subscribe to
//!   `$share/{group}/{prefix}/v1/events/+/+`.
//! - `{prefix}/v1/commands/{station}`: commands, QoS 1, with a message expiry equal to the
//!   caller's timeout, a response topic and correlation data (the command id).
//! - `{prefix}/v1/replies/{client}`: replies, one topic per sending client.

pub mod contract;
mod dedup;
mod inproc;
mod mqtt;
mod station_id;
mod transport;

pub use contract::{Command, CommandEnvelope, CommandReply, Event, EventEnvelope, Location, ReplyEnvelope};
pub use dedup::Dedup;
pub use inproc::InProcBus;
pub use mqtt::{MqttBus, MqttConfig};
pub use station_id::{InvalidStationId, StationId, MAX_STATION_ID_LEN};
pub use transport::{command, BoxFuture, Bus, BusError, CommandServer, EventStream, IncomingCommand};

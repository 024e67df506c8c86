//! The OCPP WebSocket endpoint: upgrade and authentication, per-station sessions and the
//! registry through which commands reach them.

pub mod commands;
pub mod pending;
pub mod registry;
pub mod security_profile;
pub mod session;
pub mod upgrade;

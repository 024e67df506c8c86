//! Authentication: operator JWTs, station passwords (argon2id) and HTTP Basic parsing.

pub mod basic;
pub mod jwt;
pub use service_kit::password;

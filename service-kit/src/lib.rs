//! # service-kit: what the central system and the booking API both build on
//!
//! ## Layout
//! - [`db`]: a pool of either SQLite or PostgreSQL ([`db::Db`]) and the [`on_db!`] macro that
//!   writes each query once for both, migrations applied at connect, [`db::StoreError`].
//! - [`sql_types`]: column types that decode the same on both backends ([`sql_types::Ts`],
//!   [`sql_types::Flag`]).
//! - [`problem`]: RFC 9457 `application/problem+json` errors with a stable `code` and field-level
//!   details.
//! - [`extract`]: JSON body and query extractors whose rejections are problems, and the 404/405
//!   fallbacks.
//! - [`page`]: cursor pagination; [`request_id`]: an id on every request, its logs and response.
//! - [`password`]: argon2id hashing and verification through a bounded pool.
//! - [`server`]: the accept loop: connection limit, header/idle timeout, peer address, the
//!   open-file limit.
//! - [`jwt`]: HS256 tokens over any claims type.
//! - [`secrets`]: secrets generated on first start and kept in the data directory.
//! - [`telemetry`]: text or JSON logs; [`shutdown`]: the stop signal; [`health`]: `/ready`.
//! - [`openapi`]: an OpenAPI document from derived schemas and a route table; [`api_docs`]: the
//!   reference page over it, its viewer script compiled in.
//! - [`test_db`]: fresh PostgreSQL databases for tests.
//!
//! Everything here is service-neutral: roles, claims and routes stay in each service.

pub mod api_docs;
pub mod db;
pub mod extract;
pub mod health;
pub mod jwt;
pub mod openapi;
pub mod page;
pub mod password;
pub mod problem;
pub mod request_id;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod sql_types;
pub mod telemetry;
pub mod test_db;

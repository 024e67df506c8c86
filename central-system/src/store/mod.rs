//! Storage: one query code path over SQLite (embedded default) and PostgreSQL (production).
//!
//! Every query is written once with `$n` placeholders and portable SQL, and run through
//! [`on_db!`], which expands the same code for each pool type. Timestamps are BIGINT
//! milliseconds (UTC), flags BIGINT 0/1 and energy BIGINT Wh, because those types decode the
//! same way on both backends (the pitfalls of sqlx's `Any` driver are avoided on purpose).

pub mod certificates;
pub mod charging_needs;
pub mod command_ids;
pub mod frames;
pub mod id_tokens;
pub mod messages;
pub mod meter_values;
pub mod outbox;
pub mod retention;
pub mod stations;
pub mod transactions;
pub use service_kit::sql_types as types;
pub mod writer;

use service_kit::db::Migrations;
pub use service_kit::db::{on_db, Db, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/central-system/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/central-system/postgres");

/// The storage handle shared by the whole service.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// Woken after a commit that wrote outbox rows, so the publisher sends them at once.
    outbox_wake: Arc<Notify>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let db = Db::connect(
            url,
            Migrations {
                sqlite: &SQLITE_MIGRATIONS,
                postgres: &POSTGRES_MIGRATIONS,
            },
        )
        .await?;
        Ok(Store {
            db,
            outbox_wake: Arc::default(),
        })
    }

    /// Opens a second pool of at most `max_connections` on an already migrated database.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        Ok(Store {
            db: Db::open(url, max_connections).await?,
            outbox_wake: Arc::default(),
        })
    }

    /// Shares `wake` as this handle's outbox signal (the batch writer's own pool wakes the
    /// service's publisher).
    pub fn with_outbox_wake(mut self, wake: Arc<Notify>) -> Store {
        self.outbox_wake = wake;
        self
    }

    /// Notified after every commit that wrote outbox rows.
    pub fn outbox_wake(&self) -> &Arc<Notify> {
        &self.outbox_wake
    }

    /// The underlying pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Which backend this is (`sqlite` or `postgres`), for logs and readiness.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// A trivial query, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    /// Closes the pool after in-flight queries finish.
    pub async fn close(&self) {
        self.db.close().await
    }
}

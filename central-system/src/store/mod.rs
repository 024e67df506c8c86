//! Storage: one query code path over SQLite (embedded default) and PostgreSQL (production).
//!
//! Every query is written once with `$n` placeholders and portable SQL, and run through
//! [`on_db!`], which expands the same code for each pool type. Timestamps are BIGINT
//! milliseconds (UTC), flags BIGINT 0/1 and energy BIGINT Wh, because those types decode the
//! same way on both backends (the pitfalls of sqlx's `Any` driver are avoided on purpose).

pub mod frames;
pub mod id_tokens;
pub mod messages;
pub mod meter_values;
pub mod stations;
pub mod transactions;
pub mod types;
pub mod writer;

use anyhow::Context;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite file.
    Sqlite(SqlitePool),
    /// PostgreSQL server.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, so one piece of query code serves both.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub use on_db;

/// Storage errors that callers treat differently from failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. a station id that already exists).
    #[error("already exists")]
    Conflict,
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// Anything else: the database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Maps unique violations to [`StoreError::Conflict`], in one place for both backends.
    pub fn from_sqlx(err: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
        }
        StoreError::Database(err)
    }
}

/// The storage handle shared by the whole service.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let db = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::migrate!("../migrations/central-system/postgres")
                .run(&pool)
                .await
                .context("migrating the PostgreSQL database")?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite URL")?
                .create_if_missing(true)
                // WAL lets readers (REST) run while the meter batch writer commits.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // A 64 MiB page cache keeps big meter batches from spilling mid-transaction, and
                // statement journals in memory spare a temp-file write per INSERT statement.
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            if let Some(parent) = std::path::Path::new(options.get_filename()).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            sqlx::migrate!("../migrations/central-system/sqlite")
                .run(&pool)
                .await
                .context("migrating the SQLite database")?;
            Db::Sqlite(pool)
        } else {
            anyhow::bail!("unsupported database URL (expected sqlite:// or postgres://): {url}");
        };
        Ok(Store { db })
    }

    /// The underlying pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Which backend this is (`sqlite` or `postgres`), for logs and readiness.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A trivial query, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool after in-flight queries finish.
    pub async fn close(&self) {
        on_db!(&self.db, |pool| pool.close().await)
    }
}

//! One query code path over SQLite (embedded default) and PostgreSQL (production).
//!
//! Every query is written once with `$n` placeholders and portable SQL, and run through
//! [`on_db!`], which expands the same code for each pool type. Timestamps are BIGINT
//! milliseconds (UTC), flags BIGINT 0/1, because those types decode the same way on both
//! backends (the pitfalls of sqlx's `Any` driver are avoided on purpose).

use anyhow::Context;
use sqlx::migrate::Migrator;
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
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub use on_db;

/// Storage errors that callers treat differently from failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an id that already exists).
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

/// The migrations of one service, one folder per backend (`sqlx::migrate!` of each).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Applied to SQLite databases.
    pub sqlite: &'static Migrator,
    /// Applied to PostgreSQL databases.
    pub postgres: &'static Migrator,
}

/// Whether a SQLite URL names an in-memory database that each connection would get its own
/// copy of (one without a shared cache).
fn is_private_memory_database(url: &str) -> bool {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    memory && !url.contains("cache=shared")
}

/// Takes the `synchronous` parameter (`normal`, the default, or `full`; also `extra`, `off`) out
/// of a SQLite URL, since sqlx refuses parameters it does not know. FULL fsyncs the WAL at every
/// commit, so a committed (and acknowledged) write survives power loss; NORMAL only survives a
/// crash of the process.
fn sqlite_synchronous(url: &str) -> anyhow::Result<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SqliteSynchronous::Normal));
    };
    let mut synchronous = SqliteSynchronous::Normal;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = SqliteSynchronous::from_str(value)
                    .map_err(|_| anyhow::anyhow!("unknown SQLite synchronous setting {value:?}"))?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, synchronous))
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies the service's migrations.
    pub async fn connect(url: &str, migrations: Migrations) -> anyhow::Result<Db> {
        let db = Db::open(url, 16).await?;
        match &db {
            Db::Postgres(pool) => migrations
                .postgres
                .run(pool)
                .await
                .context("migrating the PostgreSQL database")?,
            Db::Sqlite(pool) => migrations
                .sqlite
                .run(pool)
                .await
                .context("migrating the SQLite database")?,
        }
        Ok(db)
    }

    /// Opens a pool of at most `max_connections` without touching the schema: for a second pool
    /// on a database that [`Db::connect`] has already migrated (e.g. a writer on its own thread).
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            if is_private_memory_database(url) {
                anyhow::bail!(
                    "an in-memory SQLite database is private to each connection, so the service's \
                     connections would not see each other's data: use a file, or \
                     sqlite:file:NAME?mode=memory&cache=shared"
                );
            }
            let (url, synchronous) = sqlite_synchronous(url)?;
            let options = SqliteConnectOptions::from_str(&url)
                .context("parsing the SQLite URL")?
                .create_if_missing(true)
                // WAL lets readers run while a writer commits.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // A 64 MiB page cache keeps big batches from spilling mid-transaction, and
                // statement journals in memory spare a temp-file write per INSERT statement.
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            let file = std::path::Path::new(options.get_filename());
            if let Some(parent) = file.parent() {
                if !parent.as_os_str().is_empty() {
                    create_private_dir(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
            }
            if !url.contains(":memory:") && !url.contains("mode=memory") {
                // SQLite gives the -wal and -shm files the database file's permissions, so
                // creating it owner-only covers all three.
                create_private_file(file).with_context(|| format!("creating {}", file.display()))?;
            }
            // SQLite has one writer at a time; more connections only serve concurrent readers.
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.min(8))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            Ok(Db::Sqlite(pool))
        } else {
            anyhow::bail!("unsupported database URL (expected sqlite:// or postgres://): {url}");
        }
    }

    /// Which backend this is (`sqlite` or `postgres`), for logs and readiness.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A trivial query, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool after in-flight queries finish.
    pub async fn close(&self) {
        on_db!(self, |pool| pool.close().await)
    }
}

/// Creates `dir` and its missing parents, owner-only (0700 on Unix) where this creates them;
/// an existing directory is left as it is (it may be shared on purpose).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` empty and owner-only (0600 on Unix) unless it exists.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// An open transaction of either backend; [`on_tx!`] runs one piece of query code on it.
#[derive(Debug)]
pub enum Tx {
    /// SQLite transaction.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut` of the backend's
/// connection type), so helpers that join a caller's transaction are written once.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub use on_tx;

impl Db {
    /// Starts a transaction meant to write. On SQLite it is `BEGIN IMMEDIATE`: the write lock
    /// is taken (waiting up to the busy timeout) before the first read, because a deferred
    /// transaction that reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT when
    /// another writer committed in between.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    /// Rolls back (dropping a transaction also rolls it back).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_in_memory_sqlite_is_refused_and_shared_memory_is_not() {
        assert!(is_private_memory_database("sqlite::memory:"));
        assert!(is_private_memory_database("sqlite://file:db?mode=memory"));
        assert!(!is_private_memory_database("sqlite:file:db?mode=memory&cache=shared"));
        assert!(!is_private_memory_database("sqlite://./data/central-system.db"));
    }

    /// The data dir, the database and its WAL and shared-memory files are the owner's only.
    #[cfg(unix)]
    #[tokio::test]
    async fn database_files_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let file = dir.join("x.db");
        let db = Db::open(&format!("sqlite://{}", file.display()), 2)
            .await
            .expect("open");
        on_db!(&db, |pool| {
            sqlx::query("CREATE TABLE t (x BIGINT)")
                .execute(pool)
                .await
                .expect("create");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(pool)
                .await
                .expect("insert");
        });
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in ["x.db", "x.db-wal", "x.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        db.close().await;
    }

    #[tokio::test]
    async fn the_synchronous_parameter_sets_the_pragma_and_is_not_passed_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sync.db");
        for (param, pragma) in [("", 1_i64), ("?synchronous=full", 2), ("?mode=rwc&synchronous=FULL", 2)] {
            let url = format!("sqlite://{}{param}", path.display());
            let Db::Sqlite(pool) = Db::open(&url, 1).await.expect("open") else {
                panic!("not SQLite");
            };
            let got: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .expect("pragma");
            assert_eq!(got, pragma, "{url}");
            pool.close().await;
        }
        assert!(
            Db::open(&format!("sqlite://{}?synchronous=sometimes", path.display()), 1)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn opening_a_private_in_memory_database_says_why_it_cannot() {
        let err = Db::open("sqlite::memory:", 2).await.expect_err("refused");
        assert!(err.to_string().contains("cache=shared"), "{err}");
    }

    /// The advice in the error works: two pools on the same shared-cache name see one database.
    #[tokio::test]
    async fn a_shared_in_memory_database_is_one_database_for_every_pool() {
        let url = "sqlite:file:service_kit_shared?mode=memory&cache=shared";
        let (Db::Sqlite(a), Db::Sqlite(b)) = (Db::open(url, 2).await.expect("a"), Db::open(url, 2).await.expect("b"))
        else {
            panic!("not SQLite");
        };
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&a)
            .await
            .expect("create");
        sqlx::query("INSERT INTO t VALUES (7)")
            .execute(&a)
            .await
            .expect("insert");
        let x: i64 = sqlx::query_scalar("SELECT x FROM t").fetch_one(&b).await.expect("read");
        assert_eq!(x, 7);
    }
}

//! Fresh PostgreSQL databases for tests: one per test server, dropped afterwards.

use sqlx::Connection;

/// Creates a database named `{prefix}_{random}` on the server of `base`; returns its URL and
/// name. Panics when the server is unreachable: a test asked for PostgreSQL must fail, not skip.
pub async fn create(base: &str, prefix: &str) -> (String, String) {
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("a PostgreSQL test URL is set but the server is unreachable at {base}: {e}"));
    let name = format!("{prefix}_{}", rand::random::<u64>());
    if let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await {
        panic!("creating the test database {name}: {e}");
    }
    let _ = conn.close().await;
    let url = match base.rsplit_once('/') {
        Some((server, db)) if !server.ends_with('/') => {
            let query = db.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            format!("{server}/{name}{query}")
        }
        _ => format!("{}/{name}", base.trim_end_matches('/')),
    };
    (url, name)
}

/// Drops a database [`create`] made (best effort).
pub async fn drop(base: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

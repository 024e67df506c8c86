//! Check-in token queries. Only a token's SHA-256 is stored.

use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};

/// A stored token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredToken {
    pub booking_id: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Records an issued token (its hash).
pub async fn insert(
    db: &Db,
    token_hash: &str,
    booking_id: i64,
    key_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO checkin_tokens (token_hash, booking_id, key_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(booking_id)
        .bind(key_id)
        .bind(expires_at)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// The stored token with this hash.
pub async fn get(db: &Db, token_hash: &str) -> Result<Option<StoredToken>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as("SELECT booking_id, expires_at, used_at FROM checkin_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await
    })?)
}

/// Marks the token used, inside the check-in's transaction; false when it was already used
/// (the conditional update lets exactly one of two concurrent scans win).
pub async fn consume(tx: &mut Tx, token_hash: &str, by: i64, now: i64) -> Result<bool, sqlx::Error> {
    let r = on_tx!(tx, |conn| {
        sqlx::query("UPDATE checkin_tokens SET used_at = $2, used_by = $3 WHERE token_hash = $1 AND used_at IS NULL")
            .bind(token_hash)
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Stores the remote-start id the check-in sends with RemoteStart.
pub async fn set_remote_start_id(tx: &mut Tx, booking_id: i64, remote_start_id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE bookings SET remote_start_id = $2 WHERE id = $1")
            .bind(booking_id)
            .bind(remote_start_id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

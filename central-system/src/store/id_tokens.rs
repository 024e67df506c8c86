//! Id tokens the central system authorises (RFID cards, app tokens, ...).

use super::types::Ts;
use super::{on_db, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// A stored id token.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdTokenRecord {
    /// The token value.
    pub id_token: String,
    /// 2.0.1 token type (`ISO14443`, `Central`, ...).
    #[serde(rename = "type")]
    pub token_type: String,
    /// `Accepted`, `Blocked`, `Expired` or `Invalid`.
    pub status: String,
    /// After this instant the token answers `Expired`.
    pub expires_at: Option<Ts>,
    /// Group / parent token (1.6 parentIdTag, 2.0.1 groupIdToken).
    pub parent_id_token: Option<String>,
    /// The only station the token is valid at (a booking's token); absent: anywhere.
    pub station_id: Option<String>,
    /// Before this instant the token is refused (a booking's window); absent: at once.
    pub valid_from: Option<Ts>,
    /// Creation time.
    pub created_at: Ts,
    /// Last change.
    pub updated_at: Ts,
}

/// Fields of a token to create or replace.
#[derive(Debug, Clone)]
pub struct IdTokenFields {
    /// Token type.
    pub token_type: String,
    /// Status.
    pub status: String,
    /// Expiry.
    pub expires_at: Option<Ts>,
    /// Parent / group token.
    pub parent_id_token: Option<String>,
}

const COLUMNS: &str =
    "id_token, token_type, status, expires_at, parent_id_token, station_id, valid_from, created_at, updated_at";

impl Store {
    /// One token.
    pub async fn id_token(&self, token: &str) -> Result<Option<IdTokenRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM id_tokens WHERE id_token = $1");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, IdTokenRecord>(&sql)
                .bind(token)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A page of tokens ordered by value.
    pub async fn id_tokens(&self, after: Option<&str>, limit: i64) -> Result<Vec<IdTokenRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM id_tokens WHERE id_token > $1 ORDER BY id_token LIMIT $2");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, IdTokenRecord>(&sql)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Creates a token; [`StoreError::Conflict`] if it exists.
    pub async fn create_id_token(&self, token: &str, f: IdTokenFields, now: Ts) -> Result<IdTokenRecord, StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO id_tokens (id_token, token_type, status, expires_at, parent_id_token, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(token)
            .bind(&f.token_type)
            .bind(&f.status)
            .bind(f.expires_at)
            .bind(&f.parent_id_token)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        self.id_token(token).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces a token's fields; [`StoreError::NotFound`] if absent.
    pub async fn update_id_token(&self, token: &str, f: IdTokenFields, now: Ts) -> Result<IdTokenRecord, StoreError> {
        let n = on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE id_tokens SET token_type = $2, status = $3, expires_at = $4, parent_id_token = $5, updated_at = $6 \
                 WHERE id_token = $1",
            )
            .bind(token)
            .bind(&f.token_type)
            .bind(&f.status)
            .bind(f.expires_at)
            .bind(&f.parent_id_token)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.id_token(token).await?.ok_or(StoreError::NotFound)
    }

    /// Grants `token` (type `Central`, `Accepted`) at `station` only, inside
    /// `[valid_from, valid_until)`: created, or its scope and window replaced when it is already
    /// a scoped token. False, and nothing changed, when the token exists without a scope: a
    /// token the operator registered for use anywhere is never narrowed by a booking.
    pub async fn grant_scoped_token(
        &self,
        token: &str,
        station: &str,
        valid_from: Ts,
        valid_until: Ts,
        now: Ts,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO id_tokens (id_token, token_type, status, expires_at, station_id, valid_from, created_at, updated_at) \
                 VALUES ($1, 'Central', 'Accepted', $4, $2, $3, $5, $5) \
                 ON CONFLICT (id_token) DO UPDATE SET status = 'Accepted', expires_at = excluded.expires_at, \
                 station_id = excluded.station_id, valid_from = excluded.valid_from, updated_at = excluded.updated_at \
                 WHERE id_tokens.station_id IS NOT NULL",
            )
            .bind(token)
            .bind(station)
            .bind(valid_from)
            .bind(valid_until)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Withdraws a scoped token of `station`; an unscoped token or one of another station is
    /// left alone. True when one was removed.
    pub async fn revoke_scoped_token(&self, token: &str, station: &str) -> Result<bool, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM id_tokens WHERE id_token = $1 AND station_id = $2")
                .bind(token)
                .bind(station)
                .execute(pool)
                .await?
                .rows_affected()
        }) > 0)
    }

    /// Deletes a token; false if absent.
    pub async fn delete_id_token(&self, token: &str) -> Result<bool, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM id_tokens WHERE id_token = $1")
                .bind(token)
                .execute(pool)
                .await?
                .rows_affected()
        }) > 0)
    }
}

//! Account, refresh-token and operator-scope queries.

use crate::api::auth::Role;
use serde::Serialize;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// An account as stored (without its password hash).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Id.
    pub id: i64,
    /// `admin`, `backoffice`, `operator` or `owner`.
    pub role: String,
    /// `active`, `inactive`, `pending` or `rejected`.
    pub status: String,
    /// National id (owners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nic: Option<String>,
    /// Email (the login of everyone but owners).
    pub email: String,
    /// Full name.
    pub name: String,
    /// E.164 phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Business name (BackOffice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Employing BackOffice (operators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoffice_id: Option<i64>,
    /// Created.
    pub created_at: Ts,
}

impl Account {
    /// The role as an enum.
    pub fn role(&self) -> Option<Role> {
        Role::parse(&self.role)
    }
}

const COLUMNS: &str = "id, role, status, nic, email, name, phone, business_name, backoffice_id, created_at";

/// A new account.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// Role.
    pub role: Role,
    /// Initial status.
    pub status: &'a str,
    /// NIC (owners).
    pub nic: Option<&'a str>,
    /// Email.
    pub email: &'a str,
    /// Name.
    pub name: &'a str,
    /// Phone.
    pub phone: Option<&'a str>,
    /// Business (BackOffice).
    pub business_name: Option<&'a str>,
    /// Employer (operators).
    pub backoffice_id: Option<i64>,
    /// argon2id PHC string.
    pub password_hash: &'a str,
}

/// Inserts an account; a taken email or NIC is [`StoreError::Conflict`].
pub async fn insert(tx: &mut Tx, a: &NewAccount<'_>, now: i64) -> Result<i64, StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO accounts (role, status, nic, email, name, phone, business_name, backoffice_id, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(a.role.as_str())
        .bind(a.status)
        .bind(a.nic)
        .bind(a.email)
        .bind(a.name)
        .bind(a.phone)
        .bind(a.business_name)
        .bind(a.backoffice_id)
        .bind(a.password_hash)
        .bind(now)
        .fetch_one(conn)
        .await
    })
    .map_err(StoreError::from_sqlx)
}

/// One account by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// One owner by NIC.
pub async fn owner_by_nic(db: &Db, nic: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE nic = $1 AND role = 'owner'");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(nic)
        .fetch_optional(pool)
        .await)?)
}

/// The account and password hash a login identifier names: owners by NIC, others by email.
pub async fn credentials(
    db: &Db,
    nic: Option<&str>,
    email: Option<&str>,
) -> Result<Option<(Account, String)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        account: Account,
        password_hash: String,
    }
    let sql = format!(
        "SELECT {COLUMNS}, password_hash FROM accounts \
         WHERE (role = 'owner' AND nic = $1) OR (role <> 'owner' AND email = $2)"
    );
    let row: Option<Row> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(nic)
        .bind(email)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|r| (r.account, r.password_hash)))
}

/// An account's password hash.
pub async fn password_hash(db: &Db, id: i64) -> Result<Option<String>, StoreError> {
    Ok(on_db!(db, |pool| sqlx::query_scalar(
        "SELECT password_hash FROM accounts WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?)
}

/// Replaces an account's password hash; false when there is no such account.
pub async fn set_password_hash(tx: &mut Tx, id: i64, hash: &str, now: i64) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |conn| {
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Accounts of a role, optionally of a status and employer, after the cursor id, oldest first.
pub async fn list(
    db: &Db,
    role: Role,
    status: Option<&str>,
    backoffice_id: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Account>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM accounts WHERE role = $1 AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR backoffice_id = $3) AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
    );
    Ok(on_db!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(role.as_str())
            .bind(status)
            .bind(backoffice_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

/// Changes an account's status if it is currently `from`; false when it was not.
pub async fn set_status(tx: &mut Tx, id: i64, from: &[&str], to: &str, now: i64) -> Result<bool, StoreError> {
    // `from` is one or two statuses; the second defaults to the first.
    let (a, b) = (from.first().copied().unwrap_or(""), from.get(1).copied().unwrap_or(""));
    let done = on_tx!(tx, |conn| {
        sqlx::query("UPDATE accounts SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ($4, $5)")
            .bind(to)
            .bind(now)
            .bind(id)
            .bind(a)
            .bind(b)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Whether any admin exists.
pub async fn admin_exists(db: &Db) -> Result<bool, StoreError> {
    let n: i64 = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = 'admin'")
            .fetch_one(pool)
            .await
    })?;
    Ok(n > 0)
}

/// The stations an operator is assigned to.
pub async fn operator_stations(db: &Db, operator_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_scalar("SELECT station_id FROM operator_stations WHERE operator_id = $1 ORDER BY station_id")
            .bind(operator_id)
            .fetch_all(pool)
            .await
    })?)
}

/// Whether an operator is assigned to a station.
pub async fn operator_assigned(db: &Db, operator_id: i64, station_id: i64) -> Result<bool, StoreError> {
    let n: i64 = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM operator_stations WHERE operator_id = $1 AND station_id = $2")
            .bind(operator_id)
            .bind(station_id)
            .fetch_one(pool)
            .await
    })?;
    Ok(n > 0)
}

/// Replaces an operator's station scope.
pub async fn set_operator_stations(tx: &mut Tx, operator_id: i64, stations: &[i64]) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM operator_stations WHERE operator_id = $1")
            .bind(operator_id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())?;
        for station in stations {
            sqlx::query("INSERT INTO operator_stations (operator_id, station_id) VALUES ($1, $2)")
                .bind(operator_id)
                .bind(station)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())?;
        }
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// Stores a refresh token's hash.
pub async fn insert_refresh(
    db: &Db,
    account_id: i64,
    token_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO refresh_tokens (account_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(account_id)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A stored refresh token.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub account_id: i64,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Revoked at (ms).
    pub revoked_at: Option<i64>,
}

/// A refresh token by its hash.
pub async fn refresh_by_hash(db: &Db, token_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as("SELECT id, account_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await
    })?)
}

/// Revokes one refresh token if it is still live; false if it was already revoked.
pub async fn revoke_refresh(db: &Db, id: i64, now: i64) -> Result<bool, StoreError> {
    let r = on_db!(db, |pool| {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Revokes every live refresh token of an account.
pub async fn revoke_all_refresh(db: &Db, account_id: i64, now: i64) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(account_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

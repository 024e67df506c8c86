//! Invoice queries (tables `invoices`, `invoice_series`, migration 0010). Invoices are only
//! ever inserted: the database refuses UPDATE and DELETE on them.

use crate::sessions::store::SessionRow;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};

/// A stored invoice or credit note.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: i64,
    pub backoffice_id: i64,
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub number: i64,
    pub session_id: Option<i64>,
    pub station_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub credits_invoice_id: Option<i64>,
    pub reason: Option<String>,
    pub currency: String,
    pub total_excl_vat: i64,
    pub total_vat: i64,
    pub total_incl_vat: i64,
    pub tariff_id: Option<i64>,
    pub tariff_version: Option<i64>,
    /// The document as issued (JSON).
    pub body: String,
    pub issued_at: i64,
    /// The credit note that cancels this invoice, if any.
    pub credited_by: Option<i64>,
}

/// What is inserted (the number is allocated by [`insert`]).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub backoffice_id: i64,
    pub kind: &'static str,
    pub session_id: Option<i64>,
    pub station_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub credits_invoice_id: Option<i64>,
    pub reason: Option<String>,
    pub currency: String,
    pub total_excl_vat: i64,
    pub total_vat: i64,
    pub total_incl_vat: i64,
    pub tariff_id: Option<i64>,
    pub tariff_version: Option<i64>,
    pub body: String,
    pub issued_at: i64,
}

const SELECT: &str = "SELECT i.id, i.backoffice_id, i.kind, i.number, i.session_id, i.station_id, i.owner_id, \
     i.credits_invoice_id, i.reason, i.currency, i.total_excl_vat, i.total_vat, i.total_incl_vat, i.tariff_id, \
     i.tariff_version, i.body, i.issued_at, (SELECT c.id FROM invoices c WHERE c.credits_invoice_id = i.id) AS credited_by \
     FROM invoices i";

/// Takes the next number of the BackOffice's series of `kind`, inside the transaction that
/// inserts the document: a rollback gives it back, so the series has no gaps. On PostgreSQL the
/// upsert locks the series row until the commit, which orders concurrent issuers.
async fn next_number(tx: &mut Tx, backoffice_id: i64, kind: &str) -> Result<i64, sqlx::Error> {
    on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO invoice_series (backoffice_id, kind, last_number) VALUES ($1, $2, 1) \
         ON CONFLICT (backoffice_id, kind) DO UPDATE SET last_number = invoice_series.last_number + 1 \
         RETURNING last_number"
    )
    .bind(backoffice_id)
    .bind(kind)
    .fetch_one(conn)
    .await)
}

/// Numbers and inserts a document; returns it as stored. A second credit note of one invoice
/// is a [`StoreError::Conflict`].
pub async fn insert(tx: &mut Tx, new: &NewInvoice) -> Result<InvoiceRow, StoreError> {
    let number = next_number(tx, new.backoffice_id, new.kind).await?;
    let sql = format!("{SELECT} WHERE i.id = $1");
    let id: i64 = on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO invoices (backoffice_id, kind, number, session_id, station_id, owner_id, credits_invoice_id, \
         reason, currency, total_excl_vat, total_vat, total_incl_vat, tariff_id, tariff_version, body, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id"
    )
    .bind(new.backoffice_id)
    .bind(new.kind)
    .bind(number)
    .bind(new.session_id)
    .bind(new.station_id)
    .bind(new.owner_id)
    .bind(new.credits_invoice_id)
    .bind(&new.reason)
    .bind(&new.currency)
    .bind(new.total_excl_vat)
    .bind(new.total_vat)
    .bind(new.total_incl_vat)
    .bind(new.tariff_id)
    .bind(new.tariff_version)
    .bind(&new.body)
    .bind(new.issued_at)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from_sqlx)?;
    Ok(on_tx!(tx, |conn| sqlx::query_as(&sql).bind(id).fetch_one(conn).await)?)
}

/// One document.
pub async fn get(db: &Db, id: i64) -> Result<Option<InvoiceRow>, StoreError> {
    let sql = format!("{SELECT} WHERE i.id = $1");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The session's invoice in force: its newest invoice that no credit note cancels.
pub async fn current_of_session(tx: &mut Tx, session_id: i64) -> Result<Option<InvoiceRow>, sqlx::Error> {
    let sql = format!(
        "{SELECT} WHERE i.session_id = $1 AND i.kind = 'invoice' \
         AND NOT EXISTS (SELECT 1 FROM invoices c WHERE c.credits_invoice_id = i.id) ORDER BY i.id DESC LIMIT 1"
    );
    on_tx!(tx, |conn| sqlx::query_as(&sql)
        .bind(session_id)
        .fetch_optional(conn)
        .await)
}

/// Who may see what in a listing: everything, one BackOffice's documents, or one owner's.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    BackOffice(i64),
    Owner(i64),
}

/// Filters of a listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub session_id: Option<i64>,
    pub station_id: Option<i64>,
    pub owner_id: Option<i64>,
}

/// Documents in `scope` matching `filter`, newest first, below the cursor id `before`.
pub async fn list(
    db: &Db,
    scope: Scope,
    filter: Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, StoreError> {
    let (scope_backoffice, scope_owner) = match scope {
        Scope::All => (None, None),
        Scope::BackOffice(b) => (Some(b), None),
        Scope::Owner(o) => (None, Some(o)),
    };
    let sql = format!(
        "{SELECT} WHERE ($1 IS NULL OR i.backoffice_id = $1) AND ($2 IS NULL OR i.owner_id = $2) \
         AND ($3 IS NULL OR i.session_id = $3) AND ($4 IS NULL OR i.station_id = $4) AND ($5 IS NULL OR i.owner_id = $5) \
         AND ($6 IS NULL OR i.id < $6) ORDER BY i.id DESC LIMIT $7"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(scope_backoffice)
        .bind(scope_owner)
        .bind(filter.session_id)
        .bind(filter.station_id)
        .bind(filter.owner_id)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// Completed sessions billing has not looked at since their last change, oldest first.
pub async fn unbilled_sessions(db: &Db, limit: i64) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "{} WHERE cs.status = 'Completed' AND (cs.billed_revision IS NULL OR cs.billed_revision < cs.revision) \
         ORDER BY cs.id LIMIT $1",
        crate::sessions::store::SELECT
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// Claims the session's billing at the `revision` it was priced at; false when another replica
/// got there first or billing already covered that revision. On PostgreSQL a concurrent
/// claimer waits for this transaction and then finds the condition false.
pub async fn claim_session(tx: &mut Tx, session_id: i64, revision: i64) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, |conn| sqlx::query(
        "UPDATE charging_sessions SET billed_revision = $2 WHERE id = $1 \
         AND (billed_revision IS NULL OR billed_revision < $2)"
    )
    .bind(session_id)
    .bind(revision)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

//! Notifications: queued in the transaction of the change that causes them (an outbox), then
//! delivered by a dispatcher through a pluggable [`Notifier`]: the [`LogNotifier`] by default,
//! email through SMTP with the `smtp` cargo feature and `--smtp-url`.

#[cfg(feature = "smtp")]
pub mod smtp;

use crate::api::auth::Caller;
use crate::app::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::db::{on_db, on_tx, Tx};
use service_kit::extract::ApiQuery;
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// A queued or delivered notification.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// `BookingApproved`, `BookingRejected`, `BookingCancelled`, `CheckedIn`, `Completed`, `NoShow`, ...
    pub kind: String,
    /// Account it is for.
    pub recipient_id: i64,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub message: String,
    /// Details as JSON text.
    pub payload: String,
    /// Queued at.
    pub created_at: Ts,
    /// Delivered at (null while queued).
    pub sent_at: Option<Ts>,
}

/// Whom a notification goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// E.164 phone, when known.
    pub phone: Option<String>,
}

/// Delivers notifications somewhere (a log, email, SMS, push ...). Called off the async
/// threads, so an adapter may block.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Delivers one notification; an error leaves it queued for the next round (10 tries).
    fn deliver(&self, notification: &Notification, to: &Recipient) -> anyhow::Result<()>;
}

/// Writes each notification to the log (the default adapter).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn deliver(&self, n: &Notification, _to: &Recipient) -> anyhow::Result<()> {
        tracing::info!(id = n.id, kind = %n.kind, recipient = n.recipient_id, subject = %n.subject, "notification");
        Ok(())
    }
}

/// Queues a notification inside `tx`.
pub async fn enqueue(
    tx: &mut Tx,
    kind: &str,
    recipient_id: i64,
    subject: &str,
    message: &str,
    payload: &serde_json::Value,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    let payload = payload.to_string();
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO notifications (kind, recipient_id, subject, message, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(kind)
        .bind(recipient_id)
        .bind(subject)
        .bind(message)
        .bind(&payload)
        .bind(at_ms)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

const COLUMNS: &str = "id, kind, recipient_id, subject, message, payload, created_at, sent_at";

/// A queued notification with its recipient.
#[derive(sqlx::FromRow)]
struct Queued {
    #[sqlx(flatten)]
    notification: Notification,
    name: String,
    email: String,
    phone: Option<String>,
}

/// How long a dispatcher holds a batch before another may take it.
const LEASE_MS: i64 = 60_000;

/// `$from, $from+1, ...` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Leases up to 100 deliverable notifications, delivers them in one blocking task, marks the
/// delivered as sent and releases the failed for the next round; returns how many were
/// delivered. Delivery is at least once: a dispatcher that dies holding a lease leaves its
/// batch to be sent again when the lease runs out.
pub async fn dispatch(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now_ms();
    // The outer conditions are checked again on PostgreSQL after waiting for a concurrent
    // claim, so two dispatchers never lease the same row.
    let claim = "UPDATE notifications SET leased_until = $1, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM notifications WHERE sent_at IS NULL AND attempts < 10 \
                              AND (leased_until IS NULL OR leased_until <= $2) ORDER BY id LIMIT 100) \
                 AND sent_at IS NULL AND (leased_until IS NULL OR leased_until <= $2) RETURNING id";
    let ids: Vec<i64> = on_db!(&state.db, |pool| {
        sqlx::query_scalar(claim)
            .bind(now + LEASE_MS)
            .bind(now)
            .fetch_all(pool)
            .await
    })?;
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT n.id, n.kind, n.recipient_id, n.subject, n.message, n.payload, n.created_at, n.sent_at, \
         a.name, a.email, a.phone FROM notifications n JOIN accounts a ON a.id = n.recipient_id \
         WHERE n.id IN ({}) ORDER BY n.id",
        placeholders(1, ids.len())
    );
    let queued: Vec<Queued> = on_db!(&state.db, |pool| {
        let mut query = sqlx::query_as(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        query.fetch_all(pool).await
    })?;
    let notifier = state.notifier.clone();
    let outcomes: Vec<(i64, bool)> = tokio::task::spawn_blocking(move || {
        queued
            .into_iter()
            .map(|q| {
                let to = Recipient {
                    name: q.name,
                    email: q.email,
                    phone: q.phone,
                };
                let result = notifier.deliver(&q.notification, &to);
                if let Err(e) = &result {
                    tracing::warn!(id = q.notification.id, error = %e, "notification delivery failed");
                }
                (q.notification.id, result.is_ok())
            })
            .collect()
    })
    .await?;
    let delivered: Vec<i64> = outcomes.iter().filter(|(_, ok)| *ok).map(|(id, _)| *id).collect();
    let failed: Vec<i64> = outcomes.iter().filter(|(_, ok)| !*ok).map(|(id, _)| *id).collect();
    mark(state, &delivered, Some(state.clock.now_ms())).await?;
    mark(state, &failed, None).await?;
    Ok(delivered.len())
}

/// Ends the lease of each of `ids`: as sent at `sent_at`, or (None) free for the next round.
async fn mark(state: &AppState, ids: &[i64], sent_at: Option<i64>) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let (set, first) = match sent_at {
        Some(_) => ("sent_at = $1, leased_until = NULL", 2),
        None => ("leased_until = NULL", 1),
    };
    let sql = format!(
        "UPDATE notifications SET {set} WHERE id IN ({})",
        placeholders(first, ids.len())
    );
    on_db!(&state.db, |pool| {
        let mut query = sqlx::query(&sql);
        if let Some(t) = sent_at {
            query = query.bind(t);
        }
        for id in ids {
            query = query.bind(id);
        }
        query.execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Query of `GET /notifications`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Notification routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/notifications", get(mine))
}

/// `GET /notifications` (every role): the caller's own, newest first.
async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> Result<Json<Page<Notification>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let before = page.int_key()?;
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE recipient_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    let rows: Vec<Notification> = on_db!(&state.db, |pool| {
        sqlx::query_as(&sql)
            .bind(caller.id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?;
    Ok(Json(Page::new(rows, limit, |n| n.id.to_string())))
}

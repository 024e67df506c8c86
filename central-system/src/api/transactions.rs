//! Transactions and meter readings.

use super::auth::Caller;
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::{ApiJson, ApiQuery};
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::store::meter_values::{MeterFilter, MeterValue};
use crate::store::transactions::{OperatorEnd, Transaction, TransactionFilter};
use crate::store::types::Ts;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Transaction and meter-value routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transactions", get(list))
        .route("/transactions/{id}", get(detail))
        .route("/transactions/{id}/end", post(end))
        .route("/meter-values", get(meter_values))
}

/// Filters and paging of the transaction list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionQuery {
    /// Only this station.
    pub station_id: Option<String>,
    /// `Active`, `Ended` or `Refused`.
    pub status: Option<String>,
    /// Only this token.
    pub id_token: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// A transaction with its readings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionDetail {
    /// The transaction.
    #[serde(flatten)]
    pub transaction: Transaction,
    /// Its readings, oldest first (at most 10,000; page through `/meter-values` for more).
    pub meter_values: Vec<MeterValue>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TransactionQuery>,
) -> Result<Json<Page<Transaction>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    if let Some(s) = &q.status {
        if !["Active", "Ended", "Refused"].contains(&s.as_str()) {
            return Err(Problem::validation("status must be Active, Ended or Refused"));
        }
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let filter = TransactionFilter {
        station_id: q.station_id,
        status: q.status,
        id_token: q.id_token,
    };
    let items = state.store.transactions(&filter, page.int_key()?, limit).await?;
    Ok(Json(Page::new(items, limit, |t| t.id.to_string())))
}

/// Body of `POST /transactions/{id}/end`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndTransaction {
    /// Why the operator ends it (1-500 characters), kept as the transaction's `endNote`.
    pub reason: String,
}

/// Ends an Active transaction the station no longer reports (it lost it, or is gone): the
/// record is closed with the operator's reason, and the token is free again. Nothing is sent
/// to the station; a stop it sends later still fills in its own end values.
async fn end(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EndTransaction>,
) -> Result<Json<Transaction>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let id = parse_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid_field(
            "reason",
            "out_of_range",
            "reason must be 1-500 characters",
        ));
    }
    let role = match caller.0.role {
        Role::Admin => "admin",
        Role::Operator => "operator",
    };
    let note = format!("ended by {} ({role}): {reason}", caller.0.sub);
    match state.store.end_by_operator(id, &note, Ts::now()).await? {
        OperatorEnd::Ended(t) => {
            tracing::info!(transaction = id, by = %caller.0.sub, reason, "transaction ended by an operator");
            Ok(Json(*t))
        }
        OperatorEnd::NotActive(status) => Err(Problem::conflict(
            "TRANSACTION_NOT_ACTIVE",
            format!("transaction {id} is {status}, not Active"),
        )),
        OperatorEnd::NotFound => Err(Problem::not_found("transaction")),
    }
}

fn parse_id(id: &str) -> Result<i64, Problem> {
    id.parse()
        .map_err(|_| Problem::validation("transaction id must be an integer"))
}

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TransactionDetail>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let id = parse_id(&id)?;
    let transaction = state
        .store
        .transaction(id)
        .await?
        .ok_or_else(|| Problem::not_found("transaction"))?;
    let filter = MeterFilter {
        station_id: Some(transaction.station_id.clone()),
        transaction_id: Some(id),
        measurand: None,
    };
    let meter_values = state.store.meter_values(&filter, None, 10_000).await?;
    Ok(Json(TransactionDetail {
        transaction,
        meter_values,
    }))
}

/// Filters and paging of the reading list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterQuery {
    /// Only this station.
    pub station_id: Option<String>,
    /// Only this transaction.
    pub transaction_id: Option<i64>,
    /// Only this measurand.
    pub measurand: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

async fn meter_values(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MeterQuery>,
) -> Result<Json<Page<MeterValue>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let filter = MeterFilter {
        station_id: q.station_id,
        transaction_id: q.transaction_id,
        measurand: q.measurand,
    };
    let items = state.store.meter_values(&filter, page.int_key()?, limit).await?;
    Ok(Json(Page::new(items, limit, |m| m.id.to_string())))
}

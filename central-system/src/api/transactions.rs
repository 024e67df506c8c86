//! Transactions and meter readings.

use super::auth::Caller;
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::ApiQuery;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::store::meter_values::{MeterFilter, MeterValue};
use crate::store::transactions::{Transaction, TransactionFilter};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Transaction and meter-value routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transactions", get(list))
        .route("/transactions/{id}", get(detail))
        .route("/meter-values", get(meter_values))
}

/// Filters and paging of the transaction list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionQuery {
    /// Only this station.
    pub station_id: Option<String>,
    /// `Active` or `Ended`.
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
        if s != "Active" && s != "Ended" {
            return Err(Problem::validation("status must be Active or Ended"));
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

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TransactionDetail>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::validation("transaction id must be an integer"))?;
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

//! Invoice endpoints: list and read invoices and credit notes (JSON, and a printable HTML view),
//! and credit an invoice. Owners see their own; a BackOffice those it issued; admins all;
//! operators none.

use super::store::{self, Filter, InvoiceRow, Scope};
use super::{html, money, number_text, read, InvoiceError, Kind, Line, VatLine};
use crate::api::auth::{Caller, Managers, Only, Role};
use crate::app::AppState;
use crate::billing::money::Money;
use crate::validate::{self, Fields};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_kit::extract::{ApiJson, ApiPath, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Invoice routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invoices", get(list))
        .route("/invoices/{id}", get(detail))
        .route("/invoices/{id}/html", get(printable))
        .route("/invoices/{id}/credit-note", post(credit))
}

/// A line as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    /// `ENERGY`, `TIME`, `PARKING_TIME`, `FLAT`, `PLAN_INCLUDED`, `PLAN_DISCOUNT`, `MIN_PRICE`,
    /// `MAX_PRICE`.
    pub kind: String,
    pub description: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[schema(value_type = String)]
    pub quantity: Decimal,
    /// `kWh`, `h` or `session`.
    pub unit: String,
    /// Excluding VAT.
    #[schema(value_type = String)]
    pub unit_price: Decimal,
    #[schema(value_type = Option<String>)]
    pub vat_percent: Option<Decimal>,
    /// Excluding VAT: `{amount, minor, currency}`.
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// VAT of one rate as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VatView {
    #[schema(value_type = Option<String>)]
    pub vat_percent: Option<Decimal>,
    #[schema(value_type = Object)]
    pub base: Money,
    #[schema(value_type = Object)]
    pub vat: Money,
}

/// An invoice or credit note as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    pub id: i64,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// The number in the issuing BackOffice's series of this kind (1, 2, ... without gaps).
    pub number: i64,
    /// The printed number: `INV-<backofficeId>-<number>` or `CN-<backofficeId>-<number>`.
    pub number_text: String,
    pub backoffice_id: i64,
    pub session_id: Option<i64>,
    pub station_id: Option<i64>,
    /// The EV owner billed; null for an ad-hoc session.
    pub owner_id: Option<i64>,
    /// A credit note: the invoice it cancels, and why.
    pub credits_invoice_id: Option<i64>,
    pub reason: Option<String>,
    /// An invoice: the credit note that cancelled it, if any.
    pub credited_by: Option<i64>,
    pub issued_at: Ts,
    pub currency: String,
    #[schema(value_type = Object)]
    pub total_excl_vat: Money,
    #[schema(value_type = Object)]
    pub total_vat: Money,
    #[schema(value_type = Object)]
    pub total_incl_vat: Money,
    pub tariff_id: Option<i64>,
    pub tariff_version: Option<i64>,
    /// The seller (the BackOffice's business), as issued.
    #[schema(value_type = Object)]
    pub seller: Value,
    /// The buyer (the EV owner), as issued; null for an ad-hoc session.
    #[schema(value_type = Object)]
    pub buyer: Value,
    #[schema(value_type = Object)]
    pub station: Value,
    /// The session billed: ids, start, end, energy.
    #[schema(value_type = Object)]
    pub session: Value,
    pub lines: Vec<LineView>,
    /// VAT per rate.
    pub vat: Vec<VatView>,
}

impl From<InvoiceError> for Problem {
    fn from(e: InvoiceError) -> Problem {
        match e {
            InvoiceError::NotFound => Problem::not_found("invoice"),
            InvoiceError::NotAnInvoice => Problem::conflict("NOT_AN_INVOICE", "a credit note cannot be credited"),
            InvoiceError::AlreadyCredited => Problem::conflict(
                "INVOICE_ALREADY_CREDITED",
                "the invoice is already cancelled by a credit note",
            ),
            InvoiceError::Cost(e) => e.into(),
            InvoiceError::Store(e) => e.into(),
            InvoiceError::Stored(e) => Problem::internal(e),
        }
    }
}

/// The served form of a stored document.
pub fn view(row: &InvoiceRow) -> Result<InvoiceView, InvoiceError> {
    let doc = read(row)?;
    let kind = Kind::parse(&row.kind).ok_or_else(|| InvoiceError::Stored(format!("unknown kind {}", row.kind)))?;
    Ok(InvoiceView {
        id: row.id,
        kind: row.kind.clone(),
        number: row.number,
        number_text: number_text(kind, row.backoffice_id, row.number),
        backoffice_id: row.backoffice_id,
        session_id: row.session_id,
        station_id: row.station_id,
        owner_id: row.owner_id,
        credits_invoice_id: row.credits_invoice_id,
        reason: row.reason.clone(),
        credited_by: row.credited_by,
        issued_at: Ts(row.issued_at),
        currency: row.currency.clone(),
        total_excl_vat: money(row, row.total_excl_vat),
        total_vat: money(row, row.total_vat),
        total_incl_vat: money(row, row.total_incl_vat),
        tariff_id: row.tariff_id,
        tariff_version: row.tariff_version,
        seller: json(&doc.seller),
        buyer: json(&doc.buyer),
        station: json(&doc.station),
        session: json(&doc.session),
        lines: doc.lines.iter().map(|l: &Line| line_view(row, l)).collect(),
        vat: doc
            .vat
            .iter()
            .map(|v: &VatLine| VatView {
                vat_percent: v.vat_percent,
                base: money(row, v.base),
                vat: money(row, v.vat),
            })
            .collect(),
    })
}

/// A document part as served JSON. It was serialized once already, when issued, so this does
/// not fail; if it did, the part would be served as null.
fn json<T: Serialize>(part: &T) -> Value {
    serde_json::to_value(part).unwrap_or(Value::Null)
}

fn line_view(row: &InvoiceRow, l: &Line) -> LineView {
    LineView {
        kind: l.kind.clone(),
        description: l.description.clone(),
        from: l.from,
        to: l.to,
        quantity: l.quantity,
        unit: l.unit.clone(),
        unit_price: l.unit_price,
        vat_percent: l.vat_percent,
        amount: money(row, l.amount),
    }
}

/// The invoice if `caller` may see it: admins all; a BackOffice those it issued; an owner
/// those billed to them; operators none.
async fn visible(state: &AppState, caller: &Caller, id: i64) -> Result<InvoiceRow, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Owner])?;
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("invoice"))?;
    let mine = match caller.role {
        Role::Admin => true,
        Role::BackOffice => row.backoffice_id == caller.id,
        Role::Owner => row.owner_id == Some(caller.id),
        _ => false,
    };
    if mine {
        Ok(row)
    } else {
        Err(Problem::forbidden("this invoice is another account's"))
    }
}

/// Query of `GET /invoices`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    session_id: Option<i64>,
    station_id: Option<i64>,
    owner_id: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /invoices?sessionId=&stationId=&ownerId=` (admin: all; BackOffice: those it issued;
/// owner: their own), newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<InvoiceView>>, Problem> {
    let scope = match caller.role {
        Role::Admin => Scope::All,
        Role::BackOffice => Scope::BackOffice(caller.id),
        Role::Owner => Scope::Owner(caller.id),
        Role::Operator => return Err(Problem::forbidden("operators do not see invoices")),
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let filter = Filter {
        session_id: q.session_id,
        station_id: q.station_id,
        owner_id: q.owner_id,
    };
    let rows = store::list(&state.db, scope, filter, page.int_key()?, limit).await?;
    let items = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page::new(items, limit, |i: &InvoiceView| i.id.to_string())))
}

/// `GET /invoices/{id}`.
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InvoiceView>, Problem> {
    let row = visible(&state, &caller, id).await?;
    Ok(Json(view(&row)?))
}

/// `GET /invoices/{id}/html`: the printable document.
async fn printable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Problem> {
    let row = visible(&state, &caller, id).await?;
    let page = html::render(&view(&row)?);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing in the page runs or loads: its only style is inline.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        page,
    )
        .into_response())
}

/// Body of `POST /invoices/{id}/credit-note`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditRequest {
    /// Why the invoice is cancelled (printed on the credit note).
    pub reason: String,
}

/// `POST /invoices/{id}/credit-note` (admin; the issuing BackOffice): cancels the invoice in
/// full with a credit note.
async fn credit(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CreditRequest>,
) -> Result<(StatusCode, Json<InvoiceView>), Problem> {
    visible(&state, &caller, id).await?;
    let mut fields = Fields::new();
    let reason = fields.check("reason", validate::text(&req.reason, 500));
    fields.finish()?;
    let Some(reason) = reason else {
        return Err(Problem::internal("validation passed without a reason"));
    };
    let note = super::credit(&state, &caller, id, &reason).await?;
    Ok((StatusCode::CREATED, Json(view(&note)?)))
}

//! Invoices: one per completed, priced charging session, issued by the BackOffice that owns the
//! station, numbered without gaps per BackOffice (`INV-<backoffice>-<number>`), immutable once
//! issued. A correction is a credit note (`CN-<backoffice>-<number>`, its own gap-free series)
//! that cancels an invoice in full.
//!
//! - **Issuing.** [`run`] bills every completed session that billing has not seen since its
//!   last change: it prices the session ([`super::cost`]: the tariff version in force at its
//!   start, the same engine as the live cost), and issues an invoice whose lines and totals are
//!   the engine's. A session without a tariff is free: it is marked seen, no invoice.
//! - **Corrections.** A session changed after it was invoiced (the charger's own end arriving
//!   after an operator's finalize, a late meter stop) is priced again; if the document differs,
//!   the invoice in force is credited ("session corrected") and a new one issued, in one
//!   transaction. An unchanged document issues nothing.
//! - **Manual credit.** An admin or the issuing BackOffice credits an invoice with a reason
//!   ([`credit`]); the session is then not invoiced again unless it changes.
//! - **Replicas.** Each session's billing is claimed by a conditional update in the issuing
//!   transaction ([`store::claim_session`]), so two replicas never invoice one change twice.
//!
//! The document stores everything it prints (seller, buyer, station, session, lines, VAT per
//! rate), so later edits of accounts or stations never change an issued invoice.

pub mod html;
pub mod http;
pub mod store;

use super::cost::{self, CostError, SessionCost};
use super::money::{Currency, Money};
use crate::app::AppState;
use crate::sessions::reconcile;
use crate::sessions::store::SessionRow;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use service_kit::db::{StoreError, Tx};
use std::time::Duration;
use store::{InvoiceRow, NewInvoice};

/// Sessions billed per round at most; the rest wait for the next.
const BATCH: i64 = 200;

/// Invoice or credit note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invoice,
    CreditNote,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::CreditNote => "credit_note",
        }
    }

    /// The stored name; an unknown one is an error (the CHECK constraint prevents it).
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "invoice" => Some(Kind::Invoice),
            "credit_note" => Some(Kind::CreditNote),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Invoice => "INV",
            Kind::CreditNote => "CN",
        }
    }
}

/// The printed number: series prefix, issuing BackOffice, number (`INV-12-000042`).
pub fn number_text(kind: Kind, backoffice_id: i64, number: i64) -> String {
    format!("{}-{backoffice_id}-{number:06}", kind.prefix())
}

/// A party on the document, as it was when issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub account_id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The station, as it was when issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StationRef {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub time_zone: String,
}

/// The session the document bills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub id: i64,
    pub central_station_id: String,
    pub transaction_id: String,
    pub connector_id: Option<i64>,
    pub booking_id: Option<i64>,
    pub id_token: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub energy_wh: Option<i64>,
}

/// One line as issued; `amount` in minor units, excluding VAT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The engine's line kind (`ENERGY`, `TIME`, `PARKING_TIME`, `FLAT`, `MIN_PRICE`, ...).
    pub kind: String,
    pub description: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    pub vat_percent: Option<Decimal>,
    pub amount: i64,
}

/// VAT of one rate: its base and the VAT, in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VatLine {
    pub vat_percent: Option<Decimal>,
    pub base: i64,
    pub vat: i64,
}

/// The document as issued (stored as JSON in `invoices.body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub seller: Party,
    pub buyer: Option<Party>,
    pub station: Option<StationRef>,
    pub session: Option<SessionRef>,
    pub lines: Vec<Line>,
    pub vat: Vec<VatLine>,
}

/// Why billing or a credit failed.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("no such invoice")]
    NotFound,
    #[error("a credit note cannot be credited")]
    NotAnInvoice,
    #[error("the invoice is already credited")]
    AlreadyCredited,
    #[error("a stored invoice cannot be read: {0}")]
    Stored(String),
    #[error(transparent)]
    Cost(#[from] CostError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for InvoiceError {
    fn from(e: sqlx::Error) -> InvoiceError {
        InvoiceError::Store(StoreError::from_sqlx(e))
    }
}

/// The document of `cost` for `row`.
fn document(
    seller: Party,
    buyer: Option<Party>,
    station: Option<StationRef>,
    row: &SessionRow,
    cost: &SessionCost,
) -> Document {
    let energy = reconcile::energy(&row.facts()).map(|(wh, _)| wh);
    let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
    Document {
        seller,
        buyer,
        station,
        session: Some(SessionRef {
            id: row.id,
            central_station_id: row.central_station_id.clone(),
            transaction_id: row.transaction_id.clone(),
            connector_id: row.connector_id,
            booking_id: row.booking_id,
            id_token: row.id_token.clone(),
            started_at: at(row.started_at),
            ended_at: at(row.ended_at),
            energy_wh: energy,
        }),
        lines: cost
            .priced
            .lines
            .iter()
            .map(|l| Line {
                kind: serde_json::to_value(l.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                description: l.why.clone(),
                from: l.from,
                to: l.to,
                quantity: l.quantity,
                unit: l.unit.to_string(),
                unit_price: l.unit_price,
                vat_percent: l.vat_percent,
                amount: l.amount.minor,
            })
            .collect(),
        vat: cost
            .priced
            .vat
            .iter()
            .map(|v| VatLine {
                vat_percent: v.vat_percent,
                base: v.base.minor,
                vat: v.vat.minor,
            })
            .collect(),
    }
}

/// The credit note's document: the invoice's, every amount negated.
pub fn negated(doc: &Document) -> Document {
    Document {
        lines: doc
            .lines
            .iter()
            .map(|l| Line {
                amount: l.amount.saturating_neg(),
                quantity: -l.quantity,
                ..l.clone()
            })
            .collect(),
        vat: doc
            .vat
            .iter()
            .map(|v| VatLine {
                vat_percent: v.vat_percent,
                base: v.base.saturating_neg(),
                vat: v.vat.saturating_neg(),
            })
            .collect(),
        ..doc.clone()
    }
}

/// Reads a stored document.
pub fn read(row: &InvoiceRow) -> Result<Document, InvoiceError> {
    serde_json::from_str(&row.body).map_err(|e| InvoiceError::Stored(format!("invoice {}: {e}", row.id)))
}

/// A stored amount as money of the row's currency.
pub fn money(row: &InvoiceRow, minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::parse(&row.currency).unwrap_or(Currency::NONE),
    }
}

fn credit_note_of(invoice: &InvoiceRow, doc: &Document, reason: &str, now: i64) -> Result<NewInvoice, InvoiceError> {
    Ok(NewInvoice {
        backoffice_id: invoice.backoffice_id,
        kind: Kind::CreditNote.as_str(),
        session_id: invoice.session_id,
        station_id: invoice.station_id,
        owner_id: invoice.owner_id,
        credits_invoice_id: Some(invoice.id),
        reason: Some(reason.to_string()),
        currency: invoice.currency.clone(),
        total_excl_vat: invoice.total_excl_vat.saturating_neg(),
        total_vat: invoice.total_vat.saturating_neg(),
        total_incl_vat: invoice.total_incl_vat.saturating_neg(),
        tariff_id: invoice.tariff_id,
        tariff_version: invoice.tariff_version,
        body: serde_json::to_string(&negated(doc)).map_err(|e| InvoiceError::Stored(e.to_string()))?,
        issued_at: now,
    })
}

/// Credits `invoice` in full inside `tx`.
async fn credit_in(tx: &mut Tx, invoice: &InvoiceRow, reason: &str, now: i64) -> Result<InvoiceRow, InvoiceError> {
    if Kind::parse(&invoice.kind) != Some(Kind::Invoice) {
        return Err(InvoiceError::NotAnInvoice);
    }
    let doc = read(invoice)?;
    store::insert(tx, &credit_note_of(invoice, &doc, reason, now)?)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => InvoiceError::AlreadyCredited,
            other => other.into(),
        })
}

/// Credits invoice `id` with `reason` (the caller's scope is checked at the edge); returns the
/// credit note. The audit entry is written in the same transaction.
pub async fn credit(
    state: &AppState,
    actor: &crate::api::auth::Caller,
    id: i64,
    reason: &str,
) -> Result<InvoiceRow, InvoiceError> {
    let invoice = store::get(&state.db, id).await?.ok_or(InvoiceError::NotFound)?;
    if invoice.credited_by.is_some() {
        return Err(InvoiceError::AlreadyCredited);
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let note = credit_in(&mut tx, &invoice, reason, now).await?;
    crate::audit::record(
        &mut tx,
        "invoice",
        &id.to_string(),
        "invoice.credited",
        Some(actor),
        &serde_json::json!({ "creditNoteId": note.id, "reason": reason }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(note)
}

/// What one session's billing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billed {
    /// An invoice was issued (`corrected`: after crediting the one in force).
    Issued { corrected: bool },
    /// Priced the same as the invoice in force, or free (no tariff): nothing issued.
    Unchanged,
    /// Another replica billed this change first.
    Raced,
}

async fn parties(
    state: &AppState,
    row: &SessionRow,
) -> Result<Option<(i64, Party, Option<Party>, StationRef)>, StoreError> {
    let Some(station_id) = row.station_id else {
        return Ok(None);
    };
    let Some(station) = crate::stations::store::get(&state.db, station_id).await? else {
        return Ok(None);
    };
    let seller = crate::accounts::store::by_id(&state.db, station.backoffice_id)
        .await?
        .map(|a| Party {
            account_id: a.id,
            name: a.business_name.clone().unwrap_or(a.name),
            email: Some(a.email),
        })
        .unwrap_or(Party {
            account_id: station.backoffice_id,
            name: String::new(),
            email: None,
        });
    let buyer = match row.owner_id {
        Some(owner) => crate::accounts::store::by_id(&state.db, owner).await?.map(|a| Party {
            account_id: a.id,
            name: a.name,
            email: Some(a.email),
        }),
        None => None,
    };
    let station_ref = StationRef {
        id: station.id,
        name: station.name.clone(),
        address: station.address.clone(),
        time_zone: station.time_zone.clone(),
    };
    Ok(Some((station.backoffice_id, seller, buyer, station_ref)))
}

/// Bills one completed session (see the module's documentation).
pub async fn bill_session(state: &AppState, row: &SessionRow) -> Result<Billed, InvoiceError> {
    let now = state.clock.now_ms();
    let cost = match row.ended_at {
        Some(end) => cost::of_session(&state.db, row, end).await?,
        None => None,
    };
    let issue = match (&cost, parties(state, row).await?) {
        (Some(cost), Some((backoffice_id, seller, buyer, station))) => {
            let doc = document(seller, buyer, Some(station.clone()), row, cost);
            Some((backoffice_id, station.id, cost, doc))
        }
        _ => None,
    };
    let mut tx = state.db.begin().await?;
    if !store::claim_session(&mut tx, row.id, row.revision).await? {
        return Ok(Billed::Raced);
    }
    let current = store::current_of_session(&mut tx, row.id).await?;
    let Some((backoffice_id, station_id, cost, doc)) = issue else {
        // Free (no tariff at its start) or not at a station: nothing to invoice.
        tx.commit().await?;
        return Ok(Billed::Unchanged);
    };
    let mut corrected = false;
    if let Some(current) = &current {
        if read(current)? == doc && current.total_incl_vat == cost.priced.total_incl_vat.minor {
            tx.commit().await?;
            return Ok(Billed::Unchanged);
        }
        credit_in(&mut tx, current, "session corrected", now).await?;
        corrected = true;
    }
    let priced = &cost.priced;
    let vat: i64 = priced.vat.iter().map(|v| v.vat.minor).fold(0i64, i64::saturating_add);
    store::insert(
        &mut tx,
        &NewInvoice {
            backoffice_id,
            kind: Kind::Invoice.as_str(),
            session_id: Some(row.id),
            station_id: Some(station_id),
            owner_id: row.owner_id,
            credits_invoice_id: None,
            reason: None,
            currency: priced.currency.code().to_string(),
            total_excl_vat: priced.total_excl_vat.minor,
            total_vat: vat,
            total_incl_vat: priced.total_incl_vat.minor,
            tariff_id: Some(cost.tariff_id),
            tariff_version: Some(cost.tariff_version),
            body: serde_json::to_string(&doc).map_err(|e| InvoiceError::Stored(e.to_string()))?,
            issued_at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Billed::Issued { corrected })
}

/// One round: bills up to a batch of completed sessions not billed since their last change;
/// returns how many invoices it issued. A session that fails is logged and retried next round.
pub async fn run(state: &AppState) -> Result<usize, StoreError> {
    let mut issued = 0;
    for row in store::unbilled_sessions(&state.db, BATCH).await? {
        match bill_session(state, &row).await {
            Ok(Billed::Issued { .. }) => issued += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(session = row.id, error = %e, "billing a session failed; retried next round"),
        }
    }
    Ok(issued)
}

/// Bills whenever a session completes (woken by [`AppState::wake_billing`]) and every minute,
/// until shutdown.
pub async fn worker(state: AppState) {
    loop {
        loop {
            match run(&state).await {
                Ok(n) if n >= usize::try_from(BATCH).unwrap_or(usize::MAX) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "billing round failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.billing_wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn doc() -> Document {
        let t = DateTime::from_timestamp_millis(0).unwrap_or_default();
        Document {
            seller: Party {
                account_id: 1,
                name: "Biz".into(),
                email: None,
            },
            buyer: None,
            station: None,
            session: None,
            lines: vec![Line {
                kind: "ENERGY".into(),
                description: "energy".into(),
                from: t,
                to: t,
                quantity: Decimal::from_str("12.5").unwrap_or_default(),
                unit: "kWh".into(),
                unit_price: Decimal::from_str("0.30").unwrap_or_default(),
                vat_percent: Some(Decimal::from(20)),
                amount: 375,
            }],
            vat: vec![VatLine {
                vat_percent: Some(Decimal::from(20)),
                base: 375,
                vat: 75,
            }],
        }
    }

    #[test]
    fn a_credit_note_negates_every_amount_and_keeps_the_rest() {
        let d = doc();
        let n = negated(&d);
        assert_eq!(n.lines[0].amount, -375);
        assert_eq!(n.lines[0].quantity, Decimal::from_str("-12.5").unwrap_or_default());
        assert_eq!(n.lines[0].unit_price, d.lines[0].unit_price);
        assert_eq!((n.vat[0].base, n.vat[0].vat), (-375, -75));
        assert_eq!(n.seller, d.seller);
        assert_eq!(negated(&n), d);
    }

    #[test]
    fn numbers_are_printed_per_series() {
        assert_eq!(number_text(Kind::Invoice, 12, 42), "INV-12-000042");
        assert_eq!(number_text(Kind::CreditNote, 3, 1), "CN-3-000001");
        assert_eq!(Kind::parse("credit_note"), Some(Kind::CreditNote));
        assert_eq!(Kind::parse("bill"), None);
    }

    #[test]
    fn the_document_round_trips_through_its_stored_form() {
        let d = doc();
        let stored = serde_json::to_string(&d).unwrap_or_default();
        let back: Document = serde_json::from_str(&stored).unwrap_or_else(|_| negated(&d));
        assert_eq!(back, d);
    }
}

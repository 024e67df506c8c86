//! Charging sessions: one per charger transaction at a linked station, tied to its booking (by
//! the booking's id token or the check-in's remote-start id) or ad hoc; kept from the central
//! system's transaction events and meter summaries ([`on_event`], reconciled in any order by
//! [`reconcile`]); the booking follows (a start checks an Approved booking in, the charger's
//! stop completes it, through [`crate::bookings::transition_in`]); finalized by the charger's
//! stop or an operator into a receipt. HTTP: `GET /sessions`, `GET /sessions/{id}`,
//! `GET /sessions/{id}/receipt`, `POST /sessions/{id}/finalize`, `GET /bookings/{id}/session`.

pub mod reconcile;
pub mod store;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::billing::cost::SessionCost;
use crate::bookings::rules::{Action, Status};
use crate::bookings::store::Booking;
use crate::bookings::{self, TransitionError};
use crate::live::Change;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use evcs_bus::{Event, EventEnvelope};
use reconcile::Fact;
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::db::{StoreError, Tx};
use service_kit::extract::{ApiPath, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use store::SessionRow;
use utoipa::ToSchema;

/// Session routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", get(list))
        .route("/sessions/{id}", get(detail))
        .route("/sessions/{id}/receipt", get(receipt))
        .route("/sessions/{id}/finalize", post(finalize))
        .route("/bookings/{id}/session", get(of_booking))
}

/// A charging session as served (and as the live socket sends it).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: i64,
    /// Active or Completed.
    pub status: String,
    /// The central system's station id and transaction id.
    pub central_station_id: String,
    pub transaction_id: String,
    /// The booking station and its connector (1.6 connectorId, 2.0.1 evseId).
    pub station_id: Option<i64>,
    pub connector_id: Option<i64>,
    /// The booking; null for an ad-hoc transaction.
    pub booking_id: Option<i64>,
    pub id_token: Option<String>,
    pub remote_start_id: Option<i64>,
    /// Null until the charger's start arrived (a charger that was offline reports it late).
    pub started_at: Option<Ts>,
    pub meter_start_wh: Option<i64>,
    /// Energy delivered so far (Wh), from the meter's own readings (see `energySource`).
    pub energy_wh: Option<i64>,
    /// `meter` (stop minus start) or `summary` (the newest meter summary).
    pub energy_source: Option<String>,
    /// The newest energy register the meter reported (Wh).
    pub register_wh: Option<i64>,
    /// When the newest meter summary was measured.
    pub measured_at: Option<Ts>,
    pub power_w: Option<f64>,
    /// State of charge (%), when the charger sends it.
    pub soc_percent: Option<f64>,
    pub current_a: Option<f64>,
    /// From the start to the end (or to now while active).
    pub duration_secs: Option<i64>,
    pub ended_at: Option<Ts>,
    pub meter_stop_wh: Option<i64>,
    pub stop_reason: Option<String>,
    /// `charger` or `operator` (a finalize for a charger that never reported the end).
    pub ended_by: Option<String>,
    pub updated_at: Ts,
    /// The cost so far (running) or in full (final), priced by the tariff version in force at
    /// the start; only on `GET /sessions/{id}`, and absent when the station has no tariff.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cost: Option<SessionCost>,
}

impl Session {
    /// The served form of `row` as of `now_ms`.
    pub fn from_row(row: &SessionRow, now_ms: i64) -> Session {
        let facts = row.facts();
        let energy = reconcile::energy(&facts);
        Session {
            id: row.id,
            status: row.status.clone(),
            central_station_id: row.central_station_id.clone(),
            transaction_id: row.transaction_id.clone(),
            station_id: row.station_id,
            connector_id: row.connector_id,
            booking_id: row.booking_id,
            id_token: row.id_token.clone(),
            remote_start_id: row.remote_start_id,
            started_at: row.started_at.map(Ts),
            meter_start_wh: row.meter_start_wh,
            energy_wh: energy.map(|(wh, _)| wh),
            energy_source: energy.map(|(_, s)| s.as_str().to_string()),
            register_wh: row.register_wh,
            measured_at: row.summary_at.map(Ts),
            power_w: row.power_w,
            soc_percent: row.soc_percent,
            current_a: row.current_a,
            duration_secs: reconcile::duration_secs(&facts, now_ms),
            ended_at: row.ended_at.map(Ts),
            meter_stop_wh: row.meter_stop_wh,
            stop_reason: row.stop_reason.clone(),
            ended_by: row.ended_by.clone(),
            updated_at: Ts(row.updated_at),
            cost: None,
        }
    }
}

/// What a completed session amounts to, priced when its station has a tariff.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub session_id: i64,
    pub central_station_id: String,
    pub transaction_id: String,
    pub station_id: Option<i64>,
    pub connector_id: Option<i64>,
    /// Energy delivered (Wh): meter stop minus meter start, else the last meter summary.
    pub energy_wh: Option<i64>,
    /// `meter` or `summary`.
    pub energy_source: Option<String>,
    pub meter_start_wh: Option<i64>,
    pub meter_stop_wh: Option<i64>,
    pub started_at: Option<Ts>,
    pub ended_at: Option<Ts>,
    /// Charging time: start to end.
    pub duration_secs: Option<i64>,
    /// The booked slot's length, when the session has a booking.
    pub booked_secs: Option<i64>,
    pub stop_reason: Option<String>,
    /// `charger` or `operator`.
    pub ended_by: Option<String>,
    /// The booking, as it stands; null for an ad-hoc session.
    pub booking: Option<Booking>,
    /// Lines and totals by the tariff version in force at the start; null when the station had
    /// no tariff then.
    #[schema(value_type = Option<Object>)]
    pub cost: Option<SessionCost>,
}

/// Applies a transaction event or meter summary of `envelope` inside the projection's
/// transaction; returns what changed, for the live socket once committed. Transactions at a
/// charger no booking station links to are not sessions here: nothing is recorded.
pub async fn on_event(tx: &mut Tx, envelope: &EventEnvelope, now: i64) -> Result<Vec<Change>, StoreError> {
    let at = envelope.occurred_at.timestamp_millis();
    let key = crate::chargers::projection::connector_key;
    let (transaction_id, fact) = match &envelope.event {
        Event::TransactionStarted {
            transaction_id,
            id_token,
            location,
            meter_start_wh,
            remote_start_id,
        } => (
            transaction_id,
            Fact::Started {
                at,
                connector_id: key(location),
                id_token: id_token.clone(),
                meter_start_wh: *meter_start_wh,
                remote_start_id: *remote_start_id,
            },
        ),
        Event::MeterSummary {
            transaction_id,
            location,
            energy_wh,
            power_w,
            soc_percent,
            current_a,
            at: measured,
        } => (
            transaction_id,
            Fact::Summary {
                at: measured.timestamp_millis(),
                connector_id: key(location),
                register_wh: *energy_wh,
                power_w: *power_w,
                soc_percent: *soc_percent,
                current_a: *current_a,
            },
        ),
        Event::TransactionEnded {
            transaction_id,
            id_token,
            location,
            meter_stop_wh,
            stop_reason,
        } => (
            transaction_id,
            Fact::Ended {
                at,
                connector_id: key(location),
                id_token: id_token.clone(),
                meter_stop_wh: *meter_stop_wh,
                stop_reason: stop_reason.clone(),
            },
        ),
        _ => return Ok(Vec::new()),
    };
    let central = envelope.station_id.as_str();
    let Some(station_id) = store::linked_station(tx, central).await? else {
        return Ok(Vec::new());
    };
    let row = store::lock_or_create(tx, central, transaction_id, station_id, now).await?;
    apply_fact(tx, row, &fact, None, now).await
}

/// Applies `fact` to the locked `row`, ties it to its booking, moves the booking along and
/// saves; returns the changes to publish after commit.
async fn apply_fact(
    tx: &mut Tx,
    row: SessionRow,
    fact: &Fact,
    actor: Option<&Caller>,
    now: i64,
) -> Result<Vec<Change>, StoreError> {
    let mut facts = row.facts();
    let changed = reconcile::apply(&mut facts, fact);
    let mut row = row.with(facts);
    let mut booking = match row.booking_id {
        Some(id) => bookings::store::get_in(tx, id).await?,
        None => {
            bookings::store::for_transaction(
                tx,
                &row.central_station_id,
                row.id_token.as_deref(),
                row.remote_start_id,
            )
            .await?
        }
    };
    let linked = row.booking_id.is_none() && booking.is_some();
    if !changed && !linked {
        return Ok(Vec::new());
    }
    row.booking_id = booking.as_ref().map(|b| b.id).or(row.booking_id);
    row.updated_at = now;
    store::save(tx, &row).await?;
    let mut changes = Vec::new();
    if let Some(b) = booking.take() {
        for updated in follow(tx, b, &row, actor, now).await? {
            changes.push(Change::Booking(updated));
        }
    }
    // Re-read for the owner the booking brings.
    if let Some(saved) = store::get_in(tx, row.id).await? {
        changes.push(Change::Session(Box::new(saved)));
    }
    Ok(changes)
}

/// Moves the booking along with its session: a started (or already ended) session checks an
/// Approved booking in; a completed one completes a checked-in booking. Moves the state machine
/// refuses (a booking cancelled meanwhile, say) leave the booking as it is. Returns each new
/// state of the booking.
async fn follow(
    tx: &mut Tx,
    mut booking: Booking,
    row: &SessionRow,
    actor: Option<&Caller>,
    now: i64,
) -> Result<Vec<Booking>, StoreError> {
    let completed = row.status == "Completed";
    let mut out = Vec::new();
    let mut steps = Vec::new();
    if booking.status() == Status::Approved && (row.started_at.is_some() || completed) {
        steps.push(Action::CheckIn);
    }
    if completed && matches!(booking.status(), Status::Approved | Status::CheckedIn) {
        steps.push(Action::Complete);
    }
    let extra = json!({
        "by": if actor.is_some() { "operator" } else { "charger" },
        "sessionId": row.id,
        "transactionId": row.transaction_id,
    });
    for action in steps {
        match bookings::transition_in(tx, booking.clone(), action, actor, extra.clone(), now).await {
            Ok(updated) => {
                booking = updated.clone();
                out.push(updated);
            }
            Err(TransitionError::Store(e)) => return Err(e.into()),
            // Someone changed the booking between our read and our write: the whole event is
            // rolled back and retried by the consumer, so the booking is not left behind.
            Err(TransitionError::Changed) => return Err(StoreError::Conflict),
            Err(e @ TransitionError::Illegal(_)) => {
                tracing::info!(booking = booking.id, session = row.id, error = %e, "booking left as it is");
                break;
            }
        }
    }
    Ok(out)
}

/// Why an operator's finalize was refused.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("no such session")]
    NotFound,
    #[error("the session is already completed")]
    AlreadyCompleted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FinalizeError {
    fn from(e: sqlx::Error) -> FinalizeError {
        FinalizeError::Store(e.into())
    }
}

impl From<FinalizeError> for Problem {
    fn from(e: FinalizeError) -> Problem {
        match e {
            FinalizeError::NotFound => Problem::not_found("session"),
            FinalizeError::AlreadyCompleted => Problem::conflict("SESSION_ALREADY_COMPLETED", e.to_string()),
            FinalizeError::Store(e) => e.into(),
        }
    }
}

/// Completes an active session whose charger never reported the end, as `actor` (energy from
/// the last meter summary); completes its booking. Returns the changes to publish once the
/// caller committed.
pub async fn finalize_in(tx: &mut Tx, id: i64, actor: &Caller, now: i64) -> Result<Vec<Change>, FinalizeError> {
    let row = store::lock(tx, id).await?.ok_or(FinalizeError::NotFound)?;
    if row.status == "Completed" {
        return Err(FinalizeError::AlreadyCompleted);
    }
    Ok(apply_fact(tx, row, &Fact::Finalized { at: now }, Some(actor), now).await?)
}

/// Whether `caller` may see `row`: admins all; owners the sessions of their bookings; a
/// BackOffice its stations'; operators their assigned stations'.
async fn in_scope(state: &AppState, caller: &Caller, row: &SessionRow) -> Result<(), Problem> {
    let ok = match (caller.role, row.station_id) {
        (Role::Admin, _) => true,
        (Role::Owner, _) => row.owner_id == Some(caller.id),
        (Role::Operator, Some(station)) => caller.operates(&state.db, station).await?,
        (Role::BackOffice, Some(station)) => {
            crate::stations::store::owner_of(&state.db, station).await? == Some(caller.id)
        }
        (_, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::forbidden("this session is outside your scope"))
    }
}

async fn load(state: &AppState, caller: &Caller, id: i64) -> Result<SessionRow, Problem> {
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("session"))?;
    in_scope(state, caller, &row).await?;
    Ok(row)
}

/// Query of `GET /sessions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    station_id: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /sessions?status=&stationId=` (every role, scoped): newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Session>>, Problem> {
    if q.status.as_deref().is_some_and(|s| s != "Active" && s != "Completed") {
        return Err(Problem::invalid_field("status", "unknown_value", "Active or Completed"));
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let filter = store::Filter {
        status: q.status.as_deref(),
        station_id: q.station_id,
    };
    let rows = store::list(&state.db, caller.role, caller.id, &filter, page.int_key()?, limit).await?;
    let now = state.clock.now_ms();
    let items = rows.iter().map(|r| Session::from_row(r, now)).collect();
    Ok(Json(Page::new(items, limit, |s: &Session| s.id.to_string())))
}

/// `GET /sessions/{id}` (every role, scoped).
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Session>, Problem> {
    let row = load(&state, &caller, id).await?;
    let now = state.clock.now_ms();
    let mut session = Session::from_row(&row, now);
    session.cost = crate::billing::cost::of_session(&state.db, &row, now).await?;
    Ok(Json(session))
}

/// `GET /bookings/{id}/session` (every role, scoped by the booking): its newest session.
async fn of_booking(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Session>, Problem> {
    let booking = bookings::store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("booking"))?;
    bookings::in_scope(&state, &caller, &booking).await?;
    let row = store::of_booking(&state.db, id).await?.ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "NO_SESSION",
            "no charger has started a transaction for this booking yet",
        )
    })?;
    Ok(Json(Session::from_row(&row, state.clock.now_ms())))
}

async fn receipt_of(state: &AppState, row: &SessionRow) -> Result<Receipt, Problem> {
    if row.status != "Completed" {
        return Err(Problem::conflict(
            "SESSION_ACTIVE",
            "the session is still active; its receipt exists once it is finalized",
        ));
    }
    let booking = match row.booking_id {
        Some(id) => bookings::store::get(&state.db, id).await?,
        None => None,
    };
    let facts = row.facts();
    let energy = reconcile::energy(&facts);
    Ok(Receipt {
        session_id: row.id,
        central_station_id: row.central_station_id.clone(),
        transaction_id: row.transaction_id.clone(),
        station_id: row.station_id,
        connector_id: row.connector_id,
        energy_wh: energy.map(|(wh, _)| wh),
        energy_source: energy.map(|(_, s)| s.as_str().to_string()),
        meter_start_wh: row.meter_start_wh,
        meter_stop_wh: row.meter_stop_wh,
        started_at: row.started_at.map(Ts),
        ended_at: row.ended_at.map(Ts),
        duration_secs: reconcile::duration_secs(&facts, row.ended_at.unwrap_or_default()),
        booked_secs: booking.as_ref().map(|b| (b.ends_at.0 - b.starts_at.0) / 1000),
        stop_reason: row.stop_reason.clone(),
        ended_by: row.ended_by.clone(),
        booking,
        cost: crate::billing::cost::of_session(&state.db, row, state.clock.now_ms()).await?,
    })
}

/// `GET /sessions/{id}/receipt` (every role, scoped): 409 SESSION_ACTIVE until finalized.
async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Receipt>, Problem> {
    let row = load(&state, &caller, id).await?;
    Ok(Json(receipt_of(&state, &row).await?))
}

/// `POST /sessions/{id}/finalize` (admin; the station's BackOffice and operators): completes a
/// session whose charger never reported the end; returns the receipt.
async fn finalize(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Receipt>, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Operator])?;
    load(&state, &caller, id).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let changes = finalize_in(&mut tx, id, &caller, now).await?;
    tx.commit().await?;
    state.wake_dispatcher();
    state.wake_billing();
    state.live.publish_changes(changes, now);
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("session"))?;
    Ok(Json(receipt_of(&state, &row).await?))
}

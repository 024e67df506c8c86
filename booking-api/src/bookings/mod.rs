//! Bookings: creation within the horizon (pending or auto-approved), idempotent by key;
//! reschedule and cancel until the cutoff; approval by the station's BackOffice or an admin;
//! check-in, completion, abort and no-show by the station's staff; every change audited, key
//! transitions notified. Slot units are reserved and released in the same transaction.

pub mod exceptions;
pub mod rules;
pub mod store;

use crate::accounts;
use crate::api::auth::{Caller, Only, Owners, Role};
use crate::app::AppState;
use crate::audit;
use crate::notifications;
use crate::slots;
use crate::stations;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rules::{Action, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::db::{StoreError, Tx};
use service_kit::extract::{ApiBody, ApiPath};
use service_kit::extract::{ApiJson, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use store::Booking;
use utoipa::ToSchema;

/// Booking routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", post(create).get(list))
        .route("/bookings/{id}", get(detail).put(reschedule).delete(cancel))
        .route("/bookings/{id}/approve", post(approve))
        .route("/bookings/{id}/reject", post(reject))
        .route("/bookings/{id}/check-in", post(check_in))
        .route("/bookings/{id}/complete", post(complete))
        .route("/bookings/{id}/abort", post(abort))
        .route("/bookings/{id}/no-show", post(no_show))
        .route("/bookings/{id}/exceptions", post(exception))
}

/// Body of `POST /bookings`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBooking {
    pub station_id: i64,
    /// Start of the slot (RFC 3339); must match a slot of the station.
    pub slot_start: DateTime<Utc>,
    /// One of the owner's vehicles.
    pub vehicle_id: Option<i64>,
}

/// Body of `PUT /bookings/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RescheduleBooking {
    /// Start of the new slot at the same station.
    pub slot_start: DateTime<Utc>,
}

/// Who may do what to a booking. Returns 403 for a role that may not, or one outside the
/// booking's scope (another owner's booking, another BackOffice's or operator's station).
async fn authorize(state: &AppState, caller: &Caller, booking: &Booking, action: Action) -> Result<(), Problem> {
    let staff = [Role::Admin, Role::BackOffice, Role::Operator];
    let allowed: &[Role] = match action {
        Action::Approve | Action::Reject => &[Role::Admin, Role::BackOffice],
        Action::CheckIn | Action::Complete | Action::Abort | Action::NoShow | Action::CancelOnSite => &staff,
        Action::Cancel => &[Role::Owner, Role::Admin],
        Action::Reschedule => &[Role::Owner],
    };
    caller.require(allowed)?;
    in_scope(state, caller, booking).await
}

/// Whether `caller` may see `booking` at all.
pub async fn in_scope(state: &AppState, caller: &Caller, booking: &Booking) -> Result<(), Problem> {
    let ok = match caller.role {
        Role::Admin => true,
        Role::Owner => booking.owner_id == caller.id,
        Role::Operator => caller.operates(&state.db, booking.station_id).await?,
        Role::BackOffice => stations::store::owner_of(&state.db, booking.station_id).await? == Some(caller.id),
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::forbidden("this booking is outside your scope"))
    }
}

fn slot_missing() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "SLOT_NOT_FOUND",
        "the station has no slot starting at that time",
    )
}

/// Why a slot had no unit left: a maintenance window (`SLOT_IN_MAINTENANCE`) or other bookings
/// (`SLOT_FULL`).
async fn slot_refused(state: &AppState, station_id: i64, starts_at: i64, ends_at: i64, full: &str) -> Problem {
    match crate::maintenance::store::blocking(&state.db, station_id, starts_at, ends_at).await {
        Ok(Some(window)) => crate::maintenance::slot_in_maintenance(window),
        Ok(None) => Problem::conflict("SLOT_FULL", full),
        Err(e) => e.into(),
    }
}

fn changed_meanwhile() -> Problem {
    Problem::conflict(
        "CONCURRENT_MODIFICATION",
        "the booking changed meanwhile; reload it and retry",
    )
}

fn notification(action: Action) -> Option<(&'static str, &'static str)> {
    match action {
        Action::Approve => Some(("BookingApproved", "Your booking is approved")),
        Action::Reject => Some(("BookingRejected", "Your booking was rejected")),
        Action::Cancel => Some(("BookingCancelled", "Your booking is cancelled")),
        Action::CheckIn => Some(("CheckedIn", "You are checked in")),
        Action::Complete => Some(("Completed", "Your charging session is complete")),
        Action::NoShow => Some(("NoShow", "Your booking was marked as a no-show")),
        Action::Abort => Some(("Aborted", "Your charging session was aborted")),
        Action::CancelOnSite => Some(("BookingCancelled", "Your booking was cancelled at the station")),
        Action::Reschedule => None,
    }
}

/// Audit record and notification of a change, inside its transaction.
async fn record(
    tx: &mut Tx,
    booking: &Booking,
    action: Action,
    actor: Option<&Caller>,
    extra: serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let reason = extra.get("reason").and_then(|r| r.as_str()).map(str::to_string);
    let payload = json!({
        "status": booking.status,
        "stationId": booking.station_id,
        "slotId": booking.slot_id,
        "startsAt": booking.starts_at,
        "details": extra,
    });
    audit::record(
        tx,
        "booking",
        &booking.id.to_string(),
        action.name(),
        actor,
        &payload,
        now,
    )
    .await?;
    notify(tx, booking, action, reason.as_deref(), now).await
}

/// Queues the owner's notification of `action`, if it has one.
async fn notify(
    tx: &mut Tx,
    booking: &Booking,
    action: Action,
    reason: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Some((kind, subject)) = notification(action) else {
        return Ok(());
    };
    let mut message = format!(
        "{subject}: booking {} at station {} starting {}",
        booking.id,
        booking.station_id,
        booking.starts_at.to_datetime().to_rfc3339()
    );
    if let Some(reason) = reason {
        message.push_str(&format!(" (reason: {reason})"));
    }
    notifications::enqueue(
        tx,
        kind,
        booking.owner_id,
        subject,
        &message,
        &json!({ "bookingId": booking.id }),
        now,
    )
    .await
}

fn inactive_owner() -> Problem {
    Problem::forbidden_code("ACCOUNT_INACTIVE", "the account is deactivated")
}

fn station_inactive() -> Problem {
    Problem::conflict("STATION_INACTIVE", "the station is not taking bookings")
}

/// Why no slot of `station_id` starts at `start` for this owner, checked in the order the
/// booking rules apply.
async fn why_unbookable(state: &AppState, owner_id: i64, station_id: i64, start: i64) -> Problem {
    let checks = async {
        let owner = accounts::store::by_id(&state.db, owner_id).await?;
        if owner.is_none_or(|o| o.status != "active") {
            return Ok(inactive_owner());
        }
        if let Err(e) = rules::check_start(&state.config.policy, state.clock.now_ms(), start) {
            return Ok(e.into());
        }
        match stations::store::get(&state.db, station_id).await? {
            None => Ok(Problem::not_found("station")),
            Some(station) if !station.active.0 => Ok(station_inactive()),
            Some(station) => Ok(stations::claim::not_bookable(&station.claim_status).unwrap_or_else(slot_missing)),
        }
    };
    checks.await.unwrap_or_else(|e: StoreError| e.into())
}

/// `POST /bookings` (owner). With an `Idempotency-Key` header the first successful response is
/// stored for 7 days: the same key and body get it again, the same key with another body 422.
async fn create(
    State(state): State<AppState>,
    Only(caller, _): Only<Owners>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateBooking>,
) -> Result<Response, Problem> {
    let now = state.clock.now_ms();
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(k.to_string()),
            _ => {
                return Err(Problem::invalid_field(
                    "Idempotency-Key",
                    "invalid_format",
                    "1-255 visible ASCII characters",
                ))
            }
        },
    };
    let request_hash = accounts::tokens::sha256_hex(&serde_json::to_vec(&req).map_err(Problem::internal)?);
    if let Some(key) = &key {
        if let Some(stored) = store::idempotent(&state.db, caller.id, key, now).await? {
            return replay(stored, &request_hash);
        }
    }
    let start = req.slot_start.timestamp_millis();
    // One query answers the common case; the reason a booking is impossible is looked up only
    // when it is.
    let Some(target) = store::target(&state.db, caller.id, req.station_id, start).await? else {
        return Err(why_unbookable(&state, caller.id, req.station_id, start).await);
    };
    if target.owner_status.as_deref() != Some("active") {
        return Err(inactive_owner());
    }
    rules::check_start(&state.config.policy, now, start)?;
    if !target.station_active.0 {
        return Err(station_inactive());
    }
    if let Some(refused) = stations::claim::not_bookable(&target.claim_status) {
        return Err(refused);
    }
    if let Some(vehicle) = req.vehicle_id {
        if !crate::vehicles::belongs(&state.db, vehicle, caller.id).await? {
            return Err(Problem::invalid_field(
                "vehicleId",
                "unknown_vehicle",
                "not one of your vehicles",
            ));
        }
    }
    let status = if target.auto_approve.0 {
        Status::Approved
    } else {
        Status::Pending
    };
    let mut tx = state.db.begin().await?;
    if !slots::reserve(&mut tx, target.slot_id).await? {
        tx.rollback().await?;
        return Err(slot_refused(
            &state,
            req.station_id,
            target.starts_at,
            target.ends_at,
            "every connector of this slot is booked",
        )
        .await);
    }
    let booking = store::insert(
        &mut tx,
        caller.id,
        req.station_id,
        (target.slot_id, target.starts_at, target.ends_at),
        req.vehicle_id,
        status,
        now,
    )
    .await?;
    let payload = json!({
        "status": booking.status,
        "stationId": booking.station_id,
        "slotId": booking.slot_id,
        "startsAt": booking.starts_at,
        "autoApproved": status == Status::Approved,
    });
    audit::record(
        &mut tx,
        "booking",
        &booking.id.to_string(),
        "booking.created",
        Some(&caller),
        &payload,
        now,
    )
    .await?;
    if status == Status::Approved {
        notify(&mut tx, &booking, Action::Approve, None, now).await?;
        crate::reservations::store::after_change(&mut tx, booking.id, status, false).await?;
    }
    let body = serde_json::to_string(&booking).map_err(Problem::internal)?;
    if let Some(key) = &key {
        let expires = now + state.config.policy.idempotency_days.max(1) * 86_400_000;
        match store::store_idempotent(&mut tx, caller.id, key, &request_hash, 201, &body, now, expires).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                // A concurrent request with the same key won; answer as it did.
                tx.rollback().await?;
                let stored = store::idempotent(&state.db, caller.id, key, now)
                    .await?
                    .ok_or_else(changed_meanwhile)?;
                return replay(stored, &request_hash);
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    state.wake_dispatcher();
    state.live.booking_changed(&booking);
    state.wake_charger_work();
    Ok(created(StatusCode::CREATED, booking.id, body, false))
}

fn created(status: StatusCode, id: i64, body: String, replayed: bool) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/bookings/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn replay(stored: store::StoredResponse, request_hash: &str) -> Result<Response, Problem> {
    if stored.request_hash != request_hash {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let status = StatusCode::from_u16(u16::try_from(stored.status_code).unwrap_or(200)).unwrap_or(StatusCode::OK);
    let id = serde_json::from_str::<serde_json::Value>(&stored.response)
        .ok()
        .and_then(|v| v["id"].as_i64())
        .unwrap_or_default();
    Ok(created(status, id, stored.response, true))
}

/// Query of `GET /bookings`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    station_id: Option<i64>,
    /// Bookings starting at or after (RFC 3339); with `to`, an operator's day list.
    from: Option<DateTime<Utc>>,
    /// Bookings starting before (RFC 3339).
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /bookings?status=&stationId=&from=&to=` (every role, scoped): newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Booking>>, Problem> {
    if let Some(s) = &q.status {
        if Status::parse(s).is_none() {
            return Err(Problem::invalid_field(
                "status",
                "unknown_value",
                "not a booking status",
            ));
        }
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let filter = store::Filter {
        status: q.status.as_deref(),
        station_id: q.station_id,
        from: q.from.map(|t| t.timestamp_millis()),
        to: q.to.map(|t| t.timestamp_millis()),
    };
    let rows = store::list(&state.db, caller.role, caller.id, &filter, page.int_key()?, limit).await?;
    Ok(Json(Page::new(rows, limit, |b| b.id.to_string())))
}

async fn load(state: &AppState, id: i64) -> Result<Booking, Problem> {
    store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("booking"))
}

/// `GET /bookings/{id}` (every role, scoped).
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    let booking = load(&state, id).await?;
    in_scope(&state, &caller, &booking).await?;
    Ok(Json(booking))
}

/// Why [`transition_in`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// The state machine has no such move from the booking's status.
    #[error("{0}")]
    Illegal(String),
    /// The booking's status changed since it was read.
    #[error("the booking changed meanwhile; reload it and retry")]
    Changed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl From<TransitionError> for Problem {
    fn from(e: TransitionError) -> Problem {
        match e {
            TransitionError::Illegal(detail) => Problem::conflict("ILLEGAL_TRANSITION", detail),
            TransitionError::Changed => changed_meanwhile(),
            TransitionError::Store(e) => StoreError::from(e).into(),
        }
    }
}

/// The one place a booking's status changes, inside the caller's transaction: the state
/// machine, the conditional update, the slot release, the audit record (`extra` goes into its
/// details) and the owner's notification. The HTTP actions (through [`transition`]) and the bus
/// consumer (a charger's start and stop, `actor` None: the system) both call it. Time-window
/// policies are the caller's: a charger's report is a fact, not a request.
pub async fn transition_in(
    tx: &mut Tx,
    booking: Booking,
    action: Action,
    actor: Option<&Caller>,
    extra: serde_json::Value,
    now: i64,
) -> Result<Booking, TransitionError> {
    let from = booking.status();
    let to = rules::next(from, action, false).map_err(|e| TransitionError::Illegal(e.to_string()))?;
    if !store::set_status(tx, booking.id, from, to, now).await? {
        return Err(TransitionError::Changed);
    }
    // The charger side follows in the same transaction: token grant or revocation, reservation
    // cancellation (reservations::store::after_change); the caller wakes the worker.
    crate::reservations::store::after_change(tx, booking.id, to, false).await?;
    if from.holds_slot() && !to.holds_slot() && booking.starts_at.0 > now {
        slots::release(tx, booking.slot_id).await?;
    }
    let updated = Booking {
        status: to.as_str().to_string(),
        updated_at: service_kit::sql_types::Ts(now),
        ..booking
    };
    let mut details = json!({ "from": from.as_str() });
    if let (Some(d), serde_json::Value::Object(more)) = (details.as_object_mut(), extra) {
        d.extend(more);
    }
    record(tx, &updated, action, actor, details, now).await?;
    Ok(updated)
}

/// A status change requested by a person or the no-show sweeper (`actor` None), inside the
/// caller's transaction: the action's time-window policy, then [`transition_in`]. HTTP
/// handlers (through [`transition`]), the sweeper and QR check-in (which consumes its token in
/// the same transaction) call it. The caller commits, wakes the dispatcher and publishes the
/// change on the live socket.
pub async fn apply_in(
    tx: &mut Tx,
    policy: &crate::config::Policy,
    actor: Option<&Caller>,
    booking: Booking,
    action: Action,
    now: i64,
) -> Result<Booking, Problem> {
    apply_with(tx, policy, actor, booking, action, json!({}), now).await
}

/// [`apply_in`] with `extra` details for the audit record (an exception's reason).
pub async fn apply_with(
    tx: &mut Tx,
    policy: &crate::config::Policy,
    actor: Option<&Caller>,
    booking: Booking,
    action: Action,
    extra: serde_json::Value,
    now: i64,
) -> Result<Booking, Problem> {
    rules::next(booking.status(), action, false)?;
    match action {
        Action::Cancel if actor.is_some_and(|a| a.role == Role::Owner) => {
            rules::check_cutoff(policy, now, booking.starts_at.0)?
        }
        Action::CheckIn => rules::check_checkin(policy, now, booking.starts_at.0, booking.ends_at.0)?,
        Action::NoShow => rules::check_no_show(policy, now, booking.starts_at.0)?,
        _ => {}
    }
    Ok(transition_in(tx, booking, action, actor, extra, now).await?)
}

/// [`apply_in`] in a transaction of its own.
async fn transition(
    state: &AppState,
    actor: Option<&Caller>,
    booking: Booking,
    action: Action,
) -> Result<Booking, Problem> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let updated = apply_in(&mut tx, &state.config.policy, actor, booking, action, now).await?;
    tx.commit().await?;
    state.wake_dispatcher();
    state.wake_charger_work();
    state.live.booking_changed(&updated);
    Ok(updated)
}

async fn act(state: AppState, caller: Caller, id: i64, action: Action) -> Result<Json<Booking>, Problem> {
    let booking = load(&state, id).await?;
    authorize(&state, &caller, &booking, action).await?;
    Ok(Json(transition(&state, Some(&caller), booking, action).await?))
}

/// `POST /bookings/{id}/approve` (the station's BackOffice, admin): Pending to Approved.
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    act(state, caller, id, Action::Approve).await
}

/// `POST /bookings/{id}/reject` (the station's BackOffice, admin): Pending to Rejected.
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    act(state, caller, id, Action::Reject).await
}

/// `POST /bookings/{id}/check-in` (the station's operators and BackOffice, admin).
async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    act(state, caller, id, Action::CheckIn).await
}

/// `POST /bookings/{id}/complete` (the station's operators and BackOffice, admin).
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    act(state, caller, id, Action::Complete).await
}

/// An exception whose reason is optional (`/abort`, `/no-show`): authorized first, so another
/// role gets 403 whatever it sent.
async fn exception_with_optional_reason(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &[u8],
    kind: exceptions::ExceptionKind,
) -> Result<Json<exceptions::ExceptionOutcome>, Problem> {
    let booking = load(state, id).await?;
    authorize(state, caller, &booking, kind.action()).await?;
    let reason = exceptions::parse_optional_reason(body)?;
    Ok(Json(exceptions::record(state, caller, booking, kind, reason).await?))
}

/// `POST /bookings/{id}/abort` (the station's operators and BackOffice, admin), the body
/// `{"reason": ...}` optional: the [`exceptions`] `Aborted`.
async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiBody(body): ApiBody,
) -> Result<Json<exceptions::ExceptionOutcome>, Problem> {
    exception_with_optional_reason(&state, &caller, id, &body, exceptions::ExceptionKind::Aborted).await
}

/// `POST /bookings/{id}/no-show` (the station's operators and BackOffice, admin), the body
/// `{"reason": ...}` optional: the [`exceptions`] `NoShow`.
async fn no_show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiBody(body): ApiBody,
) -> Result<Json<exceptions::ExceptionOutcome>, Problem> {
    exception_with_optional_reason(&state, &caller, id, &body, exceptions::ExceptionKind::NoShow).await
}

/// `POST /bookings/{id}/exceptions` `{"kind": "NoShow"|"Aborted"|"CancelOnSite", "reason": ...}`
/// (the station's operators and BackOffice, admin): see [`exceptions`].
async fn exception(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiBody(body): ApiBody,
) -> Result<Json<exceptions::ExceptionOutcome>, Problem> {
    let booking = load(&state, id).await?;
    // Every kind is staff-only; authorizing first gives another role 403 whatever it sent.
    authorize(&state, &caller, &booking, Action::CancelOnSite).await?;
    let (kind, reason) = exceptions::parse_request(&body)?;
    Ok(Json(
        exceptions::record(&state, &caller, booking, kind, Some(reason)).await?,
    ))
}

/// `DELETE /bookings/{id}` (the owner until the cutoff; admin any time): cancels and frees the slot.
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, Problem> {
    act(state, caller, id, Action::Cancel).await
}

/// `PUT /bookings/{id}` (the owner, until the cutoff): moves the booking to another slot of the
/// same station; a station without auto-approval needs a new approval.
async fn reschedule(
    State(state): State<AppState>,
    Only(caller, _): Only<Owners>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RescheduleBooking>,
) -> Result<Json<Booking>, Problem> {
    let booking = load(&state, id).await?;
    authorize(&state, &caller, &booking, Action::Reschedule).await?;
    let now = state.clock.now_ms();
    let policy = &state.config.policy;
    let station = stations::store::get(&state.db, booking.station_id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    let from = booking.status();
    let to = rules::next(from, Action::Reschedule, station.auto_approve.0)?;
    rules::check_cutoff(policy, now, booking.starts_at.0)?;
    let start = req.slot_start.timestamp_millis();
    rules::check_start(policy, now, start)?;
    if !station.active.0 {
        return Err(Problem::conflict(
            "STATION_INACTIVE",
            "the station is not taking bookings",
        ));
    }
    if let Some(refused) = stations::claim::not_bookable(&station.claim_status) {
        return Err(refused);
    }
    let slot = slots::at(&state.db, booking.station_id, start)
        .await?
        .ok_or_else(slot_missing)?;
    if slot.id == booking.slot_id {
        return Ok(Json(booking));
    }
    let mut tx = state.db.begin().await?;
    if !slots::reserve(&mut tx, slot.id).await? {
        tx.rollback().await?;
        return Err(slot_refused(
            &state,
            booking.station_id,
            slot.starts_at.0,
            slot.ends_at.0,
            "every connector of the new slot is booked",
        )
        .await);
    }
    if !store::move_to(
        &mut tx,
        booking.id,
        from,
        to,
        (slot.id, slot.starts_at.0, slot.ends_at.0),
        now,
    )
    .await?
    {
        return Err(changed_meanwhile());
    }
    slots::release(&mut tx, booking.slot_id).await?;
    crate::reservations::store::after_change(&mut tx, booking.id, to, true).await?;
    let updated = Booking {
        slot_id: slot.id,
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        status: to.as_str().to_string(),
        updated_at: service_kit::sql_types::Ts(now),
        ..booking.clone()
    };
    record(
        &mut tx,
        &updated,
        Action::Reschedule,
        Some(&caller),
        json!({ "from": from.as_str(), "previousSlotId": booking.slot_id, "previousStartsAt": booking.starts_at }),
        now,
    )
    .await?;
    tx.commit().await?;
    state.live.booking_changed(&updated);
    state.wake_charger_work();
    Ok(Json(updated))
}

/// Marks approved bookings NoShow once their slot ended more than the grace period ago (the
/// background worker's round); returns how many.
pub async fn sweep_no_shows(state: &AppState) -> anyhow::Result<usize> {
    let cutoff = state.clock.now_ms() - state.config.policy.no_show_grace_minutes * 60_000;
    let mut marked = 0;
    let reason = format!(
        "not checked in by {} minutes after the end of the slot",
        state.config.policy.no_show_grace_minutes
    );
    for booking in store::overdue(&state.db, cutoff).await? {
        match exceptions::apply(
            state,
            None,
            booking,
            exceptions::ExceptionKind::NoShow,
            Some(reason.clone()),
        )
        .await
        {
            Ok(_) => marked += 1,
            Err(p) if p.status == 409 => {}
            Err(p) => anyhow::bail!("no-show sweep: {}", p.detail),
        }
    }
    Ok(marked)
}

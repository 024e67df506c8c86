//! Stations: created by a BackOffice (ownership stamped), linked to the central system's station
//! id and connectors, located, zoned, scheduled; deactivation guarded by future bookings;
//! nearby search with a 7-day availability summary.

pub mod claim;
pub mod schedule;
pub mod store;

use crate::api::auth::{BackOffices, Caller, Managers, Only, Role};
use crate::app::AppState;
use crate::audit;
use crate::slots::{self, StationInventory};
use crate::validate::{self, Coordinates, Fields};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use schedule::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::db::{StoreError, Tx};
use service_kit::extract::ApiPath;
use service_kit::extract::{ApiJson, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::Problem;
use service_kit::sql_types::{Flag, Ts};
use store::{Connector, StationRow};
use utoipa::ToSchema;

/// Station routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations", post(create).get(list))
        .route("/stations/nearby", get(nearby))
        .route("/stations/{id}", get(detail).patch(update))
        .route("/stations/{id}/schedule", put(set_schedule))
        .route("/stations/{id}/connectors", put(set_connectors))
        .route("/stations/{id}/deactivate", post(deactivate))
        .route("/stations/{id}/activate", post(activate))
        .route("/stations/{id}/claim", post(claim::decide))
}

/// A station as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Station {
    pub id: i64,
    /// Owning BackOffice account.
    pub backoffice_id: i64,
    /// The station's id in the central system (its OCPP identity).
    pub central_station_id: String,
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone of the schedule.
    pub time_zone: String,
    /// Slot length in minutes.
    pub slot_minutes: i64,
    /// Bookings are approved on creation.
    pub auto_approve: bool,
    /// Tariff reference for billing.
    pub tariff_ref: Option<String>,
    pub active: bool,
    pub schedule: Schedule,
    pub connectors: Vec<Connector>,
    pub created_at: Ts,
    /// The Admin's decision on this station's claim of its charger: `Pending`, `Approved` or
    /// `Rejected`; only an approved station takes bookings.
    pub claim_status: String,
}

fn station_view(row: StationRow, connectors: Vec<Connector>) -> Station {
    let schedule = row.schedule();
    Station {
        id: row.id,
        backoffice_id: row.backoffice_id,
        central_station_id: row.central_station_id,
        name: row.name,
        address: row.address,
        latitude: row.latitude,
        longitude: row.longitude,
        time_zone: row.time_zone,
        slot_minutes: row.slot_minutes,
        auto_approve: row.auto_approve.0,
        tariff_ref: row.tariff_ref,
        active: row.active.0,
        schedule,
        connectors,
        created_at: row.created_at,
        claim_status: row.claim_status,
    }
}

/// A connector in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorInput {
    /// Connector id at the charger (1 or more, unique within the station): the 1.6 connectorId
    /// or the 2.0.1 evseId, one the charger reported (422 `UNKNOWN_CONNECTOR` otherwise).
    pub connector_id: i64,
    /// One of Type1, Type2, CCS1, CCS2, CHAdeMO, GBT, NACS.
    #[serde(rename = "type")]
    pub connector_type: String,
    /// Maximum power in kW (up to 1000).
    pub max_power_kw: f64,
    /// Whether it may be booked (default true).
    pub bookable: Option<bool>,
}

/// Body of `POST /stations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStation {
    /// The central system's station id (1-48 characters of `A-Za-z0-9-._~*=:+|@`) of a
    /// charger it has reported (`GET /chargers`); 422 `INVALID_STATION_ID` / `UNKNOWN_CHARGER`.
    pub central_station_id: String,
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA zone, e.g. `Asia/Colombo`.
    pub time_zone: String,
    /// Slot length in minutes: 15 to 240, a multiple of 5 (default 60).
    pub slot_minutes: Option<i64>,
    /// Approve bookings on creation (default false).
    pub auto_approve: Option<bool>,
    /// Tariff reference.
    pub tariff_ref: Option<String>,
    /// At least one connector.
    pub connectors: Vec<ConnectorInput>,
    /// Opening hours.
    pub schedule: Schedule,
}

/// Body of `PATCH /stations/{id}`: absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStation {
    pub name: Option<String>,
    pub address: Option<String>,
    pub auto_approve: Option<bool>,
    pub tariff_ref: Option<String>,
}

/// Body of `PUT /stations/{id}/connectors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorsUpdate {
    /// The complete new set.
    pub connectors: Vec<ConnectorInput>,
}

/// Body of `PUT /stations/{id}/schedule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleUpdate {
    pub schedule: Schedule,
    /// New slot length (default: unchanged).
    pub slot_minutes: Option<i64>,
}

fn check_slot_minutes(fields: &mut Fields, m: i64) {
    if !(15..=240).contains(&m) || m % 5 != 0 {
        fields.push(
            "slotMinutes",
            "out_of_range",
            "slotMinutes is 15 to 240, a multiple of 5",
        );
    }
}

fn check_connectors(fields: &mut Fields, input: &[ConnectorInput]) -> Vec<Connector> {
    if input.is_empty() {
        fields.push("connectors", "required", "a station has at least one connector");
    }
    let mut out: Vec<Connector> = Vec::new();
    for (i, c) in input.iter().enumerate() {
        if c.connector_id < 1 || out.iter().any(|o| o.connector_id == c.connector_id) {
            fields.push(
                &format!("connectors[{i}].connectorId"),
                "invalid_value",
                "connector ids are unique and at least 1",
            );
        }
        let kind = fields.check(
            &format!("connectors[{i}].type"),
            validate::connector_type(&c.connector_type),
        );
        if !c.max_power_kw.is_finite() || c.max_power_kw <= 0.0 || c.max_power_kw > 1000.0 {
            fields.push(
                &format!("connectors[{i}].maxPowerKw"),
                "out_of_range",
                "maxPowerKw is above 0 and at most 1000",
            );
        }
        out.push(Connector {
            connector_id: c.connector_id,
            connector_type: kind.unwrap_or_default(),
            max_power_w: (c.max_power_kw * 1000.0).round() as i64,
            bookable: Flag(c.bookable.unwrap_or(true)),
        });
    }
    out
}

/// The linking rule ([`crate::chargers::link`]): 422 `INVALID_STATION_ID`, `UNKNOWN_CHARGER`
/// or `UNKNOWN_CONNECTOR` unless the station names a charger the central system reported, and
/// only connectors it reported. Checked after field validation, so a malformed body is 400 first.
async fn linked(state: &AppState, central_id: &str, connectors: &[Connector]) -> Result<(), Problem> {
    let ids: Vec<i64> = connectors.iter().map(|c| c.connector_id).collect();
    crate::chargers::link::check(&state.db, central_id, &ids).await?;
    Ok(())
}

fn capacity(connectors: &[Connector]) -> i64 {
    connectors.iter().filter(|c| c.bookable.0).count() as i64
}

/// Regenerates a station's future inventory inside `tx`.
pub async fn sync_inventory(
    state: &AppState,
    tx: &mut Tx,
    row: &StationRow,
    connectors: &[Connector],
) -> Result<usize, sqlx::Error> {
    let inv = StationInventory {
        station_id: row.id,
        schedule: row.schedule(),
        tz: row.tz(),
        slot_minutes: row.slot_minutes,
        capacity: capacity(connectors),
    };
    slots::sync_station(tx, &inv, state.clock.now(), state.config.policy.inventory_days).await
}

/// Extends every active station's inventory to the horizon (the background worker's round).
pub async fn sync_all(state: &AppState) -> anyhow::Result<usize> {
    let mut added = 0;
    for id in store::active_ids(&state.db).await? {
        let Some(row) = store::get(&state.db, id).await? else {
            continue;
        };
        let connectors = store::connectors(&state.db, id).await?;
        let mut tx = state.db.begin().await?;
        added += sync_inventory(state, &mut tx, &row, &connectors).await?;
        tx.commit().await?;
    }
    Ok(added)
}

/// The station if `caller` may see it: admins all, a BackOffice its own, an operator its
/// assigned ones (other stations are 403), owners the active ones (inactive are 404).
pub async fn visible(state: &AppState, caller: &Caller, id: i64) -> Result<StationRow, Problem> {
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    match caller.role {
        Role::Admin => {}
        Role::BackOffice if row.backoffice_id == caller.id => {}
        Role::Operator if caller.operates(&state.db, id).await? => {}
        Role::Owner if row.active.0 && claim::not_bookable(&row.claim_status).is_none() => {}
        Role::Owner => return Err(Problem::not_found("station")),
        _ => return Err(Problem::forbidden("this station is outside your scope")),
    }
    Ok(row)
}

/// The station if `caller` may change it: admins, or the owning BackOffice.
pub async fn manageable(state: &AppState, caller: &Caller, id: i64) -> Result<StationRow, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice])?;
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    if caller.role == Role::BackOffice && row.backoffice_id != caller.id {
        return Err(Problem::forbidden("this station belongs to another BackOffice"));
    }
    Ok(row)
}

/// `POST /stations` (BackOffice): the station is stamped with the caller as owner.
async fn create(
    State(state): State<AppState>,
    Only(caller, _): Only<BackOffices>,
    ApiJson(req): ApiJson<CreateStation>,
) -> Result<(StatusCode, Json<Station>), Problem> {
    let mut fields = Fields::new();
    let central_id = req.central_station_id.trim();
    let name = fields.check("name", validate::text(&req.name, 200));
    let address = fields.check("address", validate::text(&req.address, 500));
    if let Err((field, e)) = Coordinates::parse(req.latitude, req.longitude) {
        fields.push(field, e.code, e.message);
    }
    if req.time_zone.parse::<Tz>().is_err() {
        fields.push("timeZone", "unknown_value", "not an IANA time zone name");
    }
    let slot_minutes = req.slot_minutes.unwrap_or(60);
    check_slot_minutes(&mut fields, slot_minutes);
    let tariff = req
        .tariff_ref
        .as_deref()
        .map(|t| fields.check("tariffRef", validate::text(t, 100)));
    let connectors = check_connectors(&mut fields, &req.connectors);
    schedule::validate(&req.schedule, "schedule", &mut fields);
    fields.finish()?;
    linked(&state, central_id, &connectors).await?;
    let (Some(name), Some(address)) = (name, address) else {
        return Err(Problem::internal("validation passed without values"));
    };
    let schedule_json = serde_json::to_string(&req.schedule).map_err(Problem::internal)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let id = store::insert(
        &mut tx,
        &store::NewStation {
            backoffice_id: caller.id,
            central_station_id: central_id,
            name: &name,
            address: &address,
            latitude: req.latitude,
            longitude: req.longitude,
            time_zone: &req.time_zone,
            slot_minutes,
            auto_approve: req.auto_approve.unwrap_or(false),
            tariff_ref: tariff.flatten().as_deref(),
            schedule: &schedule_json,
        },
        &connectors,
        now,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict => {
            Problem::conflict("STATION_EXISTS", "a station with this central-system id already exists")
        }
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        "station",
        &id.to_string(),
        "station.created",
        Some(&caller),
        &json!({ "centralStationId": central_id, "name": name }),
        now,
    )
    .await?;
    tx.commit().await?;
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::internal("station vanished"))?;
    let mut tx = state.db.begin().await?;
    sync_inventory(&state, &mut tx, &row, &connectors).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(station_view(row, connectors))))
}

/// Query of `GET /stations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    /// Only stations whose claim is in this state (an Admin's queue: `Pending`).
    claim_status: Option<claim::ClaimStatus>,
}

/// `GET /stations` (every role): admins all, a BackOffice its own, operators their assigned,
/// owners the active ones.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Station>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let (backoffice, operator, only_active) = match caller.role {
        Role::Admin => (None, None, false),
        Role::BackOffice => (Some(caller.id), None, false),
        Role::Operator => (None, Some(caller.id), false),
        Role::Owner => (None, None, true),
    };
    let claim = q.claim_status.map(claim::ClaimStatus::as_str);
    let rows = store::list(
        &state.db,
        backoffice,
        operator,
        only_active,
        claim,
        page.int_key()?,
        limit,
    )
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let connectors = store::connectors(&state.db, row.id).await?;
        items.push(station_view(row, connectors));
    }
    Ok(Json(Page::new(items, limit, |s: &Station| s.id.to_string())))
}

/// `GET /stations/{id}` (every role within its scope).
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Station>, Problem> {
    let row = visible(&state, &caller, id).await?;
    let connectors = store::connectors(&state.db, id).await?;
    Ok(Json(station_view(row, connectors)))
}

async fn save(
    state: &AppState,
    caller: &Caller,
    row: StationRow,
    patch: store::StationPatch<'_>,
    action: &str,
    payload: serde_json::Value,
) -> Result<Station, Problem> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    store::update(&mut tx, row.id, &patch, now).await?;
    audit::record(
        &mut tx,
        "station",
        &row.id.to_string(),
        action,
        Some(caller),
        &payload,
        now,
    )
    .await?;
    let updated = StationRow {
        name: patch.name.to_string(),
        address: patch.address.to_string(),
        auto_approve: Flag(patch.auto_approve),
        tariff_ref: patch.tariff_ref.map(str::to_string),
        slot_minutes: patch.slot_minutes,
        schedule: patch.schedule.to_string(),
        ..row
    };
    let connectors = store::connectors(&state.db, updated.id).await?;
    if updated.active.0 {
        sync_inventory(state, &mut tx, &updated, &connectors).await?;
    }
    tx.commit().await?;
    Ok(station_view(updated, connectors))
}

/// `PATCH /stations/{id}` (owning BackOffice, admin).
async fn update(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<UpdateStation>,
) -> Result<Json<Station>, Problem> {
    let row = manageable(&state, &caller, id).await?;
    let mut fields = Fields::new();
    let name = req
        .name
        .as_deref()
        .map(|n| fields.check("name", validate::text(n, 200)));
    let address = req
        .address
        .as_deref()
        .map(|a| fields.check("address", validate::text(a, 500)));
    let tariff = req
        .tariff_ref
        .as_deref()
        .map(|t| fields.check("tariffRef", validate::text(t, 100)));
    fields.finish()?;
    // A station created before the linking rule, or whose charger was renamed, is brought in
    // line by the first change to it.
    linked(
        &state,
        &row.central_station_id,
        &store::connectors(&state.db, id).await?,
    )
    .await?;
    let name = name.flatten().unwrap_or_else(|| row.name.clone());
    let address = address.flatten().unwrap_or_else(|| row.address.clone());
    let tariff = tariff.flatten().or_else(|| row.tariff_ref.clone());
    let schedule = row.schedule.clone();
    let patch = store::StationPatch {
        name: &name,
        address: &address,
        auto_approve: req.auto_approve.unwrap_or(row.auto_approve.0),
        tariff_ref: tariff.as_deref(),
        slot_minutes: row.slot_minutes,
        schedule: &schedule,
    };
    let payload = json!({ "name": name, "address": address, "autoApprove": patch.auto_approve, "tariffRef": tariff });
    Ok(Json(
        save(&state, &caller, row.clone(), patch, "station.updated", payload).await?,
    ))
}

/// `PUT /stations/{id}/schedule` (owning BackOffice, admin): new hours regenerate the inventory.
async fn set_schedule(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ScheduleUpdate>,
) -> Result<Json<Station>, Problem> {
    let row = manageable(&state, &caller, id).await?;
    let mut fields = Fields::new();
    let slot_minutes = req.slot_minutes.unwrap_or(row.slot_minutes);
    check_slot_minutes(&mut fields, slot_minutes);
    schedule::validate(&req.schedule, "schedule", &mut fields);
    fields.finish()?;
    let schedule_json = serde_json::to_string(&req.schedule).map_err(Problem::internal)?;
    let (name, address, tariff) = (row.name.clone(), row.address.clone(), row.tariff_ref.clone());
    let patch = store::StationPatch {
        name: &name,
        address: &address,
        auto_approve: row.auto_approve.0,
        tariff_ref: tariff.as_deref(),
        slot_minutes,
        schedule: &schedule_json,
    };
    let payload = json!({ "schedule": req.schedule, "slotMinutes": slot_minutes });
    Ok(Json(
        save(&state, &caller, row, patch, "station.schedule_changed", payload).await?,
    ))
}

/// `PUT /stations/{id}/connectors` (owning BackOffice, admin): replaces the connectors; future
/// slots take the new capacity (a slot already booked beyond it keeps its bookings).
async fn set_connectors(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ConnectorsUpdate>,
) -> Result<Json<Station>, Problem> {
    let row = manageable(&state, &caller, id).await?;
    let mut fields = Fields::new();
    let connectors = check_connectors(&mut fields, &req.connectors);
    fields.finish()?;
    linked(&state, &row.central_station_id, &connectors).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    store::replace_connectors(&mut tx, id, &connectors).await?;
    let payload = json!({ "connectors": connectors, "capacity": capacity(&connectors) });
    audit::record(
        &mut tx,
        "station",
        &id.to_string(),
        "station.connectors_changed",
        Some(&caller),
        &payload,
        now,
    )
    .await?;
    if row.active.0 {
        sync_inventory(&state, &mut tx, &row, &connectors).await?;
    }
    tx.commit().await?;
    Ok(Json(station_view(row, connectors)))
}

/// `POST /stations/{id}/deactivate` (owning BackOffice, admin): refused with 409
/// `STATION_HAS_FUTURE_BOOKINGS` while pending or approved bookings lie ahead.
async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Station>, Problem> {
    let row = manageable(&state, &caller, id).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    // Deactivate first, then count: a booking racing this sees the station inactive once this
    // commits, and one that committed before is counted.
    store::set_active(&mut tx, id, false, now).await?;
    let future = store::future_bookings(&mut tx, id, now).await?;
    if future > 0 {
        tx.rollback().await?;
        return Err(Problem::conflict(
            "STATION_HAS_FUTURE_BOOKINGS",
            format!("{future} pending or approved bookings lie ahead; cancel or complete them first"),
        ));
    }
    audit::record(
        &mut tx,
        "station",
        &id.to_string(),
        "station.deactivated",
        Some(&caller),
        &json!({}),
        now,
    )
    .await?;
    tx.commit().await?;
    let connectors = store::connectors(&state.db, id).await?;
    Ok(Json(station_view(
        StationRow {
            active: Flag(false),
            ..row
        },
        connectors,
    )))
}

/// `POST /stations/{id}/activate` (owning BackOffice, admin).
async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Station>, Problem> {
    let row = manageable(&state, &caller, id).await?;
    let now = state.clock.now_ms();
    let connectors = store::connectors(&state.db, id).await?;
    let row = StationRow {
        active: Flag(true),
        ..row
    };
    let mut tx = state.db.begin().await?;
    store::set_active(&mut tx, id, true, now).await?;
    audit::record(
        &mut tx,
        "station",
        &id.to_string(),
        "station.activated",
        Some(&caller),
        &json!({}),
        now,
    )
    .await?;
    sync_inventory(&state, &mut tx, &row, &connectors).await?;
    tx.commit().await?;
    Ok(Json(station_view(row, connectors)))
}

/// Query of `GET /stations/nearby`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NearbyQuery {
    lat: f64,
    lon: f64,
    /// Radius in km (default 10, at most 200).
    radius_km: Option<f64>,
    /// Only stations with a connector of this type.
    connector_type: Option<String>,
    /// Only stations with a connector of at least this power (kW).
    min_power_kw: Option<f64>,
    /// Only stations open now.
    open_now: Option<bool>,
    /// At most this many (default 20, at most 100), nearest first.
    limit: Option<usize>,
}

/// Availability of one local day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayAvailability {
    /// Local date.
    pub date: NaiveDate,
    /// Slots that day.
    pub slots: i64,
    /// Slots with room.
    pub free_slots: i64,
    /// Free connector-slots (sum of capacity - booked).
    pub free_capacity: i64,
}

/// A search result.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NearbyStation {
    #[serde(flatten)]
    pub station: Station,
    /// Distance from the search point.
    pub distance_km: f64,
    /// Open at the time of the search.
    pub open_now: bool,
    /// The next 7 local days.
    pub availability: Vec<DayAvailability>,
}

/// Whether `caller` is staff of `station_id`: admins of every station, a BackOffice of its
/// own, an operator of the stations assigned to them now; owners of none.
pub async fn handles(
    db: &service_kit::db::Db,
    caller: &Caller,
    station_id: i64,
) -> Result<bool, service_kit::db::StoreError> {
    Ok(match caller.role {
        Role::Admin => true,
        Role::BackOffice => store::get(db, station_id)
            .await?
            .is_some_and(|s| s.backoffice_id == caller.id),
        Role::Operator => crate::accounts::store::operator_assigned(db, caller.id, station_id).await?,
        Role::Owner => false,
    })
}

/// A search area from a query: the origin (`lat`, `lon`) and `radiusKm` (above 0, at most 200;
/// `default` when absent), each error named in `fields`.
pub fn search_area(
    fields: &mut Fields,
    lat: f64,
    lon: f64,
    radius_km: Option<f64>,
    default: f64,
) -> Option<(Coordinates, f64)> {
    let origin = match Coordinates::parse(lat, lon) {
        Ok(c) => Some(c),
        Err((field, e)) => {
            fields.push(if field == "latitude" { "lat" } else { "lon" }, e.code, e.message);
            None
        }
    };
    let radius = radius_km.unwrap_or(default);
    if !radius.is_finite() || radius <= 0.0 || radius > 200.0 {
        fields.push("radiusKm", "out_of_range", "radiusKm is above 0 and at most 200");
        return None;
    }
    origin.map(|o| (o, radius))
}

/// Bookable stations within `radius` km of `origin`, with their distance (km), in no order.
pub async fn within(
    db: &service_kit::db::Db,
    origin: &Coordinates,
    radius: f64,
) -> Result<Vec<(f64, StationRow)>, Problem> {
    // A bounding box narrows the rows; the exact distance filters them.
    let dlat = radius / 111.0;
    let dlon = radius / (111.0 * origin.lat.to_radians().cos().abs().max(0.01));
    let rows = store::in_box(
        db,
        (origin.lat - dlat, origin.lat + dlat),
        (origin.lon - dlon, origin.lon + dlon),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let distance = origin.distance_km(&Coordinates {
                lat: row.latitude,
                lon: row.longitude,
            });
            (distance, row)
        })
        .filter(|(d, _)| *d <= radius)
        .collect())
}

/// `GET /stations/nearby?lat=&lon=&radiusKm=&connectorType=&minPowerKw=&openNow=` (every role):
/// active stations within the radius, nearest first, with a 7-day availability summary.
async fn nearby(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<NearbyQuery>,
) -> Result<Json<Vec<NearbyStation>>, Problem> {
    let mut fields = Fields::new();
    let area = search_area(&mut fields, q.lat, q.lon, q.radius_km, 10.0);
    let connector_type = q
        .connector_type
        .as_deref()
        .map(|t| fields.check("connectorType", validate::connector_type(t)));
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        fields.push("limit", "out_of_range", "limit is 1 to 100");
    }
    fields.finish()?;
    let (origin, radius) = area.ok_or_else(|| Problem::internal("validation passed without values"))?;
    let connector_type = connector_type.flatten();
    let min_power_w = q.min_power_kw.map(|kw| (kw * 1000.0).round() as i64);
    let now = state.clock.now();
    let mut found: Vec<(f64, StationRow, Vec<Connector>, bool)> = Vec::new();
    for (distance, row) in within(&state.db, &origin, radius).await? {
        let connectors = store::connectors(&state.db, row.id).await?;
        let matches = connectors.iter().any(|c| {
            connector_type.as_ref().is_none_or(|t| &c.connector_type == t)
                && min_power_w.is_none_or(|p| c.max_power_w >= p)
        });
        if !matches {
            continue;
        }
        let open = schedule::open_at(&row.schedule(), row.tz(), now);
        if q.open_now == Some(true) && !open {
            continue;
        }
        found.push((distance, row, connectors, open));
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    found.truncate(limit);
    let mut out = Vec::with_capacity(found.len());
    for (distance, row, connectors, open) in found {
        let availability = week(&state, &row).await?;
        out.push(NearbyStation {
            station: station_view(row, connectors),
            distance_km: (distance * 1000.0).round() / 1000.0,
            open_now: open,
            availability,
        });
    }
    Ok(Json(out))
}

/// Slot counts of the next 7 local days (today first), from now on.
async fn week(state: &AppState, row: &StationRow) -> Result<Vec<DayAvailability>, Problem> {
    let tz = row.tz();
    let now = state.clock.now();
    let today = now.with_timezone(&tz).date_naive();
    let days: Vec<NaiveDate> = (0..7)
        .filter_map(|d| today.checked_add_signed(Duration::days(d)))
        .collect();
    let end = days
        .last()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or(now.timestamp_millis() + 7 * 86_400_000);
    let slots = slots::between(&state.db, row.id, now.timestamp_millis(), end).await?;
    Ok(days
        .into_iter()
        .map(|date| {
            let of_day: Vec<_> = slots
                .iter()
                .filter(|s| s.starts_at.to_datetime().with_timezone(&tz).date_naive() == date)
                .collect();
            DayAvailability {
                date,
                slots: of_day.len() as i64,
                free_slots: of_day.iter().filter(|s| s.booked < s.capacity).count() as i64,
                free_capacity: of_day.iter().map(|s| s.capacity - s.booked).sum(),
            }
        })
        .collect())
}

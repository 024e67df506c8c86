//! Tariff endpoints: create a tariff (its first version), add versions, list and read them, and
//! assign a tariff to a station (optionally for one connector type). Admins do all of it; a
//! BackOffice its own tariffs and stations (shared tariffs, made by an admin, it may read and
//! assign); owners and operators get 403.

use super::store::{self, AssignmentRow, TariffRow, VersionRow};
use super::tariff::{Tariff, TariffError, ValidTariff};
use crate::api::auth::{Caller, Managers, Only, Role};
use crate::app::AppState;
use crate::audit;
use crate::validate::{self, Fields};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use service_kit::db::StoreError;
use service_kit::extract::{ApiJson, ApiPath, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::problem::{FieldError, Problem};
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Tariff routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tariffs", post(create).get(list))
        .route("/tariffs/{id}", get(detail))
        .route("/tariffs/{id}/versions", post(add_version))
        .route("/stations/{id}/tariffs", get(station_assignments))
        .route("/stations/{id}/tariff", put(assign))
}

/// One version of a tariff as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TariffVersion {
    pub version: i64,
    /// In force from this instant until the next version's `validFrom`.
    pub valid_from: Ts,
    pub currency: String,
    /// The OCPI 2.2.1 Tariff object.
    #[schema(value_type = Object)]
    pub tariff: Value,
    pub created_at: Ts,
}

/// A tariff as served, with its versions (oldest first).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TariffView {
    pub id: i64,
    /// The owning BackOffice; null for an admin's shared tariff.
    pub backoffice_id: Option<i64>,
    pub name: String,
    pub versions: Vec<TariffVersion>,
    pub created_at: Ts,
}

/// Body of `POST /tariffs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTariff {
    pub name: String,
    /// Admins only: the BackOffice that owns it (absent: shared). A BackOffice owns what it makes.
    pub backoffice_id: Option<i64>,
    /// When the first version takes effect (default now; not in the past).
    pub valid_from: Option<DateTime<Utc>>,
    /// The OCPI 2.2.1 Tariff object (422 with a `TARIFF_*` code when invalid).
    #[schema(value_type = Object)]
    pub tariff: Value,
}

/// Body of `POST /tariffs/{id}/versions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVersion {
    /// When it takes effect (default now): not in the past, after the newest version's.
    pub valid_from: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub tariff: Value,
}

/// Body of `PUT /stations/{id}/tariff`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignTariff {
    pub tariff_id: i64,
    /// Only for connectors of this type (Type2, CCS2, ...); absent: every connector.
    pub connector_type: Option<String>,
    /// From when (default now; not in the past).
    pub valid_from: Option<DateTime<Utc>>,
}

/// A station's tariff assignment as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: i64,
    pub station_id: i64,
    /// Null: every connector type.
    pub connector_type: Option<String>,
    pub tariff_id: i64,
    pub valid_from: Ts,
    pub created_at: Ts,
}

fn assignment_view(a: AssignmentRow) -> Assignment {
    Assignment {
        id: a.id,
        station_id: a.station_id,
        connector_type: (!a.connector_type.is_empty()).then_some(a.connector_type),
        tariff_id: a.tariff_id,
        valid_from: Ts(a.valid_from),
        created_at: Ts(a.created_at),
    }
}

fn version_view(v: VersionRow) -> TariffVersion {
    TariffVersion {
        version: v.version,
        valid_from: Ts(v.valid_from),
        currency: v.currency,
        tariff: serde_json::from_str(&v.body).unwrap_or(Value::Null),
        created_at: Ts(v.created_at),
    }
}

/// 422 with the tariff's problem code and the offending field (under `tariff.`).
impl From<TariffError> for Problem {
    fn from(e: TariffError) -> Problem {
        let field = format!("tariff.{}", e.field);
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code,
            format!("{field}: {}", e.message),
        )
        .with_errors(json!([FieldError::new(&field, e.code, e.message)]))
    }
}

/// Reads and validates an OCPI tariff from a request body's `tariff`.
pub fn parse_tariff(raw: Value) -> Result<ValidTariff, Problem> {
    let tariff: Tariff = serde_json::from_value(raw).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "TARIFF_MALFORMED",
            format!("tariff: not an OCPI 2.2.1 Tariff object: {e}"),
        )
    })?;
    Ok(ValidTariff::parse(tariff)?)
}

/// The instant a version or assignment takes effect: `requested`, or now; never in the past
/// (a tariff in force when a session started must not change under it).
fn effective(requested: Option<DateTime<Utc>>, now: i64) -> Result<i64, Problem> {
    match requested {
        None => Ok(now),
        Some(t) if t.timestamp_millis() >= now => Ok(t.timestamp_millis()),
        Some(_) => Err(Problem::invalid_field(
            "validFrom",
            "in_the_past",
            "validFrom may not be in the past: sessions already priced would change",
        )),
    }
}

/// The tariff if `caller` may read it: admins all; a BackOffice its own and the shared ones.
async fn readable(state: &AppState, caller: &Caller, id: i64) -> Result<TariffRow, Problem> {
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("tariff"))?;
    match (caller.role, row.backoffice_id) {
        (Role::Admin, _) | (Role::BackOffice, None) => Ok(row),
        (Role::BackOffice, Some(b)) if b == caller.id => Ok(row),
        _ => Err(Problem::forbidden("this tariff belongs to another BackOffice")),
    }
}

async fn view(state: &AppState, row: TariffRow) -> Result<TariffView, Problem> {
    let versions = store::versions(&state.db, row.id).await?;
    Ok(TariffView {
        id: row.id,
        backoffice_id: row.backoffice_id,
        name: row.name,
        versions: versions.into_iter().map(version_view).collect(),
        created_at: Ts(row.created_at),
    })
}

fn version_row(
    tariff_id: i64,
    version: i64,
    valid_from: i64,
    t: &ValidTariff,
    now: i64,
) -> Result<VersionRow, Problem> {
    Ok(VersionRow {
        tariff_id,
        version,
        valid_from,
        currency: t.currency.code().to_string(),
        body: serde_json::to_string(&t.tariff).map_err(Problem::internal)?,
        created_at: now,
    })
}

/// `POST /tariffs` (admin, BackOffice): a tariff and its version 1.
async fn create(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiJson(req): ApiJson<CreateTariff>,
) -> Result<(StatusCode, Json<TariffView>), Problem> {
    let mut fields = Fields::new();
    let name = fields.check("name", validate::text(&req.name, 200));
    if caller.role == Role::BackOffice && req.backoffice_id.is_some_and(|b| b != caller.id) {
        return Err(Problem::forbidden("a BackOffice creates tariffs for itself only"));
    }
    fields.finish()?;
    let Some(name) = name else {
        return Err(Problem::internal("validation passed without a name"));
    };
    let tariff = parse_tariff(req.tariff)?;
    let now = state.clock.now_ms();
    let valid_from = effective(req.valid_from, now)?;
    let owner = match caller.role {
        Role::BackOffice => Some(caller.id),
        _ => req.backoffice_id,
    };
    if let Some(owner) = owner {
        let account = crate::accounts::store::by_id(&state.db, owner).await?;
        if account.is_none_or(|a| a.role != Role::BackOffice.as_str()) {
            return Err(Problem::invalid_field(
                "backofficeId",
                "unknown_value",
                "no such BackOffice",
            ));
        }
    }
    let mut tx = state.db.begin().await?;
    let id = store::insert_tariff(&mut tx, owner, &name, caller.id, now).await?;
    store::insert_version(&mut tx, &version_row(id, 1, valid_from, &tariff, now)?, caller.id).await?;
    audit::record(
        &mut tx,
        "tariff",
        &id.to_string(),
        "tariff.created",
        Some(&caller),
        &json!({ "name": name, "version": 1, "validFrom": valid_from }),
        now,
    )
    .await?;
    tx.commit().await?;
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::internal("tariff vanished"))?;
    Ok((StatusCode::CREATED, Json(view(&state, row).await?)))
}

/// `POST /tariffs/{id}/versions` (admin; the owning BackOffice): a new version, which never
/// edits an older one.
async fn add_version(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<NewVersion>,
) -> Result<(StatusCode, Json<TariffView>), Problem> {
    let row = readable(&state, &caller, id).await?;
    if caller.role != Role::Admin && row.backoffice_id != Some(caller.id) {
        return Err(Problem::forbidden("only an admin changes a shared tariff"));
    }
    let tariff = parse_tariff(req.tariff)?;
    let now = state.clock.now_ms();
    let valid_from = effective(req.valid_from, now)?;
    let mut tx = state.db.begin().await?;
    let latest = store::latest_version_in(&mut tx, id).await?;
    let (number, after) = latest.map(|v| (v.version + 1, v.valid_from)).unwrap_or((1, i64::MIN));
    if valid_from <= after {
        return Err(Problem::conflict(
            "TARIFF_VERSION_ORDER",
            "a new version takes effect after the newest one (validFrom later than its validFrom)",
        ));
    }
    store::insert_version(&mut tx, &version_row(id, number, valid_from, &tariff, now)?, caller.id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => Problem::conflict(
                "TARIFF_VERSION_CONFLICT",
                "another version was added at the same time; retry",
            ),
            other => other.into(),
        })?;
    audit::record(
        &mut tx,
        "tariff",
        &id.to_string(),
        "tariff.versioned",
        Some(&caller),
        &json!({ "version": number, "validFrom": valid_from }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&state, row).await?)))
}

/// Query of `GET /tariffs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /tariffs` (admin: all; BackOffice: its own and the shared ones), newest first.
async fn list(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<TariffView>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let scope = (caller.role == Role::BackOffice).then_some(caller.id);
    let rows = store::list(&state.db, scope, page.int_key()?, limit).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(view(&state, row).await?);
    }
    Ok(Json(Page::new(items, limit, |t: &TariffView| t.id.to_string())))
}

/// `GET /tariffs/{id}` (admin; BackOffice: its own and the shared ones).
async fn detail(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TariffView>, Problem> {
    let row = readable(&state, &caller, id).await?;
    Ok(Json(view(&state, row).await?))
}

/// `PUT /stations/{id}/tariff` (admin; the station's BackOffice, with its own or a shared
/// tariff): from `validFrom` on, the station prices with this tariff.
async fn assign(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(station_id): ApiPath<i64>,
    ApiJson(req): ApiJson<AssignTariff>,
) -> Result<Json<Assignment>, Problem> {
    let station = crate::stations::manageable(&state, &caller, station_id).await?;
    let mut fields = Fields::new();
    let connector_type = req
        .connector_type
        .as_deref()
        .and_then(|t| fields.check("connectorType", validate::connector_type(t)));
    fields.finish()?;
    let tariff = store::get(&state.db, req.tariff_id)
        .await?
        .ok_or_else(|| Problem::invalid_field("tariffId", "unknown_value", "no such tariff"))?;
    if tariff.backoffice_id.is_some_and(|b| b != station.backoffice_id) {
        return Err(Problem::conflict(
            "TARIFF_NOT_USABLE",
            "the tariff belongs to another BackOffice than the station",
        ));
    }
    let now = state.clock.now_ms();
    let valid_from = effective(req.valid_from, now)?;
    let kind = connector_type.unwrap_or_default();
    let mut tx = state.db.begin().await?;
    let id = store::insert_assignment(&mut tx, station_id, &kind, tariff.id, valid_from, caller.id, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => Problem::conflict(
                "TARIFF_ASSIGNMENT_EXISTS",
                "the station already has an assignment for this connector type from that instant",
            ),
            other => other.into(),
        })?;
    audit::record(
        &mut tx,
        "station",
        &station_id.to_string(),
        "station.tariff_assigned",
        Some(&caller),
        &json!({ "tariffId": tariff.id, "connectorType": kind, "validFrom": valid_from }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Assignment {
        id,
        station_id,
        connector_type: (!kind.is_empty()).then_some(kind),
        tariff_id: tariff.id,
        valid_from: Ts(valid_from),
        created_at: Ts(now),
    }))
}

/// `GET /stations/{id}/tariffs` (admin; the station's BackOffice): its assignments, oldest
/// first.
async fn station_assignments(
    State(state): State<AppState>,
    Only(caller, _): Only<Managers>,
    ApiPath(station_id): ApiPath<i64>,
) -> Result<Json<Vec<Assignment>>, Problem> {
    crate::stations::manageable(&state, &caller, station_id).await?;
    let rows = store::assignments(&state.db, station_id).await?;
    Ok(Json(rows.into_iter().map(assignment_view).collect()))
}

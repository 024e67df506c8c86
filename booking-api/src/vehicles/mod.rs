//! Vehicles of an EV owner (make, model, plate, battery, connector types).

use crate::api::auth::{Caller, Only, Owners, Role};
use crate::app::AppState;
use crate::audit;
use crate::validate::{self, Fields};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::db::{on_db, on_tx, Db, StoreError};
use service_kit::extract::ApiJson;
use service_kit::extract::ApiPath;
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Vehicle routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vehicles", get(list).post(create))
        .route("/vehicles/{id}", delete(remove))
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: i64,
    owner_id: i64,
    make: String,
    model: String,
    plate: String,
    battery_wh: i64,
    connector_types: String,
    created_at: Ts,
}

/// A vehicle.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vehicle {
    pub id: i64,
    pub owner_id: i64,
    pub make: String,
    pub model: String,
    /// Licence plate, upper-case.
    pub plate: String,
    /// Usable battery capacity in kWh.
    pub battery_kwh: f64,
    pub connector_types: Vec<String>,
    pub created_at: Ts,
}

impl From<Row> for Vehicle {
    fn from(r: Row) -> Vehicle {
        Vehicle {
            id: r.id,
            owner_id: r.owner_id,
            make: r.make,
            model: r.model,
            plate: r.plate,
            battery_kwh: r.battery_wh as f64 / 1000.0,
            connector_types: r
                .connector_types
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            created_at: r.created_at,
        }
    }
}

/// Body of `POST /vehicles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVehicle {
    pub make: String,
    pub model: String,
    pub plate: String,
    /// 1 to 300 kWh.
    pub battery_kwh: f64,
    /// At least one of Type1, Type2, CCS1, CCS2, CHAdeMO, GBT, NACS.
    pub connector_types: Vec<String>,
}

const COLUMNS: &str = "id, owner_id, make, model, plate, battery_wh, connector_types, created_at";

/// Whether `vehicle_id` belongs to `owner_id`.
pub async fn belongs(db: &Db, vehicle_id: i64, owner_id: i64) -> Result<bool, StoreError> {
    let n: i64 = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM vehicles WHERE id = $1 AND owner_id = $2")
            .bind(vehicle_id)
            .bind(owner_id)
            .fetch_one(pool)
            .await
    })?;
    Ok(n > 0)
}

/// Vehicle `vehicle_id` if it belongs to `owner_id`.
pub async fn owned(db: &Db, vehicle_id: i64, owner_id: i64) -> Result<Option<Vehicle>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM vehicles WHERE id = $1 AND owner_id = $2");
    let row: Option<Row> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(vehicle_id)
        .bind(owner_id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Vehicle::from))
}

/// `GET /vehicles` (owner): the caller's vehicles.
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Vehicle>>, Problem> {
    caller.require(&[Role::Owner])?;
    let sql = format!("SELECT {COLUMNS} FROM vehicles WHERE owner_id = $1 ORDER BY id");
    let rows: Vec<Row> = on_db!(&state.db, |pool| sqlx::query_as(&sql)
        .bind(caller.id)
        .fetch_all(pool)
        .await)?;
    Ok(Json(rows.into_iter().map(Vehicle::from).collect()))
}

/// `POST /vehicles` (owner).
async fn create(
    State(state): State<AppState>,
    Only(caller, _): Only<Owners>,
    ApiJson(req): ApiJson<NewVehicle>,
) -> Result<(StatusCode, Json<Vehicle>), Problem> {
    let mut fields = Fields::new();
    let make = fields.check("make", validate::text(&req.make, 100));
    let model = fields.check("model", validate::text(&req.model, 100));
    let plate = fields
        .check("plate", validate::text(&req.plate, 20))
        .map(|p| p.to_ascii_uppercase());
    if !req.battery_kwh.is_finite() || !(1.0..=300.0).contains(&req.battery_kwh) {
        fields.push("batteryKwh", "out_of_range", "batteryKwh is 1 to 300");
    }
    if req.connector_types.is_empty() {
        fields.push("connectorTypes", "required", "at least one connector type");
    }
    let types: Vec<String> = req
        .connector_types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| fields.check(&format!("connectorTypes[{i}]"), validate::connector_type(t)))
        .collect();
    fields.finish()?;
    let (Some(make), Some(model), Some(plate)) = (make, model, plate) else {
        return Err(Problem::internal("validation passed without values"));
    };
    let now = state.clock.now_ms();
    let sql = format!(
        "INSERT INTO vehicles (owner_id, make, model, plate, battery_wh, connector_types, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let mut tx = state.db.begin().await?;
    let row: Row = on_tx!(&mut tx, |conn| {
        sqlx::query_as(&sql)
            .bind(caller.id)
            .bind(&make)
            .bind(&model)
            .bind(&plate)
            .bind((req.battery_kwh * 1000.0).round() as i64)
            .bind(types.join(","))
            .bind(now)
            .fetch_one(conn)
            .await
    })
    .map_err(|e| match StoreError::from_sqlx(e) {
        StoreError::Conflict => Problem::conflict("VEHICLE_EXISTS", "you already registered a vehicle with this plate"),
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        "vehicle",
        &row.id.to_string(),
        "vehicle.created",
        Some(&caller),
        &json!({ "plate": plate }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `DELETE /vehicles/{id}` (owner, own vehicles).
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, Problem> {
    caller.require(&[Role::Owner])?;
    if !belongs(&state.db, id, caller.id).await? {
        return Err(Problem::not_found("vehicle"));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    on_tx!(&mut tx, |conn| {
        let detached = sqlx::query("UPDATE bookings SET vehicle_id = NULL WHERE vehicle_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected());
        match detached {
            Ok(_) => sqlx::query("DELETE FROM vehicles WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected()),
            Err(e) => Err(e),
        }
    })?;
    audit::record(
        &mut tx,
        "vehicle",
        &id.to_string(),
        "vehicle.deleted",
        Some(&caller),
        &json!({}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

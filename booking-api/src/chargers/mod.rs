//! Chargers as the central system reports them over the bus: a projection kept by
//! [`consumer`] ([`projection::apply`], idempotent on the event id), the linking rule that
//! stations must follow ([`link`]), and `GET /chargers`.

pub mod commands;
pub mod consumer;
pub mod link;
pub mod projection;
pub mod store;

use crate::api::auth::{Managers, Only};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use link::LinkError;
use serde::Serialize;
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use store::ChargerConnector;
use utoipa::ToSchema;

/// Charger routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/chargers", get(list))
}

/// A charger as served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Charger {
    /// The central system's station id.
    pub central_station_id: String,
    /// Connected to the central system, as of its last online/offline/boot event.
    pub online: bool,
    pub ocpp_version: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware_version: Option<String>,
    /// Its last boot notification.
    pub booted_at: Option<Ts>,
    /// Its newest event of any kind.
    pub last_seen_at: Ts,
    pub connectors: Vec<ChargerConnector>,
}

/// `GET /chargers` (admin, BackOffice): every charger the central system has reported, with its
/// connectors' last statuses, to pick ids from when creating a station.
async fn list(State(state): State<AppState>, Only(_, _): Only<Managers>) -> Result<Json<Vec<Charger>>, Problem> {
    let rows = store::list(&state.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let connectors = store::connectors(&state.db, &row.central_station_id).await?;
        out.push(Charger {
            central_station_id: row.central_station_id,
            online: row.online.0,
            ocpp_version: row.ocpp_version,
            vendor: row.vendor,
            model: row.model,
            firmware_version: row.firmware_version,
            booted_at: row.booted_at,
            last_seen_at: row.last_seen_at,
            connectors,
        });
    }
    Ok(Json(out))
}

/// The HTTP form of a linking failure: 422 with a machine-readable code.
impl From<LinkError> for Problem {
    fn from(e: LinkError) -> Problem {
        let code = match &e {
            LinkError::InvalidStationId => "INVALID_STATION_ID",
            LinkError::UnknownCharger => "UNKNOWN_CHARGER",
            LinkError::UnknownConnectors(_) => "UNKNOWN_CONNECTOR",
            LinkError::Store(e) => return Problem::internal(e),
        };
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

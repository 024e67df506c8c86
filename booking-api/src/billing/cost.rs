//! A charging session's cost: the tariff its station assigned at the session's start (for its
//! connector's type, else for every type), in the version in force at that start, priced by the
//! engine up to the end, or up to now while the session runs (the live cost).
//!
//! Sessions keep their start register, the newest meter summary and the stop register, not
//! every reading nor a charging/idle history; the energy between those points is taken as a
//! straight line, and PARKING_TIME is not billed (see docs/billing.md, "Not done yet").

use super::engine::{self, Priced};
use super::periods::{PeriodError, Reading, SessionInput};
use super::store;
use super::tariff::{Tariff, TariffError, ValidTariff};
use crate::sessions::reconcile::{self, EnergySource};
use crate::sessions::store::SessionRow;
use serde::Serialize;
use service_kit::db::{Db, StoreError};
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;

/// What a session costs, with the tariff version that priced it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCost {
    pub tariff_id: i64,
    pub tariff_version: i64,
    /// Priced up to this instant: the end, or now while the session is active.
    pub priced_until: Ts,
    /// `final` once the session completed, `running` before.
    pub status: &'static str,
    #[serde(flatten)]
    pub priced: Priced,
}

/// Why a session could not be priced.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored version no longer validates (it did when stored).
    #[error("stored tariff version is invalid: {0}")]
    Stored(String),
    #[error(transparent)]
    Input(#[from] PeriodError),
}

impl From<TariffError> for CostError {
    fn from(e: TariffError) -> CostError {
        CostError::Stored(e.to_string())
    }
}

impl From<CostError> for Problem {
    fn from(e: CostError) -> Problem {
        match e {
            CostError::Store(e) => e.into(),
            other => Problem::internal(other),
        }
    }
}

/// The session's cost as of `now_ms`; None when it has not started, has no station, or its
/// station had no tariff assigned at its start.
pub async fn of_session(db: &Db, row: &SessionRow, now_ms: i64) -> Result<Option<SessionCost>, CostError> {
    let (Some(station_id), Some(start)) = (row.station_id, row.started_at) else {
        return Ok(None);
    };
    let Some(station) = crate::stations::store::get(db, station_id).await? else {
        return Ok(None);
    };
    let connector_type = match row.connector_id {
        Some(c) => crate::stations::store::connectors(db, station_id)
            .await?
            .into_iter()
            .find(|k| k.connector_id == c)
            .map(|k| k.connector_type),
        None => None,
    };
    let Some(assignment) = store::assigned_at(db, station_id, connector_type.as_deref(), start).await? else {
        return Ok(None);
    };
    let Some(version) = store::version_at(db, assignment.tariff_id, start).await? else {
        return Ok(None);
    };
    let tariff: Tariff = serde_json::from_str(&version.body).map_err(|e| CostError::Stored(e.to_string()))?;
    let tariff = ValidTariff::parse(tariff)?;
    let completed = row.status == "Completed";
    let end = if completed {
        row.ended_at.unwrap_or(now_ms)
    } else {
        now_ms
    }
    .max(start);
    let priced = engine::price(&tariff, station.tz(), &input(row, start, end), None)?;
    Ok(Some(SessionCost {
        tariff_id: assignment.tariff_id,
        tariff_version: version.version,
        priced_until: Ts(end),
        status: if completed { "final" } else { "running" },
        priced,
    }))
}

/// The engine's input from what the session row keeps: the start register at the start, and
/// the energy so far at the end (stop register) or at the newest summary's measurement.
fn input(row: &SessionRow, start: i64, end: i64) -> SessionInput {
    let mut readings = vec![Reading {
        at_ms: start,
        energy_wh: 0,
        power_w: None,
        current_a: None,
    }];
    if let Some((wh, source)) = reconcile::energy(&row.facts()) {
        let at = match source {
            EnergySource::Meter => row.ended_at.unwrap_or(end),
            EnergySource::Summary => row.summary_at.unwrap_or(end),
        }
        .clamp(start, end);
        readings.push(Reading {
            at_ms: at,
            energy_wh: wh,
            power_w: None,
            current_a: None,
        });
    }
    SessionInput {
        start_ms: start,
        end_ms: end,
        readings,
        statuses: vec![],
    }
}

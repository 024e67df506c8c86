//! Recommendations for an EV owner: `GET /recommendations?lat&lon&vehicleId&after&hours`, the
//! free slots of the coming hours (default 48) at bookable stations within reach that have a connector the vehicle can use,
//! ranked by predicted availability (the station's booked share at the same local weekday and
//! hour over the last [`HISTORY_WEEKS`] weeks) and distance, each with its reason
//! ([`rank`]).

pub mod rank;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::bookings::rules;
use crate::reports::figures::{self, Heatmap};
use crate::validate::Fields;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, Timelike};
use rank::{Basis, Candidate};
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiQuery;
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Recommendation routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/recommendations", get(recommend))
}

/// How far back the history reaches.
pub const HISTORY_WEEKS: i64 = 8;

/// Query of `GET /recommendations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecommendQuery {
    lat: f64,
    lon: f64,
    /// One of the caller's vehicles: only stations with a bookable connector of its types.
    vehicle_id: Option<i64>,
    /// Default 25, at most 200.
    radius_km: Option<f64>,
    /// Slots starting at or after this instant (default now).
    after: Option<chrono::DateTime<chrono::Utc>>,
    /// Slots starting within this many hours of `after`, 1 to 168 (default 48).
    hours: Option<i64>,
    /// Default 10, at most 50.
    limit: Option<usize>,
}

/// One recommendation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub rank: usize,
    pub station_id: i64,
    pub station_name: String,
    pub slot_start: Ts,
    pub slot_end: Ts,
    pub distance_km: f64,
    /// Bookable units free now.
    pub free_units: i64,
    /// The station's connector types the vehicle fits (all types without a vehicle).
    pub connector_types: Vec<String>,
    /// 0 to 1: one minus the booked share at this local weekday and hour in the past, or the
    /// share free now without a past.
    pub predicted_availability: f64,
    /// 0.7 × predicted availability + 0.3 × nearness (1 at the origin, 0 at the radius).
    pub score: f64,
    pub basis: Basis,
    /// Why it ranks here, in words.
    pub reason: String,
}

const WEEKDAYS: [&str; 7] = [
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
];

/// `GET /recommendations` (owners).
async fn recommend(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RecommendQuery>,
) -> Result<Json<Vec<Recommendation>>, Problem> {
    caller.require(&[Role::Owner])?;
    let mut fields = Fields::new();
    let area = crate::stations::search_area(&mut fields, q.lat, q.lon, q.radius_km, 25.0);
    let hours = q.hours.unwrap_or(48);
    if !(1..=168).contains(&hours) {
        fields.push("hours", "out_of_range", "hours is 1 to 168");
    }
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        fields.push("limit", "out_of_range", "limit is 1 to 50");
    }
    fields.finish()?;
    let (origin, radius) = area.ok_or_else(|| Problem::internal("validation passed without values"))?;
    let fits: Option<Vec<String>> = match q.vehicle_id {
        None => None,
        Some(id) => Some(
            crate::vehicles::owned(&state.db, id, caller.id)
                .await?
                .ok_or_else(|| Problem::not_found("vehicle"))?
                .connector_types,
        ),
    };
    let now = state.clock.now_ms();
    let after = q.after.map_or(now, |t| t.timestamp_millis().max(now));
    let policy = &state.config.policy;
    let mut candidates = Vec::new();
    let mut types_of = std::collections::HashMap::new();
    for (distance, row) in crate::stations::within(&state.db, &origin, radius).await? {
        let connectors = crate::stations::store::connectors(&state.db, row.id).await?;
        let mut types: Vec<String> = connectors
            .iter()
            .filter(|c| c.bookable.0 && fits.as_ref().is_none_or(|f| f.contains(&c.connector_type)))
            .map(|c| c.connector_type.clone())
            .collect();
        types.sort();
        types.dedup();
        if types.is_empty() {
            continue;
        }
        let tz = row.tz();
        let mut history = Heatmap::default();
        for s in crate::slots::between(&state.db, row.id, now - HISTORY_WEEKS * 7 * 86_400_000, now).await? {
            if let Some(start) = figures::local(s.starts_at.0, tz) {
                history.add(start, s.booked, s.capacity);
            }
        }
        for s in crate::slots::between(&state.db, row.id, after, after + hours * 3_600_000).await? {
            if s.booked >= s.capacity || rules::check_start(policy, now, s.starts_at.0).is_err() {
                continue;
            }
            let Some(local) = figures::local(s.starts_at.0, tz) else {
                continue;
            };
            let (past_slots, booked, capacity) = history.at(local);
            candidates.push(Candidate {
                station_id: row.id,
                station_name: row.name.clone(),
                starts_at: s.starts_at.0,
                ends_at: s.ends_at.0,
                local_label: format!(
                    "{} at {:02}:{:02}",
                    WEEKDAYS[local.weekday().num_days_from_monday() as usize % 7],
                    local.hour(),
                    local.minute()
                ),
                distance_km: (distance * 1000.0).round() / 1000.0,
                free_units: s.capacity - s.booked,
                capacity: s.capacity,
                basis: Basis {
                    past_slots,
                    reserved_share: figures::ratio(booked, capacity),
                },
            });
        }
        types_of.insert(row.id, types);
    }
    let ranked = rank::rank(candidates, radius, limit);
    Ok(Json(
        ranked
            .into_iter()
            .enumerate()
            .map(|(i, r)| Recommendation {
                rank: i + 1,
                connector_types: types_of.get(&r.candidate.station_id).cloned().unwrap_or_default(),
                station_id: r.candidate.station_id,
                station_name: r.candidate.station_name,
                slot_start: Ts(r.candidate.starts_at),
                slot_end: Ts(r.candidate.ends_at),
                distance_km: r.candidate.distance_km,
                free_units: r.candidate.free_units,
                predicted_availability: r.predicted_availability,
                score: r.score,
                basis: r.candidate.basis,
                reason: r.reason,
            })
            .collect(),
    ))
}

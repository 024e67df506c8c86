//! ISO 15118 charging needs (OCPP 2.0.1 K15-K17): what EVs asked for, the TxProfiles the CSMS
//! computed and sent, the EVs' schedules and their verdicts; and K16, a renegotiation the
//! operator starts, optionally with a new power limit.
//!
//! Roles: admin and operator (the read is like every station read, the renegotiation like
//! every command). Errors: 404 `NOT_FOUND` (station or needs), 409 `TRANSACTION_NOT_ACTIVE`,
//! 409 `NO_CAPACITY` (the limits leave the EV nothing it can use), 409 `STATION_OFFLINE`,
//! 504 `STATION_TIMEOUT`, 502 `STATION_CALL_ERROR`/`STATION_INVALID_RESPONSE`, 400
//! `VALIDATION_FAILED` for a limit that is not positive.

use super::auth::Caller;
use super::commands::command_problem;
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::ApiQuery;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::smart_charging::negotiation::{self, NegotiationError, Renegotiated};
use crate::store::charging_needs::{ChargingNeedsRecord, ChargingProfileRecord};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Charging-needs routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations/{station_id}/charging-needs", get(list))
        .route(
            "/stations/{station_id}/charging-needs/{needs_id}/renegotiate",
            post(renegotiate),
        )
}

/// Charging needs with the profiles sent for them (oldest first).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargingNeedsView {
    /// The needs.
    #[serde(flatten)]
    pub needs: ChargingNeedsRecord,
    /// The TxProfiles sent for them, each with the EV's schedule and its verdict.
    pub profiles: Vec<ChargingProfileRecord>,
}

/// Body of a K16 renegotiation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenegotiateBody {
    /// A new cap for this EV, W (kept for later recomputations of the same needs); without it
    /// the profile is recomputed under the present limits.
    pub limit_w: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<ChargingNeedsView>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    if state.store.station(&station_id).await?.is_none() {
        return Err(Problem::not_found("station"));
    }
    let limit = page.limit()?;
    let rows = state
        .store
        .station_charging_needs(&station_id, page.int_key()?, limit)
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for needs in rows {
        let profiles = state.store.charging_profiles_of_needs(needs.id).await?;
        items.push(ChargingNeedsView { needs, profiles });
    }
    Ok(Json(Page::new(items, limit, |v| v.needs.id.to_string())))
}

async fn renegotiate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((station_id, needs_id)): ApiPath<(String, i64)>,
    body: axum::body::Bytes,
) -> Result<Json<Renegotiated>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    // The body is optional: none recomputes under the present limits.
    let body: RenegotiateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RenegotiateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::validation(format!("invalid body: {e}")))?
    };
    if body.limit_w.is_some_and(|w| w <= 0) {
        return Err(Problem::invalid_field(
            "limitW",
            "POSITIVE",
            "limitW must be greater than 0",
        ));
    }
    negotiation::renegotiate(&state, &station_id, needs_id, body.limit_w, chrono::Utc::now())
        .await
        .map(Json)
        .map_err(problem)
}

fn problem(e: NegotiationError) -> Problem {
    match e {
        NegotiationError::NeedsNotFound => Problem::not_found("charging needs"),
        e @ NegotiationError::TransactionNotActive => Problem::conflict("TRANSACTION_NOT_ACTIVE", e.to_string()),
        e @ NegotiationError::NoCapacity(_) => Problem::conflict("NO_CAPACITY", e.to_string()),
        NegotiationError::Command(e) => command_problem(e),
        NegotiationError::Store(e) => Problem::from(e),
        e @ NegotiationError::Unreadable(_) => Problem::internal(e),
    }
}

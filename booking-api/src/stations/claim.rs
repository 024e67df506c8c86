//! An Admin's decision on a BackOffice's claim of a charger.
//!
//! Linking a station to a central-system station id only claims that charger: the id must be
//! one the central system has seen ([`crate::chargers::link`]), but seeing an id says nothing
//! about who owns the hardware. Until an Admin approves the claim the station takes no bookings
//! (409 `CHARGER_CLAIM_PENDING` / `CHARGER_CLAIM_REJECTED`), owners do not find it, and so no
//! booking token, reservation or remote start ever reaches that charger on the BackOffice's
//! behalf.

use super::{station_view, store, Station};
use crate::api::auth::{Admins, Only};
use crate::app::AppState;
use crate::audit;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use service_kit::extract::{ApiJson, ApiPath};
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// Where a claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum ClaimStatus {
    Pending,
    Approved,
    Rejected,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Pending => "Pending",
            ClaimStatus::Approved => "Approved",
            ClaimStatus::Rejected => "Rejected",
        }
    }

    /// The stored value; an unknown one reads as Pending, so it can never open a station.
    pub fn parse(stored: &str) -> ClaimStatus {
        match stored {
            "Approved" => ClaimStatus::Approved,
            "Rejected" => ClaimStatus::Rejected,
            _ => ClaimStatus::Pending,
        }
    }
}

/// Why a station whose claim is not approved takes no booking, or None when it does.
pub fn not_bookable(stored: &str) -> Option<Problem> {
    match ClaimStatus::parse(stored) {
        ClaimStatus::Approved => None,
        ClaimStatus::Pending => Some(Problem::conflict(
            "CHARGER_CLAIM_PENDING",
            "an Admin has not yet approved this station's claim of its charger",
        )),
        ClaimStatus::Rejected => Some(Problem::conflict(
            "CHARGER_CLAIM_REJECTED",
            "an Admin rejected this station's claim of its charger",
        )),
    }
}

/// Body of `POST /stations/{id}/claim`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimDecision {
    /// `Approved` or `Rejected`.
    pub decision: ClaimStatus,
    /// Why (up to 500 characters); shown to the BackOffice in the audit trail.
    pub note: Option<String>,
}

/// `POST /stations/{id}/claim` (Admin): approves or rejects a pending claim. 409
/// `CLAIM_ALREADY_DECIDED` when it is not pending; 400 when the decision is `Pending`.
pub async fn decide(
    State(state): State<AppState>,
    Only(caller, _): Only<Admins>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ClaimDecision>,
) -> Result<Json<Station>, Problem> {
    if req.decision == ClaimStatus::Pending {
        return Err(Problem::invalid_field(
            "decision",
            "invalid_value",
            "a decision is Approved or Rejected",
        ));
    }
    let note = match req.note.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > 500 => {
            return Err(Problem::invalid_field("note", "too_long", "at most 500 characters"))
        }
        Some("") | None => None,
        Some(n) => Some(n.to_string()),
    };
    let row = store::get(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let status = req.decision.as_str();
    if !store::decide_claim(&mut tx, id, status, caller.id, note.as_deref(), now).await? {
        return Err(Problem::conflict(
            "CLAIM_ALREADY_DECIDED",
            format!("this claim was already decided ({})", row.claim_status),
        ));
    }
    audit::record(
        &mut tx,
        "station",
        &id.to_string(),
        if req.decision == ClaimStatus::Approved {
            "station.claim_approved"
        } else {
            "station.claim_rejected"
        },
        Some(&caller),
        &json!({ "centralStationId": row.central_station_id, "note": note }),
        now,
    )
    .await?;
    tx.commit().await?;
    let connectors = store::connectors(&state.db, id).await?;
    Ok(Json(station_view(
        store::StationRow {
            claim_status: status.to_string(),
            ..row
        },
        connectors,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_approved_claim_opens_a_station() {
        assert!(not_bookable("Approved").is_none());
        assert!(not_bookable("Pending").is_some());
        assert!(not_bookable("Rejected").is_some());
        // A value this version does not know never opens one.
        assert!(not_bookable("approved").is_some());
        assert_eq!(ClaimStatus::parse("Rejected"), ClaimStatus::Rejected);
    }
}

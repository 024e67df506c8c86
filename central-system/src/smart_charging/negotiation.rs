//! Storage and delivery around the pure smart-charging rules: what the CSMS answers, what it
//! sends, and what it remembers (migration 0010).

use super::check::{self, SentSchedule, Verdict};
use super::needs::{self, ChargingNeeds, EnergyTransfer};
use super::plan::{self, PlanError, RateUnit, SiteLimits};
use crate::app::AppState;
use crate::ocpp_ws::commands::{self, CommandError};
use crate::ocpp_ws::registry::CallOutcome;
use crate::store::charging_needs::{ChargingNeedsRecord, NewNeeds};
use crate::store::types::Ts;
use crate::store::StoreError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// Renegotiations the CSMS starts on its own per needs after EV schedules that did not fit: a
/// station whose EV keeps proposing too much must not make it loop.
pub const AUTOMATIC_RENEGOTIATIONS: i64 = 3;

/// Why a renegotiation could not happen.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    /// No such needs (of that station).
    #[error("no such charging needs")]
    NeedsNotFound,
    /// The needs were Rejected for want of a transaction, or it has ended since.
    #[error("the transaction of these charging needs is not active")]
    TransactionNotActive,
    /// The limits leave the EV nothing it can use.
    #[error(transparent)]
    NoCapacity(#[from] PlanError),
    /// The stored needs no longer read (they were checked on receipt; only a manual edit of
    /// the database gets here).
    #[error("the stored charging needs are unreadable: {0}")]
    Unreadable(String),
    /// Sending failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The answer to a NotifyEVChargingNeeds, and the profile to send once it is out.
#[derive(Debug)]
pub struct NeedsOutcome {
    /// The NotifyEVChargingNeedsResponse payload.
    pub response: Value,
    /// (profile row, SetChargingProfile payload) to deliver.
    pub deliver: Option<(i64, Value)>,
}

fn rejected(reason: &str, info: &str) -> Value {
    json!({ "status": "Rejected", "statusInfo": { "reasonCode": reason, "additionalInfo": info } })
}

/// Handles checked charging needs: stores them and, when they can be served, the profile
/// computed for them. `transaction` is the Active transaction on the EVSE.
pub async fn on_needs(
    state: &AppState,
    station_id: &str,
    needs: &ChargingNeeds,
    payload: &Value,
    transaction: Option<i64>,
    now: DateTime<Utc>,
) -> Result<NeedsOutcome, NegotiationError> {
    let supported = serves(&state.config.iso15118_energy_transfer, needs.transfer);
    let refusal = match (supported, transaction) {
        (false, _) => Some((
            "UnsupportedRequest",
            format!("energy transfer {} is not served here", needs.transfer.as_str()),
        )),
        (true, None) => Some(("TxNotFound", format!("no active transaction on EVSE {}", needs.evse_id))),
        (true, Some(_)) => None,
    };
    let mut row = NewNeeds {
        station_id,
        evse_id: i64::from(needs.evse_id),
        transaction_id: transaction,
        energy_transfer: needs.transfer.as_str(),
        departure_at: needs.departure.map(Ts::from_datetime),
        energy_amount_wh: needs.ev.energy_wh,
        ev_min_w: needs.ev.min_w.round() as i64,
        ev_max_w: needs.ev.max_w.is_finite().then(|| needs.ev.max_w.round() as i64),
        payload: &payload.to_string(),
        status: "Accepted",
        reason: None,
        received_at: Ts::from_datetime(now),
    };
    if let Some((reason, info)) = &refusal {
        row.status = "Rejected";
        row.reason = Some(reason);
        state.store.insert_charging_needs(&row).await?;
        tracing::info!(station = %station_id, evse = needs.evse_id, reason, "charging needs rejected");
        return Ok(NeedsOutcome {
            response: rejected(reason, info),
            deliver: None,
        });
    }
    let id = state.store.insert_charging_needs(&row).await?;
    let record = state
        .store
        .charging_needs(id)
        .await?
        .ok_or(NegotiationError::NeedsNotFound)?;
    // K15.FR.04: Rejected when no schedule can be provided; the row then says so too.
    let (reason, info) = match prepare(state, &record, "needs", now).await {
        Ok(prepared) => {
            return Ok(NeedsOutcome {
                response: json!({ "status": "Accepted" }),
                deliver: Some(prepared),
            })
        }
        Err(e @ NegotiationError::NoCapacity(_)) => ("NoCapacity", e.to_string()),
        // The transaction ended between the EVSE lookup and now.
        Err(e @ NegotiationError::TransactionNotActive) => ("TxNotFound", e.to_string()),
        Err(e) => return Err(e),
    };
    state.store.reject_charging_needs(id, reason).await?;
    tracing::info!(station = %station_id, evse = needs.evse_id, reason, %info, "charging needs rejected");
    Ok(NeedsOutcome {
        response: rejected(reason, &info),
        deliver: None,
    })
}

/// The station's and site's limits for `needs` at `now`.
async fn site_limits(
    state: &AppState,
    station_id: &str,
    needs: &ChargingNeeds,
    operator_limit_w: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SiteLimits, StoreError> {
    // Far enough to cover the time to departure and a day beyond.
    let horizon = needs
        .departure
        .map_or(Duration::zero(), |d| (d - now).max(Duration::zero()))
        + Duration::days(1);
    let station_profile = state
        .store
        .station_max_profile(station_id)
        .await?
        .and_then(|(_, text)| serde_json::from_str::<Value>(&text).ok())
        .and_then(|profile| plan::station_profile_curve(&profile, now, horizon));
    Ok(SiteLimits {
        station_max_w: f64::from(state.config.station_max_power_w),
        station_profile,
        operator_limit_w: operator_limit_w.map(|w| w as f64),
    })
}

/// Computes and stores the profile for `record` (status Pending); returns the row and the
/// SetChargingProfile payload.
async fn prepare(
    state: &AppState,
    record: &ChargingNeedsRecord,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<(i64, Value), NegotiationError> {
    let transaction_id = record.transaction_id.ok_or(NegotiationError::TransactionNotActive)?;
    let transaction = state
        .store
        .transaction(transaction_id)
        .await?
        .filter(|t| t.status == "Active")
        .ok_or(NegotiationError::TransactionNotActive)?;
    let payload: Value =
        serde_json::from_str(&record.payload).map_err(|e| NegotiationError::Unreadable(e.to_string()))?;
    let needs = needs::parse(&payload).map_err(|e| NegotiationError::Unreadable(e.to_string()))?;
    let site = site_limits(state, &record.station_id, &needs, record.operator_limit_w, now).await?;
    let plan = plan::compute(&needs, &site, now)?;
    // One profile id per transaction: each renegotiation replaces the profile in place
    // (K01.FR.05) instead of stacking a second TxProfile next to it.
    let profile_id = i32::try_from(transaction_id).unwrap_or(i32::MAX);
    let request = plan.request(needs.evse_id, profile_id, 1, &transaction.station_transaction_id);
    let row = state
        .store
        .insert_charging_profile(
            record,
            transaction_id,
            cause,
            &request.to_string(),
            Ts::from_datetime(now),
        )
        .await?;
    Ok((row, request))
}

/// Sends a stored profile and records the station's answer: its status (`Accepted`,
/// `Rejected`), `CallError`, or `Undelivered`.
pub async fn deliver(state: &AppState, station_id: &str, row: i64, request: Value) -> Result<String, CommandError> {
    let outcome = commands::call(state, station_id, "SetChargingProfile", request).await;
    let status = match &outcome {
        Ok(CallOutcome::Result(answer)) => answer["status"].as_str().unwrap_or("Rejected").to_string(),
        Ok(CallOutcome::Error { .. }) => "CallError".to_string(),
        Err(_) => "Undelivered".to_string(),
    };
    if let Err(e) = state.store.set_charging_profile_status(row, &status).await {
        tracing::error!(station = %station_id, error = %e, "could not record the SetChargingProfile answer");
    }
    tracing::info!(station = %station_id, profile_row = row, status, "TxProfile for ISO 15118 charging needs sent");
    outcome.map(|_| status)
}

/// [`deliver`] as a task of its own, for a handler that must answer the station first.
pub fn deliver_later(state: &AppState, station_id: &str, row: i64, request: Value) {
    let state = state.clone();
    let station_id = station_id.to_string();
    tokio::spawn(async move {
        if let Err(e) = deliver(&state, &station_id, row, request).await {
            tracing::warn!(station = %station_id, error = %e, "SetChargingProfile not delivered");
        }
    });
}

/// What a renegotiation did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Renegotiated {
    /// The profile row (see the needs' `profiles`).
    pub profile_row: i64,
    /// The SetChargingProfile payload sent.
    pub request: Value,
    /// The station's answer: `Accepted`, `Rejected`, `CallError`.
    pub status: String,
}

/// K16: the CSMS sends a new profile for stored needs, within `limit_w` when given (kept for
/// later recomputations of the same needs), and waits for the station's answer.
pub async fn renegotiate(
    state: &AppState,
    station_id: &str,
    needs_id: i64,
    limit_w: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Renegotiated, NegotiationError> {
    let mut record = state
        .store
        .charging_needs(needs_id)
        .await?
        .filter(|n| n.station_id == station_id)
        .ok_or(NegotiationError::NeedsNotFound)?;
    if record.transaction_id.is_none() {
        return Err(NegotiationError::TransactionNotActive);
    }
    if commands::connected_version(state, station_id).is_none() {
        return Err(CommandError::Offline.into());
    }
    if limit_w.is_some() {
        state.store.set_operator_limit(needs_id, limit_w).await?;
        record.operator_limit_w = limit_w;
    }
    let (row, request) = prepare(state, &record, "operator", now).await?;
    let status = deliver(state, station_id, row, request.clone()).await?;
    Ok(Renegotiated {
        profile_row: row,
        request,
        status,
    })
}

/// The schedule a stored SetChargingProfile payload carries.
fn sent_schedule(request: &Value) -> Option<SentSchedule> {
    let schedule = request["chargingProfile"]["chargingSchedule"].get(0)?;
    let start = DateTime::parse_from_rfc3339(schedule["startSchedule"].as_str()?)
        .ok()?
        .with_timezone(&Utc);
    let unit = RateUnit::parse(schedule["chargingRateUnit"].as_str()?)?;
    let periods: Vec<(i64, f64)> = schedule["chargingSchedulePeriod"]
        .as_array()?
        .iter()
        .filter_map(|p| Some((p["startPeriod"].as_i64()?, p["limit"].as_f64()?)))
        .collect();
    let phases = schedule["chargingSchedulePeriod"][0]["numberPhases"]
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(3);
    Some(SentSchedule {
        start,
        unit,
        phases,
        periods,
    })
}

/// Handles the EV's schedule on the EVSE's transaction: the NotifyEVChargingScheduleResponse
/// payload. A schedule that does not fit starts a renegotiation once the answer is out.
pub async fn on_ev_schedule(
    state: &AppState,
    station_id: &str,
    evse_id: u32,
    transaction: Option<i64>,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Value, NegotiationError> {
    let Some(transaction) = transaction else {
        return Ok(rejected(
            "TxNotFound",
            &format!("no active transaction on EVSE {evse_id}"),
        ));
    };
    let Some(profile) = state.store.current_charging_profile(transaction).await? else {
        // No profile of ours governs this transaction: nothing the EV could exceed.
        return Ok(json!({ "status": "Accepted" }));
    };
    let ev = match check::parse_ev_schedule(payload) {
        Ok(ev) => ev,
        Err(why) => return Ok(rejected("InvalidSchedule", why)),
    };
    let request: Value =
        serde_json::from_str(&profile.request).map_err(|e| NegotiationError::Unreadable(e.to_string()))?;
    let sent = sent_schedule(&request).ok_or_else(|| NegotiationError::Unreadable("sent profile".into()))?;
    let text = payload.to_string();
    let at = Ts::from_datetime(now);
    match check::check(&sent, &ev) {
        Verdict::Fits => {
            state
                .store
                .record_ev_schedule(profile.id, &text, "Accepted", None, at)
                .await?;
            Ok(json!({ "status": "Accepted" }))
        }
        Verdict::Exceeds {
            at: when,
            ev_w,
            limit_w,
        } => {
            let detail = format!(
                "the EV schedule asks {ev_w:.0} W at {} where the profile allows {limit_w:.0} W",
                rfc3339(when)
            );
            state
                .store
                .record_ev_schedule(profile.id, &text, "Rejected", Some(&detail), at)
                .await?;
            tracing::info!(station = %station_id, evse = evse_id, %detail, "EV charging schedule rejected");
            if state
                .store
                .take_renegotiation(profile.needs_id, AUTOMATIC_RENEGOTIATIONS)
                .await?
            {
                renegotiate_later(state, station_id, profile.needs_id);
            }
            Ok(rejected("InvalidSchedule", &detail))
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    super::rfc3339(t)
}

/// K15.FR.13/K17.FR.13: a new profile after a rejected EV schedule, from a task of its own
/// (the station must first get its answer).
fn renegotiate_later(state: &AppState, station_id: &str, needs_id: i64) {
    let state = state.clone();
    let station_id = station_id.to_string();
    tokio::spawn(async move {
        let now = Utc::now();
        let prepared = match state.store.charging_needs(needs_id).await {
            Ok(Some(record)) => prepare(&state, &record, "ev-schedule", now).await,
            Ok(None) => Err(NegotiationError::NeedsNotFound),
            Err(e) => Err(e.into()),
        };
        match prepared {
            Ok((row, request)) => {
                if let Err(e) = deliver(&state, &station_id, row, request).await {
                    tracing::warn!(station = %station_id, error = %e, "renegotiated profile not delivered");
                }
            }
            Err(e) => tracing::warn!(station = %station_id, needs = needs_id, error = %e, "renegotiation failed"),
        }
    });
}

/// Keeps the station maximum profile in step with what the operator sent through the API:
/// an Accepted SetChargingProfile of purpose ChargingStationMaxProfile is stored, an Accepted
/// ClearChargingProfile that covers it forgets it.
pub async fn observe_station_call(
    state: &AppState,
    station_id: &str,
    action: &str,
    request: &Value,
    response: &Value,
) -> Result<(), StoreError> {
    if response["status"] != "Accepted" {
        return Ok(());
    }
    match action {
        "SetChargingProfile" if request["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile" => {
            let profile = &request["chargingProfile"];
            let id = profile["id"].as_i64().unwrap_or(0);
            state
                .store
                .set_station_max_profile(station_id, id, &profile.to_string(), Ts::now())
                .await
        }
        "ClearChargingProfile" => {
            let Some((stored_id, _)) = state.store.station_max_profile(station_id).await? else {
                return Ok(());
            };
            let criteria = &request["chargingProfileCriteria"];
            let by_id = request["chargingProfileId"].as_i64();
            let purpose = criteria["chargingProfilePurpose"].as_str();
            let covers = match by_id {
                Some(id) => id == stored_id,
                None => {
                    purpose.is_none_or(|p| p == "ChargingStationMaxProfile")
                        && criteria["evseId"].as_i64().is_none_or(|e| e == 0)
                }
            };
            if covers {
                state.store.clear_station_max_profile(station_id).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the mode is one of `modes` (wire names).
pub fn serves(modes: &[String], transfer: EnergyTransfer) -> bool {
    modes.iter().any(|m| m == transfer.as_str())
}

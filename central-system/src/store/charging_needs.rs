//! ISO 15118 charging needs, the profiles computed from them, and the station maximum profile
//! they respect (migration 0010).

use super::types::Ts;
use super::{on_db, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// A NotifyEVChargingNeeds as received and answered.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargingNeedsRecord {
    /// Row id (cursor; the renegotiation endpoint names it).
    pub id: i64,
    /// Station.
    pub station_id: String,
    /// EVSE.
    pub evse_id: i64,
    /// CSMS transaction on the EVSE (none: the needs were Rejected).
    pub transaction_id: Option<i64>,
    /// `DC`, `AC_single_phase`, `AC_two_phase`, `AC_three_phase`.
    pub energy_transfer: String,
    /// The EV's departure.
    pub departure_at: Option<Ts>,
    /// Energy requested, Wh.
    pub energy_amount_wh: Option<i64>,
    /// The EV's lowest usable power, W.
    pub ev_min_w: i64,
    /// The EV's highest power, W (none: it gave no limit).
    pub ev_max_w: Option<i64>,
    /// `Accepted` or `Rejected`.
    pub status: String,
    /// The reasonCode of a Rejected answer.
    pub reason: Option<String>,
    /// The operator's cap from the latest renegotiation, W.
    pub operator_limit_w: Option<i64>,
    /// Automatic renegotiations so far.
    pub renegotiations: i64,
    /// Receipt.
    pub received_at: Ts,
    /// The request as received.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "as_json")]
    pub payload: String,
}

/// A TxProfile sent for some needs, with the EV's schedule checked against it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargingProfileRecord {
    /// Row id.
    pub id: i64,
    /// The needs it answers.
    pub needs_id: i64,
    /// Station.
    pub station_id: String,
    /// EVSE.
    pub evse_id: i64,
    /// CSMS transaction.
    pub transaction_id: i64,
    /// `needs`, `operator` (K16) or `ev-schedule` (after a rejected EV schedule).
    pub cause: String,
    /// The SetChargingProfile payload sent.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "as_json")]
    pub request: String,
    /// `Pending`, `Accepted`, `Rejected`, `CallError`, `Undelivered`.
    pub status: String,
    /// The EV's schedule (NotifyEVChargingSchedule payload), once reported.
    #[schema(value_type = Option<Object>)]
    #[serde(serialize_with = "as_optional_json")]
    pub ev_schedule: Option<String>,
    /// `Accepted` (within this profile) or `Rejected`.
    pub ev_schedule_status: Option<String>,
    /// Where and by how much it exceeded.
    pub ev_schedule_detail: Option<String>,
    /// When the EV's schedule arrived.
    pub ev_schedule_at: Option<Ts>,
    /// When it was computed.
    pub created_at: Ts,
}

/// Stored JSON text goes out as JSON (text that does not parse goes out as a string).
fn as_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

fn as_optional_json<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => as_json(t, s),
        None => s.serialize_none(),
    }
}

/// A new needs row.
#[derive(Debug, Clone)]
pub struct NewNeeds<'a> {
    /// Station.
    pub station_id: &'a str,
    /// EVSE.
    pub evse_id: i64,
    /// CSMS transaction.
    pub transaction_id: Option<i64>,
    /// Wire name of the mode.
    pub energy_transfer: &'a str,
    /// Departure.
    pub departure_at: Option<Ts>,
    /// Wh.
    pub energy_amount_wh: Option<i64>,
    /// W.
    pub ev_min_w: i64,
    /// W.
    pub ev_max_w: Option<i64>,
    /// As received.
    pub payload: &'a str,
    /// The answer.
    pub status: &'a str,
    /// Its reasonCode.
    pub reason: Option<&'a str>,
    /// Receipt.
    pub received_at: Ts,
}

const NEEDS_COLUMNS: &str = "id, station_id, evse_id, transaction_id, energy_transfer, departure_at, \
     energy_amount_wh, ev_min_w, ev_max_w, status, reason, operator_limit_w, renegotiations, received_at, payload";
const PROFILE_COLUMNS: &str = "id, needs_id, station_id, evse_id, transaction_id, cause, request, status, \
     ev_schedule, ev_schedule_status, ev_schedule_detail, ev_schedule_at, created_at";

impl Store {
    /// Stores charging needs; returns the row id. The operator's cap on earlier needs of the
    /// same transaction carries over: an EV renegotiating (K17) does not lift it.
    pub async fn insert_charging_needs(&self, n: &NewNeeds<'_>) -> Result<i64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO ev_charging_needs (station_id, evse_id, transaction_id, energy_transfer, departure_at, \
                 energy_amount_wh, ev_min_w, ev_max_w, payload, status, reason, received_at, operator_limit_w) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 (SELECT p.operator_limit_w FROM ev_charging_needs p WHERE p.transaction_id = $3 \
                  ORDER BY p.id DESC LIMIT 1)) RETURNING id",
            )
            .bind(n.station_id)
            .bind(n.evse_id)
            .bind(n.transaction_id)
            .bind(n.energy_transfer)
            .bind(n.departure_at)
            .bind(n.energy_amount_wh)
            .bind(n.ev_min_w)
            .bind(n.ev_max_w)
            .bind(n.payload)
            .bind(n.status)
            .bind(n.reason)
            .bind(n.received_at)
            .fetch_one(pool)
            .await?
        }))
    }

    /// One needs row.
    pub async fn charging_needs(&self, id: i64) -> Result<Option<ChargingNeedsRecord>, StoreError> {
        let sql = format!("SELECT {NEEDS_COLUMNS} FROM ev_charging_needs WHERE id = $1");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, ChargingNeedsRecord>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A page of a station's needs, newest first.
    pub async fn station_charging_needs(
        &self,
        station_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChargingNeedsRecord>, StoreError> {
        let sql = format!(
            "SELECT {NEEDS_COLUMNS} FROM ev_charging_needs WHERE station_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, ChargingNeedsRecord>(&sql)
                .bind(station_id)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Marks needs Rejected with a reasonCode (no schedule could be computed for them).
    pub async fn reject_charging_needs(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("UPDATE ev_charging_needs SET status = 'Rejected', reason = $2 WHERE id = $1")
                .bind(id)
                .bind(reason)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records the operator's cap on some needs.
    pub async fn set_operator_limit(&self, needs_id: i64, limit_w: Option<i64>) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("UPDATE ev_charging_needs SET operator_limit_w = $2 WHERE id = $1")
                .bind(needs_id)
                .bind(limit_w)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Counts an automatic renegotiation if fewer than `bound` were made; returns whether this
    /// one may go ahead (one conditional update, so two racing rejections cannot both pass the
    /// bound).
    pub async fn take_renegotiation(&self, needs_id: i64, bound: i64) -> Result<bool, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE ev_charging_needs SET renegotiations = renegotiations + 1 WHERE id = $1 AND renegotiations < $2",
            )
            .bind(needs_id)
            .bind(bound)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Stores a profile about to be sent (status Pending); returns the row id.
    pub async fn insert_charging_profile(
        &self,
        needs: &ChargingNeedsRecord,
        transaction_id: i64,
        cause: &str,
        request: &str,
        now: Ts,
    ) -> Result<i64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO ev_charging_profiles (needs_id, station_id, evse_id, transaction_id, cause, request, \
                 status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'Pending', $7) RETURNING id",
            )
            .bind(needs.id)
            .bind(&needs.station_id)
            .bind(needs.evse_id)
            .bind(transaction_id)
            .bind(cause)
            .bind(request)
            .bind(now)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Records the station's answer to a profile.
    pub async fn set_charging_profile_status(&self, id: i64, status: &str) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("UPDATE ev_charging_profiles SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(status)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The profiles sent for some needs, oldest first.
    pub async fn charging_profiles_of_needs(&self, needs_id: i64) -> Result<Vec<ChargingProfileRecord>, StoreError> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM ev_charging_profiles WHERE needs_id = $1 ORDER BY id");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, ChargingProfileRecord>(&sql)
                .bind(needs_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The newest profile of a transaction the station has not refused (what an EV schedule is
    /// checked against).
    pub async fn current_charging_profile(
        &self,
        transaction_id: i64,
    ) -> Result<Option<ChargingProfileRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM ev_charging_profiles WHERE transaction_id = $1 \
             AND status IN ('Pending', 'Accepted') ORDER BY id DESC LIMIT 1"
        );
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, ChargingProfileRecord>(&sql)
                .bind(transaction_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records the EV's schedule and the verdict on a profile row.
    pub async fn record_ev_schedule(
        &self,
        profile_row: i64,
        schedule: &str,
        status: &str,
        detail: Option<&str>,
        at: Ts,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE ev_charging_profiles SET ev_schedule = $2, ev_schedule_status = $3, ev_schedule_detail = $4, \
                 ev_schedule_at = $5 WHERE id = $1",
            )
            .bind(profile_row)
            .bind(schedule)
            .bind(status)
            .bind(detail)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Stores (replaces) a station's ChargingStationMaxProfile.
    pub async fn set_station_max_profile(
        &self,
        station_id: &str,
        profile_id: i64,
        profile: &str,
        now: Ts,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO station_max_profiles (station_id, profile_id, profile, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (station_id) DO UPDATE SET profile_id = excluded.profile_id, profile = excluded.profile, \
                 set_at = excluded.set_at",
            )
            .bind(station_id)
            .bind(profile_id)
            .bind(profile)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A station's ChargingStationMaxProfile: (profile id, profile JSON).
    pub async fn station_max_profile(&self, station_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT profile_id, profile FROM station_max_profiles WHERE station_id = $1",
            )
            .bind(station_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Forgets a station's ChargingStationMaxProfile.
    pub async fn clear_station_max_profile(&self, station_id: &str) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM station_max_profiles WHERE station_id = $1")
                .bind(station_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

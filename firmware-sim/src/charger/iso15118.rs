//! The EV's side of ISO 15118 smart charging (OCPP 2.0.1 K15-K17), for stations with an
//! `iso15118` spec: the EV states its needs when the transaction starts (and again on
//! `Renegotiate`, K17), and answers every TxProfile of its transaction with the schedule it
//! will follow, which fits the profile or, on purpose, does not (`schedule` in the spec).

use super::engine::{now_rfc3339, Charger};
use super::ev::NOMINAL_VOLTAGE;
use super::outbox::Purpose;
use crate::spec::EvSchedulePolicy;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

/// DC voltage the simulated EV reports.
const DC_VOLTAGE: f64 = 400.0;

impl Charger {
    /// NotifyEVChargingNeeds for the transaction on connector `i` (nothing without one or
    /// without ISO 15118).
    pub(super) fn send_charging_needs(&mut self, i: usize) {
        let Some(iso) = self.spec.iso15118.clone() else {
            return;
        };
        let c = &self.connectors[i];
        if c.tx.is_none() {
            return;
        }
        let ev = c.ev.clone();
        let (soc, max_w) = ev
            .as_ref()
            .map_or((self.spec.ev.soc_percent, self.spec.ev.max_kw * 1000.0), |e| {
                (e.soc_percent, e.max_w)
            });
        let energy_wh = (self.spec.ev.capacity_kwh * 1000.0 * (100.0 - soc) / 100.0)
            .max(0.0)
            .round() as i64;
        let mut needs = json!({ "requestedEnergyTransfer": iso.energy_transfer });
        if iso.departure_mins > 0 {
            let departure =
                Utc::now() + Duration::minutes(i64::try_from(iso.departure_mins).unwrap_or(i64::MAX / 60_000));
            needs["departureTime"] = json!(departure.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        if iso.energy_transfer == "DC" {
            needs["dcChargingParameters"] = json!({
                "evMaxCurrent": (max_w / DC_VOLTAGE).ceil() as i64,
                "evMaxVoltage": DC_VOLTAGE as i64,
                "evMaxPower": max_w.round() as i64,
                "energyAmount": energy_wh,
                "stateOfCharge": soc.round() as i64,
                "evEnergyCapacity": (self.spec.ev.capacity_kwh * 1000.0).round() as i64,
            });
        } else {
            let phases = match iso.energy_transfer.as_str() {
                "AC_single_phase" => 1.0,
                "AC_two_phase" => 2.0,
                _ => 3.0,
            };
            let max_current = (max_w / (NOMINAL_VOLTAGE * phases))
                .floor()
                .max(f64::from(iso.min_current));
            needs["acChargingParameters"] = json!({
                "energyAmount": energy_wh,
                "evMinCurrent": iso.min_current,
                "evMaxCurrent": max_current as i64,
                "evMaxVoltage": NOMINAL_VOLTAGE as i64,
            });
        }
        let payload = json!({ "evseId": c.id, "chargingNeeds": needs });
        self.queue("NotifyEVChargingNeeds", payload, false, None, Purpose::Plain);
    }

    /// NotifyEVChargingSchedule after a TxProfile for the transaction on EVSE `evse` was
    /// accepted: the profile's first schedule, or twice its limits when the spec says so.
    pub(super) fn propose_ev_schedule(&mut self, evse: u32, profile: &Value) {
        let Some(iso) = &self.spec.iso15118 else {
            return;
        };
        let policy = iso.schedule;
        if profile["chargingProfilePurpose"] != "TxProfile" {
            return;
        }
        let Some(tx) = (evse as usize)
            .checked_sub(1)
            .and_then(|i| self.connectors.get_mut(i))
            .and_then(|c| c.tx.as_mut())
            .filter(|tx| profile["transactionId"].as_str() == Some(tx.id.as_str()))
        else {
            return;
        };
        let Some(schedule) = profile["chargingSchedule"].get(0).cloned() else {
            return;
        };
        let exceed = match policy {
            EvSchedulePolicy::Fit => false,
            EvSchedulePolicy::Exceed => true,
            EvSchedulePolicy::ExceedOnce => tx.ev_schedules == 0,
        };
        tx.ev_schedules += 1;
        let mut schedule = schedule;
        if exceed {
            if let Some(periods) = schedule["chargingSchedulePeriod"].as_array_mut() {
                for p in periods {
                    let doubled = p["limit"].as_f64().unwrap_or(0.0) * 2.0 + 1.0;
                    p["limit"] = json!((doubled * 10.0).floor() / 10.0);
                }
            }
        }
        // The EV follows the schedule from the start the profile gives it.
        let time_base = schedule["startSchedule"]
            .as_str()
            .map_or_else(now_rfc3339, str::to_string);
        if let Some(s) = schedule.as_object_mut() {
            s.remove("startSchedule");
        }
        let payload = json!({ "evseId": evse, "timeBase": time_base, "chargingSchedule": schedule });
        self.queue("NotifyEVChargingSchedule", payload, false, None, Purpose::Plain);
    }
}

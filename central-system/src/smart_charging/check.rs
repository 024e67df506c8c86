//! Does the EV's charging schedule (NotifyEVChargingSchedule) stay within the profile the CSMS
//! sent? K15.FR.11/12, K16.FR.06/07, K17.FR.11/12: the station has checked already, the CSMS
//! checks again, at every instant the EV's schedule covers.

use super::needs::NOMINAL_AC_VOLTAGE;
use super::plan::RateUnit;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

/// A schedule the CSMS sent, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SentSchedule {
    /// Absolute start.
    pub start: DateTime<Utc>,
    /// Unit of the limits.
    pub unit: RateUnit,
    /// Phases of A limits.
    pub phases: u8,
    /// (seconds from start, limit).
    pub periods: Vec<(i64, f64)>,
}

/// The EV's schedule as the station reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvSchedule {
    /// What its periods are relative to.
    pub time_base: DateTime<Utc>,
    /// Unit.
    pub unit: RateUnit,
    /// How long it lasts (`None`: the last period runs on).
    pub duration: Option<i64>,
    /// (seconds from the time base, limit, numberPhases).
    pub periods: Vec<(i64, f64, Option<u8>)>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Never above the CSMS's limit.
    Fits,
    /// Above it at `at`.
    Exceeds {
        /// First instant of excess.
        at: DateTime<Utc>,
        /// The EV's power there, W.
        ev_w: f64,
        /// The CSMS's limit there, W.
        limit_w: f64,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    time_base: DateTime<Utc>,
    charging_schedule: WireSchedule,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSchedule {
    charging_rate_unit: String,
    duration: Option<i64>,
    charging_schedule_period: Vec<WirePeriod>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePeriod {
    start_period: i64,
    limit: f64,
    number_phases: Option<i64>,
}

/// Reads a schema-valid NotifyEVChargingSchedule payload; `Err` says what is wrong with it.
pub fn parse_ev_schedule(payload: &Value) -> Result<EvSchedule, &'static str> {
    let wire = Wire::deserialize(payload).map_err(|_| "payload does not fit NotifyEVChargingSchedule")?;
    let s = wire.charging_schedule;
    let unit = RateUnit::parse(&s.charging_rate_unit).ok_or("unknown chargingRateUnit")?;
    let mut periods = Vec::with_capacity(s.charging_schedule_period.len());
    for p in s.charging_schedule_period {
        if p.start_period < 0 || p.limit < 0.0 || !p.limit.is_finite() {
            return Err("startPeriod and limit must not be negative");
        }
        let phases = match p.number_phases {
            None => None,
            Some(n @ 1..=3) => Some(n as u8),
            Some(_) => return Err("numberPhases must be 1, 2 or 3"),
        };
        periods.push((p.start_period, p.limit, phases));
    }
    if periods.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("startPeriod values must increase");
    }
    if s.duration.is_some_and(|d| d < 0) {
        return Err("duration must not be negative");
    }
    Ok(EvSchedule {
        time_base: wire.time_base,
        unit,
        duration: s.duration,
        periods,
    })
}

fn to_watts(unit: RateUnit, limit: f64, phases: u8) -> f64 {
    match unit {
        RateUnit::W => limit,
        RateUnit::A => limit * NOMINAL_AC_VOLTAGE * f64::from(phases),
    }
}

/// Checks `ev` against `sent`. Before the sent schedule starts, its first limit applies (the
/// station applies a profile from the moment it takes it).
pub fn check(sent: &SentSchedule, ev: &EvSchedule) -> Verdict {
    let same_unit = sent.unit == ev.unit;
    // Same unit: compare the numbers as written (both carry at most one decimal). Across units
    // the conversion rounds: allow 1 %.
    let tolerance = |limit: f64| if same_unit { 1e-6 } else { limit.abs() * 0.01 + 1.0 };
    let ev_end = ev.duration.map(|d| ev.time_base + Duration::seconds(d));
    for (i, (start, limit, phases)) in ev.periods.iter().enumerate() {
        let from = ev.time_base + Duration::seconds(*start);
        let to = ev
            .periods
            .get(i + 1)
            .map(|(next, _, _)| ev.time_base + Duration::seconds(*next));
        let to = match (to, ev_end) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        };
        if to.is_some_and(|t| t <= from) {
            continue;
        }
        let ev_value = if same_unit {
            *limit
        } else {
            to_watts(ev.unit, *limit, phases.unwrap_or(sent.phases))
        };
        for (j, (sent_start, sent_limit)) in sent.periods.iter().enumerate() {
            let s_from = if j == 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                sent.start + Duration::seconds(*sent_start)
            };
            let s_to = sent.periods.get(j + 1).map(|(n, _)| sent.start + Duration::seconds(*n));
            let overlaps = s_to.is_none_or(|t| t > from) && to.is_none_or(|t| t > s_from);
            if !overlaps {
                continue;
            }
            let sent_value = if same_unit {
                *sent_limit
            } else {
                to_watts(sent.unit, *sent_limit, sent.phases)
            };
            if ev_value > sent_value + tolerance(sent_value) {
                let ev_w = to_watts(ev.unit, *limit, phases.unwrap_or(sent.phases));
                return Verdict::Exceeds {
                    at: from.max(s_from),
                    ev_w,
                    limit_w: to_watts(sent.unit, *sent_limit, sent.phases),
                };
            }
        }
    }
    Verdict::Fits
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
    }

    fn sent() -> SentSchedule {
        SentSchedule {
            start: t0(),
            unit: RateUnit::A,
            phases: 3,
            periods: vec![(0, 10.0), (3600, 32.0)],
        }
    }

    fn ev(offset_secs: i64, unit: &str, periods: Value) -> EvSchedule {
        let base = t0() + Duration::seconds(offset_secs);
        parse_ev_schedule(&json!({"evseId": 1, "timeBase": base.to_rfc3339(),
            "chargingSchedule": {"id": 1, "chargingRateUnit": unit, "chargingSchedulePeriod": periods}}))
        .unwrap()
    }

    #[test]
    fn an_echo_of_the_sent_schedule_fits_even_when_sent_later() {
        let periods = json!([{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 3600, "limit": 32.0}]);
        assert_eq!(check(&sent(), &ev(0, "A", periods.clone())), Verdict::Fits);
        assert_eq!(check(&sent(), &ev(5, "A", periods)), Verdict::Fits);
    }

    #[test]
    fn above_the_limit_at_any_instant_is_rejected() {
        let doubled = json!([{"startPeriod": 0, "limit": 20.0}]);
        assert!(matches!(check(&sent(), &ev(0, "A", doubled)), Verdict::Exceeds { .. }));
        // 32 A from the start: fine after an hour, too much before it.
        let early = json!([{"startPeriod": 0, "limit": 8.0}, {"startPeriod": 1800, "limit": 32.0}]);
        match check(&sent(), &ev(0, "A", early)) {
            Verdict::Exceeds { at, .. } => assert_eq!(at, t0() + Duration::seconds(1800)),
            other => panic!("{other:?}"),
        }
        // Before the sent schedule starts, its first limit applies.
        let before = json!([{"startPeriod": 0, "limit": 11.0}, {"startPeriod": 120, "limit": 5.0}]);
        assert!(matches!(
            check(&sent(), &ev(-600, "A", before)),
            Verdict::Exceeds { .. }
        ));
    }

    #[test]
    fn a_duration_ends_the_ev_schedule() {
        let mut short = ev(
            0,
            "A",
            json!([{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 3000, "limit": 32.0}]),
        );
        short.duration = Some(3000);
        assert_eq!(check(&sent(), &short), Verdict::Fits);
    }

    #[test]
    fn compares_across_units_in_watts() {
        // 10 A x 3 x 230 V = 6900 W.
        assert_eq!(
            check(&sent(), &ev(0, "W", json!([{"startPeriod": 0, "limit": 6900.0}]))),
            Verdict::Fits
        );
        assert!(matches!(
            check(&sent(), &ev(0, "W", json!([{"startPeriod": 0, "limit": 7500.0}]))),
            Verdict::Exceeds { .. }
        ));
        // One phase at 25 A is 5750 W: within 6900 W.
        let one_phase = json!([{"startPeriod": 0, "limit": 25.0, "numberPhases": 1}]);
        let w_sent = SentSchedule {
            unit: RateUnit::W,
            periods: vec![(0, 6900.0)],
            ..sent()
        };
        assert_eq!(check(&w_sent, &ev(0, "A", one_phase)), Verdict::Fits);
    }

    #[test]
    fn refuses_malformed_schedules() {
        let bad = |periods: Value| {
            parse_ev_schedule(&json!({"evseId": 1, "timeBase": "2030-01-01T12:00:00Z",
                "chargingSchedule": {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": periods}}))
        };
        assert!(bad(json!([{"startPeriod": 0, "limit": -1.0}])).is_err());
        assert!(bad(json!([{"startPeriod": 60, "limit": 1.0}, {"startPeriod": 60, "limit": 2.0}])).is_err());
        assert!(bad(json!([{"startPeriod": 0, "limit": 1.0, "numberPhases": 4}])).is_err());
    }
}

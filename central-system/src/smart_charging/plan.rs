//! From the EV's needs and the site's limits to the TxProfile the CSMS sends (K15.FR.03/07,
//! K16): load leveling spreads the requested energy evenly over the time to departure, never
//! above what the station, the site and the EV allow, and never at a rate the EV cannot use.

use super::curve::{Curve, Segment};
use super::needs::{ChargingNeeds, NOMINAL_AC_VOLTAGE};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// Most periods a ChargingSchedule may carry (the schema's bound).
const MAX_PERIODS: usize = 1024;

/// Limits of the site and the station the plan must respect, besides the EV's own.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteLimits {
    /// The configured most power of one station (`--station-max-power-w`).
    pub station_max_w: f64,
    /// The ChargingStationMaxProfile the CSMS set on the station, as a curve from now.
    pub station_profile: Option<Curve>,
    /// A cap the operator gave for this EV (K16 renegotiation with a new limit).
    pub operator_limit_w: Option<f64>,
}

/// The unit a schedule is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// Watts.
    W,
    /// Amperes per phase.
    A,
}

impl RateUnit {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RateUnit::W => "W",
            RateUnit::A => "A",
        }
    }

    /// Reads the wire name.
    pub fn parse(s: &str) -> Option<RateUnit> {
        match s {
            "W" => Some(RateUnit::W),
            "A" => Some(RateUnit::A),
            _ => None,
        }
    }
}

/// A computed schedule, relative to `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The schedule's start (the instant of computation).
    pub start: DateTime<Utc>,
    /// Unit of the limits.
    pub unit: RateUnit,
    /// Phases an A limit applies to (AC), for converting back to watts.
    pub phases: u8,
    /// (seconds from start, limit in `unit`), the first at 0.
    pub periods: Vec<(i64, f64)>,
    /// The EV's minimum rate in `unit`, when it has one.
    pub min_rate: Option<f64>,
    /// The leveled power in W, when the energy and departure allowed leveling.
    pub level_w: Option<f64>,
}

/// Why no schedule can be offered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The station or site never allows the EV's minimum rate (or allows nothing at all).
    #[error("the station and site limits stay below the EV's minimum rate ({min_w:.0} W)")]
    NoCapacity {
        /// The EV's minimum, W.
        min_w: f64,
    },
}

/// Computes the schedule at `now`.
pub fn compute(needs: &ChargingNeeds, site: &SiteLimits, now: DateTime<Utc>) -> Result<Plan, PlanError> {
    let mut available = Curve::constant(site.station_max_w.max(0.0)).min(&Curve::constant(needs.ev.max_w));
    if let Some(profile) = &site.station_profile {
        available = available.min(profile);
    }
    if let Some(limit) = site.operator_limit_w {
        available = available.min(&Curve::constant(limit.max(0.0)));
    }
    // Leveling needs both an energy amount and a departure still ahead; a departure in the past
    // means the EV wants its energy as soon as possible.
    let window = needs
        .departure
        .map(|d| (d - now).num_seconds())
        .filter(|secs| *secs > 0);
    let mut level_w = None;
    let mut limit = available.clone();
    if let (Some(window), Some(energy_wh)) = (window, needs.ev.energy_wh) {
        let wanted = energy_wh as f64 * 3600.0;
        let split = available.split_at(window);
        if split.energy_below(f64::INFINITY, window) > wanted {
            let level = level_for(&split, wanted, window).max(needs.ev.min_w);
            level_w = Some(level);
            limit = split.map(|start, watts| if start < window { watts.min(level) } else { watts });
        }
    }
    // A rate below the EV's minimum is one it cannot charge at: pause instead.
    let min_w = needs.ev.min_w;
    let limit = limit.map(|_, watts| if watts < min_w || watts <= 0.0 { 0.0 } else { watts });
    if limit.segments().iter().all(|s| s.watts <= 0.0) {
        return Err(PlanError::NoCapacity { min_w });
    }
    let phases = needs.transfer.phases();
    let unit = if phases.is_some() { RateUnit::A } else { RateUnit::W };
    let phases = phases.unwrap_or(3);
    let to_unit = |watts: f64| match unit {
        // Floor to the one decimal the schema allows, so the limit never exceeds the watts.
        RateUnit::A => floor_tenth(watts / (NOMINAL_AC_VOLTAGE * f64::from(phases))),
        RateUnit::W => floor_tenth(watts),
    };
    let mut periods: Vec<(i64, f64)> = Vec::new();
    for s in limit.segments() {
        let value = if s.watts.is_finite() {
            to_unit(s.watts)
        } else {
            // No limit anywhere (no station maximum configured and an EV without limits):
            // the largest value the unit can say sensibly.
            to_unit(f64::from(i32::MAX))
        };
        if periods.last().is_none_or(|(_, last)| *last != value) {
            periods.push((s.start, value));
        }
    }
    let cap = needs.max_schedule_tuples.unwrap_or(MAX_PERIODS).clamp(1, MAX_PERIODS);
    if periods.len() > cap {
        // The EV takes fewer periods: the last one it can take holds the lowest of the rest,
        // so the shortened schedule never allows more than the full one.
        let tail_min = periods[cap - 1..].iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
        periods.truncate(cap);
        if let Some(last) = periods.last_mut() {
            last.1 = tail_min;
        }
    }
    Ok(Plan {
        start: now,
        unit,
        phases,
        periods,
        min_rate: (min_w > 0.0).then(|| to_unit(min_w)),
        level_w,
    })
}

/// The level L such that charging at min(curve, L) over [0, window) delivers `wanted`
/// watt-seconds (bisection: the delivered energy rises monotonically with L).
fn level_for(curve: &Curve, wanted: f64, window: i64) -> f64 {
    let top = curve
        .segments()
        .iter()
        .filter(|s| s.start < window && s.watts.is_finite())
        .map(|s| s.watts)
        .fold(wanted / window as f64, f64::max);
    let (mut lo, mut hi) = (0.0_f64, top);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if curve.energy_below(mid, window) < wanted {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn floor_tenth(v: f64) -> f64 {
    (v * 10.0).floor() / 10.0
}

impl Plan {
    /// The SetChargingProfile payload: a TxProfile of the transaction on the EVSE, Absolute
    /// from the plan's start.
    pub fn request(&self, evse_id: u32, profile_id: i32, schedule_id: i32, transaction_id: &str) -> Value {
        let periods: Vec<Value> = self
            .periods
            .iter()
            .map(|(start, limit)| {
                let mut p = json!({ "startPeriod": start, "limit": limit });
                if self.unit == RateUnit::A {
                    p["numberPhases"] = json!(self.phases);
                }
                p
            })
            .collect();
        let mut schedule = json!({
            "id": schedule_id,
            "startSchedule": super::rfc3339(self.start),
            "chargingRateUnit": self.unit.as_str(),
            "chargingSchedulePeriod": periods,
        });
        if let Some(min) = self.min_rate {
            schedule["minChargingRate"] = json!(min);
        }
        json!({
            "evseId": evse_id,
            "chargingProfile": {
                "id": profile_id,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [schedule],
                "transactionId": transaction_id,
            }
        })
    }
}

/// The limit a ChargingStationMaxProfile (as sent in SetChargingProfile) puts on the station,
/// as a curve from `now` covering `horizon`; `None` when it limits nothing in that time.
/// Absolute, Relative (taken to start now) and Recurring (Daily/Weekly) profiles; A limits
/// count `numberPhases` (default 3) at nominal voltage.
pub fn station_profile_curve(profile: &Value, now: DateTime<Utc>, horizon: Duration) -> Option<Curve> {
    let parse_time = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    if parse_time(&profile["validTo"]).is_some_and(|to| to <= now) {
        return None;
    }
    let schedule = profile["chargingSchedule"].get(0)?;
    let amps = schedule["chargingRateUnit"] == "A";
    let watts = |p: &Value| {
        let limit = p["limit"].as_f64().unwrap_or(f64::INFINITY);
        if amps {
            let phases = p["numberPhases"].as_f64().unwrap_or(3.0);
            limit * NOMINAL_AC_VOLTAGE * phases
        } else {
            limit
        }
    };
    let periods: Vec<(i64, f64)> = schedule["chargingSchedulePeriod"]
        .as_array()?
        .iter()
        .map(|p| (p["startPeriod"].as_i64().unwrap_or(0), watts(p)))
        .collect();
    let duration = schedule["duration"].as_i64();
    let start = parse_time(&schedule["startSchedule"]).unwrap_or(now);
    let cycle = match profile["recurrencyKind"].as_str() {
        Some("Daily") if profile["chargingProfileKind"] == "Recurring" => Some(86_400),
        Some("Weekly") if profile["chargingProfileKind"] == "Recurring" => Some(7 * 86_400),
        _ => None,
    };
    let horizon_secs = horizon.num_seconds().max(1);
    // The schedule's occurrences (one, or every cycle) that touch [now, now + horizon).
    let mut origins = Vec::new();
    match cycle {
        Some(cycle) => {
            let behind = (now - start).num_seconds().div_euclid(cycle);
            let mut k = behind;
            while (start + Duration::seconds(k * cycle) - now).num_seconds() < horizon_secs {
                origins.push(start + Duration::seconds(k * cycle));
                k += 1;
            }
        }
        None => origins.push(if profile["chargingProfileKind"] == "Relative" {
            now
        } else {
            start
        }),
    }
    let mut segments = Vec::new();
    for origin in origins {
        let offset = (origin - now).num_seconds();
        for (i, (start_period, w)) in periods.iter().enumerate() {
            let from = offset + start_period;
            let to = periods
                .get(i + 1)
                .map(|(next, _)| offset + next)
                .or(cycle.map(|c| offset + c))
                .map_or(i64::MAX, |t| t.min(duration.map_or(i64::MAX, |d| offset + d)));
            let to = duration.map_or(to, |d| to.min(offset + d));
            if to <= 0 || from >= horizon_secs || from >= to {
                continue;
            }
            segments.push(Segment {
                start: from.max(0),
                watts: *w,
            });
            if to < i64::MAX {
                segments.push(Segment {
                    start: to,
                    watts: f64::INFINITY,
                });
            }
        }
    }
    // A later segment starting at the same instant as an "unlimited" end marker wins.
    let mut by_start: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for s in segments {
        let entry = by_start.entry(s.start).or_insert(s.watts);
        if s.watts.is_finite() {
            *entry = s.watts;
        }
    }
    let curve = Curve::from_segments(
        by_start
            .into_iter()
            .map(|(start, watts)| Segment { start, watts })
            .collect(),
    );
    curve.segments().iter().any(|s| s.watts.is_finite()).then_some(curve)
}

#[cfg(test)]
mod tests {
    use super::super::needs::{EnergyTransfer, EvLimits};
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
    }

    fn ac_needs(energy_wh: Option<i64>, hours: Option<i64>, min_a: f64, max_a: f64) -> ChargingNeeds {
        ChargingNeeds {
            evse_id: 1,
            transfer: EnergyTransfer::AcThreePhase,
            departure: hours.map(|h| now() + Duration::hours(h)),
            ev: EvLimits {
                energy_wh,
                min_w: min_a * 690.0,
                max_w: max_a * 690.0,
            },
            max_schedule_tuples: None,
        }
    }

    fn site(max_w: f64) -> SiteLimits {
        SiteLimits {
            station_max_w: max_w,
            station_profile: None,
            operator_limit_w: None,
        }
    }

    #[test]
    fn levels_the_energy_over_the_time_to_departure() {
        // 13.8 kWh in 4 h: 3450 W = 5 A on three phases; the EV's 6 A minimum lifts it to 6 A.
        let plan = compute(&ac_needs(Some(13_800), Some(4), 6.0, 32.0), &site(22_000.0), now()).unwrap();
        assert_eq!(plan.unit, RateUnit::A);
        assert_eq!(plan.periods, vec![(0, 6.0), (4 * 3600, 31.8)]);
        assert_eq!(plan.min_rate, Some(6.0));
        // 27.6 kWh in 4 h: 6900 W = 10 A.
        let plan = compute(&ac_needs(Some(27_600), Some(4), 6.0, 32.0), &site(22_000.0), now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 10.0), (4 * 3600, 31.8)]);
    }

    #[test]
    fn more_energy_than_the_window_allows_charges_at_the_most_allowed() {
        let plan = compute(&ac_needs(Some(500_000), Some(1), 6.0, 16.0), &site(22_000.0), now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 16.0)]);
        assert_eq!(plan.level_w, None);
    }

    #[test]
    fn a_departure_in_the_past_or_absent_means_as_soon_as_possible() {
        for hours in [Some(-2), Some(0), None] {
            let plan = compute(&ac_needs(Some(10_000), hours, 6.0, 16.0), &site(7_000.0), now()).unwrap();
            // 7000 W / 690 = 10.14 A, floored to a tenth.
            assert_eq!(plan.periods, vec![(0, 10.1)], "{hours:?}");
        }
    }

    #[test]
    fn zero_energy_caps_at_the_ev_minimum() {
        let plan = compute(&ac_needs(Some(0), Some(3), 6.0, 16.0), &site(22_000.0), now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 6.0), (3 * 3600, 16.0)]);
    }

    #[test]
    fn limits_below_the_ev_minimum_pause_or_refuse() {
        // The station allows 3 kW, below the EV's 6 A x 3 phases: no schedule at all.
        let err = compute(&ac_needs(Some(10_000), Some(3), 6.0, 16.0), &site(3_000.0), now()).unwrap_err();
        assert!(matches!(err, PlanError::NoCapacity { .. }));
        // A station profile dropping to 2 kW for an hour: the EV pauses then resumes.
        let mut s = site(22_000.0);
        s.station_profile = Some(Curve::from_segments(vec![
            Segment {
                start: 0,
                watts: 2_000.0,
            },
            Segment {
                start: 3600,
                watts: f64::INFINITY,
            },
        ]));
        let plan = compute(&ac_needs(None, None, 6.0, 16.0), &s, now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 0.0), (3600, 16.0)]);
    }

    #[test]
    fn dc_plans_in_watts_within_station_profile_and_operator_limit() {
        let needs = ChargingNeeds {
            evse_id: 2,
            transfer: EnergyTransfer::Dc,
            departure: Some(now() + Duration::hours(2)),
            ev: EvLimits {
                energy_wh: Some(40_000),
                min_w: 0.0,
                max_w: 50_000.0,
            },
            max_schedule_tuples: None,
        };
        let mut s = site(150_000.0);
        s.station_profile = Some(Curve::from_segments(vec![
            Segment {
                start: 0,
                watts: 30_000.0,
            },
            Segment {
                start: 3600,
                watts: 10_000.0,
            },
        ]));
        // 40 kWh over 2 h under 30 kW then 10 kW: level L with min(30k,L) + min(10k,L) = 40k -> 30 kW.
        let plan = compute(&needs, &s, now()).unwrap();
        assert_eq!(plan.unit, RateUnit::W);
        assert_eq!(plan.periods, vec![(0, 30_000.0), (3600, 10_000.0)]);
        s.operator_limit_w = Some(5_000.0);
        let plan = compute(&needs, &s, now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 5_000.0)]);
    }

    #[test]
    fn shortens_to_the_tuples_the_ev_takes_without_raising_a_limit() {
        let mut needs = ac_needs(None, None, 0.0, 32.0);
        needs.max_schedule_tuples = Some(2);
        let mut s = site(22_000.0);
        s.station_profile = Some(Curve::from_segments(vec![
            Segment {
                start: 0,
                watts: 6_900.0,
            },
            Segment {
                start: 60,
                watts: 13_800.0,
            },
            Segment {
                start: 120,
                watts: 3_450.0,
            },
        ]));
        let plan = compute(&needs, &s, now()).unwrap();
        assert_eq!(plan.periods, vec![(0, 10.0), (60, 5.0)]);
    }

    #[test]
    fn request_is_a_tx_profile_that_passes_the_schema() {
        let plan = compute(&ac_needs(Some(13_800), Some(4), 6.0, 32.0), &site(22_000.0), now()).unwrap();
        let req = plan.request(1, 7, 7, "TX-1");
        ocpp::schema::validate(
            ocpp::Version::V201,
            "SetChargingProfile",
            ocpp::schema::Direction::Request,
            &req,
        )
        .unwrap();
        assert_eq!(req["chargingProfile"]["chargingProfilePurpose"], "TxProfile");
        assert_eq!(req["chargingProfile"]["transactionId"], "TX-1");
    }

    #[test]
    fn station_profile_curves() {
        let absolute = json!({"id": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
            "startSchedule": "2030-01-01T11:00:00Z", "duration": 7200,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 5400, "limit": 20.0}]}]});
        let c = station_profile_curve(&absolute, now(), Duration::hours(24)).unwrap();
        assert_eq!(c.at(0), 6_900.0);
        assert_eq!(c.at(1800), 13_800.0);
        assert!(c.at(3600).is_infinite());
        let daily = json!({"id": 2, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "chargingSchedule": [{"id": 1,
            "chargingRateUnit": "W", "startSchedule": "2020-06-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 5000.0}, {"startPeriod": 43_200 + 3600, "limit": 1000.0}]}]});
        let c = station_profile_curve(&daily, now(), Duration::hours(24)).unwrap();
        assert_eq!(c.at(0), 5_000.0);
        assert_eq!(c.at(3600), 1_000.0);
        assert_eq!(c.at(12 * 3600), 5_000.0);
        let expired = json!({"validTo": "2029-01-01T00:00:00Z", "chargingSchedule": [{"chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1.0}]}]});
        assert_eq!(station_profile_curve(&expired, now(), Duration::hours(1)), None);
    }
}

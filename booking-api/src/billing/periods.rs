//! From a session's meter readings and status history to charging periods: stretches of time in
//! which nothing the tariff can look at changes, so each period is priced by one element per
//! dimension.
//!
//! A period boundary falls on every
//! - meter reading (the energy curve's slope, and so the power, may change there);
//! - status change (charging / idle), and the end of each idle stretch's grace period;
//! - local time-of-day edge of any element (`start_time`, `end_time`) and every local midnight
//!   (dates and weekdays change there), computed in the station's time zone: a local time that
//!   occurs twice on the day clocks go back yields both instants, one the spring gap skips none;
//! - change of the zone's UTC offset (a DST transition), where local time jumps;
//! - instant the session's energy crosses an element's `min_kwh` / `max_kwh` (energy is
//!   interpolated linearly between readings; the crossing's energy is pinned to the threshold
//!   exactly, its time rounded to the millisecond);
//! - instant the session's duration reaches an element's `min_duration` / `max_duration`.
//!
//! Times are epoch milliseconds; energy is Wh as an exact decimal, interpolated values rounded to
//! a micro-Wh so the same instant gets the same energy whichever readings bracket it.

use super::tariff::ValidTariff;
use chrono::{DateTime, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// A meter reading: cumulative register (Wh) at an instant, with the power and current the
/// charger measured then, when it sent them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at_ms: i64,
    pub energy_wh: i64,
    pub power_w: Option<i64>,
    pub current_a: Option<Decimal>,
}

/// Charging or idle (connected but not charging: the car is full or paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeState {
    Charging,
    Idle,
}

/// From `at_ms` on, the session is in `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub at_ms: i64,
    pub state: ChargeState,
}

/// What the engine prices: the session's span, its readings (sorted by time) and its status
/// history (sorted; charging until the first change).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInput {
    pub start_ms: i64,
    pub end_ms: i64,
    pub readings: Vec<Reading>,
    pub statuses: Vec<StatusChange>,
}

/// The state of a period as the tariff sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeriodState {
    Charging,
    /// Idle, within the grace period: no PARKING_TIME.
    IdleGrace,
    /// Idle after the grace period: PARKING_TIME.
    Idle,
}

/// A stretch of the session over which every restriction gives one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
    pub state: PeriodState,
    /// Energy charged in this period (Wh).
    pub energy_wh: Decimal,
    /// Energy charged in the session before this period (Wh).
    pub energy_before_wh: Decimal,
    /// The charger's power reading at the interval's opening reading, else the average power
    /// over the reading interval (kW).
    pub power_kw: Decimal,
    pub current_a: Option<Decimal>,
    /// Local date-time of the period's start in the station's zone.
    pub local_start: NaiveDateTime,
}

impl Period {
    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

/// Input the engine cannot price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("the session ends before it starts")]
    EndBeforeStart,
    #[error("meter readings are not in time order")]
    ReadingsOutOfOrder,
    #[error("the meter register goes backwards")]
    EnergyDecreases,
    #[error("timestamp out of range")]
    TimeOutOfRange,
    #[error("meter register out of range")]
    EnergyOutOfRange,
}

impl PeriodError {
    pub fn code(&self) -> &'static str {
        match self {
            PeriodError::EndBeforeStart => "SESSION_END_BEFORE_START",
            PeriodError::ReadingsOutOfOrder => "READINGS_OUT_OF_ORDER",
            PeriodError::EnergyDecreases => "METER_DECREASES",
            PeriodError::TimeOutOfRange => "TIME_OUT_OF_RANGE",
            PeriodError::EnergyOutOfRange => "METER_OUT_OF_RANGE",
        }
    }
}

/// The longest session the engine splits (a year): bounds the work on absurd input.
const MAX_SPAN_MS: i64 = 366 * 24 * 3_600_000;

/// The largest meter register accepted (10 GWh). With it, prices below 1,000,000 and a span of
/// a year, no decimal product or minor-unit sum can overflow, whatever a charger reports.
const MAX_REGISTER_WH: i64 = 10_000_000_000;

/// Timestamps beyond ±10^15 ms (about year 33,000) are refused before any subtraction.
const MAX_ABS_MS: i64 = 1_000_000_000_000_000;

/// Splits `session` into periods at every price boundary of `tariff` in zone `tz`.
pub fn split(session: &SessionInput, tariff: &ValidTariff, tz: Tz) -> Result<Vec<Period>, PeriodError> {
    let (start, end) = (session.start_ms, session.end_ms);
    let times = [start, end].into_iter().chain(session.readings.iter().map(|r| r.at_ms));
    if times
        .chain(session.statuses.iter().map(|s| s.at_ms))
        .any(|t| t.abs() > MAX_ABS_MS)
    {
        return Err(PeriodError::TimeOutOfRange);
    }
    if session
        .readings
        .iter()
        .any(|r| !(0..=MAX_REGISTER_WH).contains(&r.energy_wh))
    {
        return Err(PeriodError::EnergyOutOfRange);
    }
    if end < start {
        return Err(PeriodError::EndBeforeStart);
    }
    if end - start > MAX_SPAN_MS {
        return Err(PeriodError::TimeOutOfRange);
    }
    let readings = &session.readings;
    for w in readings.windows(2) {
        if w[1].at_ms < w[0].at_ms {
            return Err(PeriodError::ReadingsOutOfOrder);
        }
        if w[1].energy_wh < w[0].energy_wh {
            return Err(PeriodError::EnergyDecreases);
        }
    }
    let curve = Curve::new(readings, start);

    // Boundary instants, with the energy pinned where it is known exactly (kWh crossings).
    let mut cuts: BTreeMap<i64, Option<Decimal>> = BTreeMap::new();
    let mut cut = |at: i64, pinned: Option<Decimal>| {
        if at > start && at < end {
            let slot = cuts.entry(at).or_insert(None);
            if pinned.is_some() {
                *slot = pinned;
            }
        }
    };
    for r in readings {
        cut(r.at_ms, None);
    }
    for s in &session.statuses {
        cut(s.at_ms, None);
    }
    for (idle_from, _) in idle_stretches(session) {
        cut(idle_from.saturating_add(tariff.parking_grace_ms), None);
    }
    for at in local_edges(tariff, tz, start, end)? {
        cut(at, None);
    }
    let mut energy_thresholds = BTreeSet::new();
    for e in &tariff.elements {
        for d in [e.when.min_duration_ms, e.when.max_duration_ms].into_iter().flatten() {
            cut(start.saturating_add(d), None);
        }
        energy_thresholds.extend([e.when.min_wh, e.when.max_wh].into_iter().flatten());
    }
    for threshold in energy_thresholds {
        if let Some(at) = curve.crossing(threshold) {
            cut(at, Some(threshold));
        }
    }

    let mut bounds: Vec<(i64, Decimal)> = Vec::with_capacity(cuts.len() + 2);
    bounds.push((start, Decimal::ZERO));
    bounds.extend(
        cuts.into_iter()
            .map(|(at, pinned)| (at, pinned.unwrap_or_else(|| curve.energy_at(at)))),
    );
    bounds.push((end, curve.energy_at(end)));

    let mut periods = Vec::with_capacity(bounds.len());
    for w in bounds.windows(2) {
        let ((a, ea), (b, eb)) = (w[0], w[1]);
        if b <= a {
            continue;
        }
        let local_start = DateTime::<Utc>::from_timestamp_millis(a)
            .ok_or(PeriodError::TimeOutOfRange)?
            .with_timezone(&tz)
            .naive_local();
        periods.push(Period {
            start_ms: a,
            end_ms: b,
            state: state_at(session, tariff.parking_grace_ms, a),
            energy_wh: (eb - ea).max(Decimal::ZERO),
            energy_before_wh: ea,
            power_kw: curve.power_kw(a),
            current_a: curve.current_at(a),
            local_start,
        });
    }
    Ok(periods)
}

/// The state at instant `at`: the latest status change at or before it (charging before any),
/// idle split into grace and billable by the time since the idle stretch began.
fn state_at(session: &SessionInput, grace_ms: i64, at: i64) -> PeriodState {
    for (from, to) in idle_stretches(session) {
        if at >= from && at < to {
            return if at - from < grace_ms {
                PeriodState::IdleGrace
            } else {
                PeriodState::Idle
            };
        }
    }
    PeriodState::Charging
}

/// The idle stretches `[from, to)` of the session, clipped to its span.
fn idle_stretches(session: &SessionInput) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut idle_from: Option<i64> = None;
    for s in &session.statuses {
        let at = s.at_ms.clamp(session.start_ms, session.end_ms);
        match (s.state, idle_from) {
            (ChargeState::Idle, None) => idle_from = Some(at),
            (ChargeState::Charging, Some(from)) => {
                if at > from {
                    out.push((from, at));
                }
                idle_from = None;
            }
            _ => {}
        }
    }
    if let Some(from) = idle_from {
        if session.end_ms > from {
            out.push((from, session.end_ms));
        }
    }
    out
}

/// Instants in `(start, end)` where local time crosses an element's time-of-day edge or
/// midnight, and where the zone's offset changes.
fn local_edges(tariff: &ValidTariff, tz: Tz, start: i64, end: i64) -> Result<Vec<i64>, PeriodError> {
    let to_utc = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).ok_or(PeriodError::TimeOutOfRange);
    let first = to_utc(start)?.with_timezone(&tz).date_naive();
    let last = to_utc(end)?.with_timezone(&tz).date_naive();
    let mut times: BTreeSet<NaiveTime> = BTreeSet::new();
    times.insert(NaiveTime::MIN);
    for e in &tariff.elements {
        times.extend([e.when.start_time, e.when.end_time].into_iter().flatten());
    }
    let mut out = Vec::new();
    let mut day = first.pred_opt().unwrap_or(first);
    while day <= last {
        for t in &times {
            // `earliest`/`latest` give both instants of a repeated local time; a skipped one
            // gives none, and the offset change below covers the jump over it.
            let local = tz.from_local_datetime(&day.and_time(*t));
            for instant in [local.earliest(), local.latest()].into_iter().flatten() {
                let ms = instant.timestamp_millis();
                if ms > start && ms < end {
                    out.push(ms);
                }
            }
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    out.extend(offset_changes(tz, start, end));
    Ok(out)
}

/// Instants in `(start, end)` where `tz`'s UTC offset changes: sampled hourly (zones change at
/// most twice a year, never twice within an hour), then bisected to the millisecond.
fn offset_changes(tz: Tz, start: i64, end: i64) -> Vec<i64> {
    let offset = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).offset().fix().local_minus_utc())
            .unwrap_or(0)
    };
    const HOUR: i64 = 3_600_000;
    let mut out = Vec::new();
    let mut a = start;
    while a < end {
        let b = (a + HOUR).min(end);
        if offset(a) != offset(b) {
            // Invariant: offset(lo) == offset(a), offset(hi) != offset(a).
            let (mut lo, mut hi) = (a, b);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == offset(a) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
        a = b;
    }
    out
}

/// The session's energy as a piecewise linear function of time, through its readings; flat
/// before the first and after the last, and relative to the energy at the session's start.
struct Curve<'a> {
    readings: &'a [Reading],
    origin: Decimal,
}

impl<'a> Curve<'a> {
    fn new(readings: &'a [Reading], start: i64) -> Curve<'a> {
        let mut c = Curve {
            readings,
            origin: Decimal::ZERO,
        };
        c.origin = c.absolute_at(start);
        c
    }

    /// Index of the last reading at or before `at`.
    fn before(&self, at: i64) -> Option<usize> {
        let n = self.readings.partition_point(|r| r.at_ms <= at);
        n.checked_sub(1)
    }

    fn absolute_at(&self, at: i64) -> Decimal {
        let Some(first) = self.readings.first() else {
            return Decimal::ZERO;
        };
        let Some(i) = self.before(at) else {
            return Decimal::from(first.energy_wh);
        };
        let r0 = self.readings[i];
        let Some(r1) = self.readings.get(i + 1) else {
            return Decimal::from(r0.energy_wh);
        };
        if r1.at_ms == r0.at_ms {
            return Decimal::from(r1.energy_wh);
        }
        // Multiply before dividing: one rounding, the same whichever readings bracket `at`
        // on a straight stretch of the curve.
        let de = Decimal::from(r1.energy_wh - r0.energy_wh);
        let dt = Decimal::from(r1.at_ms - r0.at_ms);
        let into = Decimal::from(at - r0.at_ms);
        (Decimal::from(r0.energy_wh) + de * into / dt).round_dp(6)
    }

    fn energy_at(&self, at: i64) -> Decimal {
        (self.absolute_at(at) - self.origin).max(Decimal::ZERO)
    }

    /// The first instant the session's energy reaches `threshold` Wh (rounded to the ms), if it
    /// does strictly inside a reading interval.
    fn crossing(&self, threshold: Decimal) -> Option<i64> {
        let target = self.origin + threshold;
        for w in self.readings.windows(2) {
            let (e0, e1) = (Decimal::from(w[0].energy_wh), Decimal::from(w[1].energy_wh));
            if e0 < target && target < e1 {
                let dt = Decimal::from(w[1].at_ms - w[0].at_ms);
                let at = Decimal::from(w[0].at_ms) + (target - e0) * dt / (e1 - e0);
                let at = rust_decimal::prelude::ToPrimitive::to_i64(&at.round())?;
                return (at > w[0].at_ms && at < w[1].at_ms).then_some(at);
            }
        }
        None
    }

    /// kW at `at`: the opening reading's power if it has one, else the interval's average.
    fn power_kw(&self, at: i64) -> Decimal {
        let Some(i) = self.before(at) else {
            return Decimal::ZERO;
        };
        let r0 = self.readings[i];
        if let Some(w) = r0.power_w {
            return Decimal::from(w) / Decimal::from(1000);
        }
        match self.readings.get(i + 1) {
            Some(r1) if r1.at_ms > r0.at_ms => {
                // Wh per ms × 3600 = kW.
                Decimal::from(r1.energy_wh - r0.energy_wh) * Decimal::from(3600) / Decimal::from(r1.at_ms - r0.at_ms)
            }
            _ => Decimal::ZERO,
        }
    }

    fn current_at(&self, at: i64) -> Option<Decimal> {
        self.before(at).and_then(|i| self.readings[i].current_a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::tariff::{Tariff, ValidTariff};
    use serde_json::json;

    fn tariff(v: serde_json::Value) -> ValidTariff {
        ValidTariff::parse(serde_json::from_value::<Tariff>(v).unwrap()).unwrap()
    }

    fn t(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn reading(at: &str, wh: i64) -> Reading {
        Reading {
            at_ms: t(at),
            energy_wh: wh,
            power_w: None,
            current_a: None,
        }
    }

    #[test]
    fn splits_at_time_of_day_edges_and_interpolates_energy() {
        let tf = tariff(json!({"currency": "EUR", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}],
             "restrictions": {"start_time": "18:00", "end_time": "20:00"}},
            {"price_components": [{"type": "ENERGY", "price": 0.2, "step_size": 1}]}]}));
        let s = SessionInput {
            start_ms: t("2026-06-01T15:00:00Z"),
            end_ms: t("2026-06-01T17:00:00Z"),
            readings: vec![
                reading("2026-06-01T15:00:00Z", 1000),
                reading("2026-06-01T17:00:00Z", 21000),
            ],
            statuses: vec![],
        };
        // Europe/Berlin is UTC+2 in June: 18:00 local is 16:00Z.
        let p = split(&s, &tf, chrono_tz::Europe::Berlin).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].end_ms, t("2026-06-01T16:00:00Z"));
        assert_eq!(p[0].energy_wh, Decimal::from(10000));
        assert_eq!(p[1].energy_before_wh, Decimal::from(10000));
        assert_eq!(p[1].power_kw, Decimal::from(10));
        assert_eq!(p[1].local_start.to_string(), "2026-06-01 18:00:00");
    }

    #[test]
    fn pins_energy_at_kwh_thresholds() {
        let tf = tariff(json!({"currency": "EUR", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}], "restrictions": {"max_kwh": 7}},
            {"price_components": [{"type": "ENERGY", "price": 0.2, "step_size": 1}]}]}));
        let s = SessionInput {
            start_ms: 0,
            end_ms: 3_000_000,
            readings: vec![
                Reading {
                    at_ms: 0,
                    energy_wh: 0,
                    power_w: None,
                    current_a: None,
                },
                Reading {
                    at_ms: 3_000_000,
                    energy_wh: 30_000,
                    power_w: None,
                    current_a: None,
                },
            ],
            statuses: vec![],
        };
        let p = split(&s, &tf, chrono_tz::UTC).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].end_ms, 700_000);
        assert_eq!(p[0].energy_wh, Decimal::from(7000));
        assert_eq!(p[1].energy_before_wh, Decimal::from(7000));
    }

    #[test]
    fn refuses_bad_input() {
        let tf = tariff(
            json!({"currency": "EUR", "elements": [{"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]}]}),
        );
        let mut s = SessionInput {
            start_ms: 10,
            end_ms: 5,
            readings: vec![],
            statuses: vec![],
        };
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::EndBeforeStart));
        s.end_ms = 100;
        s.readings = vec![
            Reading {
                at_ms: 50,
                energy_wh: 10,
                power_w: None,
                current_a: None,
            },
            Reading {
                at_ms: 40,
                energy_wh: 20,
                power_w: None,
                current_a: None,
            },
        ];
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::ReadingsOutOfOrder));
        s.readings[1].at_ms = 60;
        s.readings[1].energy_wh = 5;
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::EnergyDecreases));
        s.readings[1].energy_wh = i64::MAX;
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::EnergyOutOfRange));
        s.readings[1].energy_wh = 20;
        s.readings[1].at_ms = i64::MAX;
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::TimeOutOfRange));
        s.readings[1].at_ms = 60;
        s.end_ms = 400 * 24 * 3_600_000;
        assert_eq!(split(&s, &tf, chrono_tz::UTC), Err(PeriodError::TimeOutOfRange));
    }

    #[test]
    fn grace_then_parking() {
        let tf = tariff(json!({"currency": "EUR", "parking_grace_period": 600, "elements": [
            {"price_components": [{"type": "PARKING_TIME", "price": 6, "step_size": 1}]}]}));
        let s = SessionInput {
            start_ms: 0,
            end_ms: 3_600_000,
            readings: vec![],
            statuses: vec![StatusChange {
                at_ms: 1_800_000,
                state: ChargeState::Idle,
            }],
        };
        let p = split(&s, &tf, chrono_tz::UTC).unwrap();
        let states: Vec<_> = p.iter().map(|p| (p.start_ms, p.state)).collect();
        assert_eq!(
            states,
            vec![
                (0, PeriodState::Charging),
                (1_800_000, PeriodState::IdleGrace),
                (2_400_000, PeriodState::Idle)
            ]
        );
    }
}

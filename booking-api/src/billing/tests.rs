//! The engine on hand-computed sessions, and its properties on generated ones.

use super::engine::{price, LineKind, Plan, Priced};
use super::periods::{ChargeState, Reading, SessionInput, StatusChange};
use super::tariff::{Tariff, ValidTariff};
use chrono::DateTime;
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

fn tariff(v: Value) -> ValidTariff {
    ValidTariff::parse(serde_json::from_value::<Tariff>(v).unwrap()).unwrap()
}

fn t(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn reading(at_ms: i64, energy_wh: i64) -> Reading {
    Reading {
        at_ms,
        energy_wh,
        power_w: None,
        current_a: None,
    }
}

/// A session charging linearly from `start` to `end`, `wh` in total, a reading every minute.
fn linear(start: i64, end: i64, wh: i64) -> SessionInput {
    let mut readings = Vec::new();
    let mut at = start;
    while at < end {
        readings.push(reading(at, 10_000 + wh * (at - start) / (end - start)));
        at += 60_000;
    }
    readings.push(reading(end, 10_000 + wh));
    SessionInput {
        start_ms: start,
        end_ms: end,
        readings,
        statuses: vec![],
    }
}

fn cents(p: &Priced) -> (i64, i64) {
    (p.total_excl_vat.minor, p.total_incl_vat.minor)
}

fn amounts(p: &Priced) -> Vec<(LineKind, Option<usize>, i64)> {
    p.lines.iter().map(|l| (l.kind, l.element, l.amount.minor)).collect()
}

const BERLIN: Tz = chrono_tz::Europe::Berlin;

#[test]
fn across_a_time_of_day_boundary() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}],
         "restrictions": {"start_time": "18:00", "end_time": "20:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}]}]}));
    // 17:00-19:00 in Berlin (UTC+2 in June), 20 kWh evenly: 10 kWh at 0.20, 10 kWh at 0.30.
    let s = linear(t("2026-06-01T15:00:00Z"), t("2026-06-01T17:00:00Z"), 20_000);
    let p = price(&tf, BERLIN, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(1), 200), (LineKind::Energy, Some(0), 300)]
    );
    assert_eq!(p.lines[1].from.to_rfc3339(), "2026-06-01T16:00:00+00:00");
    assert_eq!(p.lines[1].quantity, d("10"));
    assert_eq!(cents(&p), (500, 500));
    assert!(p.lines[1].why.contains("18:00-20:00"), "{}", p.lines[1].why);
}

#[test]
fn across_midnight_into_a_weekend_day() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}],
         "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}]}));
    // Friday 2026-06-05 23:00 to Saturday 01:00 local, 22 kWh: 11 × 0.25 + 11 × 0.40.
    let s = linear(t("2026-06-05T21:00:00Z"), t("2026-06-05T23:00:00Z"), 22_000);
    let p = price(&tf, BERLIN, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(1), 275), (LineKind::Energy, Some(0), 440)]
    );
    assert_eq!(p.lines[0].to.to_rfc3339(), "2026-06-05T22:00:00+00:00");
    assert_eq!(cents(&p), (715, 715));
}

#[test]
fn spring_forward_in_the_station_zone() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "TIME", "price": 2, "step_size": 1}],
         "restrictions": {"start_time": "00:00", "end_time": "04:00"}},
        {"price_components": [{"type": "TIME", "price": 1, "step_size": 1}]}]}));
    // 00:00 CET to 06:00 CEST on 2026-03-29: local 00:00-04:00 lasts 3 real hours (02:00 does not
    // exist), 04:00-06:00 two: 3 × 2 + 2 × 1 = 8, not the 10 local clock hours would give.
    let s = linear(t("2026-03-28T23:00:00Z"), t("2026-03-29T04:00:00Z"), 0);
    let p = price(&tf, BERLIN, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Time, Some(0), 600), (LineKind::Time, Some(1), 200)]
    );
    assert_eq!(p.lines[0].quantity, d("3"));
    assert_eq!(cents(&p), (800, 800));
}

#[test]
fn fall_back_repeats_an_hour() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "TIME", "price": 2, "step_size": 1}],
         "restrictions": {"start_time": "02:00", "end_time": "03:00"}},
        {"price_components": [{"type": "TIME", "price": 1, "step_size": 1}]}]}));
    // 01:00 CEST to 04:00 CET on 2026-10-25: local 02:00-03:00 happens twice (2 real hours).
    let s = linear(t("2026-10-24T23:00:00Z"), t("2026-10-25T03:00:00Z"), 0);
    let p = price(&tf, BERLIN, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![
            (LineKind::Time, Some(1), 100),
            (LineKind::Time, Some(0), 400),
            (LineKind::Time, Some(1), 100)
        ]
    );
    assert_eq!(cents(&p), (600, 600));
}

#[test]
fn step_sizes_round_the_session_total() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [
            {"type": "TIME", "price": 1.20, "step_size": 900},
            {"type": "ENERGY", "price": 0.25, "step_size": 1000}]}]}));
    // 40 min billed as 45 (0.80 + 0.10); 10.2 kWh billed as 11 (2.55 + 0.20).
    let start = t("2026-06-01T10:00:00Z");
    let s = linear(start, start + 40 * 60_000, 10_200);
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    let mut got = amounts(&p);
    got.sort();
    assert_eq!(
        got,
        vec![
            (LineKind::Energy, Some(0), 20),
            (LineKind::Energy, Some(0), 255),
            (LineKind::Time, Some(0), 10),
            (LineKind::Time, Some(0), 80),
        ]
    );
    assert_eq!(cents(&p), (365, 365));
    let extra = p
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Energy && l.amount.minor == 20)
        .unwrap();
    assert_eq!(extra.quantity, d("0.8"));
    assert!(extra.why.contains("step size 1000 Wh"), "{}", extra.why);
}

#[test]
fn step_size_of_the_last_period_applies_to_the_whole_session() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "TIME", "price": 6, "step_size": 3600}], "restrictions": {"end_time": "12:00"}},
        {"price_components": [{"type": "TIME", "price": 3, "step_size": 600}]}]}));
    // 11:30-12:05: 30 min at 6/h (3.00) and 5 min at 3/h (0.25); 35 min rounds to 40 by the
    // last period's 600 s step, the extra 5 min at 3/h (0.25). Not to a full hour.
    let start = t("2026-06-01T11:30:00Z");
    let s = linear(start, start + 35 * 60_000, 0);
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![
            (LineKind::Time, Some(0), 300),
            (LineKind::Time, Some(1), 25),
            (LineKind::Time, Some(1), 25)
        ]
    );
    assert_eq!(cents(&p), (350, 350));
}

#[test]
fn min_and_max_price() {
    let tf = tariff(json!({"currency": "EUR",
        "min_price": {"excl_vat": 5}, "max_price": {"excl_vat": 10},
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20, "step_size": 1}]}]}));
    let start = t("2026-06-01T10:00:00Z");
    // 10 kWh: 3.00, raised to 5.00 (6.00 with VAT).
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 3_600_000, 10_000), None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(0), 300), (LineKind::MinPrice, None, 200)]
    );
    assert_eq!(p.lines[1].vat_percent, Some(d("20")));
    assert_eq!(cents(&p), (500, 600));
    // 50 kWh: 15.00, lowered to 10.00 (12.00 with VAT).
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 3_600_000, 50_000), None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(0), 1500), (LineKind::MaxPrice, None, -500)]
    );
    assert_eq!(cents(&p), (1000, 1200));
    // 20 kWh: 6.00, within bounds: no adjustment.
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 3_600_000, 20_000), None).unwrap();
    assert_eq!(p.lines.len(), 1);
    assert_eq!(cents(&p), (600, 720));
}

#[test]
fn idle_after_the_car_is_full_costs_parking_after_the_grace_period() {
    let tf = tariff(json!({"currency": "EUR", "parking_grace_period": 600, "elements": [
        {"price_components": [
            {"type": "ENERGY", "price": 0.30, "step_size": 1},
            {"type": "PARKING_TIME", "price": 6, "step_size": 60}]}]}));
    // Charges 20 kWh in an hour (6.00), full at 60 min, unplugged at 90: 10 min grace, 20 min of
    // parking at 6/h (2.00).
    let start = t("2026-06-01T10:00:00Z");
    let mut s = linear(start, start + 3_600_000, 20_000);
    s.readings.push(reading(start + 90 * 60_000, 30_000));
    s.end_ms = start + 90 * 60_000;
    s.statuses = vec![StatusChange {
        at_ms: start + 3_600_000,
        state: ChargeState::Idle,
    }];
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(0), 600), (LineKind::ParkingTime, Some(0), 200)]
    );
    assert_eq!(p.lines[1].from.to_rfc3339(), "2026-06-01T11:10:00+00:00");
    assert_eq!(p.lines[1].quantity, d("0.333333"));
    assert_eq!(cents(&p), (800, 800));

    // Back to charging and idle again: a second grace period.
    s.statuses.push(StatusChange {
        at_ms: start + 90 * 60_000,
        state: ChargeState::Charging,
    });
    s.statuses.push(StatusChange {
        at_ms: start + 100 * 60_000,
        state: ChargeState::Idle,
    });
    s.end_ms = start + 120 * 60_000;
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    // Parking 20 min + 10 min = 30 min = 3.00.
    assert_eq!(cents(&p), (900, 900));
}

#[test]
fn flat_fee_is_charged_once() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}, {"type": "ENERGY", "price": 0.30, "step_size": 1}],
         "restrictions": {"start_time": "18:00"}},
        {"price_components": [{"type": "FLAT", "price": 1.50, "step_size": 1}, {"type": "ENERGY", "price": 0.25, "step_size": 1}]}]}));
    // 17:00-19:00 UTC, 20 kWh: FLAT 1.50 of the element in force at the start only, 10 kWh at
    // 0.25 and 10 at 0.30.
    let s = linear(t("2026-06-01T17:00:00Z"), t("2026-06-01T19:00:00Z"), 20_000);
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![
            (LineKind::Flat, Some(1), 150),
            (LineKind::Energy, Some(1), 250),
            (LineKind::Energy, Some(0), 300)
        ]
    );
    assert_eq!(cents(&p), (700, 700));
}

#[test]
fn vat_per_component_rounded_once_per_rate() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [
            {"type": "FLAT", "price": 1, "vat": 7, "step_size": 1},
            {"type": "ENERGY", "price": 0.25, "vat": 19, "step_size": 1},
            {"type": "TIME", "price": 0.60, "step_size": 1}]}]}));
    // Energy 10 kWh: 2.50 at 19 % (0.475 → 0.48); flat 1.00 at 7 % (0.07); 30 min of time 0.30
    // without VAT. Incl. VAT 3.80 + 0.55.
    let start = t("2026-06-01T10:00:00Z");
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 1_800_000, 10_000), None).unwrap();
    assert_eq!(cents(&p), (380, 435));
    let vat: Vec<_> = p
        .vat
        .iter()
        .map(|v| (v.vat_percent, v.base.minor, v.vat.minor))
        .collect();
    assert_eq!(
        vat,
        vec![(None, 30, 0), (Some(d("7")), 100, 7), (Some(d("19")), 250, 48)]
    );

    // Two lines of 1.03 at 19 %: VAT on the rate's base 2.06 is 0.39 (per line it would be 0.40).
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.206, "vat": 19, "step_size": 1}], "restrictions": {"start_time": "12:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.206, "vat": 19, "step_size": 1}]}]}));
    let s = linear(t("2026-06-01T11:00:00Z"), t("2026-06-01T13:00:00Z"), 10_000);
    let p = price(&tf, chrono_tz::UTC, &s, None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(1), 103), (LineKind::Energy, Some(0), 103)]
    );
    assert_eq!(cents(&p), (206, 245));
}

#[test]
fn plan_included_kwh_and_discount() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20, "step_size": 1}]}]}));
    let start = t("2026-06-01T10:00:00Z");
    let s = linear(start, start + 3_600_000, 30_000);
    // 30 kWh: 12.00; 10 kWh included (-4.00); 20 kWh at 0.10 off (-2.00): 6.00, 7.20 with VAT.
    let plan = Plan {
        name: "Commuter".into(),
        included_kwh: d("10"),
        discount_per_kwh: d("0.10"),
    };
    let p = price(&tf, chrono_tz::UTC, &s, Some(&plan)).unwrap();
    assert_eq!(
        amounts(&p),
        vec![
            (LineKind::Energy, Some(0), 1200),
            (LineKind::PlanIncluded, Some(0), -400),
            (LineKind::PlanDiscount, Some(0), -200)
        ]
    );
    assert_eq!(cents(&p), (600, 720));
    assert!(p.lines[1].why.contains("Commuter"));
    // A discount above the kWh price stops at the price: never a negative total.
    let plan = Plan {
        name: "Staff".into(),
        included_kwh: Decimal::ZERO,
        discount_per_kwh: d("0.50"),
    };
    let p = price(&tf, chrono_tz::UTC, &s, Some(&plan)).unwrap();
    assert_eq!(cents(&p), (0, 0));
}

#[test]
fn kwh_and_power_restrictions() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}], "restrictions": {"min_power": 50}},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}], "restrictions": {"max_kwh": 7}},
        {"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}]}]}));
    // 22 kW for an hour: not fast; 7 kWh at 0.30 (2.10), 15 kWh at 0.20 (3.00).
    let start = t("2026-06-01T10:00:00Z");
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 3_600_000, 22_000), None).unwrap();
    assert_eq!(
        amounts(&p),
        vec![(LineKind::Energy, Some(1), 210), (LineKind::Energy, Some(2), 300)]
    );
    // 60 kW: every kWh at the fast price.
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 3_600_000, 60_000), None).unwrap();
    assert_eq!(cents(&p), (3000, 3000));
}

#[test]
fn duration_restriction_and_a_live_session() {
    let tf = tariff(json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "TIME", "price": 0, "step_size": 1}], "restrictions": {"max_duration": 3600}},
        {"price_components": [{"type": "TIME", "price": 3, "step_size": 1}]}]}));
    // First hour free, then 3/h: 90 minutes cost 1.50; priced at 30 minutes, nothing yet.
    let start = t("2026-06-01T10:00:00Z");
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 90 * 60_000, 0), None).unwrap();
    assert_eq!(cents(&p), (150, 150));
    let p = price(&tf, chrono_tz::UTC, &linear(start, start + 30 * 60_000, 0), None).unwrap();
    assert_eq!(cents(&p), (0, 0));
}

// ---- properties, on generated tariffs and sessions (seeded: a failure replays) ----

const ZONES: [Tz; 3] = [chrono_tz::UTC, chrono_tz::Europe::Berlin, chrono_tz::America::New_York];

/// A random tariff. `monotone` keeps to tariffs for which more energy in the same time can only
/// cost more: no power restrictions, kWh restrictions only on ENERGY-only elements at whole kWh,
/// energy step sizes dividing 1 kWh (elsewhere OCPI's semantics can make more energy cheaper:
/// a faster session in a cheaper power band, a kWh tier reached sooner ending a TIME price).
fn random_tariff(rng: &mut impl Rng, monotone: bool) -> Value {
    let vats = [json!(null), json!(0), json!(7), json!(19), json!(20)];
    let mut elements = Vec::new();
    let count = rng.random_range(1..=4);
    for i in 0..count {
        // The last element has no restrictions, as real tariffs end with a fallback.
        let last = i == count - 1;
        let mut components = Vec::new();
        let energy_only = monotone && rng.random_bool(0.4);
        let dims: &[&str] = if energy_only {
            &["ENERGY"]
        } else {
            &["ENERGY", "TIME", "PARKING_TIME", "FLAT"]
        };
        for dim in dims {
            if dims.len() > 1 && rng.random_bool(0.4) {
                continue;
            }
            let step = match *dim {
                "ENERGY" => [0, 1, 100, 200, 500, 1000][rng.random_range(0..6)],
                "TIME" | "PARKING_TIME" => [0, 1, 60, 300, 900][rng.random_range(0..5)],
                _ => 1,
            };
            let mut c = json!({"type": dim, "price": rng.random_range(0..=150) as f64 / 100.0, "step_size": step});
            let vat = &vats[rng.random_range(0..vats.len())];
            if !vat.is_null() {
                c["vat"] = vat.clone();
            }
            components.push(c);
        }
        if components.is_empty() {
            components.push(json!({"type": "ENERGY", "price": 0.3, "step_size": 1}));
        }
        let mut r = serde_json::Map::new();
        if !last && rng.random_bool(0.5) {
            let s = rng.random_range(0..24);
            let mut e = rng.random_range(0..24);
            if e == s {
                e = (s + 1) % 24;
            }
            r.insert(
                "start_time".into(),
                json!(format!("{s:02}:{:02}", rng.random_range(0..4) * 15)),
            );
            r.insert("end_time".into(), json!(format!("{e:02}:30")));
        }
        if !last && rng.random_bool(0.2) {
            let days = [
                "MONDAY",
                "TUESDAY",
                "WEDNESDAY",
                "THURSDAY",
                "FRIDAY",
                "SATURDAY",
                "SUNDAY",
            ];
            let pick: Vec<_> = days.iter().filter(|_| rng.random_bool(0.5)).collect();
            r.insert("day_of_week".into(), json!(pick));
        }
        if !last && rng.random_bool(0.2) {
            r.insert("max_duration".into(), json!(rng.random_range(1..=300) * 60));
        }
        if !last && (!monotone || energy_only) && rng.random_bool(0.3) {
            r.insert("min_kwh".into(), json!(rng.random_range(0..10)));
            r.insert("max_kwh".into(), json!(rng.random_range(10..40)));
        }
        if !last && !monotone && rng.random_bool(0.2) {
            r.insert("min_power".into(), json!(rng.random_range(1..20)));
        }
        let mut element = json!({"price_components": components});
        if !r.is_empty() {
            element["restrictions"] = Value::Object(r);
        }
        elements.push(element);
    }
    let mut v = json!({"currency": "EUR", "elements": elements, "parking_grace_period": rng.random_range(0..3) * 300});
    if rng.random_bool(0.2) {
        v["min_price"] = json!({"excl_vat": rng.random_range(0..500) as f64 / 100.0});
    }
    if rng.random_bool(0.2) {
        v["max_price"] = json!({"excl_vat": rng.random_range(500..5000) as f64 / 100.0});
    }
    v
}

/// A session on a piecewise linear curve: charging at `wh_per_min` for `charge_min` minutes
/// (a reading every minute), then idle (flat readings) for `idle_min`.
fn curve(start: i64, charge_min: i64, idle_min: i64, wh_per_min: i64) -> SessionInput {
    let mut readings = Vec::new();
    let base = 123_456;
    for m in 0..=charge_min {
        readings.push(reading(start + m * 60_000, base + m * wh_per_min));
    }
    for m in 1..=idle_min {
        readings.push(reading(
            start + (charge_min + m) * 60_000,
            base + charge_min * wh_per_min,
        ));
    }
    let statuses = if idle_min > 0 {
        vec![StatusChange {
            at_ms: start + charge_min * 60_000,
            state: ChargeState::Idle,
        }]
    } else {
        vec![]
    };
    SessionInput {
        start_ms: start,
        end_ms: start + (charge_min + idle_min) * 60_000,
        readings,
        statuses,
    }
}

struct Case {
    tariff: ValidTariff,
    tz: Tz,
    start: i64,
    charge_min: i64,
    idle_min: i64,
    wh_per_min: i64,
}

fn random_case(rng: &mut impl Rng, monotone: bool) -> Case {
    // Somewhere in 2026, on a whole minute; every tenth case near a DST change.
    let start = if rng.random_bool(0.1) {
        t(["2026-03-29T00:00:00Z", "2026-10-25T00:00:00Z", "2026-03-08T06:00:00Z"][rng.random_range(0..3)])
            - rng.random_range(0..300) * 60_000
    } else {
        t("2026-01-01T00:00:00Z") + rng.random_range(0..525_000) * 60_000
    };
    Case {
        tariff: tariff(random_tariff(rng, monotone)),
        tz: ZONES[rng.random_range(0..ZONES.len())],
        start,
        charge_min: rng.random_range(1..=600),
        idle_min: if rng.random_bool(0.5) {
            rng.random_range(0..=120)
        } else {
            0
        },
        wh_per_min: rng.random_range(0..=800),
    }
}

fn check_sums(p: &Priced) {
    let lines: i64 = p.lines.iter().map(|l| l.amount.minor).sum();
    assert_eq!(p.total_excl_vat.minor, lines, "total excl. VAT is the sum of the lines");
    let bases: i64 = p.vat.iter().map(|v| v.base.minor).sum();
    assert_eq!(bases, lines, "VAT bases cover every line");
    let vat: i64 = p.vat.iter().map(|v| v.vat.minor).sum();
    assert_eq!(
        p.total_incl_vat.minor,
        lines + vat,
        "total incl. VAT adds each rate's VAT"
    );
    assert!(p.total_excl_vat.minor >= 0);
}

#[test]
fn property_total_does_not_depend_on_how_readings_are_batched() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_205);
    for case_no in 0..400 {
        let c = random_case(&mut rng, false);
        let full = curve(c.start, c.charge_min, c.idle_min, c.wh_per_min);
        // Keep the first and last readings and the knee where charging stops; drop others.
        let knee = c.start + c.charge_min * 60_000;
        let keep = rng.random_range(0.0..1.0);
        let mut sparse = full.clone();
        let n = sparse.readings.len();
        let mut i = 0;
        sparse.readings.retain(|r| {
            i += 1;
            i == 1 || i == n || r.at_ms == knee || rng.random_bool(keep)
        });
        let plan = rng.random_bool(0.3).then(|| Plan {
            name: "p".into(),
            included_kwh: Decimal::from(rng.random_range(0..20)),
            discount_per_kwh: Decimal::new(rng.random_range(0..20), 2),
        });
        let a = price(&c.tariff, c.tz, &full, plan.as_ref()).unwrap();
        let b = price(&c.tariff, c.tz, &sparse, plan.as_ref()).unwrap();
        check_sums(&a);
        check_sums(&b);
        assert_eq!(
            amounts(&a),
            amounts(&b),
            "case {case_no}: {} of {} readings kept, tariff {:?}",
            sparse.readings.len(),
            n,
            c.tariff.tariff
        );
        assert_eq!(cents(&a), cents(&b), "case {case_no}");
    }
}

#[test]
fn property_more_energy_never_costs_less() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7_919);
    for case_no in 0..400 {
        let c = random_case(&mut rng, true);
        let less = curve(c.start, c.charge_min, c.idle_min, c.wh_per_min);
        let more = curve(
            c.start,
            c.charge_min,
            c.idle_min,
            c.wh_per_min + rng.random_range(1..=200),
        );
        let a = price(&c.tariff, c.tz, &less, None).unwrap();
        let b = price(&c.tariff, c.tz, &more, None).unwrap();
        check_sums(&b);
        assert!(
            b.total_excl_vat.minor >= a.total_excl_vat.minor,
            "case {case_no}: {} < {} for tariff {:?}",
            b.total_excl_vat,
            a.total_excl_vat,
            c.tariff.tariff
        );
        // With a max_price the adjustment takes the largest line's VAT rate, which more energy
        // can change; without one, the total incl. VAT is monotone too.
        if c.tariff.tariff.max_price.is_none() {
            assert!(b.total_incl_vat.minor >= a.total_incl_vat.minor, "case {case_no}");
        }
    }
}

#[test]
fn property_energy_lines_bill_the_metered_energy_up_to_one_step() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for case_no in 0..300 {
        let c = random_case(&mut rng, false);
        let s = curve(c.start, c.charge_min, c.idle_min, c.wh_per_min);
        let p = price(&c.tariff, c.tz, &s, None).unwrap();
        check_sums(&p);
        let billed: Decimal = p
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Energy)
            .map(|l| l.quantity)
            .sum();
        let metered = Decimal::from(c.charge_min * c.wh_per_min) / Decimal::from(1000);
        // Every period's energy is priced when the fallback element has an ENERGY component.
        let fallback = c.tariff.elements.last().unwrap();
        if fallback.component(super::tariff::Dimension::Energy).is_none() {
            assert!(billed - metered < Decimal::ONE, "case {case_no}");
            continue;
        }
        assert!(billed >= metered, "case {case_no}: billed {billed} < metered {metered}");
        assert!(
            billed - metered < Decimal::ONE,
            "case {case_no}: billed {billed}, metered {metered}"
        );
    }
}

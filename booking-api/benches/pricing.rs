//! The pricing engine alone: sessions priced per second (criterion's `thrpt`, one element per
//! session). A three-hour session with a reading every minute, an hour idle at the end, on a
//! tariff with a time-of-day peak, a weekend price, TIME, PARKING_TIME after a grace period, a
//! FLAT fee, step sizes and a minimum price, in Europe/Berlin.
//!
//! Quick run: `cargo bench --bench pricing -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use booking_api::billing::engine::price;
use booking_api::billing::periods::{ChargeState, Reading, SessionInput, StatusChange};
use booking_api::billing::tariff::{Tariff, ValidTariff};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

fn tariff() -> ValidTariff {
    let t: Tariff = serde_json::from_value(json!({
        "currency": "EUR",
        "min_price": {"excl_vat": 2},
        "parking_grace_period": 900,
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.45, "vat": 19, "step_size": 100}],
             "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
            {"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 19, "step_size": 100},
                                   {"type": "TIME", "price": 1.2, "vat": 19, "step_size": 60}],
             "restrictions": {"start_time": "17:00", "end_time": "21:00"}},
            {"price_components": [{"type": "FLAT", "price": 0.5, "vat": 19, "step_size": 1},
                                   {"type": "ENERGY", "price": 0.29, "vat": 19, "step_size": 100},
                                   {"type": "TIME", "price": 0.6, "vat": 19, "step_size": 60},
                                   {"type": "PARKING_TIME", "price": 6, "vat": 19, "step_size": 60}]}
        ]
    }))
    .unwrap();
    ValidTariff::parse(t).unwrap()
}

fn session() -> SessionInput {
    // Friday 2026-06-05 16:00 local (14:00Z): charging three hours at 11 kW, an hour idle.
    let start = 1_780_668_000_000;
    let mut readings = Vec::new();
    for m in 0..=180 {
        readings.push(Reading {
            at_ms: start + m * 60_000,
            energy_wh: 50_000 + m * 183,
            power_w: Some(11_000),
            current_a: None,
        });
    }
    SessionInput {
        start_ms: start,
        end_ms: start + 240 * 60_000,
        readings,
        statuses: vec![StatusChange {
            at_ms: start + 180 * 60_000,
            state: ChargeState::Idle,
        }],
    }
}

fn pricing(c: &mut Criterion) {
    let t = tariff();
    let s = session();
    let tz = chrono_tz::Europe::Berlin;
    let priced = price(&t, tz, &s, None).unwrap();
    println!(
        "sample session: {} lines, total {}",
        priced.lines.len(),
        priced.total_incl_vat
    );
    let mut g = c.benchmark_group("pricing");
    g.throughput(Throughput::Elements(1));
    g.bench_function("session_3h_181_readings", |b| {
        b.iter(|| price(black_box(&t), tz, black_box(&s), None).unwrap())
    });
    g.finish();
}

criterion_group!(benches, pricing);
criterion_main!(benches);

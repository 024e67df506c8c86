//! The pricing engine: charging periods priced into explained lines and totals. Pure functions;
//! the same call prices a live session (end = now) and a finished one.
//!
//! # Semantics (OCPI 2.2.1)
//! - For each period and each dimension (ENERGY, TIME while charging, PARKING_TIME while idle
//!   after the grace period), the first element whose restrictions all hold at the period's start
//!   and that has a component of that dimension prices the period's volume. FLAT is charged once,
//!   by the first element with a FLAT component that holds in any period (in time order).
//! - Consecutive periods priced by the same element in a dimension form one line, so a line's
//!   amount does not depend on where meter readings fall.
//! - `step_size` applies to the session's total volume of a dimension: the total is rounded up to
//!   a multiple of the step size of the component that priced the dimension's last period, and
//!   the extra volume is billed at that component's price, as its own line.
//! - A plan (see [`Plan`]) discounts ENERGY lines; then `min_price` / `max_price` (excluding VAT)
//!   bound the session's total by an adjustment line.
//! - Rounding: see [`super::money`] (once per line, VAT once per rate).

use super::money::{Currency, Money};
use super::periods::{self, Period, PeriodError, PeriodState, SessionInput};
use super::tariff::{Dimension, Element, PriceComponent, ValidTariff, When};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// A subscription plan as the engine applies it: energy included for this session (what is left
/// of the plan period's allowance; the caller keeps the allowance), and a discount per kWh on the
/// rest, never more than the kWh price.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub name: String,
    pub included_kwh: Decimal,
    pub discount_per_kwh: Decimal,
}

/// What a line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineKind {
    Energy,
    Time,
    ParkingTime,
    Flat,
    /// Energy covered by the plan's included kWh (negative).
    PlanIncluded,
    /// The plan's discount per kWh (negative).
    PlanDiscount,
    /// Raises the total to the tariff's `min_price`.
    MinPrice,
    /// Lowers the total to the tariff's `max_price` (negative).
    MaxPrice,
}

impl LineKind {
    fn of(d: Dimension) -> LineKind {
        match d {
            Dimension::Energy => LineKind::Energy,
            Dimension::Time => LineKind::Time,
            Dimension::ParkingTime => LineKind::ParkingTime,
            Dimension::Flat => LineKind::Flat,
        }
    }
}

/// One priced line, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub kind: LineKind,
    /// Index of the tariff element that priced it (null for adjustments without one).
    pub element: Option<usize>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// In `unit`; hours are shown to 6 decimals, the amount uses the exact milliseconds.
    pub quantity: Decimal,
    /// `kWh`, `h` or `session`.
    pub unit: &'static str,
    /// Excluding VAT, per unit.
    pub unit_price: Decimal,
    /// VAT percent; null when no VAT applies.
    pub vat_percent: Option<Decimal>,
    /// Excluding VAT, rounded once.
    pub amount: Money,
    pub why: String,
}

/// VAT of one rate on the invoice: the rate's base (sum of its lines) and the VAT, rounded once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VatTotal {
    pub vat_percent: Option<Decimal>,
    pub base: Money,
    pub vat: Money,
}

/// A priced session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Priced {
    pub currency: Currency,
    pub lines: Vec<Line>,
    pub total_excl_vat: Money,
    pub vat: Vec<VatTotal>,
    pub total_incl_vat: Money,
}

/// Prices `session` with `tariff` in the station's zone `tz`, applying `plan` if any.
pub fn price(tariff: &ValidTariff, tz: Tz, session: &SessionInput, plan: Option<&Plan>) -> Result<Priced, PeriodError> {
    let periods = periods::split(session, tariff, tz)?;
    Ok(price_periods(tariff, session.start_ms, &periods, plan))
}

/// A run of consecutive periods priced by one element in one dimension. Volume in Wh (ENERGY),
/// ms (TIME, PARKING_TIME) or sessions (FLAT).
struct Run {
    dimension: Dimension,
    element: usize,
    component: PriceComponent,
    from: i64,
    to: i64,
    volume: Decimal,
    step_extra: bool,
}

const HOUR_MS: i64 = 3_600_000;

/// Prices already split periods (`session_start_ms` for the duration restrictions).
pub fn price_periods(tariff: &ValidTariff, session_start_ms: i64, periods: &[Period], plan: Option<&Plan>) -> Priced {
    let currency = tariff.currency;
    let mut runs: Vec<Run> = Vec::new();
    let mut last_run: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut flat_done = false;
    for p in periods {
        let volumes = [
            (Dimension::Flat, if flat_done { Decimal::ZERO } else { Decimal::ONE }),
            (Dimension::Energy, p.energy_wh),
            (
                Dimension::Time,
                if p.state == PeriodState::Charging {
                    Decimal::from(p.duration_ms())
                } else {
                    Decimal::ZERO
                },
            ),
            (
                Dimension::ParkingTime,
                if p.state == PeriodState::Idle {
                    Decimal::from(p.duration_ms())
                } else {
                    Decimal::ZERO
                },
            ),
        ];
        for (dimension, volume) in volumes {
            if volume <= Decimal::ZERO {
                continue;
            }
            let Some((index, element)) = tariff
                .elements
                .iter()
                .enumerate()
                .find(|(_, e)| e.component(dimension).is_some() && holds(&e.when, p, session_start_ms))
            else {
                continue;
            };
            let Some(component) = element.component(dimension) else {
                continue;
            };
            if dimension == Dimension::Flat {
                flat_done = true;
            }
            match last_run.get(dimension.as_str()).map(|&i| &mut runs[i]) {
                Some(run) if run.element == index && dimension != Dimension::Flat => {
                    run.to = p.end_ms;
                    run.volume += volume;
                }
                _ => {
                    last_run.insert(dimension.as_str(), runs.len());
                    runs.push(Run {
                        dimension,
                        element: index,
                        component: component.clone(),
                        from: p.start_ms,
                        to: p.end_ms,
                        volume,
                        step_extra: false,
                    });
                }
            }
        }
    }

    // Step sizes, on each dimension's session total, at the last period's component.
    for dimension in [Dimension::Energy, Dimension::Time, Dimension::ParkingTime] {
        let Some(&last) = last_run.get(dimension.as_str()) else {
            continue;
        };
        let total: Decimal = runs.iter().filter(|r| r.dimension == dimension).map(|r| r.volume).sum();
        let step = runs[last].component.step_size;
        if step <= 0 {
            continue;
        }
        let unit = match dimension {
            Dimension::Energy => Decimal::from(step),
            _ => Decimal::from(step) * Decimal::from(1000),
        };
        let extra = (total / unit).ceil() * unit - total;
        if extra > Decimal::ZERO {
            let r = &runs[last];
            runs.push(Run {
                dimension,
                element: r.element,
                component: r.component.clone(),
                from: r.to,
                to: r.to,
                volume: extra,
                step_extra: true,
            });
        }
    }

    let mut lines: Vec<Line> = runs.iter().map(|r| line_of(tariff, r)).collect();
    if let Some(plan) = plan {
        let discounts = plan_lines(currency, plan, &runs, &lines);
        lines.extend(discounts);
    }
    if let Some(adjustment) = bound(tariff, &lines, periods) {
        lines.push(adjustment);
    }
    totals(currency, lines)
}

/// Whether every restriction of `when` holds for period `p`.
pub fn holds(when: &When, p: &Period, session_start_ms: i64) -> bool {
    if when.reservation {
        return false;
    }
    let time = p.local_start.time();
    let in_time = match (when.start_time, when.end_time) {
        (Some(s), Some(e)) if s < e => time >= s && time < e,
        (Some(s), Some(e)) => time >= s || time < e,
        (Some(s), None) => time >= s,
        (None, Some(e)) => time < e,
        (None, None) => true,
    };
    let date = p.local_start.date();
    let duration = p.start_ms - session_start_ms;
    let within = |v: Decimal, lo: Option<Decimal>, hi: Option<Decimal>| {
        lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v < hi)
    };
    let current_ok = match (when.min_current, when.max_current, p.current_a) {
        (None, None, _) => true,
        // A restriction on current cannot hold when the charger never reported one.
        (_, _, None) => false,
        (lo, hi, Some(a)) => within(a, lo, hi),
    };
    in_time
        && when.start_date.is_none_or(|d| date >= d)
        && when.end_date.is_none_or(|d| date < d)
        && when.days.as_ref().is_none_or(|days| days.contains(&date.weekday()))
        && within(p.energy_before_wh, when.min_wh, when.max_wh)
        && when.min_duration_ms.is_none_or(|d| duration >= d)
        && when.max_duration_ms.is_none_or(|d| duration < d)
        && within(p.power_kw, when.min_power_kw, when.max_power_kw)
        && current_ok
}

fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// The line of a run: the amount from the exact volume, rounded once.
fn line_of(tariff: &ValidTariff, r: &Run) -> Line {
    let c = &r.component;
    let (quantity, unit, exact) = match r.dimension {
        Dimension::Energy => (
            r.volume / Decimal::from(1000),
            "kWh",
            r.volume * c.price / Decimal::from(1000),
        ),
        Dimension::Time | Dimension::ParkingTime => (
            (r.volume / Decimal::from(HOUR_MS)).round_dp(6),
            "h",
            r.volume * c.price / Decimal::from(HOUR_MS),
        ),
        Dimension::Flat => (Decimal::ONE, "session", c.price),
    };
    let element = tariff.elements.get(r.element);
    let restrictions = element.map(describe).unwrap_or_default();
    let why = if r.step_extra {
        let step_unit = if r.dimension == Dimension::Energy { "Wh" } else { "s" };
        format!(
            "{} rounded up to the step size {} {step_unit} of element {} (the last period's), at its price",
            r.dimension.as_str(),
            c.step_size,
            r.element
        )
    } else {
        let state = match r.dimension {
            Dimension::Time => ", while charging",
            Dimension::ParkingTime => ", idle after the grace period",
            _ => "",
        };
        format!(
            "{} at {} per {unit} by element {} ({restrictions}){state}",
            r.dimension.as_str(),
            c.price.normalize(),
            r.element
        )
    };
    Line {
        kind: LineKind::of(r.dimension),
        element: Some(r.element),
        from: time_of(r.from),
        to: time_of(r.to),
        quantity: quantity.normalize(),
        unit,
        unit_price: c.price.normalize(),
        vat_percent: c.vat.map(|v| v.normalize()),
        amount: tariff.currency.to_minor(exact),
        why,
    }
}

/// A short account of an element's restrictions for a line's `why`.
fn describe(e: &Element) -> String {
    let w = &e.when;
    let mut parts = Vec::new();
    match (w.start_time, w.end_time) {
        (None, None) => {}
        (s, e) => parts.push(format!(
            "{}-{}",
            s.map(|t| t.format("%H:%M").to_string())
                .unwrap_or_else(|| "00:00".into()),
            e.map(|t| t.format("%H:%M").to_string())
                .unwrap_or_else(|| "24:00".into())
        )),
    }
    if let Some(days) = &w.days {
        parts.push(days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
    }
    if w.start_date.is_some() || w.end_date.is_some() {
        parts.push(format!(
            "dates {}..{}",
            w.start_date.map(|d| d.to_string()).unwrap_or_default(),
            w.end_date.map(|d| d.to_string()).unwrap_or_default()
        ));
    }
    let mut range = |name: &str, lo: Option<Decimal>, hi: Option<Decimal>| {
        if lo.is_some() || hi.is_some() {
            parts.push(format!(
                "{name} {}..{}",
                lo.map(|v| v.normalize().to_string()).unwrap_or_default(),
                hi.map(|v| v.normalize().to_string()).unwrap_or_default()
            ));
        }
    };
    let kwh = |v: Option<Decimal>| v.map(|v| v / Decimal::from(1000));
    range("kWh", kwh(w.min_wh), kwh(w.max_wh));
    let secs = |v: Option<i64>| v.map(|v| Decimal::from(v / 1000));
    range("duration s", secs(w.min_duration_ms), secs(w.max_duration_ms));
    range("kW", w.min_power_kw, w.max_power_kw);
    range("A", w.min_current, w.max_current);
    if parts.is_empty() {
        "no restrictions".into()
    } else {
        parts.join("; ")
    }
}

/// The plan's lines on the ENERGY lines, in time order: first the included kWh, then the
/// discount per kWh on the rest, never more than what the line itself costs.
fn plan_lines(currency: Currency, plan: &Plan, runs: &[Run], lines: &[Line]) -> Vec<Line> {
    let thousand = Decimal::from(1000);
    let mut left_wh = (plan.included_kwh * thousand).max(Decimal::ZERO);
    let mut out = Vec::new();
    for (run, line) in runs.iter().zip(lines) {
        if run.dimension != Dimension::Energy {
            continue;
        }
        let price = run.component.price;
        let covered = left_wh.min(run.volume);
        left_wh -= covered;
        let mut included = Money::zero(currency);
        if covered > Decimal::ZERO {
            included = currency.to_minor(covered * price / thousand);
            out.push(Line {
                kind: LineKind::PlanIncluded,
                quantity: (covered / thousand).normalize(),
                unit_price: -price.normalize(),
                amount: Money {
                    minor: -included.minor,
                    currency,
                },
                why: format!(
                    "{} kWh included in plan {}",
                    (covered / thousand).normalize(),
                    plan.name
                ),
                ..line.clone()
            });
        }
        let rest = run.volume - covered;
        let per_kwh = plan.discount_per_kwh.min(price).max(Decimal::ZERO);
        if rest > Decimal::ZERO && per_kwh > Decimal::ZERO {
            // Capped so the line's included and discounted parts never exceed the line.
            let cap = line.amount.minor - included.minor;
            let minor = currency.to_minor(rest * per_kwh / thousand).minor.min(cap);
            if minor > 0 {
                out.push(Line {
                    kind: LineKind::PlanDiscount,
                    quantity: (rest / thousand).normalize(),
                    unit_price: -per_kwh.normalize(),
                    amount: Money {
                        minor: -minor,
                        currency,
                    },
                    why: format!("plan {} discount of {} per kWh", plan.name, per_kwh.normalize()),
                    ..line.clone()
                });
            }
        }
    }
    out
}

/// The `min_price` / `max_price` adjustment, if the total falls outside. Its VAT rate is that
/// of the largest line (the tariff's VAT for the session's main dimension), else of the tariff's
/// first component.
fn bound(tariff: &ValidTariff, lines: &[Line], periods: &[Period]) -> Option<Line> {
    let currency = tariff.currency;
    let subtotal: i64 = lines.iter().map(|l| l.amount.minor).sum();
    let t = &tariff.tariff;
    let (kind, target) = match (&t.min_price, &t.max_price) {
        (Some(min), _) if subtotal < currency.to_minor(min.excl_vat).minor => (LineKind::MinPrice, min),
        (_, Some(max)) if subtotal > currency.to_minor(max.excl_vat).minor => (LineKind::MaxPrice, max),
        _ => return None,
    };
    let target_minor = currency.to_minor(target.excl_vat).minor;
    let vat_percent = lines
        .iter()
        .filter(|l| l.amount.minor > 0)
        .max_by_key(|l| l.amount.minor)
        .map(|l| l.vat_percent)
        .unwrap_or_else(|| {
            tariff
                .elements
                .first()
                .and_then(|e| e.components.first())
                .and_then(|c| c.vat)
        });
    let from = periods.first().map(|p| p.start_ms).unwrap_or_default();
    let to = periods.last().map(|p| p.end_ms).unwrap_or(from);
    let delta = Money {
        minor: target_minor - subtotal,
        currency,
    };
    Some(Line {
        kind,
        element: None,
        from: time_of(from),
        to: time_of(to),
        quantity: Decimal::ONE,
        unit: "session",
        unit_price: delta.amount(),
        vat_percent,
        amount: delta,
        why: match kind {
            LineKind::MinPrice => format!(
                "raises the total {} to the tariff's min_price",
                Money {
                    minor: subtotal,
                    currency
                }
            ),
            _ => format!(
                "lowers the total {} to the tariff's max_price",
                Money {
                    minor: subtotal,
                    currency
                }
            ),
        },
    })
}

/// Totals of `lines`: the sum excluding VAT, VAT once per rate, the total including VAT.
pub fn totals(currency: Currency, lines: Vec<Line>) -> Priced {
    let mut by_rate: BTreeMap<Option<Decimal>, i64> = BTreeMap::new();
    for l in &lines {
        *by_rate.entry(l.vat_percent.map(|v| v.normalize())).or_default() += l.amount.minor;
    }
    let mut vat = Vec::new();
    let mut vat_sum = 0i64;
    for (rate, base) in by_rate {
        let base = Money { minor: base, currency };
        let amount = match rate {
            Some(r) => currency.to_minor(base.amount() * r / Decimal::ONE_HUNDRED),
            None => Money::zero(currency),
        };
        vat_sum += amount.minor;
        vat.push(VatTotal {
            vat_percent: rate,
            base,
            vat: amount,
        });
    }
    let excl: i64 = lines.iter().map(|l| l.amount.minor).sum();
    Priced {
        currency,
        lines,
        total_excl_vat: Money { minor: excl, currency },
        vat,
        total_incl_vat: Money {
            minor: excl + vat_sum,
            currency,
        },
    }
}

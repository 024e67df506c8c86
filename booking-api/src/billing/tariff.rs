//! Tariffs in the shape of the OCPI 2.2.1 `Tariff` object (JSON field names and enums as the
//! spec writes them), and their validation into a [`ValidTariff`] the engine prices with.
//!
//! What we read of an OCPI tariff: `currency`, `min_price`, `max_price`, `elements` (each with
//! `price_components` and optional `restrictions`). Other OCPI fields (`id`, `party_id`,
//! `last_updated`, ...) are accepted and ignored: our storage assigns ids and versions.
//! One extension: `parking_grace_period` (seconds, default 0): the first seconds of every idle
//! stretch (connected, not charging) that PARKING_TIME does not bill.
//!
//! Numbers (prices, VAT, kWh, kW, A) are JSON numbers as in OCPI and are read into exact
//! decimals through their shortest decimal text, never computed with as floats.

use super::money::Currency;
use chrono::{NaiveDate, NaiveTime, Weekday};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An OCPI 2.2.1 tariff (the fields we price with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    /// ISO 4217 code.
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Price>,
    pub elements: Vec<TariffElement>,
    /// Extension: seconds of each idle stretch that PARKING_TIME leaves free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_grace_period: Option<i64>,
}

/// OCPI `Price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(with = "number")]
    pub excl_vat: Decimal,
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub incl_vat: Option<Decimal>,
}

/// OCPI `TariffElement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffElement {
    pub price_components: Vec<PriceComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<Restrictions>,
}

/// OCPI `TariffDimensionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dimension {
    /// Per kWh; step_size in Wh.
    Energy,
    /// Per session.
    Flat,
    /// Per hour connected but not charging (after the grace period); step_size in seconds.
    ParkingTime,
    /// Per hour charging; step_size in seconds.
    Time,
}

impl Dimension {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dimension::Energy => "ENERGY",
            Dimension::Flat => "FLAT",
            Dimension::ParkingTime => "PARKING_TIME",
            Dimension::Time => "TIME",
        }
    }
}

/// OCPI `PriceComponent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceComponent {
    #[serde(rename = "type")]
    pub kind: Dimension,
    /// Excluding VAT, per unit of the dimension (kWh, hour, session).
    #[serde(with = "number")]
    pub price: Decimal,
    /// VAT percent; absent means no VAT applies (which OCPI distinguishes from 0 %).
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub vat: Option<Decimal>,
    /// Billing block: Wh for ENERGY, seconds for TIME and PARKING_TIME; ignored for FLAT.
    pub step_size: i64,
}

/// OCPI `TariffRestrictions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrictions {
    /// Local time of day `HH:MM`, inclusive; with `end_time` before it the range wraps midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Local time of day `HH:MM`, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Local date `YYYY-MM-DD`, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Local date `YYYY-MM-DD`, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Energy charged so far in the session (kWh): min inclusive, max exclusive.
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub min_kwh: Option<Decimal>,
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub max_kwh: Option<Decimal>,
    /// Charging current (A): min inclusive, max exclusive.
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub min_current: Option<Decimal>,
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub max_current: Option<Decimal>,
    /// Charging power (kW): min inclusive, max exclusive.
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub min_power: Option<Decimal>,
    #[serde(default, with = "opt_number", skip_serializing_if = "Option::is_none")]
    pub max_power: Option<Decimal>,
    /// Session duration so far (seconds): min inclusive, max exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<i64>,
    /// `MONDAY` ... `SUNDAY`, in the station's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<Vec<String>>,
    /// OCPI `RESERVATION` / `RESERVATION_EXPIRES`: elements for reservations, which this engine
    /// does not price yet; such an element never applies to a charging session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<String>,
}

/// Why a tariff is refused; [`TariffError::code`] is the problem+json code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TariffError {
    pub code: &'static str,
    /// JSON path of the offending field, e.g. `elements[0].price_components[1].vat`.
    pub field: String,
    pub message: String,
}

impl TariffError {
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> TariffError {
        TariffError {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// The largest number of decimals a price may have (OCPI prices are usually 4; sub-cent
/// per-kWh prices need some).
const MAX_PRICE_DECIMALS: u32 = 6;

/// A tariff that passed validation, with its restrictions parsed for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTariff {
    pub tariff: Tariff,
    pub currency: Currency,
    pub elements: Vec<Element>,
    pub parking_grace_ms: i64,
}

/// A tariff element with parsed restrictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub components: Vec<PriceComponent>,
    pub when: When,
}

/// Parsed restrictions: energies in Wh, durations in ms, power in kW, current in A.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    pub start_time: Option<NaiveTime>,
    pub end_time: Option<NaiveTime>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub min_wh: Option<Decimal>,
    pub max_wh: Option<Decimal>,
    pub min_current: Option<Decimal>,
    pub max_current: Option<Decimal>,
    pub min_power_kw: Option<Decimal>,
    pub max_power_kw: Option<Decimal>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
    pub days: Option<Vec<Weekday>>,
    pub reservation: bool,
}

impl Element {
    /// This element's component of `dimension`, if it has one.
    pub fn component(&self, dimension: Dimension) -> Option<&PriceComponent> {
        self.components.iter().find(|c| c.kind == dimension)
    }
}

impl ValidTariff {
    /// Validates `tariff`; the first problem found is returned.
    pub fn parse(tariff: Tariff) -> Result<ValidTariff, TariffError> {
        let currency = Currency::parse(&tariff.currency)
            .ok_or_else(|| TariffError::new("TARIFF_CURRENCY_INVALID", "currency", "an ISO 4217 code such as EUR"))?;
        if tariff.elements.is_empty() {
            return Err(TariffError::new(
                "TARIFF_NO_ELEMENTS",
                "elements",
                "at least one element",
            ));
        }
        for (name, price) in [("min_price", &tariff.min_price), ("max_price", &tariff.max_price)] {
            if let Some(p) = price {
                check_price(p.excl_vat, &format!("{name}.excl_vat"))?;
                if let Some(incl) = p.incl_vat {
                    check_price(incl, &format!("{name}.incl_vat"))?;
                    if incl < p.excl_vat {
                        return Err(TariffError::new(
                            "TARIFF_INCL_BELOW_EXCL",
                            format!("{name}.incl_vat"),
                            "incl_vat below excl_vat",
                        ));
                    }
                }
            }
        }
        if let (Some(min), Some(max)) = (&tariff.min_price, &tariff.max_price) {
            if min.excl_vat > max.excl_vat {
                return Err(TariffError::new(
                    "TARIFF_MIN_ABOVE_MAX",
                    "min_price",
                    "min_price above max_price",
                ));
            }
        }
        let grace = tariff.parking_grace_period.unwrap_or(0);
        if !(0..=86_400).contains(&grace) {
            return Err(TariffError::new(
                "TARIFF_GRACE_INVALID",
                "parking_grace_period",
                "seconds between 0 and 86400",
            ));
        }
        let mut elements = Vec::with_capacity(tariff.elements.len());
        for (i, element) in tariff.elements.iter().enumerate() {
            let at = format!("elements[{i}]");
            if element.price_components.is_empty() {
                return Err(TariffError::new(
                    "TARIFF_NO_COMPONENTS",
                    format!("{at}.price_components"),
                    "at least one price component",
                ));
            }
            for (j, c) in element.price_components.iter().enumerate() {
                let at = format!("{at}.price_components[{j}]");
                if element.price_components[..j].iter().any(|o| o.kind == c.kind) {
                    return Err(TariffError::new(
                        "TARIFF_DUPLICATE_COMPONENT",
                        format!("{at}.type"),
                        "one component of each type per element",
                    ));
                }
                check_price(c.price, &format!("{at}.price"))?;
                if let Some(vat) = c.vat {
                    if vat < Decimal::ZERO || vat > Decimal::ONE_HUNDRED || vat.scale() > 2 {
                        return Err(TariffError::new(
                            "TARIFF_VAT_INVALID",
                            format!("{at}.vat"),
                            "a percentage from 0 to 100 with at most 2 decimals",
                        ));
                    }
                }
                if c.step_size < 0 || c.step_size > 1_000_000 {
                    return Err(TariffError::new(
                        "TARIFF_STEP_SIZE_INVALID",
                        format!("{at}.step_size"),
                        "from 0 to 1000000 (Wh or seconds)",
                    ));
                }
            }
            let when = match &element.restrictions {
                Some(r) => parse_restrictions(r, &format!("{at}.restrictions"))?,
                None => When::default(),
            };
            elements.push(Element {
                components: element.price_components.clone(),
                when,
            });
        }
        Ok(ValidTariff {
            currency,
            elements,
            parking_grace_ms: grace * 1000,
            tariff,
        })
    }
}

fn check_price(price: Decimal, field: &str) -> Result<(), TariffError> {
    if price < Decimal::ZERO {
        return Err(TariffError::new("TARIFF_PRICE_NEGATIVE", field, "a price of 0 or more"));
    }
    if price.normalize().scale() > MAX_PRICE_DECIMALS || price > Decimal::from(1_000_000) {
        return Err(TariffError::new(
            "TARIFF_PRICE_INVALID",
            field,
            format!("at most {MAX_PRICE_DECIMALS} decimals and below 1000000"),
        ));
    }
    Ok(())
}

fn parse_restrictions(r: &Restrictions, at: &str) -> Result<When, TariffError> {
    let time = |v: &Option<String>, name: &str| -> Result<Option<NaiveTime>, TariffError> {
        v.as_deref()
            .map(|s| {
                // OCPI writes `HH:MM`; chrono would also take seconds, which OCPI does not allow.
                if s.len() != 5 {
                    return Err(());
                }
                NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| ())
            })
            .transpose()
            .map_err(|_| TariffError::new("TARIFF_TIME_INVALID", format!("{at}.{name}"), "a time of day HH:MM"))
    };
    let date = |v: &Option<String>, name: &str| -> Result<Option<NaiveDate>, TariffError> {
        v.as_deref()
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
            .transpose()
            .map_err(|_| TariffError::new("TARIFF_DATE_INVALID", format!("{at}.{name}"), "a date YYYY-MM-DD"))
    };
    let range = |min: Option<Decimal>, max: Option<Decimal>, name: &str| -> Result<(), TariffError> {
        for (v, side) in [(min, "min"), (max, "max")] {
            // The upper bound keeps every product in the engine far from overflow.
            if v.is_some_and(|v| v < Decimal::ZERO || v > Decimal::from(1_000_000_000)) {
                return Err(TariffError::new(
                    "TARIFF_RESTRICTION_INVALID",
                    format!("{at}.{side}_{name}"),
                    "from 0 to 1000000000",
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo >= hi {
                return Err(TariffError::new(
                    "TARIFF_RANGE_EMPTY",
                    format!("{at}.max_{name}"),
                    format!("max_{name} must be above min_{name}"),
                ));
            }
        }
        Ok(())
    };
    let start_time = time(&r.start_time, "start_time")?;
    let end_time = time(&r.end_time, "end_time")?;
    if start_time.is_some() && start_time == end_time {
        return Err(TariffError::new(
            "TARIFF_RANGE_EMPTY",
            format!("{at}.end_time"),
            "end_time equal to start_time matches nothing",
        ));
    }
    let start_date = date(&r.start_date, "start_date")?;
    let end_date = date(&r.end_date, "end_date")?;
    if let (Some(s), Some(e)) = (start_date, end_date) {
        if s >= e {
            return Err(TariffError::new(
                "TARIFF_RANGE_EMPTY",
                format!("{at}.end_date"),
                "end_date must be after start_date",
            ));
        }
    }
    range(r.min_kwh, r.max_kwh, "kwh")?;
    range(r.min_current, r.max_current, "current")?;
    range(r.min_power, r.max_power, "power")?;
    range(
        r.min_duration.map(Decimal::from),
        r.max_duration.map(Decimal::from),
        "duration",
    )?;
    let days = match &r.day_of_week {
        None => None,
        Some(list) => {
            let mut days = Vec::new();
            for (k, d) in list.iter().enumerate() {
                let day = match d.as_str() {
                    "MONDAY" => Weekday::Mon,
                    "TUESDAY" => Weekday::Tue,
                    "WEDNESDAY" => Weekday::Wed,
                    "THURSDAY" => Weekday::Thu,
                    "FRIDAY" => Weekday::Fri,
                    "SATURDAY" => Weekday::Sat,
                    "SUNDAY" => Weekday::Sun,
                    _ => {
                        return Err(TariffError::new(
                            "TARIFF_DAY_INVALID",
                            format!("{at}.day_of_week[{k}]"),
                            "MONDAY ... SUNDAY",
                        ))
                    }
                };
                days.push(day);
            }
            Some(days)
        }
    };
    let reservation = match r.reservation.as_deref() {
        None => false,
        Some("RESERVATION" | "RESERVATION_EXPIRES") => true,
        Some(_) => {
            return Err(TariffError::new(
                "TARIFF_RESTRICTION_INVALID",
                format!("{at}.reservation"),
                "RESERVATION or RESERVATION_EXPIRES",
            ))
        }
    };
    let thousand = Decimal::from(1000);
    Ok(When {
        start_time,
        end_time,
        start_date,
        end_date,
        min_wh: r.min_kwh.map(|k| k * thousand),
        max_wh: r.max_kwh.map(|k| k * thousand),
        min_current: r.min_current,
        max_current: r.max_current,
        min_power_kw: r.min_power,
        max_power_kw: r.max_power,
        min_duration_ms: r.min_duration.map(|s| s.saturating_mul(1000)),
        max_duration_ms: r.max_duration.map(|s| s.saturating_mul(1000)),
        days,
        reservation,
    })
}

/// A JSON number read exactly: through its shortest decimal text (`0.1` stays 0.1, not the
/// nearest binary fraction). Written back as a JSON number; validated prices have at most six
/// decimals, whose shortest float text is that same decimal.
mod number {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        match d.to_i64() {
            Some(i) if d.fract().is_zero() => s.serialize_i64(i),
            _ => s.serialize_f64(d.to_f64().unwrap_or(0.0)),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        let text = n.to_string();
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| serde::de::Error::custom(format!("number {text} out of range")))
    }
}

mod opt_number {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::number::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::number")] Decimal);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ValidTariff, TariffError> {
        ValidTariff::parse(serde_json::from_value(v).unwrap())
    }

    fn code(v: serde_json::Value) -> &'static str {
        parse(v).unwrap_err().code
    }

    #[test]
    fn reads_the_ocpi_example_exactly_and_writes_it_back() {
        let v = json!({
            "id": "12", "country_code": "DE", "party_id": "ALL", "last_updated": "2026-01-01T00:00:00Z",
            "currency": "EUR",
            "min_price": {"excl_vat": 0.5, "incl_vat": 0.6},
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.1, "vat": 19.0, "step_size": 1}],
                 "restrictions": {"start_time": "08:00", "end_time": "18:00", "day_of_week": ["MONDAY"]}},
                {"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]}
            ]
        });
        let t = parse(v).unwrap();
        assert_eq!(t.elements[0].components[0].price, Decimal::from_str("0.1").unwrap());
        assert_eq!(t.elements[0].when.days, Some(vec![Weekday::Mon]));
        let back = serde_json::to_value(&t.tariff).unwrap();
        assert_eq!(back["elements"][0]["price_components"][0]["price"], json!(0.1));
        assert_eq!(back["elements"][1]["price_components"][0]["price"], json!(1));
        assert!(back.get("id").is_none());
    }

    fn with_component(c: serde_json::Value) -> serde_json::Value {
        json!({"currency": "EUR", "elements": [{"price_components": [c]}]})
    }

    fn with_restrictions(r: serde_json::Value) -> serde_json::Value {
        json!({"currency": "EUR", "elements": [{"price_components": [{"type": "TIME", "price": 1, "step_size": 1}], "restrictions": r}]})
    }

    #[test]
    fn each_problem_has_its_code() {
        assert_eq!(
            code(json!({"currency": "eur", "elements": []})),
            "TARIFF_CURRENCY_INVALID"
        );
        assert_eq!(code(json!({"currency": "EUR", "elements": []})), "TARIFF_NO_ELEMENTS");
        assert_eq!(
            code(json!({"currency": "EUR", "elements": [{"price_components": []}]})),
            "TARIFF_NO_COMPONENTS"
        );
        assert_eq!(
            code(with_component(json!({"type": "ENERGY", "price": -0.1, "step_size": 1}))),
            "TARIFF_PRICE_NEGATIVE"
        );
        assert_eq!(
            code(with_component(
                json!({"type": "ENERGY", "price": 0.1234567, "step_size": 1})
            )),
            "TARIFF_PRICE_INVALID"
        );
        assert_eq!(
            code(with_component(
                json!({"type": "ENERGY", "price": 0.1, "vat": 101, "step_size": 1})
            )),
            "TARIFF_VAT_INVALID"
        );
        assert_eq!(
            code(with_component(json!({"type": "ENERGY", "price": 0.1, "step_size": -1}))),
            "TARIFF_STEP_SIZE_INVALID"
        );
        assert_eq!(
            code(json!({"currency": "EUR", "elements": [{"price_components": [
                {"type": "TIME", "price": 1, "step_size": 1}, {"type": "TIME", "price": 2, "step_size": 1}]}]})),
            "TARIFF_DUPLICATE_COMPONENT"
        );
        assert_eq!(
            code(with_restrictions(json!({"start_time": "8:00"}))),
            "TARIFF_TIME_INVALID"
        );
        assert_eq!(
            code(with_restrictions(json!({"end_time": "24:00"}))),
            "TARIFF_TIME_INVALID"
        );
        assert_eq!(
            code(with_restrictions(json!({"start_time": "08:00", "end_time": "08:00"}))),
            "TARIFF_RANGE_EMPTY"
        );
        assert_eq!(
            code(with_restrictions(json!({"start_date": "2026-13-01"}))),
            "TARIFF_DATE_INVALID"
        );
        assert_eq!(
            code(with_restrictions(
                json!({"start_date": "2026-02-01", "end_date": "2026-01-01"})
            )),
            "TARIFF_RANGE_EMPTY"
        );
        assert_eq!(
            code(with_restrictions(json!({"min_kwh": 5, "max_kwh": 5}))),
            "TARIFF_RANGE_EMPTY"
        );
        assert_eq!(
            code(with_restrictions(json!({"min_power": -1}))),
            "TARIFF_RESTRICTION_INVALID"
        );
        assert_eq!(
            code(with_restrictions(json!({"min_duration": 60, "max_duration": 30}))),
            "TARIFF_RANGE_EMPTY"
        );
        assert_eq!(
            code(with_restrictions(json!({"day_of_week": ["MON"]}))),
            "TARIFF_DAY_INVALID"
        );
        assert_eq!(
            code(with_restrictions(json!({"reservation": "X"}))),
            "TARIFF_RESTRICTION_INVALID"
        );
        let mut v = with_component(json!({"type": "FLAT", "price": 1, "step_size": 1}));
        v["min_price"] = json!({"excl_vat": 5});
        v["max_price"] = json!({"excl_vat": 4});
        assert_eq!(code(v.clone()), "TARIFF_MIN_ABOVE_MAX");
        v["max_price"] = json!({"excl_vat": 6, "incl_vat": 5});
        assert_eq!(code(v.clone()), "TARIFF_INCL_BELOW_EXCL");
        v["max_price"] = json!({"excl_vat": 6});
        v["parking_grace_period"] = json!(-1);
        assert_eq!(code(v), "TARIFF_GRACE_INVALID");
    }

    #[test]
    fn error_names_the_field() {
        let e = parse(with_component(
            json!({"type": "ENERGY", "price": 0.1, "vat": -1, "step_size": 1}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "elements[0].price_components[0].vat");
    }

    #[test]
    fn unknown_fields_inside_elements_are_refused() {
        let v = json!({"currency": "EUR", "elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1, "stepsize": 2}]}]});
        assert!(serde_json::from_value::<Tariff>(v).is_err());
    }
}

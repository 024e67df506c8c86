//! Meter readings normalised to base units (Wh, W, A, V, %), whatever the charger sent.
//!
//! Both versions report a number, a unit and optional qualifiers with spec defaults; 2.0.1 adds a
//! power-of-ten multiplier. Numbers are scaled by rewriting their decimal exponent and parsing once,
//! so `1.234 kWh` becomes exactly `1234.0` Wh instead of carrying the error of `1.234 * 1000.0`.

use crate::error_code::{Fault, Violation};
use chrono::{DateTime, Utc};
use rust_ocpp::v1_6::types::{MeterValue, ValueFormat};
use rust_ocpp::v2_0_1::datatypes::meter_value_type::MeterValueType;
use serde::{Deserialize, Serialize};

/// The measurand OCPP assumes when a sampled value names none.
pub const DEFAULT_MEASURAND: &str = "Energy.Active.Import.Register";

/// The location OCPP assumes when a sampled value names none.
pub const DEFAULT_LOCATION: &str = "Outlet";

/// The reading context OCPP assumes when a sampled value names none.
pub const DEFAULT_CONTEXT: &str = "Sample.Periodic";

/// A normalised unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Watt-hours (from Wh, kWh).
    Wh,
    /// Watts (from W, kW).
    W,
    /// Amperes.
    A,
    /// Volts.
    V,
    /// Percent (state of charge).
    Percent,
    /// Reactive energy, varh (from varh, kvarh).
    Varh,
    /// Reactive power, var (from var, kvar).
    Var,
    /// Apparent power, VA (from VA, kVA).
    Va,
    /// Degrees Celsius (from Celsius, Fahrenheit, K).
    Celsius,
    /// Hertz.
    Hz,
    /// A unit OCPP allows but we keep as given (e.g. `ASU`, `s`, `m`, `kg`).
    Other,
}

impl Unit {
    /// The unit as stored and shown (`Wh`, `W`, `A`, `V`, `%`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Wh => "Wh",
            Unit::W => "W",
            Unit::A => "A",
            Unit::V => "V",
            Unit::Percent => "Percent",
            Unit::Varh => "varh",
            Unit::Var => "var",
            Unit::Va => "VA",
            Unit::Celsius => "Celsius",
            Unit::Hz => "Hz",
            Unit::Other => "Other",
        }
    }
}

/// One normalised reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When the value was measured.
    pub timestamp: DateTime<Utc>,
    /// OCPP measurand name (defaults to `Energy.Active.Import.Register`).
    pub measurand: String,
    /// Phase (`L1`, `L1-N`, ...), if any.
    pub phase: Option<String>,
    /// Location (`Outlet` by default, `Inlet`, `Body`, `Cable`, `EV`).
    pub location: String,
    /// Reading context (`Sample.Periodic` by default, `Transaction.Begin`, ...).
    pub context: String,
    /// Normalised unit.
    pub unit: Unit,
    /// Value in the normalised unit.
    pub value: f64,
}

/// Normalises OCPP 1.6 meter values; `SignedData` values are skipped, unparsable numbers rejected.
pub fn from_v16(values: &[MeterValue]) -> Result<Vec<Sample>, Violation> {
    let mut samples = Vec::new();
    for meter_value in values {
        for sampled in &meter_value.sampled_value {
            // A signed blob carries no number we could store; the raw reading usually accompanies it.
            if sampled.format == Some(ValueFormat::SignedData) {
                continue;
            }
            let measurand = opt_name(sampled.measurand.as_ref(), DEFAULT_MEASURAND);
            let (mantissa, exponent) =
                split_decimal(sampled.value.trim()).ok_or_else(|| not_a_decimal(&sampled.value))?;
            let unit = sampled.unit.as_ref().map(ocpp_name);
            let (unit, value) = normalise(mantissa, exponent, unit.as_deref(), &measurand)
                .ok_or_else(|| out_of_range(&sampled.value))?;
            samples.push(Sample {
                timestamp: meter_value.timestamp,
                measurand,
                phase: sampled.phase.as_ref().map(ocpp_name),
                location: opt_name(sampled.location.as_ref(), DEFAULT_LOCATION),
                context: opt_name(sampled.context.as_ref(), DEFAULT_CONTEXT),
                unit,
                value,
            });
        }
    }
    Ok(samples)
}

/// Normalises OCPP 2.0.1 meter values, applying each value's `unitOfMeasure.multiplier`.
pub fn from_v201(values: &[MeterValueType]) -> Result<Vec<Sample>, Violation> {
    let mut samples = Vec::new();
    for meter_value in values {
        for sampled in &meter_value.sampled_value {
            let measurand = opt_name(sampled.measurand.as_ref(), DEFAULT_MEASURAND);
            let unit_of_measure = sampled.unit_of_measure.as_ref();
            let unit = unit_of_measure.and_then(|u| u.unit.as_deref());
            let multiplier = unit_of_measure.and_then(|u| u.multiplier).unwrap_or(0);
            // Decimal's Display never uses exponent notation, so it is a valid mantissa.
            let mantissa = sampled.value.to_string();
            let (unit, value) = normalise(&mantissa, multiplier, unit, &measurand)
                .ok_or_else(|| out_of_range(&format!("{mantissa}e{multiplier}")))?;
            samples.push(Sample {
                timestamp: meter_value.timestamp,
                measurand,
                phase: sampled.phase.as_ref().map(ocpp_name),
                location: opt_name(sampled.location.as_ref(), DEFAULT_LOCATION),
                context: opt_name(sampled.context.as_ref(), DEFAULT_CONTEXT),
                unit,
                value,
            });
        }
    }
    Ok(samples)
}

/// Normalises the `meterValue` array of a schema-validated payload straight from its JSON.
///
/// The hot path: it gives the same samples as [`from_v16`] / [`from_v201`] on the typed payload
/// (a test checks that), without building `rust-ocpp`'s types, whose enum names would otherwise
/// be re-serialised one field at a time and whose 2.0.1 numbers go through `Decimal`. It relies
/// on the schema having checked shapes and enum values, and reports what the schema cannot
/// (non-decimal 1.6 values, bad instants) as violations.
pub fn from_json(meter_values: &serde_json::Value) -> Result<Vec<Sample>, Violation> {
    use serde_json::Value;
    let mut samples = Vec::new();
    for meter_value in meter_values.as_array().map(Vec::as_slice).unwrap_or_default() {
        let stamp = meter_value.get("timestamp").and_then(Value::as_str).unwrap_or_default();
        let timestamp = DateTime::parse_from_rfc3339(stamp)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Violation::new(
                    Fault::TypeConstraint,
                    format!("timestamp {:?} is not an RFC 3339 instant", shorten(stamp)),
                )
            })?;
        for sampled in meter_value
            .get("sampledValue")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let text = |key: &str| sampled.get(key).and_then(Value::as_str);
            if text("format") == Some("SignedData") {
                continue;
            }
            // 1.6 sends the value as a string with the unit beside it; 2.0.1 as a number with a
            // unitOfMeasure {unit, multiplier}.
            let sample = match sampled.get("value") {
                Some(Value::String(v)) => raw_sample(
                    timestamp,
                    RawReading {
                        value: v,
                        unit: text("unit"),
                        multiplier: 0,
                        measurand: text("measurand"),
                        phase: text("phase"),
                        location: text("location"),
                        context: text("context"),
                    },
                )?,
                Some(Value::Number(n)) => {
                    let uom = sampled.get("unitOfMeasure");
                    // JSON Schema counts 3.0 as an integer, so the multiplier may be written so.
                    let multiplier = uom
                        .and_then(|u| u.get("multiplier"))
                        .and_then(|m| {
                            m.as_i64()
                                .or_else(|| m.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                        })
                        .unwrap_or(0);
                    raw_sample(
                        timestamp,
                        RawReading {
                            value: &n.to_string(),
                            unit: uom.and_then(|u| u.get("unit")).and_then(Value::as_str),
                            multiplier: i32::try_from(multiplier).unwrap_or(0),
                            measurand: text("measurand"),
                            phase: text("phase"),
                            location: text("location"),
                            context: text("context"),
                        },
                    )?
                }
                _ => return Err(not_a_decimal("")),
            };
            samples.push(sample);
        }
    }
    Ok(samples)
}

/// One sampled value as the charger wrote it, before normalisation (absent qualifiers are `None`).
#[derive(Debug, Clone, Copy)]
pub struct RawReading<'a> {
    /// The decimal text (1.6's string, or 2.0.1's number as written).
    pub value: &'a str,
    /// The unit name, if given.
    pub unit: Option<&'a str>,
    /// 2.0.1's power-of-ten multiplier (0 in 1.6).
    pub multiplier: i32,
    /// Measurand, if given.
    pub measurand: Option<&'a str>,
    /// Phase, if given.
    pub phase: Option<&'a str>,
    /// Location, if given.
    pub location: Option<&'a str>,
    /// Context, if given.
    pub context: Option<&'a str>,
}

/// Normalises one schema-valid reading: the spec defaults filled in, the value scaled to the
/// base unit. Every reader of meter JSON goes through here, so they agree on the result.
pub fn raw_sample(timestamp: DateTime<Utc>, raw: RawReading<'_>) -> Result<Sample, Violation> {
    let measurand = raw.measurand.unwrap_or(DEFAULT_MEASURAND);
    let text = raw.value.trim();
    let (mantissa, exponent) = split_decimal(text).ok_or_else(|| not_a_decimal(text))?;
    let (unit, value) = normalise(mantissa, exponent.saturating_add(raw.multiplier), raw.unit, measurand)
        .ok_or_else(|| out_of_range(text))?;
    Ok(Sample {
        timestamp,
        measurand: measurand.to_owned(),
        phase: raw.phase.map(str::to_owned),
        location: raw.location.unwrap_or(DEFAULT_LOCATION).to_owned(),
        context: raw.context.unwrap_or(DEFAULT_CONTEXT).to_owned(),
        unit,
        value,
    })
}

/// The `Energy.Active.Import.Register` reading in Wh, rounded; the latest one when several match.
///
/// Prefers location `Outlet` (the energy delivered to the EV) over other locations, and the
/// total (no phase) over per-phase readings; readings not in Wh are ignored.
pub fn energy_register_wh(samples: &[Sample]) -> Option<i64> {
    let registers: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.measurand == DEFAULT_MEASURAND && s.unit == Unit::Wh)
        .collect();
    let registers = prefer(registers, |s| s.location == DEFAULT_LOCATION);
    let registers = prefer(registers, |s| s.phase.is_none());
    // `max_by_key` keeps the last of equal timestamps, i.e. the one the charger listed last.
    let latest = registers.into_iter().max_by_key(|s| s.timestamp)?;
    let rounded = latest.value.round();
    // Beyond ±2^63 the cast would saturate silently; such a register is garbage, not a reading.
    if rounded.is_finite() && rounded.abs() < 9.2e18 {
        Some(rounded as i64)
    } else {
        None
    }
}

/// The OCPP spelling of a rust-ocpp enum value (they serialise with the exact OCPP names).
pub(crate) fn ocpp_name<T: Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        // Unreachable for rust-ocpp's unit-variant enums; Debug keeps the name readable anyway.
        _ => format!("{value:?}"),
    }
}

/// The OCPP spelling of an optional enum value, or the spec default when absent.
fn opt_name<T: Serialize + std::fmt::Debug>(value: Option<&T>, default: &str) -> String {
    value.map_or_else(|| default.to_owned(), ocpp_name)
}

/// Keeps the items matching `preferred` if there are any, else all of them.
fn prefer(items: Vec<&Sample>, preferred: impl Fn(&Sample) -> bool) -> Vec<&Sample> {
    if items.iter().any(|s| preferred(s)) {
        items.into_iter().filter(|s| preferred(s)).collect()
    } else {
        items
    }
}

/// Converts a temperature to Celsius after scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Offset {
    None,
    FromFahrenheit,
    FromKelvin,
}

/// How a unit name maps onto a normalised unit: the unit, a power of ten, a temperature offset.
fn unit_rule(name: &str) -> (Unit, i32, Offset) {
    match name {
        "Wh" => (Unit::Wh, 0, Offset::None),
        "kWh" => (Unit::Wh, 3, Offset::None),
        "W" => (Unit::W, 0, Offset::None),
        "kW" => (Unit::W, 3, Offset::None),
        "varh" => (Unit::Varh, 0, Offset::None),
        "kvarh" => (Unit::Varh, 3, Offset::None),
        "var" => (Unit::Var, 0, Offset::None),
        "kvar" => (Unit::Var, 3, Offset::None),
        "VA" => (Unit::Va, 0, Offset::None),
        "kVA" => (Unit::Va, 3, Offset::None),
        "A" => (Unit::A, 0, Offset::None),
        "V" => (Unit::V, 0, Offset::None),
        // `Celcius` and `Hertz` are spellings the official 1.6 JSON schema admits.
        "Celsius" | "Celcius" => (Unit::Celsius, 0, Offset::None),
        "Fahrenheit" => (Unit::Celsius, 0, Offset::FromFahrenheit),
        "K" => (Unit::Celsius, 0, Offset::FromKelvin),
        "Percent" => (Unit::Percent, 0, Offset::None),
        "Hz" | "Hertz" => (Unit::Hz, 0, Offset::None),
        _ => (Unit::Other, 0, Offset::None),
    }
}

/// The unit a measurand is in when the charger names none.
///
/// The spec only fixes `Wh` for energy; for the rest the measurand admits a single SI unit, so
/// assuming it is safe. Reactive energy takes `varh`, not the literal `Wh`, because that is the
/// only unit such a register can be in; apparent energy (VAh) has no normalised unit.
fn default_unit(measurand: &str) -> &'static str {
    if measurand.starts_with("Energy.Active.") {
        "Wh"
    } else if measurand.starts_with("Energy.Reactive.") {
        "varh"
    } else if measurand.starts_with("Power.Active.") || measurand == "Power.Offered" {
        "W"
    } else if measurand.starts_with("Power.Reactive.") {
        "var"
    } else if measurand.starts_with("Current.") {
        "A"
    } else {
        match measurand {
            "Voltage" => "V",
            "Frequency" => "Hz",
            "SoC" => "Percent",
            "Temperature" => "Celsius",
            _ => "",
        }
    }
}

/// Scales `mantissa * 10^exponent` into the normalised unit; `None` if the result is not finite.
fn normalise(mantissa: &str, exponent: i32, unit: Option<&str>, measurand: &str) -> Option<(Unit, f64)> {
    let (unit, prefix, offset) = unit_rule(unit.unwrap_or_else(|| default_unit(measurand)));
    let scaled: f64 = format!("{mantissa}e{}", exponent.saturating_add(prefix)).parse().ok()?;
    let value = match offset {
        Offset::None => scaled,
        Offset::FromFahrenheit => (scaled - 32.0) * 5.0 / 9.0,
        Offset::FromKelvin => scaled - 273.15,
    };
    value.is_finite().then_some((unit, value))
}

/// Splits a decimal string (`-12.5`, `.5`, `1e3`) into mantissa and exponent, or `None`.
///
/// Stricter than `f64::from_str`, which would also take `inf`, `NaN` and `infinity`.
fn split_decimal(text: &str) -> Option<(&str, i32)> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let unsigned = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty())).then_some((mantissa, exponent))
}

/// The violation for a 1.6 value that is not a decimal number.
fn not_a_decimal(value: &str) -> Violation {
    Violation::new(
        Fault::PropertyConstraint,
        format!("sampledValue.value {:?} is not a decimal number", shorten(value)),
    )
}

/// The violation for a value whose scaled magnitude overflows.
fn out_of_range(value: &str) -> Violation {
    Violation::new(
        Fault::PropertyConstraint,
        format!("sampledValue.value {:?} is out of range", shorten(value)),
    )
}

/// Truncates charger-supplied text quoted in a violation, which must stay short.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v16(sampled: serde_json::Value) -> Result<Vec<Sample>, Violation> {
        let values: Vec<MeterValue> = serde_json::from_value(json!([
            { "timestamp": "2024-05-01T10:00:00Z", "sampledValue": [sampled] }
        ]))
        .unwrap();
        from_v16(&values)
    }

    fn v201(sampled: serde_json::Value) -> Result<Vec<Sample>, Violation> {
        let values: Vec<MeterValueType> = serde_json::from_value(json!([
            { "timestamp": "2024-05-01T10:00:00Z", "sampledValue": [sampled] }
        ]))
        .unwrap();
        from_v201(&values)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn sample(ts: &str, measurand: &str, location: &str, phase: Option<&str>, unit: Unit, value: f64) -> Sample {
        Sample {
            timestamp: ts.parse().unwrap(),
            measurand: measurand.into(),
            phase: phase.map(Into::into),
            location: location.into(),
            context: DEFAULT_CONTEXT.into(),
            unit,
            value,
        }
    }

    #[test]
    fn v16_defaults_follow_the_spec() {
        let samples = v16(json!({ "value": "1234.5" })).unwrap();
        assert_eq!(
            samples,
            vec![Sample {
                timestamp: "2024-05-01T10:00:00Z".parse().unwrap(),
                measurand: "Energy.Active.Import.Register".into(),
                phase: None,
                location: "Outlet".into(),
                context: "Sample.Periodic".into(),
                unit: Unit::Wh,
                value: 1234.5,
            }]
        );
    }

    #[test]
    fn v16_qualifiers_keep_their_ocpp_names() {
        let samples = v16(json!({
            "value": "16", "context": "Transaction.Begin", "format": "Raw",
            "measurand": "Current.Import", "phase": "L1-N", "location": "EV", "unit": "A"
        }))
        .unwrap();
        let s = &samples[0];
        assert_eq!(s.measurand, "Current.Import");
        assert_eq!(s.phase.as_deref(), Some("L1-N"));
        assert_eq!(s.location, "EV");
        assert_eq!(s.context, "Transaction.Begin");
        assert_eq!((s.unit, s.value), (Unit::A, 16.0));
    }

    #[test]
    fn v16_units_normalise() {
        let table: &[(&str, &str, Unit, f64)] = &[
            ("Wh", "1500", Unit::Wh, 1500.0),
            ("kWh", "1.234", Unit::Wh, 1234.0),
            ("kWh", "0.001", Unit::Wh, 1.0),
            ("W", "7400", Unit::W, 7400.0),
            ("kW", "7.4", Unit::W, 7400.0),
            ("varh", "10", Unit::Varh, 10.0),
            ("kvarh", "2.5", Unit::Varh, 2500.0),
            ("var", "10", Unit::Var, 10.0),
            ("kvar", "0.25", Unit::Var, 250.0),
            ("VA", "11", Unit::Va, 11.0),
            ("kVA", "11", Unit::Va, 11000.0),
            ("A", "32", Unit::A, 32.0),
            ("V", "230.1", Unit::V, 230.1),
            ("Celsius", "21.5", Unit::Celsius, 21.5),
            ("Fahrenheit", "212", Unit::Celsius, 100.0),
            ("Fahrenheit", "-40", Unit::Celsius, -40.0),
            ("K", "273.15", Unit::Celsius, 0.0),
            ("K", "300", Unit::Celsius, 26.85),
            ("Percent", "80", Unit::Percent, 80.0),
        ];
        for (unit, value, want_unit, want) in table {
            let s = &v16(json!({ "value": value, "unit": unit })).unwrap()[0];
            assert_eq!(s.unit, *want_unit, "{value} {unit}");
            assert!(close(s.value, *want), "{value} {unit} -> {}", s.value);
        }
    }

    #[test]
    fn v16_decimal_spellings() {
        let table: &[(&str, f64)] = &[
            ("0", 0.0),
            ("-12.5", -12.5),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            (" 42 ", 42.0),
            ("000123.4500", 123.45),
        ];
        for (value, want) in table {
            let s = &v16(json!({ "value": value })).unwrap()[0];
            assert!(close(s.value, *want), "{value:?} -> {}", s.value);
        }
    }

    #[test]
    fn v16_invalid_numbers_are_property_constraint_violations_naming_the_value() {
        for value in [
            "",
            "abc",
            "1,5",
            "NaN",
            "inf",
            "infinity",
            "-",
            ".",
            "1.2.3",
            "0x10",
            "1e",
            "e3",
            "1e99999999999",
            "1e400",
            "--1",
            "1 2",
        ] {
            let err = v16(json!({ "value": value })).unwrap_err();
            assert_eq!(err.fault, Fault::PropertyConstraint, "{value:?}");
            assert!(
                err.description.contains(&format!("{:?}", value.trim())),
                "{value:?}: {}",
                err.description
            );
        }
        let long = "x".repeat(500);
        let err = v16(json!({ "value": long })).unwrap_err();
        assert!(err.description.len() < 100, "{}", err.description);
    }

    #[test]
    fn v16_scaling_overflow_is_rejected() {
        let err = v16(json!({ "value": "1e308", "unit": "kWh" })).unwrap_err();
        assert_eq!(err.fault, Fault::PropertyConstraint);
        assert!(err.description.contains("1e308"), "{}", err.description);
    }

    #[test]
    fn v16_signed_data_is_skipped() {
        let values: Vec<MeterValue> = serde_json::from_value(json!([{
            "timestamp": "2024-05-01T10:00:00Z",
            "sampledValue": [
                { "value": "AbCdEf==", "format": "SignedData" },
                { "value": "10", "format": "Raw", "unit": "kWh" }
            ]
        }]))
        .unwrap();
        let samples = from_v16(&values).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!((samples[0].unit, samples[0].value), (Unit::Wh, 10_000.0));
    }

    #[test]
    fn default_unit_follows_the_measurand() {
        let table: &[(&str, Unit)] = &[
            ("Energy.Active.Import.Register", Unit::Wh),
            ("Energy.Active.Export.Interval", Unit::Wh),
            ("Energy.Reactive.Import.Register", Unit::Varh),
            ("Power.Active.Import", Unit::W),
            ("Power.Offered", Unit::W),
            ("Power.Reactive.Export", Unit::Var),
            ("Power.Factor", Unit::Other),
            ("Current.Offered", Unit::A),
            ("Voltage", Unit::V),
            ("Frequency", Unit::Hz),
            ("SoC", Unit::Percent),
            ("Temperature", Unit::Celsius),
            ("RPM", Unit::Other),
        ];
        for (measurand, want) in table {
            let s = &v16(json!({ "value": "7", "measurand": measurand })).unwrap()[0];
            assert_eq!((s.unit, s.value), (*want, 7.0), "{measurand}");
        }
        let s = &v201(json!({ "value": 7, "measurand": "Energy.Apparent.Net" })).unwrap()[0];
        assert_eq!((s.unit, s.value), (Unit::Other, 7.0));
    }

    #[test]
    fn v201_defaults_follow_the_spec() {
        let samples = v201(json!({ "value": 1234.5 })).unwrap();
        assert_eq!(
            samples,
            vec![Sample {
                timestamp: "2024-05-01T10:00:00Z".parse().unwrap(),
                measurand: "Energy.Active.Import.Register".into(),
                phase: None,
                location: "Outlet".into(),
                context: "Sample.Periodic".into(),
                unit: Unit::Wh,
                value: 1234.5,
            }]
        );
    }

    #[test]
    fn v201_units_and_multipliers_normalise() {
        let table: &[(serde_json::Value, serde_json::Value, Unit, f64)] = &[
            (json!(1500), json!({}), Unit::Wh, 1500.0),
            (json!(1500), json!({ "unit": "Wh" }), Unit::Wh, 1500.0),
            (json!(1.5), json!({ "multiplier": 3 }), Unit::Wh, 1500.0),
            (json!(1.234), json!({ "unit": "kWh" }), Unit::Wh, 1234.0),
            (
                json!(1.234),
                json!({ "unit": "kWh", "multiplier": 0 }),
                Unit::Wh,
                1234.0,
            ),
            (json!(1.234), json!({ "unit": "Wh", "multiplier": 3 }), Unit::Wh, 1234.0),
            (json!(1.5), json!({ "unit": "kWh", "multiplier": 3 }), Unit::Wh, 1.5e6),
            (
                json!(1500),
                json!({ "unit": "kWh", "multiplier": -3 }),
                Unit::Wh,
                1500.0,
            ),
            (json!(7400), json!({ "unit": "W", "multiplier": -3 }), Unit::W, 7.4),
            (json!(7.4), json!({ "unit": "kW" }), Unit::W, 7400.0),
            (json!(2), json!({ "unit": "kvarh" }), Unit::Varh, 2000.0),
            (json!(2), json!({ "unit": "kvar" }), Unit::Var, 2000.0),
            (json!(2), json!({ "unit": "kVA" }), Unit::Va, 2000.0),
            (json!(2), json!({ "unit": "VA" }), Unit::Va, 2.0),
            (json!(32), json!({ "unit": "A" }), Unit::A, 32.0),
            (json!(2300), json!({ "unit": "V", "multiplier": -1 }), Unit::V, 230.0),
            (json!(50), json!({ "unit": "Hz" }), Unit::Hz, 50.0),
            (json!(50), json!({ "unit": "Hertz" }), Unit::Hz, 50.0),
            (json!(21), json!({ "unit": "Celsius" }), Unit::Celsius, 21.0),
            (json!(21), json!({ "unit": "Celcius" }), Unit::Celsius, 21.0),
            (json!(212), json!({ "unit": "Fahrenheit" }), Unit::Celsius, 100.0),
            (json!(3), json!({ "unit": "K", "multiplier": 2 }), Unit::Celsius, 26.85),
            (json!(55), json!({ "unit": "Percent" }), Unit::Percent, 55.0),
            (json!(12), json!({ "unit": "ASU" }), Unit::Other, 12.0),
            (json!(12), json!({ "unit": "kg", "multiplier": 1 }), Unit::Other, 120.0),
            (json!(-5), json!({ "unit": "kWh" }), Unit::Wh, -5000.0),
        ];
        for (value, unit_of_measure, want_unit, want) in table {
            let s = &v201(json!({ "value": value, "unitOfMeasure": unit_of_measure })).unwrap()[0];
            assert_eq!(s.unit, *want_unit, "{value} {unit_of_measure}");
            assert!(close(s.value, *want), "{value} {unit_of_measure} -> {}", s.value);
        }
    }

    #[test]
    fn v201_qualifiers_and_signed_values() {
        let s = &v201(json!({
            "value": 11.2, "context": "Transaction.End", "measurand": "Power.Active.Import",
            "phase": "L2", "location": "Inlet", "unitOfMeasure": { "unit": "kW" },
            "signedMeterValue": {
                "signedMeterData": "AbC=", "signingMethod": "ECDSA", "encodingMethod": "OCMF",
                "publicKey": "XyZ="
            }
        }))
        .unwrap()[0];
        assert_eq!(s.measurand, "Power.Active.Import");
        assert_eq!(s.phase.as_deref(), Some("L2"));
        assert_eq!(s.location, "Inlet");
        assert_eq!(s.context, "Transaction.End");
        assert_eq!(s.unit, Unit::W);
        assert!(close(s.value, 11200.0));
    }

    #[test]
    fn v201_extreme_multipliers_do_not_panic() {
        let err = v201(json!({ "value": 1, "unitOfMeasure": { "multiplier": i32::MAX } })).unwrap_err();
        assert_eq!(err.fault, Fault::PropertyConstraint);
        let s = &v201(json!({ "value": 1, "unitOfMeasure": { "multiplier": i32::MIN } })).unwrap()[0];
        assert_eq!(s.value, 0.0);
    }

    #[test]
    fn ocpp_names_are_the_wire_spellings() {
        use rust_ocpp::v1_6::types::{Location, Phase, ReadingContext, UnitOfMeasure};
        use rust_ocpp::v2_0_1::enumerations::id_token_enum_type::IdTokenEnumType;
        assert_eq!(ocpp_name(&UnitOfMeasure::KWh), "kWh");
        assert_eq!(ocpp_name(&Phase::L1N), "L1-N");
        assert_eq!(ocpp_name(&Location::Ev), "EV");
        assert_eq!(ocpp_name(&ReadingContext::TransactionBegin), "Transaction.Begin");
        assert_eq!(ocpp_name(&IdTokenEnumType::EMAID), "eMAID");
    }

    #[test]
    fn energy_register_prefers_outlet_then_total_then_latest() {
        use Unit::*;
        const T0: &str = "2024-05-01T10:00:00Z";
        const T1: &str = "2024-05-01T10:05:00Z";
        const E: &str = DEFAULT_MEASURAND;
        let table: Vec<(Vec<Sample>, Option<i64>)> = vec![
            (vec![], None),
            (vec![sample(T0, E, "Outlet", None, Wh, 1000.4)], Some(1000)),
            (vec![sample(T0, E, "Outlet", None, Wh, 1000.5)], Some(1001)),
            (vec![sample(T0, E, "Outlet", None, Wh, -2.5)], Some(-3)),
            // Another measurand or a unit other than Wh is not the register.
            (vec![sample(T0, "Power.Active.Import", "Outlet", None, W, 7400.0)], None),
            (vec![sample(T0, E, "Outlet", None, Other, 5.0)], None),
            // Outlet wins over Inlet; any location if there is no Outlet.
            (
                vec![
                    sample(T1, E, "Inlet", None, Wh, 2000.0),
                    sample(T0, E, "Outlet", None, Wh, 1000.0),
                ],
                Some(1000),
            ),
            (vec![sample(T0, E, "Inlet", None, Wh, 2000.0)], Some(2000)),
            // The total wins over phases; phases if there is no total.
            (
                vec![
                    sample(T0, E, "Outlet", Some("L1"), Wh, 300.0),
                    sample(T0, E, "Outlet", None, Wh, 900.0),
                ],
                Some(900),
            ),
            (vec![sample(T0, E, "Outlet", Some("L1"), Wh, 300.0)], Some(300)),
            // The latest reading wins; among equal timestamps the last listed.
            (
                vec![
                    sample(T1, E, "Outlet", None, Wh, 1500.0),
                    sample(T0, E, "Outlet", None, Wh, 1000.0),
                ],
                Some(1500),
            ),
            (
                vec![
                    sample(T0, E, "Outlet", None, Wh, 1000.0),
                    sample(T0, E, "Outlet", None, Wh, 1001.0),
                ],
                Some(1001),
            ),
            (vec![sample(T0, E, "Outlet", None, Wh, 1e300)], None),
        ];
        for (samples, want) in table {
            assert_eq!(energy_register_wh(&samples), want, "{samples:?}");
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use serde_json::json;

    /// The JSON fast path must agree with the typed conversion on everything both accept.
    #[test]
    fn from_json_matches_the_typed_conversion() {
        let v16 = json!([
            {"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [
                {"value": "1234.5"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "context": "Sample.Clock"},
                {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1", "location": "Inlet"},
                {"value": "1e3", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "98.6", "measurand": "Temperature", "unit": "Fahrenheit", "location": "Body"},
                {"value": "ABC", "format": "SignedData"},
                {"value": " 55 ", "measurand": "SoC", "unit": "Percent", "location": "EV"}
            ]},
            {"timestamp": "2026-01-01T10:00:10.250+02:00", "sampledValue": [{"value": "-3", "measurand": "Energy.Reactive.Export.Register"}]}
        ]);
        let typed: Vec<MeterValue> = serde_json::from_value(v16.clone()).expect("typed 1.6");
        assert_eq!(
            from_json(&v16).expect("fast 1.6"),
            from_v16(&typed).expect("typed 1.6 samples")
        );

        let v201 = json!([
            {"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [
                {"value": 12.5, "unitOfMeasure": {"unit": "kWh"}},
                {"value": 6.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh", "multiplier": 3}, "context": "Transaction.Begin"},
                {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW", "multiplier": -1}},
                {"value": 230.1, "measurand": "Voltage", "phase": "L1-N", "unitOfMeasure": {"unit": "V"}},
                {"value": 80, "measurand": "SoC", "location": "EV"},
                {"value": 0.95, "measurand": "Power.Factor"}
            ]}
        ]);
        let typed: Vec<MeterValueType> = serde_json::from_value(v201.clone()).expect("typed 2.0.1");
        assert_eq!(
            from_json(&v201).expect("fast 2.0.1"),
            from_v201(&typed).expect("typed 2.0.1 samples")
        );
    }

    #[test]
    fn from_json_reports_what_the_schema_cannot() {
        let bad_value = json!([{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [{"value": "12,5"}]}]);
        assert_eq!(
            from_json(&bad_value).map_err(|v| v.fault),
            Err(Fault::PropertyConstraint)
        );
        let bad_time = json!([{"timestamp": "yesterday", "sampledValue": [{"value": "1"}]}]);
        assert_eq!(from_json(&bad_time).map_err(|v| v.fault), Err(Fault::TypeConstraint));
    }

    #[test]
    fn a_multiplier_written_as_an_integral_float_still_scales() {
        let readings = json!([{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [
            {"value": 1.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3.0}}
        ]}]);
        let samples = from_json(&readings).expect("valid");
        assert_eq!((samples[0].unit, samples[0].value), (Unit::Wh, 1500.0));
    }
}

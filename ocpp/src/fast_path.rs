//! A reader for MeterValues CALLs, the bulk of a fleet's traffic, that goes from the text
//! straight to normalised samples without building a JSON tree.
//!
//! It accepts a strict subset of what the general path ([`Frame::parse`](crate::Frame::parse),
//! [`schema::validate`](crate::schema::validate), [`meter::from_json`]) accepts, and gives the
//! same samples for it; tests check both claims on valid frames and on every way a frame can be
//! broken. Anything else returns `None` and the caller takes the general path, which produces
//! the exact CALLERROR: errors of any kind, but also extensions (`customData`, signed values),
//! strings with escapes (they cannot be borrowed), numbers of unusual form and duplicate keys.
//!
//! Enum values are checked against the lists in the official schemas themselves, read once.

use crate::frame::MAX_MESSAGE_ID_LEN;
use crate::model::meter::{self, RawReading, Sample};
use crate::schema::{is_rfc3339_instant, request_enum};
use crate::Version;
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use std::sync::LazyLock;

/// A MeterValues CALL that passed every check of the general path.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValuesCall<'a> {
    /// The message id (as sent; it needed no unescaping).
    pub id: &'a str,
    /// 1.6: the `connectorId`; 2.0.1: the `evseId`.
    pub target: u32,
    /// 1.6: the `transactionId`, when given (2.0.1 has none in MeterValues).
    pub transaction_id: Option<i64>,
    /// The readings, normalised exactly as [`meter::from_json`] does.
    pub samples: Vec<Sample>,
}

/// Reads `text` as a MeterValues CALL of `version`, or `None` when the general path must decide.
pub fn meter_values(version: Version, text: &str) -> Option<MeterValuesCall<'_>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let (id, payload) = (&mut de).deserialize_seq(FrameVisitor { version }).ok()?;
    de.end().ok()?;
    if id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN {
        return None;
    }
    let (target, transaction_id, meter_values) = match payload {
        Payload::V16(Object(p)) => {
            let transaction_id = match p.transaction_id {
                Present::Absent => None,
                // The semantic rules refuse negative ids.
                Present::Given(id) if id < 0 => return None,
                Present::Given(id) => Some(id),
            };
            (p.connector_id, transaction_id, Readings::V16(p.meter_value))
        }
        Payload::V201(Object(p)) => (p.evse_id, None, Readings::V201(p.meter_value)),
    };
    Some(MeterValuesCall {
        id,
        target,
        transaction_id,
        samples: meter_values.normalise(version)?,
    })
}

enum Payload<'a> {
    V16(Object<MeterValues16<'a>>),
    V201(Object<MeterValues201<'a>>),
}

enum Readings<'a> {
    V16(Vec<Object<MeterValue<'a, SampledValue16<'a>>>>),
    V201(Vec<Object<MeterValue<'a, SampledValue201<'a>>>>),
}

impl Readings<'_> {
    /// The samples, or `None` when a schema or semantic rule is broken.
    fn normalise(&self, version: Version) -> Option<Vec<Sample>> {
        let enums = match version {
            Version::V16 => &*V16_ENUMS,
            Version::V201 => &*V201_ENUMS,
        };
        match self {
            Readings::V16(values) => samples(values, enums),
            Readings::V201(values) => samples(values, enums),
        }
    }
}

/// A `sampledValue` item of either version.
trait SampledReading {
    /// `None` when a rule is broken; `Some(None)` for a reading that carries no number.
    fn sample(&self, timestamp: DateTime<Utc>, enums: &SampledEnums) -> Option<Option<Sample>>;
}

/// The samples of a `meterValue` array (the schemas want at least one item at both levels).
fn samples<S: SampledReading>(values: &[Object<MeterValue<'_, S>>], enums: &SampledEnums) -> Option<Vec<Sample>> {
    if values.is_empty() {
        return None;
    }
    let mut samples = Vec::new();
    for Object(instant_values) in values {
        let timestamp = instant(instant_values.timestamp)?;
        if instant_values.sampled_value.is_empty() {
            return None;
        }
        for Object(sampled) in &instant_values.sampled_value {
            if let Some(sample) = sampled.sample(timestamp, enums)? {
                samples.push(sample);
            }
        }
    }
    Some(samples)
}

impl SampledReading for SampledValue16<'_> {
    fn sample(&self, timestamp: DateTime<Utc>, enums: &SampledEnums) -> Option<Option<Sample>> {
        enums.check(self.measurand, self.phase, self.location, self.context)?;
        let format = self.format.get();
        if !format.is_none_or(|f| enums.format.iter().any(|e| e == f)) {
            return None;
        }
        if !self.unit.get().is_none_or(|u| enums.unit.iter().any(|e| e == u)) {
            return None;
        }
        // A signed blob carries no number; the general path skips it too.
        if format == Some("SignedData") {
            return Some(None);
        }
        let raw = RawReading {
            value: self.value,
            unit: self.unit.get(),
            multiplier: 0,
            measurand: self.measurand.get(),
            phase: self.phase.get(),
            location: self.location.get(),
            context: self.context.get(),
        };
        meter::raw_sample(timestamp, raw).ok().map(Some)
    }
}

impl SampledReading for SampledValue201<'_> {
    fn sample(&self, timestamp: DateTime<Utc>, enums: &SampledEnums) -> Option<Option<Sample>> {
        enums.check(self.measurand, self.phase, self.location, self.context)?;
        let (unit, multiplier) = match &self.unit_of_measure {
            Present::Absent => (None, 0),
            Present::Given(Object(u)) => {
                // The schema's maxLength counts characters.
                if u.unit.get().is_some_and(|unit| unit.chars().count() > 20) {
                    return None;
                }
                (u.unit.get(), u.multiplier.get().unwrap_or(0))
            }
        };
        let value = self.value.to_string();
        let raw = RawReading {
            value: &value,
            unit,
            multiplier,
            measurand: self.measurand.get(),
            phase: self.phase.get(),
            location: self.location.get(),
            context: self.context.get(),
        };
        meter::raw_sample(timestamp, raw).ok().map(Some)
    }
}

/// The schema's date-time check, then the same conversion as the general path.
fn instant(text: &str) -> Option<DateTime<Utc>> {
    if !is_rfc3339_instant(text) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// The enum lists of a version's sampled values, from its MeterValues request schema.
struct SampledEnums {
    measurand: Vec<String>,
    phase: Vec<String>,
    location: Vec<String>,
    context: Vec<String>,
    /// 1.6 only.
    format: Vec<String>,
    /// 1.6 only (2.0.1's unit is free text).
    unit: Vec<String>,
}

impl SampledEnums {
    fn load(version: Version, sampled: &[&str]) -> SampledEnums {
        let list = |field: &str| {
            let mut path = sampled.to_vec();
            path.push(field);
            request_enum(version, "MeterValues", &path)
        };
        SampledEnums {
            measurand: list("measurand"),
            phase: list("phase"),
            location: list("location"),
            context: list("context"),
            format: list("format"),
            unit: list("unit"),
        }
    }

    fn check(
        &self,
        measurand: Present<&str>,
        phase: Present<&str>,
        location: Present<&str>,
        context: Present<&str>,
    ) -> Option<()> {
        let allowed = |value: Present<&str>, list: &[String]| value.get().is_none_or(|v| list.iter().any(|e| e == v));
        (allowed(measurand, &self.measurand)
            && allowed(phase, &self.phase)
            && allowed(location, &self.location)
            && allowed(context, &self.context))
        .then_some(())
    }
}

const SAMPLED_VALUE: &[&str] = &["meterValue", "[]", "sampledValue", "[]"];

static V16_ENUMS: LazyLock<SampledEnums> = LazyLock::new(|| SampledEnums::load(Version::V16, SAMPLED_VALUE));
static V201_ENUMS: LazyLock<SampledEnums> = LazyLock::new(|| SampledEnums::load(Version::V201, SAMPLED_VALUE));

/// An optional property that, unlike `Option`, refuses an explicit `null` (the schemas do too).
#[derive(Debug, Clone, Copy, Default)]
enum Present<T> {
    #[default]
    Absent,
    Given(T),
}

impl<T: Copy> Present<T> {
    fn get(self) -> Option<T> {
        match self {
            Present::Absent => None,
            Present::Given(v) => Some(v),
        }
    }
}

/// A JSON object read into `T`. Serde's derived structs also take an array of their fields in
/// order, which the schemas do not allow.
#[derive(Debug)]
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Present::Given)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MeterValues16<'a> {
    connector_id: u32,
    #[serde(default)]
    transaction_id: Present<i64>,
    #[serde(borrow)]
    meter_value: Vec<Object<MeterValue<'a, SampledValue16<'a>>>>,
}

/// A `meterValue` item of either version; `S` is the version's sampled value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MeterValue<'a, S> {
    timestamp: &'a str,
    sampled_value: Vec<Object<S>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SampledValue16<'a> {
    value: &'a str,
    #[serde(default, borrow)]
    context: Present<&'a str>,
    #[serde(default, borrow)]
    format: Present<&'a str>,
    #[serde(default, borrow)]
    measurand: Present<&'a str>,
    #[serde(default, borrow)]
    phase: Present<&'a str>,
    #[serde(default, borrow)]
    location: Present<&'a str>,
    #[serde(default, borrow)]
    unit: Present<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MeterValues201<'a> {
    evse_id: u32,
    #[serde(borrow)]
    meter_value: Vec<Object<MeterValue<'a, SampledValue201<'a>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SampledValue201<'a> {
    /// Kept as written: the general path normalises the number's own text.
    value: serde_json::Number,
    #[serde(default, borrow)]
    context: Present<&'a str>,
    #[serde(default, borrow)]
    measurand: Present<&'a str>,
    #[serde(default, borrow)]
    phase: Present<&'a str>,
    #[serde(default, borrow)]
    location: Present<&'a str>,
    #[serde(default, borrow)]
    unit_of_measure: Present<Object<UnitOfMeasure201<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UnitOfMeasure201<'a> {
    #[serde(default, borrow)]
    unit: Present<&'a str>,
    #[serde(default)]
    multiplier: Present<i32>,
}

/// Reads `[2, id, "MeterValues", payload]` and nothing else.
struct FrameVisitor {
    version: Version,
}

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = (&'de str, Payload<'de>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a MeterValues CALL")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let not_ours = || de::Error::custom("not a MeterValues CALL");
        if seq.next_element::<u8>()? != Some(2) {
            return Err(not_ours());
        }
        let id: &'de str = seq.next_element()?.ok_or_else(not_ours)?;
        let action: &'de str = seq.next_element()?.ok_or_else(not_ours)?;
        if action != "MeterValues" {
            return Err(not_ours());
        }
        let payload = match self.version {
            Version::V16 => Payload::V16(seq.next_element()?.ok_or_else(not_ours)?),
            Version::V201 => Payload::V201(seq.next_element()?.ok_or_else(not_ours)?),
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(not_ours());
        }
        Ok((id, payload))
    }
}

#[cfg(test)]
mod tests;

//! Rules the OCA schemas cannot express, checked after a payload matched its schema.
//!
//! The rules follow property names rather than schema paths: OCPP reuses a name with one meaning
//! everywhere (`connectorId` is a connector number wherever it appears), so one walk of the
//! payload covers every message, including ones added later. Vendor content (`customData`, the
//! free-form `data` of DataTransfer) is not ours to judge and is skipped.
//!
//! Date-times are not checked here: the schema's `format: date-time` already runs chrono's
//! RFC 3339 parser during schema validation (see `is_rfc3339_instant`).
//!
//! The walk allocates nothing on success; the path of an offending field is collected while
//! unwinding from it.

use crate::error_code::{Fault, Violation};
use crate::Version;
use serde_json::{Map, Value};

/// Numbers that identify or count something and so cannot be negative (the schemas only say
/// `integer`). `transactionId` is an integer only in 1.6; 2.0.1's string ids pass untouched.
const NON_NEGATIVE: &[&str] = &["connectorId", "evseId", "reservationId", "transactionId", "seqNo"];

/// Applies the semantic rules of `version` to a payload that matched its schema.
pub(super) fn check(version: Version, payload: &Value) -> Result<(), Violation> {
    walk(version, payload).map_err(Finding::into_violation)
}

/// A broken rule and the path to it, innermost segment first.
struct Finding {
    fault: Fault,
    reason: &'static str,
    path: Vec<Segment>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Finding {
    fn new(fault: Fault, reason: &'static str) -> Self {
        Finding {
            fault,
            reason,
            path: Vec::new(),
        }
    }

    fn under_key(mut self, key: &str) -> Self {
        self.path.push(Segment::Key(key.to_string()));
        self
    }

    fn under_index(mut self, index: usize) -> Self {
        self.path.push(Segment::Index(index));
        self
    }

    fn into_violation(self) -> Violation {
        let mut pointer = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) => pointer = super::child(&pointer, key),
                Segment::Index(index) => pointer = format!("{pointer}/{index}"),
            }
        }
        Violation::new(self.fault, super::describe_at(&pointer, self.reason))
    }
}

fn walk(version: Version, value: &Value) -> Result<(), Finding> {
    match value {
        Value::Object(map) => walk_object(version, map),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| walk(version, item).map_err(|f| f.under_index(i))),
        _ => Ok(()),
    }
}

fn walk_object(version: Version, map: &Map<String, Value>) -> Result<(), Finding> {
    for (key, value) in map {
        check_property(version, key, value).map_err(|f| f.under_key(key))?;
    }
    Ok(())
}

fn check_property(version: Version, key: &str, value: &Value) -> Result<(), Finding> {
    match key {
        "customData" | "data" => Ok(()),
        // A number (or 2.0.1's string transactionId): nothing below it to walk.
        _ if NON_NEGATIVE.contains(&key) => non_negative(value),
        // Sampled values hold no ids, and there are many of them: not walking into them keeps
        // the meter-value hot path short.
        "sampledValue" => match value {
            Value::Array(samples) if version == Version::V16 => samples
                .iter()
                .enumerate()
                .try_for_each(|(i, sample)| v16_sample(sample).map_err(|f| f.under_index(i))),
            _ => Ok(()),
        },
        // 2.0.1's EVSEType: its `id` is an EVSE number (other `id`s, e.g. of charging profiles,
        // are opaque and may be anything the schema allows).
        "evse" => {
            if let Some(id) = value.get("id") {
                non_negative(id).map_err(|f| f.under_key("id"))?;
            }
            walk(version, value)
        }
        _ => walk(version, value),
    }
}

fn non_negative(value: &Value) -> Result<(), Finding> {
    let negative = match value {
        // as_i64 covers every integer a charger really sends; as_f64 catches the rest (-1e30).
        Value::Number(n) => match n.as_i64() {
            Some(i) => i < 0,
            None => n.as_f64().is_some_and(|f| f < 0.0),
        },
        _ => false,
    };
    if negative {
        Err(Finding::new(Fault::PropertyConstraint, "must not be negative"))
    } else {
        Ok(())
    }
}

/// 1.6 carries meter readings as strings; a `Raw` one (the default) must be a decimal number.
fn v16_sample(sample: &Value) -> Result<(), Finding> {
    if sample.get("format").and_then(Value::as_str) == Some("SignedData") {
        return Ok(());
    }
    match sample.get("value").and_then(Value::as_str) {
        Some(text) if !is_decimal(text) => {
            Err(Finding::new(Fault::PropertyConstraint, "not a decimal number").under_key("value"))
        }
        _ => Ok(()),
    }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`, with digits on at least one side of the point,
/// surrounding whitespace ignored (as the meter-value normalisation in `model` does).
///
/// Stricter than `f64::from_str`, which also takes `inf`, `NaN` and `infinity`: a meter never
/// means those, and they would poison every sum they reach.
pub(super) fn is_decimal(text: &str) -> bool {
    let bytes = text.trim().as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let integer_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - integer_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let fraction_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - fraction_start;
    }
    if digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exponent_start {
            return false;
        }
    }
    i == bytes.len()
}

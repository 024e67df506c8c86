//! The fast path must accept only what the general path accepts, with the same result.

use super::*;
use crate::frame::Frame;
use crate::schema::{self, Direction};
use serde_json::{json, Value};

/// What the general path makes of `text`: `Some` only if it would store readings.
fn general(version: Version, text: &str) -> Option<(String, u32, Option<i64>, Vec<Sample>)> {
    let Ok(Frame::Call(call)) = Frame::parse(text) else {
        return None;
    };
    if call.action != "MeterValues" {
        return None;
    }
    schema::validate(version, "MeterValues", Direction::Request, &call.payload).ok()?;
    let samples = meter::from_json(&call.payload["meterValue"]).ok()?;
    let p = &call.payload;
    let target = match version {
        Version::V16 => p["connectorId"].as_u64(),
        Version::V201 => p["evseId"].as_u64(),
    }
    .and_then(|t| u32::try_from(t).ok())?;
    Some((call.id, target, p.get("transactionId").and_then(Value::as_i64), samples))
}

/// Fails unless the fast path agrees with the general path whenever it answers.
fn agree(version: Version, text: &str) -> bool {
    let fast = meter_values(version, text);
    if let Some(fast) = &fast {
        let slow = general(version, text);
        assert_eq!(
            Some((
                fast.id.to_string(),
                fast.target,
                fast.transaction_id,
                fast.samples.clone()
            )),
            slow,
            "the fast path accepted what the general path does not (or differently): {text}"
        );
    }
    fast.is_some()
}

fn v16_payload() -> Value {
    json!({
        "connectorId": 1,
        "transactionId": 42,
        "meterValue": [
            {"timestamp": "2026-11-22T10:00:00.000Z", "sampledValue": [
                {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                 "context": "Sample.Periodic", "location": "Outlet", "format": "Raw"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1-N"},
                {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
            ]},
            {"timestamp": "2026-11-22T10:00:10+01:00", "sampledValue": [
                {"value": " 1.3e3 ", "unit": "kWh"},
                {"value": "opaque", "format": "SignedData"},
            ]},
        ]
    })
}

fn v201_payload() -> Value {
    json!({
        "evseId": 2,
        "meterValue": [
            {"timestamp": "2026-11-22T10:00:00Z", "sampledValue": [
                {"value": 1234.5, "measurand": "Energy.Active.Import.Register",
                 "unitOfMeasure": {"unit": "kWh", "multiplier": -3}, "context": "Sample.Clock",
                 "location": "Outlet"},
                {"value": 7200, "measurand": "Power.Active.Import", "phase": "L1-N",
                 "unitOfMeasure": {"unit": "W"}},
                {"value": 55, "measurand": "SoC", "location": "EV"},
                {"value": 1e3, "unitOfMeasure": {"multiplier": 1}},
            ]},
        ]
    })
}

fn frame(id: &str, action: &str, payload: &Value) -> String {
    serde_json::to_string(&json!([2, id, action, payload])).expect("serialisable")
}

#[test]
fn valid_frames_take_the_fast_path_with_the_general_paths_result() {
    for (version, payload) in [(Version::V16, v16_payload()), (Version::V201, v201_payload())] {
        let text = frame("msg-1", "MeterValues", &payload);
        assert!(agree(version, &text), "{version} {text}");
        let parsed = meter_values(version, &text).expect("fast");
        assert!(!parsed.samples.is_empty());
        // Whitespace between tokens changes nothing.
        let spaced = serde_json::to_string_pretty(&json!([2, "msg-1", "MeterValues", payload])).expect("json");
        assert!(agree(version, &spaced), "{spaced}");
    }
    // The 1.6 signed value is skipped and the scaled ones are in base units.
    let text = frame("a", "MeterValues", &v16_payload());
    let parsed = meter_values(Version::V16, &text).expect("fast");
    assert_eq!(parsed.samples.len(), 4);
    assert_eq!(parsed.samples[1].value, 7200.0);
    assert_eq!(parsed.samples[3].value, 1_300_000.0);
    assert_eq!((parsed.target, parsed.transaction_id), (1, Some(42)));
}

/// Every value in `payload`, with the JSON pointer to it.
fn paths(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = format!("{at}/{k}");
                out.push(child.clone());
                paths(v, child, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let child = format!("{at}/{i}");
                out.push(child.clone());
                paths(v, child, out);
            }
        }
        _ => {}
    }
}

fn replace(payload: &Value, pointer: &str, with: Option<Value>) -> Value {
    let mut copy = payload.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    match copy.pointer_mut(parent) {
        Some(Value::Object(map)) => match with {
            Some(v) => {
                map.insert(key.to_string(), v);
            }
            None => {
                map.remove(key);
            }
        },
        Some(Value::Array(items)) => {
            let i: usize = key.parse().expect("index");
            match with {
                Some(v) => items[i] = v,
                None => {
                    items.remove(i);
                }
            }
        }
        _ => unreachable!("paths() only yields children of containers"),
    }
    copy
}

/// Every field removed, nulled, retyped or set to a value outside its rules; and an unknown
/// property in every object. The fast path may refuse any of them, but what it accepts the
/// general path must accept the same way, and the invalid ones must all be refused.
#[test]
fn broken_and_unusual_payloads_never_pass_the_fast_path_alone() {
    let replacements = [
        Value::Null,
        json!(-1),
        json!(1.5),
        json!(3.0),
        json!(4_294_967_296_u64),
        json!("x"),
        json!(""),
        json!("Energy.Bogus"),
        json!("2026-11-22 10:00:00Z"),
        json!("2026-13-01T00:00:00Z"),
        json!("123456789012345678901"),
        json!(true),
        json!([]),
        json!({}),
        json!({"vendorId": "v"}),
    ];
    let mut refused = 0;
    let mut accepted = 0;
    for (version, payload) in [(Version::V16, v16_payload()), (Version::V201, v201_payload())] {
        let mut all = Vec::new();
        paths(&payload, String::new(), &mut all);
        let mut variants = Vec::new();
        for path in &all {
            variants.push(replace(&payload, path, None));
            for r in &replacements {
                variants.push(replace(&payload, path, Some(r.clone())));
            }
        }
        // An unknown property (and customData) in every object.
        for path in std::iter::once(String::new()).chain(all.iter().cloned()) {
            if payload.pointer(&path).is_some_and(Value::is_object) {
                for extra in ["extra", "customData"] {
                    let mut copy = payload.clone();
                    if let Some(Value::Object(map)) = copy.pointer_mut(&path) {
                        map.insert(extra.into(), json!({"vendorId": "v"}));
                    }
                    variants.push(copy);
                }
            }
        }
        for variant in variants {
            let text = frame("m", "MeterValues", &variant);
            if agree(version, &text) {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Both outcomes occur, so the corpus exercises both sides of the rule.
    assert!(accepted > 10 && refused > 100, "accepted {accepted}, refused {refused}");
}

#[test]
fn frames_the_fast_path_leaves_to_the_general_path() {
    let v16 = v16_payload();
    let ok = frame("m", "MeterValues", &v16);
    assert!(meter_values(Version::V16, &ok).is_some());
    let cases = [
        // Not a MeterValues CALL.
        frame("m", "Heartbeat", &json!({})),
        serde_json::to_string(&json!([3, "m", v16])).expect("json"),
        serde_json::to_string(&json!([2.0, "m", "MeterValues", v16])).expect("json"),
        // Frame shape.
        format!("{ok} "),
        format!("{ok}x"),
        format!("{},1]", &ok[..ok.len() - 1]),
        ok.replacen("]", ",1]", 1),
        serde_json::to_string(&json!([2, "m", "MeterValues"])).expect("json"),
        frame("", "MeterValues", &v16),
        frame(&"i".repeat(37), "MeterValues", &v16),
        // Escapes cannot be borrowed; the general path reads them.
        ok.replace("\"Outlet\"", "\"Out\\u006cet\""),
        frame("m\"1", "MeterValues", &v16),
        // Duplicate keys.
        ok.replacen("{\"connectorId\":1,", "{\"connectorId\":1,\"connectorId\":2,", 1),
        // Not JSON.
        ok[..ok.len() - 3].to_string(),
        "[2,\"m\",\"MeterValues\",{\"connectorId\":1,\"meterValue\":[]}]".to_string(),
        // 2.0.1 payload on a 1.6 connection.
        frame("m", "MeterValues", &v201_payload()),
    ];
    for text in &cases {
        assert!(
            !agree(Version::V16, text) || text.ends_with(' '),
            "fast path took {text}"
        );
    }
    // Trailing whitespace is still one JSON document.
    assert!(agree(Version::V16, &format!("{ok} ")));
    assert!(!agree(Version::V201, &ok), "a 1.6 payload on a 2.0.1 connection");
}

#[test]
fn enum_lists_come_from_the_official_schemas() {
    for enums in [&*V16_ENUMS, &*V201_ENUMS] {
        assert!(enums.measurand.iter().any(|m| m == "Energy.Active.Import.Register"));
        assert!(enums.measurand.len() >= 20, "{:?}", enums.measurand);
        assert!(enums.phase.iter().any(|p| p == "L1-N"));
        assert!(enums.location.iter().any(|l| l == "EV"));
        assert!(enums.context.iter().any(|c| c == "Sample.Clock"));
    }
    assert_eq!(V16_ENUMS.format, ["Raw", "SignedData"]);
    assert!(V16_ENUMS.unit.iter().any(|u| u == "kWh"));
    // 2.0.1 has no format and a free-text unit.
    assert!(V201_ENUMS.format.is_empty() && V201_ENUMS.unit.is_empty());
}

//! The differential property of `ocpp::fast_path::meter_values`: whatever it accepts, the
//! general path (`Frame::parse` -> `schema::validate` -> `meter::from_json`) accepts too, with
//! the same message id, target, transaction id and samples. The fast path may decline anything
//! (the general path then decides), so only its acceptances are checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp::fast_path::meter_values;
use ocpp::model::meter::{self, Sample};
use ocpp::schema::{self, Direction};
use ocpp::{Frame, Version};
use serde_json::Value;

type Reading = (String, u32, Option<i64>, Vec<Sample>);

/// What the general path stores for `text`, or `None` when it refuses it.
fn general(version: Version, text: &str) -> Option<Reading> {
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for version in [Version::V16, Version::V201] {
        if let Some(fast) = meter_values(version, text) {
            let fast = (fast.id.to_string(), fast.target, fast.transaction_id, fast.samples);
            assert_eq!(
                Some(&fast),
                general(version, text).as_ref(),
                "{version}: the fast path accepted what the general path refuses or reads otherwise"
            );
        }
    }
});

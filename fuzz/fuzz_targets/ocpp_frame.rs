//! One WebSocket text through the central system's inbound pipeline, for both versions:
//! `Frame::parse` -> `schema::validate` -> typed payload -> version-neutral model.
//!
//! Beyond "never panics", it checks what the pipeline promises its callers:
//! - a frame that parses writes back (`to_text`) to text that parses to the same frame;
//! - a refused frame becomes a CALLERROR whose code the connection's version defines and whose
//!   description stays within the CALLERROR limit;
//! - a payload the schema accepts deserialises into the typed message the handlers use, converts
//!   to the model, and the JSON meter reader (`meter::from_json`, the hot path) gives the same
//!   samples as the typed one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp::catalogue;
use ocpp::error_code::ErrorCode;
use ocpp::messages::{v16, v201};
use ocpp::model::{from_v16, from_v201, meter};
use ocpp::schema::{self, Direction, MAX_DESCRIPTION_LEN};
use ocpp::{Frame, Version, Violation};
use serde_json::Value;

const VERSIONS: [Version; 2] = [Version::V16, Version::V201];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Frame::parse(text) {
        Ok(frame) => {
            let again = Frame::parse(&frame.to_text());
            assert_eq!(again.as_ref(), Ok(&frame), "a parsed frame does not survive writing");
            match &frame {
                Frame::Call(call) => {
                    for version in VERSIONS {
                        request(version, &call.action, &call.payload);
                    }
                }
                Frame::CallResult(result) => {
                    for version in VERSIONS {
                        response(version, &result.id, &result.payload);
                    }
                }
                Frame::CallError(_) => {}
            }
        }
        Err(e) => {
            for version in VERSIONS {
                let answer = e.to_call_error(version);
                assert!(answer.description.chars().count() <= 255);
                assert!(
                    ErrorCode::parse(&answer.code, version).is_some(),
                    "{} in {version}",
                    answer.code
                );
                let written = Frame::CallError(answer).to_text();
                assert!(matches!(Frame::parse(&written), Ok(Frame::CallError(_))), "{written}");
            }
        }
    }
});

/// A refusal must be a CALLERROR the version can spell. Schema violations also promise a
/// description within the CALLERROR limit; others are cut to it when the CALLERROR is written.
fn check_violation(version: Version, v: &Violation) {
    let code = v.fault.code(version);
    assert!(ErrorCode::codes(version).contains(&code), "{code:?} in {version}");
}

fn check_schema_violation(version: Version, v: &Violation) {
    let length = v.description.chars().count();
    assert!(
        length <= MAX_DESCRIPTION_LEN,
        "schema violation described in {length} characters"
    );
    check_violation(version, v);
}

fn request(version: Version, action: &str, payload: &Value) {
    match schema::validate(version, action, Direction::Request, payload) {
        Err(v) => check_schema_violation(version, &v),
        Ok(()) => {
            assert!(
                catalogue::initiator(version, action).is_some(),
                "{action} validated in {version}"
            );
            model(version, action, payload);
        }
    }
}

/// A CALLRESULT answers a call the central system sent; pick one of its actions from the id.
fn response(version: Version, id: &str, payload: &Value) {
    let actions = catalogue::actions(version);
    let pick = id
        .bytes()
        .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(usize::from(b)));
    let (action, _) = actions[pick % actions.len()];
    if let Err(v) = schema::validate(version, action, Direction::Response, payload) {
        check_schema_violation(version, &v);
    }
}

/// What the central system's handlers do with a validated payload, minus storage.
/// Unwinds out of [`model`] when a payload does not fit its typed message (not a finding).
struct NotTyped;

fn model(version: Version, action: &str, payload: &Value) {
    // resume_unwind skips the panic hook, so libFuzzer does not count it as a crash.
    let run = std::panic::AssertUnwindSafe(|| model_unchecked(version, action, payload));
    if let Err(payload) = std::panic::catch_unwind(run) {
        if !payload.is::<NotTyped>() {
            std::panic::resume_unwind(payload);
        }
    }
}

fn model_unchecked(version: Version, action: &str, payload: &Value) {
    // A schema-valid payload may still not fit the typed message: rust-ocpp reads 2.0.1 numbers
    // as `Decimal` (28 digits), so a reading of 10^40 is refused with TypeConstraintViolation by
    // `handlers::typed` (found by this target). That is an answer, not a crash; stop here then.
    fn typed<T: serde::de::DeserializeOwned>(_action: &str, payload: &Value) -> T {
        match T::deserialize(payload) {
            Ok(t) => t,
            Err(_) => std::panic::resume_unwind(Box::new(NotTyped)),
        }
    }
    // Model conversions may refuse what the schema cannot express, but only as a violation.
    let converted = |r: Result<(), Violation>| {
        if let Err(v) = r {
            check_violation(version, &v);
        }
    };
    match (version, action) {
        (Version::V16, "BootNotification") => {
            from_v16::boot(&typed::<v16::messages::boot_notification::BootNotificationRequest>(
                action, payload,
            ));
        }
        (Version::V16, "StatusNotification") => {
            let req: v16::messages::status_notification::StatusNotificationRequest = typed(action, payload);
            from_v16::status(&req, chrono::DateTime::UNIX_EPOCH);
        }
        (Version::V16, "Authorize") => {
            from_v16::authorize(&typed(action, payload));
        }
        (Version::V16, "StartTransaction") => {
            from_v16::start_transaction(&typed(action, payload));
        }
        (Version::V16, "StopTransaction") => {
            converted(from_v16::stop_transaction(&typed(action, payload)).map(drop));
        }
        (Version::V16, "MeterValues") => {
            let req: v16::messages::meter_values::MeterValuesRequest = typed(action, payload);
            same_samples(
                meter::from_json(&payload["meterValue"]),
                meter::from_v16(&req.meter_value),
            );
            converted(from_v16::meter_values(&req).map(drop));
        }
        (Version::V201, "BootNotification") => {
            from_v201::boot(&typed::<v201::messages::boot_notification::BootNotificationRequest>(
                action, payload,
            ));
        }
        (Version::V201, "StatusNotification") => {
            converted(from_v201::status(&typed(action, payload)).map(drop));
        }
        (Version::V201, "Authorize") => {
            let req: v201::messages::authorize::AuthorizeRequest = typed(action, payload);
            from_v201::id_token(&req.id_token);
        }
        (Version::V201, "TransactionEvent") => {
            converted(from_v201::transaction_event(&typed(action, payload)).map(drop));
        }
        (Version::V201, "MeterValues") => {
            let req: v201::messages::meter_values::MeterValuesRequest = typed(action, payload);
            same_samples(
                meter::from_json(&payload["meterValue"]),
                meter::from_v201(&req.meter_value),
            );
            converted(from_v201::meter_values(&req).map(drop));
        }
        (Version::V201, "ReservationStatusUpdate") => {
            from_v201::reservation_status(&typed(action, payload));
        }
        _ => {}
    }
}

fn same_samples(json: Result<Vec<meter::Sample>, Violation>, typed: Result<Vec<meter::Sample>, Violation>) {
    match (json, typed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the JSON meter reader and the typed one disagree"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("the JSON meter reader says {a:?}, the typed one {b:?}"),
    }
}

//! The REST edge of both services: `service_kit::extract::ApiJson` and `ApiQuery` over every
//! request body and query type of the central system and the booking API, then the booking API's
//! field validators and schedule rules on what was read.
//!
//! Input: one byte picks the type, one byte the `Content-Type`, the rest is the body (or the
//! query string). Checked beyond "never panics":
//! - a rejection is a 400 (or 415 for a non-JSON type) problem with a stable code, and its field
//!   errors, when present, name a field and a code;
//! - the extractor agrees with plain `serde_json`: it accepts a JSON body exactly when serde does
//!   (naming the field must not change the verdict);
//! - a validator's normalised value is accepted again as it is (idempotent normalisation).
#![no_main]

use axum::extract::{FromRequest, FromRequestParts, Request};
use booking_api::stations::schedule::{self, Schedule};
use booking_api::validate::{self, Coordinates, Email, Fields, NewPassword, Nic, Phone};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use service_kit::extract::{ApiJson, ApiQuery};
use service_kit::problem::Problem;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Drives an extractor's future; with the whole body in memory it never waits on I/O.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("an extractor kept waiting on an in-memory body");
}

fn check_problem(p: &Problem, allowed: &[u16]) {
    assert!(allowed.contains(&p.status), "status {} for {}", p.status, p.detail);
    assert!(
        !p.code.is_empty()
            && p.code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    );
    let body = serde_json::to_value(p).unwrap_or_default();
    assert_eq!(body["status"], p.status);
    if let Some(errors) = &p.errors {
        let list = errors.as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!list.is_empty(), "errors present but not a non-empty list: {errors}");
        for e in list {
            assert!(e["field"].is_string() && e["code"].is_string(), "field error {e}");
        }
    }
}

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/merge-patch+json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

/// Reads `body` through `ApiJson<T>`; `Some` when it was accepted.
fn json_body<T: DeserializeOwned>(content_type: u8, body: &[u8]) -> Option<T> {
    let ct = CONTENT_TYPES[usize::from(content_type) % CONTENT_TYPES.len()];
    let mut builder = Request::builder().method("POST").uri("/x");
    if let Some(ct) = ct {
        builder = builder.header("content-type", ct);
    }
    let Ok(request) = builder.body(axum::body::Body::from(body.to_vec())) else {
        return None;
    };
    let is_json = ct.is_some_and(|c| c.contains("json"));
    let plain = serde_json::from_slice::<T>(body).is_ok();
    match ready(ApiJson::<T>::from_request(request, &())) {
        Ok(ApiJson(value)) => {
            assert!(is_json, "a non-JSON content type was accepted");
            assert!(plain, "the extractor accepted a body serde_json refuses");
            Some(value)
        }
        Err(p) => {
            check_problem(&p, &[400, 415]);
            assert!(
                !(is_json && plain),
                "the extractor refused a body serde_json accepts: {}",
                p.detail
            );
            None
        }
    }
}

/// Reads `query` through `ApiQuery<T>`.
fn query<T: DeserializeOwned>(query: &[u8]) {
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(uri) = format!("/x?{query}").parse::<axum::http::Uri>() else {
        return;
    };
    let Ok(request) = Request::builder().uri(uri).body(()) else {
        return;
    };
    let (mut parts, ()) = request.into_parts();
    if let Err(p) = ready(ApiQuery::<T>::from_request_parts(&mut parts, &())) {
        check_problem(&p, &[400]);
    }
}

/// A normalising validator must accept its own output and leave it unchanged.
fn idempotent<T>(raw: &str, parse: impl Fn(&str) -> Result<T, validate::Invalid>, show: impl Fn(&T) -> String) {
    if let Ok(v) = parse(raw) {
        let once = show(&v);
        match parse(&once) {
            Ok(again) => assert_eq!(show(&again), once, "normalising {raw:?} twice changes it"),
            Err(e) => panic!("{raw:?} normalises to {once:?}, which is refused: {}", e.message),
        }
    }
}

/// What the booking API checks on a schedule, then the lookups that use it.
fn schedule_rules(schedule: &Schedule, time_zone: &str) {
    let mut fields = Fields::new();
    schedule::validate(schedule, "schedule", &mut fields);
    if let Err(p) = fields.finish() {
        check_problem(&p, &[400]);
        return;
    }
    let days = schedule.exceptions.iter().map(|e| e.date);
    for date in days.chain(chrono::NaiveDate::from_ymd_opt(2026, 3, 29)) {
        schedule::intervals_on(schedule, date);
    }
    if let Ok(tz) = time_zone.parse::<chrono_tz::Tz>() {
        schedule::open_at(schedule, tz, chrono::DateTime::UNIX_EPOCH);
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, content_type, rest @ ..] = data else {
        return;
    };
    let ct = *content_type;
    let text = String::from_utf8_lossy(rest);
    match which % 32 {
        // Central system bodies.
        0 => drop(json_body::<central_system::api::commands::GenericCall>(ct, rest)),
        1 => drop(json_body::<central_system::api::id_tokens::IdTokenBody>(ct, rest)),
        2 => drop(json_body::<central_system::api::stations::CreateStation>(ct, rest)),
        3 => drop(json_body::<central_system::api::stations::UpdateStation>(ct, rest)),
        // Central system queries.
        4 => query::<central_system::api::transactions::TransactionQuery>(rest),
        5 => query::<central_system::api::transactions::MeterQuery>(rest),
        6 => query::<central_system::api::stations::ListQuery>(rest),
        7 => query::<central_system::api::stations::MessageQuery>(rest),
        8 => query::<service_kit::page::PageQuery>(rest),
        // Booking API bodies.
        9 => {
            if let Some(s) = json_body::<booking_api::stations::CreateStation>(ct, rest) {
                let _ = Coordinates::parse(s.latitude, s.longitude);
                schedule_rules(&s.schedule, &s.time_zone);
            }
        }
        10 => drop(json_body::<booking_api::stations::UpdateStation>(ct, rest)),
        11 => {
            if let Some(s) = json_body::<booking_api::stations::ScheduleUpdate>(ct, rest) {
                schedule_rules(&s.schedule, "UTC");
            }
        }
        12 => drop(json_body::<booking_api::stations::ConnectorsUpdate>(ct, rest)),
        13 => drop(json_body::<booking_api::bookings::CreateBooking>(ct, rest)),
        14 => drop(json_body::<booking_api::bookings::RescheduleBooking>(ct, rest)),
        15 => drop(json_body::<booking_api::accounts::LoginRequest>(ct, rest)),
        16 => drop(json_body::<booking_api::accounts::RefreshRequest>(ct, rest)),
        17 => drop(json_body::<booking_api::accounts::RegisterOwner>(ct, rest)),
        18 => drop(json_body::<booking_api::accounts::NewStaff>(ct, rest)),
        19 => drop(json_body::<booking_api::accounts::OperatorScope>(ct, rest)),
        20 => drop(json_body::<booking_api::vehicles::NewVehicle>(ct, rest)),
        // Booking API queries.
        21 => query::<booking_api::slots::SlotQuery>(rest),
        22 => query::<booking_api::audit::AuditQuery>(rest),
        23 => query::<booking_api::stations::ListQuery>(rest),
        24 => query::<booking_api::bookings::ListQuery>(rest),
        25 => query::<booking_api::accounts::ListQuery>(rest),
        26 => query::<booking_api::stations::NearbyQuery>(rest),
        27 => query::<booking_api::notifications::NotificationQuery>(rest),
        // Booking API field validators on raw text.
        28 => idempotent(&text, Nic::parse, |n| n.as_str().to_string()),
        29 => idempotent(&text, Email::parse, |e| e.as_str().to_string()),
        30 => {
            idempotent(&text, Phone::parse, |p| p.as_str().to_string());
            let _ = NewPassword::parse(&text);
        }
        _ => {
            idempotent(&text, |t| validate::text(t, 64), Clone::clone);
            idempotent(&text, validate::connector_type, Clone::clone);
        }
    }
});

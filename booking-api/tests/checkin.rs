//! QR check-in over real HTTP, on every backend: tokens issued to owners, verified and scanned
//! by staff or by the owner at the connector, RemoteStart sent to a charger that a command
//! server on the test bus plays; each refusal code, each role's 403, time driven by the test
//! clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::checkin::tokens::Keyring;
use booking_api::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use evcs_bus::{Command, CommandReply, Location};
use serde_json::{json, Value};
use support::{backends, book, slot, FakeCharger, TestServer, World};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

/// Books `slot_start` at `station` as `owner`; returns the booking.
async fn token(s: &TestServer, owner: &str, booking: i64) -> String {
    let r = s
        .req(
            "POST",
            &format!("/api/v1/bookings/{booking}/checkin-token"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    r.expect(201)["token"].as_str().unwrap().to_string()
}

async fn booking(s: &TestServer, admin: &str, id: i64) -> Value {
    s.req("GET", &format!("/api/v1/bookings/{id}"), Some(admin), None)
        .await
        .expect(200)
}

async fn connector_code(s: &TestServer, staff: &str, station: i64, connector: i64) -> String {
    s.req(
        "GET",
        &format!("/api/v1/stations/{station}/connectors/{connector}/checkin-code"),
        Some(staff),
        None,
    )
    .await
    .expect(200)["code"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn verify(s: &TestServer, who: &str, token: &str) -> support::Resp {
    s.req(
        "POST",
        "/api/v1/checkin/verify",
        Some(who),
        Some(json!({ "token": token })),
    )
    .await
}

async fn check_in(s: &TestServer, who: &str, token: &str, code: Option<&str>) -> support::Resp {
    let mut body = json!({ "token": token });
    if let Some(c) = code {
        body["connectorCode"] = json!(c);
    }
    s.req("POST", "/api/v1/checkin", Some(who), Some(body)).await
}

/// Moves the clock to `minutes` before `slot_start`.
fn before(s: &TestServer, slot_start: &str, minutes: i64) {
    s.clock.set(at(slot_start) - Duration::minutes(minutes));
}

/// Asserts the booking is still Approved with no connector or remote start recorded.
async fn unchanged(s: &TestServer, admin: &str, id: i64) {
    let b = booking(s, admin, id).await;
    assert_eq!(b["status"], "Approved", "{b}");
    assert_eq!(b["remoteStartId"], Value::Null, "{b}");
    assert_eq!(b["connectorId"], Value::Null, "{b}");
}

#[tokio::test]
async fn an_operator_checks_in_and_the_charger_starts_on_the_reserved_connector() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let start = slot(0, 10);
        let b = book(&s, &w.owner1, w.s2, &start).await;
        let id = b["id"].as_i64().unwrap();
        assert_eq!(b["status"], "Approved");
        let issued = s
            .req(
                "POST",
                &format!("/api/v1/bookings/{id}/checkin-token"),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(201);
        assert_eq!(issued["keyId"], "local");
        assert_eq!(issued["bookingId"], id);
        // Issued at the epoch, 24 hours' lifetime: the slot's end comes first.
        assert_eq!(at(issued["expiresAt"].as_str().unwrap()), at(&slot(0, 11)));
        let t = issued["token"].as_str().unwrap().to_string();

        before(&s, &start, 10);
        let v = verify(&s, &w.op_a, &t).await.expect(200);
        assert_eq!(
            (v["valid"].clone(), v["bookingId"].clone(), v["stationId"].clone()),
            (json!(true), json!(id), json!(w.s2))
        );
        assert_eq!(
            (v["status"].clone(), v["checkInOpen"].clone()),
            (json!("Approved"), json!(true))
        );
        // Verifying consumes nothing.
        verify(&s, &w.bo_a, &t).await.expect(200);
        verify(&s, &w.admin, &t).await.expect(200);

        let h = check_in(&s, &w.op_a, &t, None).await.expect(200);
        assert_eq!(h["bookingId"], id);
        assert_eq!(h["status"], "CheckedIn");
        assert_eq!(h["remoteStartId"], id);
        assert_eq!(h["connectorId"], 1);
        assert_eq!(h["idToken"], b["idToken"]);
        assert_eq!(h["sessionUrl"], format!("/api/v1/bookings/{id}/session"));
        assert_eq!(h["remoteStart"]["code"], "ACCEPTED", "{h}");
        assert_eq!(h["remoteStart"]["accepted"], true);
        assert_eq!(h["remoteStart"]["location"], json!({ "connectorId": 1 }));
        // The check-in grants the booking's token (it may overtake the background push), then
        // starts.
        let commands = charger.commands();
        assert!(
            matches!(&commands[0], Command::AuthorizeToken { id_token, valid_from, valid_until }
                if id_token == b["idToken"].as_str().unwrap() && valid_from < valid_until),
            "{commands:?}"
        );
        assert_eq!(
            commands[1..].to_vec(),
            vec![Command::RemoteStart {
                remote_start_id: id,
                id_token: b["idToken"].as_str().unwrap().to_string(),
                location: Location {
                    evse_id: None,
                    connector_id: Some(1)
                },
            }]
        );
        let stored = booking(&s, &w.admin, id).await;
        assert_eq!(
            (
                stored["status"].clone(),
                stored["connectorId"].clone(),
                stored["remoteStartId"].clone()
            ),
            (json!("CheckedIn"), json!(1), json!(id))
        );
        // The trail: the check-in and the charger's answer.
        let trail = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={id}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let actions: Vec<&str> = trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"booking.checked_in"), "{actions:?}");
        assert!(actions.contains(&"booking.remote_start"), "{actions:?}");

        // Single use: the second scan is refused, and the charger hears nothing more.
        check_in(&s, &w.op_a, &t, None).await.problem(409, "CHECKIN_TOKEN_USED");
        verify(&s, &w.op_a, &t).await.problem(409, "CHECKIN_TOKEN_USED");
        assert_eq!(charger.remote_starts(), 1);
        // A checked-in booking gets no new token.
        s.req(
            "POST",
            &format!("/api/v1/bookings/{id}/checkin-token"),
            Some(&w.owner1),
            None,
        )
        .await
        .problem(409, "BOOKING_NOT_APPROVED");
        s.stop().await;
    }
}

#[tokio::test]
async fn the_owner_checks_in_with_the_code_printed_on_the_connector() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let start = slot(0, 10);
        let id = book(&s, &w.owner1, w.s2, &start).await["id"].as_i64().unwrap();
        let t = token(&s, &w.owner1, id).await;
        let c1 = connector_code(&s, &w.op_a, w.s2, 1).await;
        let c2 = connector_code(&s, &w.bo_a, w.s2, 2).await;
        let other_station = connector_code(&s, &w.bo_b, w.s3, 1).await;
        before(&s, &start, 5);

        check_in(&s, &w.owner1, &t, None)
            .await
            .problem(422, "CONNECTOR_CODE_REQUIRED");
        // The booking gets connector 1 (the lowest free); standing at connector 2 proves nothing.
        check_in(&s, &w.owner1, &t, Some(&c2))
            .await
            .problem(409, "WRONG_CONNECTOR");
        check_in(&s, &w.owner1, &t, Some(&other_station))
            .await
            .problem(409, "WRONG_STATION");
        let tampered = c1.replacen(&format!(".{}.1.", w.s2), &format!(".{}.2.", w.s2), 1);
        assert_ne!(tampered, c1);
        check_in(&s, &w.owner1, &t, Some(&tampered))
            .await
            .problem(422, "CONNECTOR_CODE_TAMPERED");
        let foreign = Keyring::parse("zz:another-secret-0123456789", None)
            .unwrap()
            .connector_code(w.s2, 1);
        check_in(&s, &w.owner1, &t, Some(&foreign))
            .await
            .problem(422, "CONNECTOR_CODE_UNKNOWN_KEY");
        check_in(&s, &w.owner1, &t, Some("garbage"))
            .await
            .problem(400, "CONNECTOR_CODE_MALFORMED");
        // A connector code is no booking token.
        check_in(&s, &w.owner1, &c1, Some(&c1))
            .await
            .problem(400, "CHECKIN_TOKEN_MALFORMED");
        // Another owner with this owner's token and a good code.
        check_in(&s, &w.owner2, &t, Some(&c1)).await.problem(403, "FORBIDDEN");
        unchanged(&s, &w.admin, id).await;
        assert!(charger.commands().is_empty());

        let h = check_in(&s, &w.owner1, &t, Some(&c1)).await.expect(200);
        assert_eq!(
            (
                h["status"].clone(),
                h["connectorId"].clone(),
                h["remoteStart"]["code"].clone()
            ),
            (json!("CheckedIn"), json!(1), json!("ACCEPTED"))
        );
        assert_eq!(charger.remote_starts(), 1);
        s.stop().await;
    }
}

#[tokio::test]
async fn every_refused_scan_has_its_code_and_changes_nothing() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let start = slot(0, 10);
        let id = book(&s, &w.owner1, w.s2, &start).await["id"].as_i64().unwrap();
        let t = token(&s, &w.owner1, id).await;
        let exp = at(&slot(0, 11)).timestamp();

        // Out of window: the epoch is 4.5 hours before the slot (check-in opens 15 minutes
        // before); verify says so without refusing.
        check_in(&s, &w.op_a, &t, None).await.problem(409, "CHECKIN_TOO_EARLY");
        assert_eq!(verify(&s, &w.op_a, &t).await.expect(200)["checkInOpen"], false);

        before(&s, &start, 10);
        // Tampered: another booking id under the same signature.
        let tampered = t.replacen(&format!(".{id}."), &format!(".{}.", id + 1000), 1);
        assert_ne!(tampered, t);
        verify(&s, &w.op_a, &tampered)
            .await
            .problem(422, "CHECKIN_TOKEN_TAMPERED");
        check_in(&s, &w.op_a, &tampered, None)
            .await
            .problem(422, "CHECKIN_TOKEN_TAMPERED");
        // A key this service does not know.
        let foreign = Keyring::parse("zz:another-secret-0123456789", None)
            .unwrap()
            .issue(id, exp);
        verify(&s, &w.op_a, &foreign)
            .await
            .problem(422, "CHECKIN_TOKEN_UNKNOWN_KEY");
        check_in(&s, &w.op_a, &foreign, None)
            .await
            .problem(422, "CHECKIN_TOKEN_UNKNOWN_KEY");
        // Well signed, never issued (only issued tokens' hashes are stored).
        let unissued = s.state.checkin_keys.issue(id, exp);
        check_in(&s, &w.op_a, &unissued, None)
            .await
            .problem(422, "CHECKIN_TOKEN_UNKNOWN");
        // Out of scope: another BackOffice's operator and the BackOffice itself.
        verify(&s, &w.op_b, &t).await.problem(403, "FORBIDDEN");
        verify(&s, &w.bo_b, &t).await.problem(403, "FORBIDDEN");
        check_in(&s, &w.op_b, &t, None).await.problem(403, "FORBIDDEN");
        check_in(&s, &w.bo_b, &t, None).await.problem(403, "FORBIDDEN");
        // Hostile input: 400 or 422, never 500.
        let huge = "A".repeat(100_000);
        check_in(&s, &w.op_a, &huge, None)
            .await
            .problem(400, "CHECKIN_TOKEN_MALFORMED");
        verify(&s, &w.op_a, &huge).await.problem(400, "CHECKIN_TOKEN_MALFORMED");
        for garbage in ["", "é", "CK1....", "CK1.local.1.1.x.y", "\u{0}"] {
            check_in(&s, &w.op_a, garbage, None)
                .await
                .problem(400, "CHECKIN_TOKEN_MALFORMED");
        }
        for body in [
            json!({ "token": 42 }),
            json!({}),
            json!([]),
            json!({ "token": t, "extra": 1 }),
        ] {
            let r = s.req("POST", "/api/v1/checkin", Some(&w.op_a), Some(body)).await;
            assert!(matches!(r.status, 400 | 422), "{} {}", r.status, r.body);
        }
        let r = s
            .call(
                "POST",
                "/api/v1/checkin/verify",
                Some(&w.op_a),
                None,
                &[("content-type", "application/json")],
            )
            .await;
        assert!(matches!(r.status, 400 | 422), "{} {}", r.status, r.body);

        unchanged(&s, &w.admin, id).await;
        assert!(charger.commands().is_empty());
        // The token survived every refusal.
        check_in(&s, &w.op_a, &t, None).await.expect(200);

        // Expired: a token's lifetime (24 hours) ends before tomorrow's slot opens.
        let tomorrow = slot(1, 10);
        let id2 = book(&s, &w.owner1, w.s2, &tomorrow).await["id"].as_i64().unwrap();
        s.clock.set(support::epoch());
        let t2 = token(&s, &w.owner1, id2).await;
        before(&s, &tomorrow, 10);
        verify(&s, &w.op_a, &t2).await.problem(410, "CHECKIN_TOKEN_EXPIRED");
        check_in(&s, &w.op_a, &t2, None)
            .await
            .problem(410, "CHECKIN_TOKEN_EXPIRED");
        unchanged(&s, &w.admin, id2).await;
        // A new token works.
        let t2 = token(&s, &w.owner1, id2).await;
        verify(&s, &w.op_a, &t2).await.expect(200);
        // A token never outlives its slot: after the slot's end none is issued.
        s.clock.set(at(&slot(1, 11)));
        s.req(
            "POST",
            &format!("/api/v1/bookings/{id2}/checkin-token"),
            Some(&w.owner1),
            None,
        )
        .await
        .problem(409, "CHECKIN_WINDOW_CLOSED");
        verify(&s, &w.op_a, &t2).await.problem(410, "CHECKIN_TOKEN_EXPIRED");

        // Not approved: pending (no token), and cancelled after the token was issued.
        s.clock.set(support::epoch());
        let pending = book(&s, &w.owner2, w.s1, &start).await["id"].as_i64().unwrap();
        s.req(
            "POST",
            &format!("/api/v1/bookings/{pending}/checkin-token"),
            Some(&w.owner2),
            None,
        )
        .await
        .problem(409, "BOOKING_NOT_APPROVED");
        s.req(
            "POST",
            &format!("/api/v1/bookings/{pending}/approve"),
            Some(&w.bo_a),
            None,
        )
        .await
        .expect(200);
        let t3 = token(&s, &w.owner2, pending).await;
        s.req("DELETE", &format!("/api/v1/bookings/{pending}"), Some(&w.admin), None)
            .await
            .expect(200);
        before(&s, &start, 10);
        verify(&s, &w.op_a, &t3).await.problem(409, "BOOKING_NOT_APPROVED");
        check_in(&s, &w.op_a, &t3, None)
            .await
            .problem(409, "BOOKING_NOT_APPROVED");
        assert_eq!(booking(&s, &w.admin, pending).await["status"], "Cancelled");
        assert_eq!(charger.remote_starts(), 1);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_charger_that_refuses_or_is_offline_leaves_the_booking_checked_in() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Rejected").await;
        let start = slot(0, 10);
        let refused = book(&s, &w.owner1, w.s2, &start).await["id"].as_i64().unwrap();
        let t = token(&s, &w.owner1, refused).await;
        // CP-A1 (station s1) is served by nobody: offline.
        let offline = book(&s, &w.owner2, w.s1, &start).await["id"].as_i64().unwrap();
        s.req(
            "POST",
            &format!("/api/v1/bookings/{offline}/approve"),
            Some(&w.bo_a),
            None,
        )
        .await
        .expect(200);
        let t_offline = token(&s, &w.owner2, offline).await;
        before(&s, &start, 10);

        let h = check_in(&s, &w.op_a, &t, None).await.expect(200);
        assert_eq!(h["remoteStart"]["code"], "CHARGER_REJECTED", "{h}");
        assert_eq!(h["remoteStart"]["accepted"], false);
        assert_eq!(h["remoteStart"]["detail"], "Rejected");
        assert_eq!(h["status"], "CheckedIn");
        assert_eq!(charger.remote_starts(), 1);

        // A CALLERROR is its own code.
        *charger.answer.lock().unwrap() = CommandReply::CallError {
            code: "InternalError".into(),
            description: None,
        };
        let second = book(&s, &w.owner2, w.s2, &start).await;
        let second_id = second["id"].as_i64().unwrap();
        s.clock.set(support::epoch());
        let t2 = token(&s, &w.owner2, second_id).await;
        before(&s, &start, 10);
        let h2 = check_in(&s, &w.admin, &t2, None).await.expect(200);
        assert_eq!(h2["remoteStart"]["code"], "CHARGER_ERROR", "{h2}");
        assert_eq!(h2["connectorId"], 2, "the first booking holds connector 1");

        let h = check_in(&s, &w.op_a, &t_offline, None).await.expect(200);
        assert_eq!(h["remoteStart"]["code"], "CHARGER_OFFLINE", "{h}");
        assert_eq!(h["status"], "CheckedIn");
        for id in [refused, offline, second_id] {
            let b = booking(&s, &w.admin, id).await;
            assert_eq!(
                (b["status"].clone(), b["remoteStartId"].clone()),
                (json!("CheckedIn"), json!(id))
            );
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn each_role_gets_403_where_it_does_not_belong() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let id = book(&s, &w.owner1, w.s2, &slot(0, 10)).await["id"].as_i64().unwrap();
        let issue = format!("/api/v1/bookings/{id}/checkin-token");
        for who in [&w.op_a, &w.bo_a, &w.owner2] {
            s.req("POST", &issue, Some(who), None).await.problem(403, "FORBIDDEN");
            s.req("GET", &format!("{issue}/qr.svg"), Some(who), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", &issue, None, None).await.expect(401);
        let t = token(&s, &w.admin, id).await;
        verify(&s, &w.owner1, &t).await.problem(403, "FORBIDDEN");

        // The owner's QR images (each a fresh token).
        let svg = s.req("GET", &format!("{issue}/qr.svg"), Some(&w.owner1), None).await;
        assert_eq!(svg.status, 200);
        assert_eq!(svg.headers["content-type"], "image/svg+xml");
        assert_eq!(svg.headers["cache-control"], "no-store");
        assert!(svg.body.as_str().unwrap().contains("<svg"));
        let png = s.req("GET", &format!("{issue}/qr.png"), Some(&w.owner1), None).await;
        assert_eq!(png.status, 200);
        assert_eq!(png.headers["content-type"], "image/png");

        // Connector codes: the station's staff only.
        let code = |c: i64| format!("/api/v1/stations/{}/connectors/{c}", w.s2);
        for who in [&w.owner1, &w.bo_b, &w.op_b] {
            for leaf in ["checkin-code", "qr.svg", "qr.png"] {
                s.req("GET", &format!("{}/{leaf}", code(1)), Some(who), None)
                    .await
                    .problem(403, "FORBIDDEN");
            }
        }
        for who in [&w.admin, &w.bo_a, &w.op_a] {
            let r = s
                .req("GET", &format!("{}/checkin-code", code(1)), Some(who), None)
                .await;
            assert!(r.expect(200)["code"].as_str().unwrap().starts_with("CC1."));
        }
        let svg = s.req("GET", &format!("{}/qr.svg", code(2)), Some(&w.op_a), None).await;
        assert_eq!(
            (svg.status, svg.headers["content-type"].to_str().unwrap()),
            (200, "image/svg+xml")
        );
        let png = s.req("GET", &format!("{}/qr.png", code(2)), Some(&w.bo_a), None).await;
        assert_eq!(
            (png.status, png.headers["content-type"].to_str().unwrap()),
            (200, "image/png")
        );
        s.req("GET", &format!("{}/checkin-code", code(9)), Some(&w.bo_a), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req(
            "GET",
            "/api/v1/stations/9999/connectors/1/checkin-code",
            Some(&w.admin),
            None,
        )
        .await
        .problem(404, "NOT_FOUND");
        s.stop().await;
    }
}

#[tokio::test]
async fn rotated_keys_verify_old_tokens_and_sign_with_the_active_one() {
    for backend in backends() {
        let s = TestServer::start_with(backend, |c| {
            c.checkin.checkin_keys = Some(service_kit::secrets::Secret::new(
                "old:old-secret-0123456789,new:new-secret-0123456789",
            ));
            c.checkin.checkin_active_key = Some("new".into());
        })
        .await;
        let w = World::build(&s).await;
        let _charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let start = slot(0, 10);
        let id = book(&s, &w.owner1, w.s2, &start).await["id"].as_i64().unwrap();
        let issued = s
            .req(
                "POST",
                &format!("/api/v1/bookings/{id}/checkin-token"),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(201);
        assert_eq!(issued["keyId"], "new");
        assert!(issued["token"].as_str().unwrap().starts_with("CK1.new."));
        // A token issued before the rotation, under the old key (stored as the service stores
        // every token: its hash only).
        let exp = at(&slot(0, 11)).timestamp();
        let old = Keyring::parse("old:old-secret-0123456789", None)
            .unwrap()
            .issue(id, exp);
        booking_api::checkin::store::insert(
            &s.state.db,
            &booking_api::accounts::tokens::sha256_hex(old.as_bytes()),
            id,
            "old",
            exp * 1000,
            s.clock.now_ms(),
        )
        .await
        .unwrap();
        before(&s, &start, 10);
        assert_eq!(verify(&s, &w.op_a, &old).await.expect(200)["keyId"], "old");
        check_in(&s, &w.op_a, &old, None).await.expect(200);
        s.stop().await;
    }
}

#[tokio::test]
async fn two_simultaneous_scans_of_one_token_check_in_once() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let start = slot(0, 10);
        let id = book(&s, &w.owner1, w.s2, &start).await["id"].as_i64().unwrap();
        let t = token(&s, &w.owner1, id).await;
        before(&s, &start, 10);
        let (a, b) = tokio::join!(check_in(&s, &w.op_a, &t, None), check_in(&s, &w.bo_a, &t, None));
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
        let refused = if a.status == 409 { a } else { b };
        refused.problem(409, "CHECKIN_TOKEN_USED");
        assert_eq!(charger.remote_starts(), 1);
        s.stop().await;
    }
}

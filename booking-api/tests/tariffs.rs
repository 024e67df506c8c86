//! Tariffs over HTTP: creation and validation codes, versions (append-only, ordered), station
//! assignment, and every role's scope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::{backends, TestServer, World};

fn ocpi() -> Value {
    json!({
        "currency": "LKR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 95.5, "vat": 18, "step_size": 1}],
             "restrictions": {"start_time": "18:30", "end_time": "22:30"}},
            {"price_components": [{"type": "ENERGY", "price": 70, "vat": 18, "step_size": 1},
                                   {"type": "PARKING_TIME", "price": 300, "step_size": 60}]}
        ],
        "parking_grace_period": 600
    })
}

#[tokio::test]
async fn create_validate_version_and_assign_per_role() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let body = json!({"name": "Colombo peak", "tariff": ocpi()});

        // Roles: owners and operators 403 everywhere, no token 401.
        for token in [&w.op_a, &w.owner1] {
            s.req("POST", "/api/v1/tariffs", Some(token), Some(body.clone()))
                .await
                .problem(403, "FORBIDDEN");
            s.req("GET", "/api/v1/tariffs", Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("GET", "/api/v1/tariffs", None, None)
            .await
            .problem(401, "UNAUTHORIZED");

        // A BackOffice creates for itself: version 1 in force from now, the OCPI body kept exactly.
        let mine = s
            .req("POST", "/api/v1/tariffs", Some(&w.bo_a), Some(body.clone()))
            .await
            .expect(201);
        let mine_id = mine["id"].as_i64().unwrap();
        assert_eq!(mine["backofficeId"], w.bo_a_id);
        assert_eq!(mine["versions"][0]["version"], 1);
        assert_eq!(mine["versions"][0]["currency"], "LKR");
        assert_eq!(mine["versions"][0]["validFrom"], "2030-01-07T00:00:00.000Z");
        assert_eq!(
            mine["versions"][0]["tariff"]["elements"][0]["price_components"][0]["price"],
            json!(95.5)
        );
        let mut other = body.clone();
        other["backofficeId"] = json!(w.bo_a_id + 1000);
        s.req("POST", "/api/v1/tariffs", Some(&w.bo_a), Some(other.clone()))
            .await
            .problem(403, "FORBIDDEN");
        // An admin makes a shared tariff, or one for a BackOffice (which must exist).
        let shared = s
            .req("POST", "/api/v1/tariffs", Some(&w.admin), Some(body.clone()))
            .await
            .expect(201);
        let shared_id = shared["id"].as_i64().unwrap();
        assert_eq!(shared["backofficeId"], Value::Null);
        let r = s.req("POST", "/api/v1/tariffs", Some(&w.admin), Some(other)).await;
        assert_eq!(r.fields(), vec!["backofficeId"]);
        r.problem(400, "VALIDATION_FAILED");

        // Bad input: each with its code and field.
        let bad = |f: &dyn Fn(&mut Value)| {
            let mut b = body.clone();
            f(&mut b);
            b
        };
        let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
            (
                bad(&|b| b["tariff"]["currency"] = json!("lkr")),
                422,
                "TARIFF_CURRENCY_INVALID",
                Some("tariff.currency"),
            ),
            (
                bad(&|b| b["tariff"]["elements"] = json!([])),
                422,
                "TARIFF_NO_ELEMENTS",
                Some("tariff.elements"),
            ),
            (
                bad(&|b| b["tariff"]["elements"][1]["price_components"][0]["vat"] = json!(150)),
                422,
                "TARIFF_VAT_INVALID",
                Some("tariff.elements[1].price_components[0].vat"),
            ),
            (
                bad(&|b| b["tariff"]["elements"][0]["restrictions"]["end_time"] = json!("18:30")),
                422,
                "TARIFF_RANGE_EMPTY",
                Some("tariff.elements[0].restrictions.end_time"),
            ),
            (
                bad(&|b| b["tariff"]["elements"][0]["restrictions"]["start_time"] = json!("6pm")),
                422,
                "TARIFF_TIME_INVALID",
                Some("tariff.elements[0].restrictions.start_time"),
            ),
            (
                bad(&|b| b["tariff"]["elements"][0]["price_components"][0]["price"] = json!(-1)),
                422,
                "TARIFF_PRICE_NEGATIVE",
                None,
            ),
            (
                bad(&|b| b["tariff"]["elements"][0]["price_components"][0]["type"] = json!("KWH")),
                422,
                "TARIFF_MALFORMED",
                None,
            ),
            (
                bad(&|b| b["tariff"]["elements"][0]["restrictions"]["min_kw"] = json!(1)),
                422,
                "TARIFF_MALFORMED",
                None,
            ),
            (bad(&|b| b["tariff"] = json!("free")), 422, "TARIFF_MALFORMED", None),
            (
                bad(&|b| b["name"] = json!("  ")),
                400,
                "VALIDATION_FAILED",
                Some("name"),
            ),
            (
                bad(&|b| b["validFrom"] = json!("2030-01-06T00:00:00Z")),
                400,
                "VALIDATION_FAILED",
                Some("validFrom"),
            ),
        ];
        for (b, status, code, field) in cases {
            let r = s.req("POST", "/api/v1/tariffs", Some(&w.bo_a), Some(b)).await;
            if let Some(field) = field {
                assert_eq!(r.fields(), vec![field.to_string()], "{code}");
            }
            r.problem(status, code);
        }

        // Scope of reads: BackOffice B sees the shared tariff, not A's.
        let listed = s.req("GET", "/api/v1/tariffs", Some(&w.bo_b), None).await.expect(200);
        let ids: Vec<i64> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![shared_id]);
        let all = s.req("GET", "/api/v1/tariffs", Some(&w.admin), None).await.expect(200);
        assert_eq!(all["items"].as_array().unwrap().len(), 2);
        s.req("GET", &format!("/api/v1/tariffs/{mine_id}"), Some(&w.bo_b), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/tariffs/{shared_id}"), Some(&w.bo_b), None)
            .await
            .expect(200);
        s.req("GET", &format!("/api/v1/tariffs/{mine_id}"), Some(&w.owner1), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/tariffs/999999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");

        // Versions: appended, in order, never in the past; a shared tariff only by an admin.
        let path = format!("/api/v1/tariffs/{mine_id}/versions");
        let mut v2 = ocpi();
        v2["elements"][1]["price_components"][0]["price"] = json!(75);
        let next = json!({"validFrom": "2030-02-01T00:00:00Z", "tariff": v2});
        let t = s
            .req("POST", &path, Some(&w.bo_a), Some(next.clone()))
            .await
            .expect(201);
        assert_eq!(t["versions"].as_array().unwrap().len(), 2);
        assert_eq!(t["versions"][1]["version"], 2);
        assert_eq!(
            t["versions"][0]["tariff"]["elements"][1]["price_components"][0]["price"],
            json!(70)
        );
        assert_eq!(
            t["versions"][1]["tariff"]["elements"][1]["price_components"][0]["price"],
            json!(75)
        );
        s.req("POST", &path, Some(&w.bo_a), Some(next.clone()))
            .await
            .problem(409, "TARIFF_VERSION_ORDER");
        let earlier = json!({"validFrom": "2030-01-20T00:00:00Z", "tariff": ocpi()});
        s.req("POST", &path, Some(&w.bo_a), Some(earlier))
            .await
            .problem(409, "TARIFF_VERSION_ORDER");
        s.req("POST", &path, Some(&w.bo_b), Some(next.clone()))
            .await
            .problem(403, "FORBIDDEN");
        s.req("POST", &path, Some(&w.op_a), Some(next.clone()))
            .await
            .problem(403, "FORBIDDEN");
        s.req(
            "POST",
            &path,
            Some(&w.bo_a),
            Some(json!({"tariff": {"currency": "LKR", "elements": []}})),
        )
        .await
        .problem(422, "TARIFF_NO_ELEMENTS");
        let shared_path = format!("/api/v1/tariffs/{shared_id}/versions");
        s.req("POST", &shared_path, Some(&w.bo_a), Some(next.clone()))
            .await
            .problem(403, "FORBIDDEN");
        s.req("POST", &shared_path, Some(&w.admin), Some(next.clone()))
            .await
            .expect(201);

        // Assignment: to its own station, with its own or a shared tariff.
        let assign = |station: i64| format!("/api/v1/stations/{station}/tariff");
        let a = s
            .req("PUT", &assign(w.s1), Some(&w.bo_a), Some(json!({"tariffId": mine_id})))
            .await
            .expect(200);
        assert_eq!(a["tariffId"], mine_id);
        assert_eq!(a["connectorType"], Value::Null);
        let a = s
            .req(
                "PUT",
                &assign(w.s1),
                Some(&w.bo_a),
                Some(json!({"tariffId": shared_id, "connectorType": "ccs2", "validFrom": "2030-03-01T00:00:00Z"})),
            )
            .await
            .expect(200);
        assert_eq!(a["connectorType"], "CCS2");
        s.req("PUT", &assign(w.s1), Some(&w.bo_a), Some(json!({"tariffId": mine_id})))
            .await
            .problem(409, "TARIFF_ASSIGNMENT_EXISTS");
        s.req("PUT", &assign(w.s3), Some(&w.bo_a), Some(json!({"tariffId": mine_id})))
            .await
            .problem(403, "FORBIDDEN");
        s.req("PUT", &assign(w.s3), Some(&w.bo_b), Some(json!({"tariffId": mine_id})))
            .await
            .problem(409, "TARIFF_NOT_USABLE");
        s.req("PUT", &assign(w.s3), Some(&w.admin), Some(json!({"tariffId": mine_id})))
            .await
            .problem(409, "TARIFF_NOT_USABLE");
        s.req(
            "PUT",
            &assign(w.s3),
            Some(&w.admin),
            Some(json!({"tariffId": shared_id})),
        )
        .await
        .expect(200);
        for token in [&w.op_a, &w.owner1] {
            s.req("PUT", &assign(w.s1), Some(token), Some(json!({"tariffId": mine_id})))
                .await
                .problem(403, "FORBIDDEN");
            s.req("GET", &format!("/api/v1/stations/{}/tariffs", w.s1), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        let r = s
            .req(
                "PUT",
                &assign(w.s2),
                Some(&w.bo_a),
                Some(json!({"tariffId": mine_id, "connectorType": "Schuko"})),
            )
            .await;
        assert_eq!(r.fields(), vec!["connectorType"]);
        r.problem(400, "VALIDATION_FAILED");
        let r = s
            .req("PUT", &assign(w.s2), Some(&w.bo_a), Some(json!({"tariffId": 999999})))
            .await;
        assert_eq!(r.fields(), vec!["tariffId"]);
        r.problem(400, "VALIDATION_FAILED");
        s.req(
            "PUT",
            &assign(w.s2),
            Some(&w.bo_a),
            Some(json!({"tariffId": mine_id, "validFrom": "2029-12-31T00:00:00Z"})),
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        s.req("PUT", &assign(w.s2), Some(&w.bo_a), Some(json!({"tariff": mine_id})))
            .await
            .problem(400, "VALIDATION_FAILED");
        let history = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/tariffs", w.s1),
                Some(&w.bo_a),
                None,
            )
            .await
            .expect(200);
        let got: Vec<(i64, Value)> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["tariffId"].as_i64().unwrap(), a["connectorType"].clone()))
            .collect();
        assert_eq!(got, vec![(mine_id, Value::Null), (shared_id, json!("CCS2"))]);
        s.stop().await;
    }
}

fn envelope(station: &str, occurred: chrono::DateTime<chrono::Utc>, event: evcs_bus::Event) -> evcs_bus::EventEnvelope {
    evcs_bus::EventEnvelope::new(evcs_bus::StationId::parse(station).unwrap(), occurred, event)
}

fn connector(id: u32) -> evcs_bus::Location {
    evcs_bus::Location {
        evse_id: None,
        connector_id: Some(id),
    }
}

async fn deliver(s: &TestServer, events: Vec<evcs_bus::EventEnvelope>) {
    let last = events.last().map(|e| e.event_id.clone());
    for e in events {
        s.state.bus.publish(e).await.expect("publish");
    }
    if let Some(last) = last {
        s.wait_processed(&last).await;
    }
}

/// Charges 20 kWh on connector 1 of `station` (Asia/Colombo, UTC+05:30) from `start` for an
/// hour (10 kWh reported at half time); `end`: the charger reports the end.
async fn charge(s: &TestServer, station: &str, tx: &str, start: chrono::DateTime<chrono::Utc>, end: bool) {
    charge_on(s, station, 1, tx, start, end).await
}

async fn charge_on(s: &TestServer, station: &str, on: u32, tx: &str, start: chrono::DateTime<chrono::Utc>, end: bool) {
    use evcs_bus::Event;
    let mut events = vec![envelope(
        station,
        start,
        Event::TransactionStarted {
            transaction_id: tx.into(),
            id_token: None,
            location: connector(on),
            meter_start_wh: Some(1_000),
            remote_start_id: None,
        },
    )];
    let half = start + chrono::Duration::minutes(30);
    events.push(envelope(
        station,
        half,
        Event::MeterSummary {
            transaction_id: tx.into(),
            location: connector(on),
            energy_wh: Some(11_000),
            power_w: Some(20_000.0),
            soc_percent: None,
            current_a: None,
            at: half,
        },
    ));
    if end {
        events.push(envelope(
            station,
            start + chrono::Duration::hours(1),
            Event::TransactionEnded {
                transaction_id: tx.into(),
                id_token: None,
                location: connector(on),
                meter_stop_wh: Some(21_000),
                stop_reason: Some("EVDisconnected".into()),
            },
        ));
    }
    deliver(s, events).await;
}

async fn session_of(s: &TestServer, token: &str, tx: &str) -> i64 {
    let page = s.req("GET", "/api/v1/sessions", Some(token), None).await.expect(200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["transactionId"] == tx)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn receipts_and_live_cost_use_the_version_in_force_at_the_start() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // Peak 06:00-22:00 Colombo at 0.50/kWh, else 0.20; 20 % VAT.
        let v1 = json!({"currency": "EUR", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.5, "vat": 20, "step_size": 1}],
             "restrictions": {"start_time": "06:00", "end_time": "22:00"}},
            {"price_components": [{"type": "ENERGY", "price": 0.2, "vat": 20, "step_size": 1}]}]});
        let t = s
            .req(
                "POST",
                "/api/v1/tariffs",
                Some(&w.bo_a),
                Some(json!({"name": "peak", "tariff": v1})),
            )
            .await
            .expect(201);
        let tid = t["id"].as_i64().unwrap();
        s.req(
            "PUT",
            &format!("/api/v1/stations/{}/tariff", w.s1),
            Some(&w.bo_a),
            Some(json!({"tariffId": tid})),
        )
        .await
        .expect(200);
        // Version 2 from 02:00Z doubles the off-peak price.
        let mut v2 = s
            .req("GET", &format!("/api/v1/tariffs/{tid}"), Some(&w.bo_a), None)
            .await
            .expect(200)["versions"][0]["tariff"]
            .clone();
        v2["elements"][1]["price_components"][0]["price"] = json!(0.4);
        s.req(
            "POST",
            &format!("/api/v1/tariffs/{tid}/versions"),
            Some(&w.bo_a),
            Some(json!({"validFrom": "2030-01-07T02:00:00Z", "tariff": v2})),
        )
        .await
        .expect(201);

        // 00:00Z-01:00Z = 05:30-06:30 local, 20 kWh: 10 kWh at 0.20 + 10 kWh at 0.50 = 7.00,
        // VAT 1.40. Ends after version 2 took effect: still version 1 (the start counts).
        let start = support::epoch();
        charge(&s, "CP-A1", "T1", start, true).await;
        s.clock.set(start + chrono::Duration::hours(3));
        let sid = session_of(&s, &w.bo_a, "T1").await;
        let r = s
            .req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.bo_a), None)
            .await
            .expect(200);
        let cost = &r["cost"];
        assert_eq!(cost["tariffId"], tid);
        assert_eq!(cost["tariffVersion"], 1);
        assert_eq!(cost["status"], "final");
        assert_eq!(
            cost["totalExclVat"],
            json!({"amount": "7.00", "minor": 700, "currency": "EUR"})
        );
        assert_eq!(cost["totalInclVat"]["minor"], 840);
        let lines: Vec<(i64, i64, String)> = cost["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["element"].as_i64().unwrap(),
                    l["amount"]["minor"].as_i64().unwrap(),
                    l["quantity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(lines, vec![(1, 200, "10".into()), (0, 500, "10".into())]);
        assert_eq!(cost["lines"][1]["from"], "2030-01-07T00:30:00Z");
        // The receipt's scope is the session's: another BackOffice gets 403.
        s.req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.bo_b), None)
            .await
            .problem(403, "FORBIDDEN");

        // A session started at 03:00Z (08:30 local, all peak) under version 2, still running:
        // at 03:45Z the meter said 10 kWh at 03:30Z, so the live cost is 10 × 0.50 = 5.00.
        let start2 = start + chrono::Duration::hours(3);
        charge(&s, "CP-A1", "T2", start2, false).await;
        s.clock.set(start2 + chrono::Duration::minutes(45));
        let sid2 = session_of(&s, &w.bo_a, "T2").await;
        let live = s
            .req("GET", &format!("/api/v1/sessions/{sid2}"), Some(&w.bo_a), None)
            .await
            .expect(200);
        assert_eq!(live["cost"]["tariffVersion"], 2);
        assert_eq!(live["cost"]["status"], "running");
        assert_eq!(live["cost"]["pricedUntil"], "2030-01-07T03:45:00.000Z");
        assert_eq!(live["cost"]["totalExclVat"]["minor"], 500);
        s.req("GET", &format!("/api/v1/sessions/{sid2}/receipt"), Some(&w.bo_a), None)
            .await
            .problem(409, "SESSION_ACTIVE");

        // A tariff for CCS2 connectors only, from 05:00Z: connector 1 (CCS2) uses it, connector
        // 2 (Type2) keeps the all-types tariff (version 2: 20 kWh of peak at 0.50 = 10.00).
        let flat = json!({"currency": "EUR", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}]}]});
        let ccs = s
            .req(
                "POST",
                "/api/v1/tariffs",
                Some(&w.bo_a),
                Some(json!({"name": "ccs", "tariff": flat})),
            )
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        s.req(
            "PUT",
            &format!("/api/v1/stations/{}/tariff", w.s1),
            Some(&w.bo_a),
            Some(json!({"tariffId": ccs, "connectorType": "CCS2", "validFrom": "2030-01-07T05:00:00Z"})),
        )
        .await
        .expect(200);
        let start4 = start + chrono::Duration::hours(5);
        charge_on(&s, "CP-A1", 1, "T4", start4, true).await;
        charge_on(&s, "CP-A1", 2, "T5", start4, true).await;
        s.clock.set(start4 + chrono::Duration::hours(2));
        for (tx, tariff, total) in [("T4", ccs, 2000), ("T5", tid, 1000)] {
            let sid = session_of(&s, &w.bo_a, tx).await;
            let r = s
                .req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.bo_a), None)
                .await
                .expect(200);
            assert_eq!(
                (
                    r["cost"]["tariffId"].as_i64(),
                    r["cost"]["totalExclVat"]["minor"].as_i64()
                ),
                (Some(tariff), Some(total)),
                "{tx}"
            );
        }

        // A station without a tariff (CP-A2): a receipt without a cost.
        charge(&s, "CP-A2", "T3", start2, true).await;
        s.clock.set(start2 + chrono::Duration::hours(2));
        let sid3 = session_of(&s, &w.bo_a, "T3").await;
        let r = s
            .req("GET", &format!("/api/v1/sessions/{sid3}/receipt"), Some(&w.bo_a), None)
            .await
            .expect(200);
        assert_eq!(r["cost"], Value::Null);
        assert_eq!(r["energyWh"], 20_000);
        let r = s
            .req("GET", &format!("/api/v1/sessions/{sid3}"), Some(&w.bo_a), None)
            .await
            .expect(200);
        assert!(r.get("cost").is_none());
        s.stop().await;
    }
}

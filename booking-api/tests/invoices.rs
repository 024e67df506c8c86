//! Invoices over HTTP: one per completed, priced session, gap-free numbers per BackOffice,
//! credit notes, corrections after a late end, the printable view, immutability in the
//! database, and every role's scope; on every backend, time from the test clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::billing::invoices;
use booking_api::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use evcs_bus::{Event, EventEnvelope, Location, StationId};
use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};

fn envelope(station: &str, occurred: DateTime<Utc>, event: Event) -> EventEnvelope {
    EventEnvelope::new(StationId::parse(station).unwrap(), occurred, event)
}

const ON_1: Location = Location {
    evse_id: None,
    connector_id: Some(1),
};

fn started(tx: &str, token: Option<&str>, meter: i64) -> Event {
    Event::TransactionStarted {
        transaction_id: tx.into(),
        id_token: token.map(str::to_string),
        location: ON_1,
        meter_start_wh: Some(meter),
        remote_start_id: None,
    }
}

fn summary(tx: &str, wh: i64, at: DateTime<Utc>) -> Event {
    Event::MeterSummary {
        transaction_id: tx.into(),
        location: ON_1,
        energy_wh: Some(wh),
        power_w: Some(10_000.0),
        soc_percent: None,
        current_a: None,
        at,
    }
}

fn ended(tx: &str, meter: i64) -> Event {
    Event::TransactionEnded {
        transaction_id: tx.into(),
        id_token: None,
        location: ON_1,
        meter_stop_wh: Some(meter),
        stop_reason: Some("EVDisconnected".into()),
    }
}

async fn deliver(s: &TestServer, events: &[EventEnvelope]) {
    for e in events {
        s.state.bus.publish(e.clone()).await.expect("publish");
    }
    if let Some(last) = events.last() {
        s.wait_processed(&last.event_id).await;
    }
}

/// 0.30 EUR per kWh, 20 % VAT, per started Wh (no step rounding beyond the Wh).
fn flat_energy_tariff() -> Value {
    json!({"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 20, "step_size": 1}]}]})
}

async fn assign_tariff(s: &TestServer, token: &str, station: i64) {
    let t = s
        .req(
            "POST",
            "/api/v1/tariffs",
            Some(token),
            Some(json!({"name": format!("energy {station}"), "tariff": flat_energy_tariff()})),
        )
        .await
        .expect(201);
    s.req(
        "PUT",
        &format!("/api/v1/stations/{station}/tariff"),
        Some(token),
        Some(json!({"tariffId": t["id"]})),
    )
    .await
    .expect(200);
}

/// Owner1's approved booking at the auto-approving station s2 (CP-A2), tomorrow at `hour`, the
/// clock moved to its start; returns (booking id, its id token).
async fn booking(s: &TestServer, w: &World, hour: u32) -> (i64, String) {
    let b = s
        .req(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": w.s2, "slotStart": slot(1, hour) })),
        )
        .await
        .expect(201);
    s.clock.set(
        DateTime::parse_from_rfc3339(&slot(1, hour))
            .unwrap()
            .with_timezone(&Utc),
    );
    (b["id"].as_i64().unwrap(), b["idToken"].as_str().unwrap().to_string())
}

/// A whole session: `wh` from a 1,000 Wh start register over an hour; the clock ends after it.
async fn charge(s: &TestServer, station: &str, tx: &str, token: Option<&str>, wh: i64) {
    let start = s.clock.now();
    deliver(
        s,
        &[
            envelope(station, start, started(tx, token, 1_000)),
            envelope(station, start + Duration::hours(1), ended(tx, 1_000 + wh)),
        ],
    )
    .await;
    s.clock.set(start + Duration::hours(1) + Duration::minutes(1));
}

async fn list(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    s.req("GET", &format!("/api/v1/invoices{query}"), Some(token), None)
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn minor(v: &Value) -> i64 {
    v["minor"].as_i64().unwrap()
}

#[tokio::test]
async fn a_completed_session_is_invoiced_once_numbered_per_backoffice_scoped_and_credited() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        assign_tariff(&s, &w.bo_a, w.s2).await;
        let (_, token) = booking(&s, &w, 10).await;
        // 10 kWh at 0.30 = 3.00, VAT 20 % = 0.60, total 3.60.
        charge(&s, "CP-A2", "T1", Some(&token), 10_000).await;
        assert_eq!(invoices::run(&s.state).await.unwrap(), 1);
        assert_eq!(
            invoices::run(&s.state).await.unwrap(),
            0,
            "an unchanged session is billed once"
        );

        let mine = list(&s, &w.owner1, "").await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        let inv = &mine[0];
        let id = inv["id"].as_i64().unwrap();
        assert_eq!(inv["kind"], "invoice");
        assert_eq!(inv["number"], 1);
        assert_eq!(inv["numberText"], format!("INV-{}-000001", w.bo_a_id));
        assert_eq!(inv["backofficeId"], w.bo_a_id);
        assert_eq!(inv["ownerId"], w.owner1_id);
        assert_eq!(inv["stationId"], w.s2);
        assert_eq!(
            inv["totalExclVat"],
            json!({"amount": "3.00", "minor": 300, "currency": "EUR"})
        );
        assert_eq!(minor(&inv["totalVat"]), 60);
        assert_eq!(minor(&inv["totalInclVat"]), 360);
        assert_eq!(inv["lines"].as_array().unwrap().len(), 1, "{inv}");
        assert_eq!(inv["lines"][0]["kind"], "ENERGY");
        assert_eq!(inv["lines"][0]["quantity"], "10");
        assert_eq!(minor(&inv["lines"][0]["amount"]), 300);
        assert_eq!(minor(&inv["vat"][0]["vat"]), 60);
        assert_eq!(inv["seller"]["name"], "a@biz.lk Ltd");
        assert_eq!(inv["buyer"]["accountId"], w.owner1_id);
        assert_eq!(inv["session"]["energyWh"], 10_000);
        assert_eq!(inv["creditedBy"], Value::Null);
        // The receipt's final cost and the invoice agree.
        let sid = inv["sessionId"].as_i64().unwrap();
        let receipt = s
            .req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(receipt["cost"]["totalInclVat"], inv["totalInclVat"]);

        // An ad-hoc session at the same BackOffice's station takes number 2; the other
        // BackOffice's series starts at 1.
        assign_tariff(&s, &w.bo_b, w.s3).await;
        charge(&s, "CP-A2", "T2", None, 2_000).await;
        charge(&s, "CP-B1", "T3", None, 5_000).await;
        // A station without a tariff charges for free: no invoice.
        charge(&s, "CP-A1", "T4", None, 5_000).await;
        assert_eq!(invoices::run(&s.state).await.unwrap(), 2);
        let a = list(&s, &w.bo_a, "").await;
        let numbers: Vec<i64> = a.iter().map(|i| i["number"].as_i64().unwrap()).collect();
        assert_eq!(numbers, vec![2, 1]);
        assert_eq!(a[0]["ownerId"], Value::Null);
        assert_eq!(a[0]["buyer"], Value::Null);
        assert_eq!(minor(&a[0]["totalInclVat"]), 72);
        let b = list(&s, &w.bo_b, "").await;
        assert_eq!(b.len(), 1);
        assert_eq!(b[0]["numberText"], format!("INV-{}-000001", b[0]["backofficeId"]));
        assert_eq!(list(&s, &w.admin, "").await.len(), 3);
        assert_eq!(list(&s, &w.admin, &format!("?sessionId={sid}")).await.len(), 1);
        assert_eq!(list(&s, &w.admin, &format!("?stationId={}", w.s3)).await.len(), 1);
        assert_eq!(list(&s, &w.owner2, "").await.len(), 0);
        // A filter never widens the scope.
        assert_eq!(list(&s, &w.bo_b, &format!("?stationId={}", w.s2)).await.len(), 0);

        // Reading one: the buyer, the issuer and admins; not another owner, another BackOffice
        // or operators.
        let path = format!("/api/v1/invoices/{id}");
        for t in [&w.owner1, &w.bo_a, &w.admin] {
            s.req("GET", &path, Some(t), None).await.expect(200);
        }
        for t in [&w.owner2, &w.bo_b, &w.op_a] {
            s.req("GET", &path, Some(t), None).await.problem(403, "FORBIDDEN");
            s.req("GET", &format!("{path}/html"), Some(t), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("GET", "/api/v1/invoices", Some(&w.op_a), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &path, None, None).await.problem(401, "UNAUTHORIZED");
        s.req("GET", "/api/v1/invoices/99999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req("GET", "/api/v1/invoices?limit=0", Some(&w.admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");

        // The printable view: HTML with the number and totals, nothing that runs.
        let page = s.req("GET", &format!("{path}/html"), Some(&w.owner1), None).await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8")
        );
        let html = page.body.as_str().unwrap();
        assert!(html.contains(&format!("INV-{}-000001", w.bo_a_id)), "{html}");
        assert!(html.contains("3.60 EUR") && !html.contains("<script"), "{html}");

        // Credit: the issuer or an admin, with a reason; once; never a credit note.
        let credit = format!("{path}/credit-note");
        for t in [&w.owner1, &w.op_a, &w.bo_b] {
            s.req("POST", &credit, Some(t), Some(json!({"reason": "goodwill"})))
                .await
                .problem(403, "FORBIDDEN");
        }
        let bad = s
            .req("POST", &credit, Some(&w.bo_a), Some(json!({"reason": "  "})))
            .await;
        assert_eq!(bad.fields(), vec!["reason"], "{:?}", bad.body);
        s.req("POST", &credit, Some(&w.bo_a), Some(json!({"why": "x"})))
            .await
            .problem(400, "VALIDATION_FAILED");
        let note = s
            .req(
                "POST",
                &credit,
                Some(&w.bo_a),
                Some(json!({"reason": "charger fault <b>"})),
            )
            .await
            .expect(201);
        assert_eq!(note["kind"], "credit_note");
        assert_eq!(note["numberText"], format!("CN-{}-000001", w.bo_a_id));
        assert_eq!(note["creditsInvoiceId"], id);
        assert_eq!(minor(&note["totalInclVat"]), -360);
        assert_eq!(minor(&note["lines"][0]["amount"]), -300);
        assert_eq!(note["ownerId"], w.owner1_id);
        s.req("POST", &credit, Some(&w.admin), Some(json!({"reason": "again"})))
            .await
            .problem(409, "INVOICE_ALREADY_CREDITED");
        s.req(
            "POST",
            &format!("/api/v1/invoices/{}/credit-note", note["id"]),
            Some(&w.admin),
            Some(json!({"reason": "x"})),
        )
        .await
        .problem(409, "NOT_AN_INVOICE");
        let after = s.req("GET", &path, Some(&w.owner1), None).await.expect(200);
        assert_eq!(after["creditedBy"], note["id"]);
        let note_html = s
            .req(
                "GET",
                &format!("/api/v1/invoices/{}/html", note["id"]),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert!(note_html.as_str().unwrap().contains("charger fault &lt;b&gt;"));
        // The credit was audited.
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=invoice&entityId={id}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(audit["items"][0]["action"], "invoice.credited");
        // A credited session is not invoiced again unless it changes.
        assert_eq!(invoices::run(&s.state).await.unwrap(), 0);

        // The database itself refuses to change or delete an issued document.
        let db = &s.state.db;
        let update = service_kit::db::on_db!(db, |pool| sqlx::query(
            "UPDATE invoices SET total_incl_vat = 0 WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()));
        assert!(update.is_err(), "an invoice was updated");
        let delete = service_kit::db::on_db!(db, |pool| sqlx::query("DELETE FROM invoices WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()));
        assert!(delete.is_err(), "an invoice was deleted");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_session_corrected_after_its_invoice_is_credited_and_invoiced_again() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        assign_tariff(&s, &w.bo_a, w.s2).await;
        let (bid, token) = booking(&s, &w, 10).await;
        let start = s.clock.now();
        deliver(
            &s,
            &[
                envelope("CP-A2", start, started("T9", Some(&token), 1_000)),
                envelope(
                    "CP-A2",
                    start + Duration::minutes(15),
                    summary("T9", 4_000, start + Duration::minutes(15)),
                ),
            ],
        )
        .await;
        // The charger goes silent; the operator finalizes on the last summary (3 kWh).
        s.clock.set(start + Duration::minutes(45));
        let sid = s
            .req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
            .await
            .expect(200)["id"]
            .as_i64()
            .unwrap();
        s.req("POST", &format!("/api/v1/sessions/{sid}/finalize"), Some(&w.op_a), None)
            .await
            .expect(200);
        assert_eq!(invoices::run(&s.state).await.unwrap(), 1);
        let first = list(&s, &w.owner1, "").await;
        assert_eq!(minor(&first[0]["totalInclVat"]), 108, "3 kWh: 0.90 + 0.18 VAT");

        // The charger's own end arrives later with the meter's stop register (10 kWh): the
        // invoice in force is credited and a corrected one issued, in the same series.
        deliver(
            &s,
            &[envelope("CP-A2", start + Duration::minutes(40), ended("T9", 11_000))],
        )
        .await;
        assert_eq!(invoices::run(&s.state).await.unwrap(), 1);
        assert_eq!(invoices::run(&s.state).await.unwrap(), 0);
        let docs = list(&s, &w.owner1, &format!("?sessionId={sid}")).await;
        let shape: Vec<(String, i64, i64)> = docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap().to_string(),
                    d["number"].as_i64().unwrap(),
                    minor(&d["totalInclVat"]),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("invoice".to_string(), 2, 360),
                ("credit_note".to_string(), 1, -108),
                ("invoice".to_string(), 1, 108),
            ]
        );
        assert_eq!(docs[1]["creditsInvoiceId"], docs[2]["id"]);
        assert_eq!(docs[1]["reason"], "session corrected");
        assert_eq!(docs[2]["creditedBy"], docs[1]["id"]);
        s.stop().await;
    }
}

#[tokio::test]
async fn concurrent_billing_rounds_issue_each_invoice_once_without_gaps() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        assign_tariff(&s, &w.bo_a, w.s2).await;
        s.clock
            .set(DateTime::parse_from_rfc3339(&slot(1, 10)).unwrap().with_timezone(&Utc));
        for i in 0..12 {
            charge(&s, "CP-A2", &format!("C{i}"), None, 1_000 + i * 100).await;
        }
        let (a, b, c) = tokio::join!(
            invoices::run(&s.state),
            invoices::run(&s.state),
            invoices::run(&s.state)
        );
        assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 12);
        let mut numbers: Vec<i64> = list(&s, &w.bo_a, "?limit=100")
            .await
            .iter()
            .map(|i| i["number"].as_i64().unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=12).collect::<Vec<i64>>());
        s.stop().await;
    }
}

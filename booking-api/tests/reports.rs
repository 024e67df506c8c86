//! Reports over HTTP, on every backend, with histories seeded through the API and the bus and
//! expected figures worked out here by hand: KPIs and series per station time zone (a Berlin
//! station beside Colombo ones), an empty period, scope per role, revenue from real invoices,
//! availability and occupancy from the status history across a daylight-saving change, the
//! heatmap in local hours, CSV; and an owner's recommendations ranked from that history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use evcs_bus::{Event, EventEnvelope, Location, StationId};
use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

const ON_1: Location = Location {
    evse_id: None,
    connector_id: Some(1),
};

async fn deliver(s: &TestServer, station: &str, events: Vec<(DateTime<Utc>, Event)>) {
    let mut last = None;
    for (at, event) in events {
        let e = EventEnvelope::new(StationId::parse(station).unwrap(), at, event);
        last = Some(e.event_id.clone());
        s.state.bus.publish(e).await.expect("publish");
    }
    if let Some(last) = last {
        s.wait_processed(&last).await;
    }
}

fn status(s: &str) -> Event {
    Event::ConnectorStatus {
        location: ON_1,
        status: s.into(),
    }
}

async fn book(s: &TestServer, owner: &str, station: i64, slot_start: &str) -> i64 {
    support::book(s, owner, station, slot_start).await["id"]
        .as_i64()
        .unwrap()
}

async fn post(s: &TestServer, who: &str, path: &str, body: Option<Value>) {
    s.req("POST", &format!("/api/v1{path}"), Some(who), body)
        .await
        .expect(200);
}

async fn report(s: &TestServer, who: &str, path_and_query: &str) -> Value {
    s.req("GET", &format!("/api/v1/reports/{path_and_query}"), Some(who), None)
        .await
        .expect(200)
}

fn values(series: &Value) -> Vec<i64> {
    series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_i64().unwrap())
        .collect()
}

/// A Berlin station of BackOffice A with one bookable connector (CP-A3).
async fn berlin(s: &TestServer, w: &World) -> i64 {
    let mut body = support::station_body("CP-A3", 1, true, 52.52, 13.40);
    body["timeZone"] = json!("Europe/Berlin");
    support::station(s, &w.bo_a, body).await
}

#[tokio::test]
async fn kpis_and_series_count_each_station_in_its_own_time_zone_and_scope() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let s4 = berlin(&s, &w).await;
        // Monday 2030-01-07 in Colombo (UTC+05:30) at s2 (capacity 2, auto-approving).
        let done = book(&s, &w.owner1, w.s2, &slot(0, 8)).await;
        let absent = book(&s, &w.owner2, w.s2, &slot(0, 8)).await;
        let aborted = book(&s, &w.owner1, w.s2, &slot(0, 10)).await;
        let on_site = book(&s, &w.owner2, w.s2, &slot(0, 10)).await;
        let cancelled = book(&s, &w.owner1, w.s2, &slot(0, 12)).await;
        let _approved = book(&s, &w.owner2, w.s2, &slot(0, 12)).await;
        let _pending = book(&s, &w.owner2, w.s1, &slot(0, 9)).await;
        let _tomorrow = book(&s, &w.owner1, w.s2, &slot(1, 8)).await;
        // 21:00 in Berlin on the 7th is 01:30 on the 8th in Colombo.
        let _late = book(&s, &w.owner1, s4, "2030-01-07T20:00:00Z").await;

        s.clock.set(utc(2030, 1, 7, 2, 20));
        post(&s, &w.op_a, &format!("/bookings/{done}/check-in"), None).await;
        s.clock.set(utc(2030, 1, 7, 2, 50));
        post(&s, &w.op_a, &format!("/bookings/{done}/complete"), None).await;
        let no_show = json!({ "kind": "NoShow", "reason": "did not come" });
        post(&s, &w.op_a, &format!("/bookings/{absent}/exceptions"), Some(no_show)).await;
        s.clock.set(utc(2030, 1, 7, 4, 20));
        post(&s, &w.op_a, &format!("/bookings/{aborted}/check-in"), None).await;
        post(&s, &w.op_a, &format!("/bookings/{aborted}/abort"), None).await;
        let cancel = json!({ "kind": "CancelOnSite", "reason": "wrong plug" });
        post(&s, &w.op_a, &format!("/bookings/{on_site}/exceptions"), Some(cancel)).await;
        s.req("DELETE", &format!("/api/v1/bookings/{cancelled}"), Some(&w.admin), None)
            .await
            .expect(200);

        // An ad-hoc session at s2, 10 kWh over an hour at 0.30 EUR/kWh + 20 % VAT: 3.60 EUR.
        let t = s
            .req(
                "POST",
                "/api/v1/tariffs",
                Some(&w.bo_a),
                Some(json!({"name": "energy", "tariff": {"currency": "EUR", "elements": [
                    {"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 20, "step_size": 1}]}]}})),
            )
            .await
            .expect(201);
        s.req(
            "PUT",
            &format!("/api/v1/stations/{}/tariff", w.s2),
            Some(&w.bo_a),
            Some(json!({"tariffId": t["id"]})),
        )
        .await
        .expect(200);
        let start = utc(2030, 1, 7, 6, 0);
        deliver(
            &s,
            "CP-A2",
            vec![
                (
                    start,
                    Event::TransactionStarted {
                        transaction_id: "T-1".into(),
                        id_token: None,
                        location: ON_1,
                        meter_start_wh: Some(1_000),
                        remote_start_id: None,
                    },
                ),
                (
                    start + Duration::hours(1),
                    Event::TransactionEnded {
                        transaction_id: "T-1".into(),
                        id_token: None,
                        location: ON_1,
                        meter_stop_wh: Some(11_000),
                        stop_reason: Some("EVDisconnected".into()),
                    },
                ),
            ],
        )
        .await;
        s.clock.set(utc(2030, 1, 7, 7, 30));
        booking_api::billing::invoices::run(&s.state).await.unwrap();

        // BackOffice A, Monday: s1, s2 and the Berlin station.
        let day = "from=2030-01-07&to=2030-01-07";
        let k = report(&s, &w.bo_a, &format!("summary?{day}")).await;
        assert_eq!(k["stations"], 3);
        let b = &k["bookings"];
        assert_eq!(
            [
                &b["total"],
                &b["pending"],
                &b["approved"],
                &b["completed"],
                &b["noShow"],
                &b["aborted"],
                &b["cancelledOnSite"],
                &b["cancelled"]
            ],
            [
                &json!(8),
                &json!(1),
                &json!(2),
                &json!(1),
                &json!(1),
                &json!(1),
                &json!(1),
                &json!(1)
            ],
            "{k}"
        );
        // Arrived: completed, aborted, cancelled on site (3); outcomes known: 3 + 1 no-show.
        assert_eq!(k["approvals"], 2 + 3 + 1);
        assert_eq!(k["checkInRate"], 0.75);
        assert_eq!(k["noShowRate"], 0.25);
        assert_eq!(k["completionRate"], 0.3333);
        assert_eq!(
            k["revenue"],
            json!([{"amount": "3.60", "minor": 360, "currency": "EUR"}])
        );
        assert_eq!(
            (k["sessions"].as_i64(), k["energyWh"].as_i64()),
            (Some(1), Some(10_000))
        );
        assert_eq!(k["averageSessionSeconds"], 3_600);

        // Scope: an operator of s1 and s2 misses Berlin; BackOffice B sees an empty station.
        let op = report(&s, &w.op_a, &format!("summary?{day}")).await;
        assert_eq!(
            (op["stations"].as_i64(), op["bookings"]["total"].as_i64()),
            (Some(2), Some(7))
        );
        let other = report(&s, &w.bo_b, &format!("summary?{day}")).await;
        assert_eq!(
            (other["stations"].as_i64(), other["bookings"]["total"].as_i64()),
            (Some(1), Some(0))
        );
        assert_eq!((&other["checkInRate"], &other["revenue"]), (&Value::Null, &json!([])));
        assert_eq!(report(&s, &w.admin, &format!("summary?{day}")).await["stations"], 4);

        // Series: Berlin's booking on the 7th (its own date), Colombo's tomorrow on the 8th.
        let q = "timeseries?metric=bookings&from=2030-01-06&to=2030-01-09";
        let all = report(&s, &w.bo_a, q).await;
        assert_eq!(values(&all["series"][0]), vec![0, 8, 1, 0]);
        assert_eq!(values(&report(&s, &w.op_a, q).await["series"][0]), vec![0, 7, 1, 0]);
        let only = report(&s, &w.bo_a, &format!("{q}&stationId={s4}")).await;
        assert_eq!(values(&only["series"][0]), vec![0, 1, 0, 0]);
        let weeks = report(
            &s,
            &w.bo_a,
            "timeseries?metric=bookings&interval=week&from=2030-01-01&to=2030-01-14",
        )
        .await;
        let periods: Vec<&str> = weeks["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["period"].as_str().unwrap())
            .collect();
        assert_eq!(periods, vec!["2029-12-31", "2030-01-07", "2030-01-14"]);
        assert_eq!(values(&weeks["series"][0]), vec![0, 9, 0]);
        let revenue = report(&s, &w.bo_a, "timeseries?metric=revenue&from=2030-01-07&to=2030-01-08").await;
        assert_eq!(revenue["series"][0]["currency"], "EUR");
        assert_eq!(values(&revenue["series"][0]), vec![360, 0]);
        assert_eq!(revenue["series"][0]["points"][0]["amount"], "3.60");
        let energy = report(
            &s,
            &w.bo_a,
            "timeseries?metric=energy&interval=month&from=2030-01-01&to=2030-02-28",
        )
        .await;
        assert_eq!(values(&energy["series"][0]), vec![10_000, 0]);
        // An empty period: every point zero, no currency.
        let empty = report(&s, &w.bo_a, "timeseries?metric=revenue&from=2030-02-01&to=2030-02-03").await;
        assert_eq!(values(&empty["series"][0]), vec![0, 0, 0]);
        assert_eq!(empty["series"][0]["currency"], Value::Null);

        // CSV.
        let csv = s
            .req(
                "GET",
                &format!("/api/v1/reports/summary?{day}&format=csv"),
                Some(&w.bo_a),
                None,
            )
            .await;
        assert_eq!(csv.status, 200);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = csv.body.as_str().unwrap().to_string();
        assert!(text.starts_with("metric,value\r\n"), "{text}");
        assert!(text.contains("\r\ncheckInRate,0.75\r\n"), "{text}");
        assert!(text.contains("\r\nrevenueEUR,3.60\r\n"), "{text}");

        // Refusals.
        for (who, q, status, code) in [
            (&w.owner1, "summary".to_string(), 403, "FORBIDDEN"),
            (&w.op_a, format!("summary?stationId={}", w.s3), 403, "FORBIDDEN"),
            (&w.bo_b, format!("utilization?stationId={s4}"), 403, "FORBIDDEN"),
            (&w.admin, "summary?stationId=99999".to_string(), 404, "NOT_FOUND"),
            (
                &w.admin,
                "summary?from=2030-02-01&to=2030-01-01".to_string(),
                400,
                "VALIDATION_FAILED",
            ),
            (
                &w.admin,
                "summary?from=2029-01-01&to=2030-01-02".to_string(),
                400,
                "VALIDATION_FAILED",
            ),
            (&w.admin, "summary?from=yesterday".to_string(), 400, "VALIDATION_FAILED"),
            (&w.admin, "timeseries".to_string(), 400, "VALIDATION_FAILED"),
            (
                &w.admin,
                "timeseries?metric=bookings&interval=year".to_string(),
                400,
                "VALIDATION_FAILED",
            ),
            (&w.admin, "summary?format=xml".to_string(), 400, "VALIDATION_FAILED"),
        ] {
            s.req("GET", &format!("/api/v1/reports/{q}"), Some(who), None)
                .await
                .problem(status, code);
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn availability_occupancy_and_the_heatmap_follow_local_time_across_daylight_saving() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // The Berlin charger is online with connector 1 Available from the epoch on.
        let s4 = berlin(&s, &w).await;
        // Sunday 2030-03-31: clocks go from 02:00 to 03:00, the local day is 23 hours
        // (2030-03-30 23:00 UTC to 2030-03-31 22:00 UTC).
        s.clock.set(utc(2030, 3, 25, 0, 0));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        // 10:00 local (CEST) is 08:00 UTC.
        let owner = s.login(&w.owner1_nic, support::PASSWORD).await;
        book(&s, &owner, s4, "2030-03-31T08:00:00Z").await;
        deliver(
            &s,
            "CP-A3",
            vec![
                (utc(2030, 3, 31, 8, 0), status("Charging")),
                (utc(2030, 3, 31, 10, 0), status("Available")),
                (utc(2030, 3, 31, 15, 0), Event::StationOffline { reason: None }),
                (
                    utc(2030, 3, 31, 16, 0),
                    Event::StationOnline {
                        ocpp_version: "1.6".into(),
                    },
                ),
            ],
        )
        .await;
        s.clock.set(utc(2030, 4, 2, 0, 0));
        let bo_a = s.login("a@biz.lk", support::PASSWORD).await;

        let u = report(
            &s,
            &bo_a,
            &format!("utilization?stationId={s4}&from=2030-03-30&to=2030-03-31"),
        )
        .await;
        let days = u["stations"][0]["days"].as_array().unwrap().clone();
        assert_eq!(u["stations"][0]["timeZone"], "Europe/Berlin");
        // Saturday: 24 connector hours, no vehicle; 16 slots of one unit (06:00-22:00), none booked.
        assert_eq!(
            (days[0]["observedHours"].as_f64(), days[0]["occupiedHours"].as_f64()),
            (Some(24.0), Some(0.0))
        );
        assert_eq!(
            (days[0]["capacity"].as_i64(), days[0]["reserved"].as_i64()),
            (Some(16), Some(0))
        );
        // Sunday: 23 hours, 2 of them charging; one of 16 slots booked (02:00-03:00 does not
        // exist, but the station opens at 06:00 anyway).
        assert_eq!(
            (days[1]["observedHours"].as_f64(), days[1]["occupiedHours"].as_f64()),
            (Some(23.0), Some(2.0))
        );
        assert_eq!(days[1]["occupiedRatio"], (2.0f64 / 23.0 * 10_000.0).round() / 10_000.0);
        assert_eq!(
            (days[1]["capacity"].as_i64(), days[1]["reserved"].as_i64()),
            (Some(16), Some(1))
        );

        // Availability: online all Saturday (24 h) and all Sunday but one hour (22 of 23 h).
        let k = report(
            &s,
            &bo_a,
            &format!("summary?stationId={s4}&from=2030-03-30&to=2030-03-31"),
        )
        .await;
        assert_eq!(k["availability"], (46.0f64 / 47.0 * 10_000.0).round() / 10_000.0);
        // Complete days are kept; a late change rewrites its day and those after it.
        let kept: i64 = match &s.state.db {
            service_kit::db::Db::Sqlite(p) => sqlx::query_scalar("SELECT COUNT(*) FROM status_days")
                .fetch_one(p)
                .await
                .unwrap(),
            service_kit::db::Db::Postgres(p) => sqlx::query_scalar("SELECT COUNT(*) FROM status_days")
                .fetch_one(p)
                .await
                .unwrap(),
        };
        assert!(kept >= 2, "the two complete days are kept");
        deliver(&s, "CP-A3", vec![(utc(2030, 3, 31, 19, 0), status("Faulted"))]).await;
        let again = report(
            &s,
            &bo_a,
            &format!("summary?stationId={s4}&from=2030-03-30&to=2030-03-31"),
        )
        .await;
        // Faulted from 21:00 local to the end of Sunday (22:00 UTC): 3 hours fewer.
        assert_eq!(again["availability"], (43.0f64 / 47.0 * 10_000.0).round() / 10_000.0);
        // A range that has not begun has no availability yet.
        let ahead = report(
            &s,
            &bo_a,
            &format!("summary?stationId={s4}&from=2030-05-01&to=2030-05-02"),
        )
        .await;
        assert_eq!(ahead["availability"], Value::Null);

        // The heatmap counts the booking at 10:00 local on a Sunday (day 7), not at 08:00 UTC.
        let h = report(
            &s,
            &bo_a,
            &format!("occupancy-heatmap?stationId={s4}&from=2030-03-31&to=2030-03-31"),
        )
        .await;
        let cell = |d: i64, hour: i64| {
            h["cells"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["dayOfWeek"] == d && c["hour"] == hour)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            (cell(7, 10)["reservedPercent"].as_f64(), cell(7, 10)["slots"].as_i64()),
            (Some(100.0), Some(1))
        );
        assert_eq!(cell(7, 8)["reservedPercent"].as_f64(), Some(0.0));
        assert_eq!(cell(7, 3)["reservedPercent"], Value::Null, "closed hours have no slots");
        assert_eq!(cell(1, 10)["slots"], 0, "Monday is outside the range");
        let csv = s
            .req(
                "GET",
                &format!("/api/v1/reports/occupancy-heatmap?stationId={s4}&from=2030-03-31&to=2030-03-31&format=csv"),
                Some(&bo_a),
                None,
            )
            .await;
        let text = csv.body.as_str().unwrap().to_string();
        assert_eq!(text.lines().count(), 169);
        assert!(text.contains("\r\n7,10,1,100\r\n"), "{text}");
        // Charts of the heatmap and a series; the summary has none.
        let base = format!("/api/v1/reports/occupancy-heatmap?stationId={s4}&from=2030-03-31&to=2030-03-31");
        let svg = s.req("GET", &format!("{base}&format=svg"), Some(&bo_a), None).await;
        assert_eq!(
            (svg.status, svg.headers["content-type"].to_str().unwrap()),
            (200, "image/svg+xml")
        );
        let svg = svg.body.as_str().unwrap().to_string();
        assert!(
            svg.starts_with("<svg") && svg.contains("#C81E1E"),
            "the full cell is drawn"
        );
        let png = s
            .req(
                "GET",
                &format!("/api/v1/reports/timeseries?metric=bookings&stationId={s4}&from=2030-03-25&to=2030-03-31&format=png"),
                Some(&bo_a),
                None,
            )
            .await;
        assert_eq!(
            (png.status, png.headers["content-type"].to_str().unwrap()),
            (200, "image/png")
        );
        // The harness keeps a non-JSON body as lossy text: the signature's 0x89 is replaced.
        assert!(png.body.as_str().unwrap()[..12].contains("PNG\r\n\u{1a}\n"));
        s.req(
            "GET",
            &format!("/api/v1/reports/summary?stationId={s4}&format=png"),
            Some(&bo_a),
            None,
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        s.stop().await;
    }
}

#[tokio::test]
async fn recommendations_rank_by_the_station_s_history_at_that_hour_then_distance() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // A station next to s2 whose only bookable connector is Type2.
        let mut body = support::station_body("CP-A5", 1, true, 6.951, 79.871);
        body["connectors"] = json!([{ "connectorId": 1, "type": "Type2", "maxPowerKw": 22 }]);
        let type2 = support::station(&s, &w.bo_a, body).await;
        // Monday 2030-01-07 10:00 in Colombo: s2 full (2 of 2), s1 empty.
        book(&s, &w.owner1, w.s2, &slot(0, 10)).await;
        book(&s, &w.owner2, w.s2, &slot(0, 10)).await;

        // A week later, Sunday evening: next Monday 10:00 at both.
        s.clock.set(utc(2030, 1, 13, 12, 0));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let owner = s.login(&w.owner1_nic, support::PASSWORD).await;
        let vehicle = s
            .req(
                "POST",
                "/api/v1/vehicles",
                Some(&owner),
                Some(json!({"make": "Nissan", "model": "Leaf", "plate": "cab-1234", "batteryKwh": 40, "connectorTypes": ["CCS2"]})),
            )
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        let monday = slot(7, 10);
        // Standing at s2: it is nearer, but it was full last Monday at 10:00.
        let q = format!("lat=6.95&lon=79.87&vehicleId={vehicle}&after={monday}&hours=1");
        let list = s
            .req("GET", &format!("/api/v1/recommendations?{q}"), Some(&owner), None)
            .await
            .expect(200);
        let list = list.as_array().unwrap();
        let stations: Vec<i64> = list.iter().map(|r| r["stationId"].as_i64().unwrap()).collect();
        assert_eq!(
            stations,
            vec![w.s1, w.s2],
            "the Type2 station does not fit, s3 is too far: {list:?}"
        );
        let (first, second) = (&list[0], &list[1]);
        assert_eq!(
            (first["rank"].as_i64(), first["predictedAvailability"].as_f64()),
            (Some(1), Some(1.0))
        );
        assert_eq!(first["basis"], json!({"pastSlots": 1, "reservedShare": 0.0}));
        assert_eq!(second["predictedAvailability"], 0.0);
        assert_eq!(second["basis"], json!({"pastSlots": 1, "reservedShare": 1.0}));
        assert_eq!(second["distanceKm"], 0.0);
        // 0.7 × 0 + 0.3 × (1 - 0 / 25).
        assert_eq!(second["score"], 0.3);
        let reason = second["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("on Mondays at 10:00 the last 1 slots were 100% booked on average"),
            "{reason}"
        );
        assert_eq!(instant(&first["slotStart"]), instant(&json!(monday)));
        assert_eq!(first["connectorTypes"], json!(["CCS2"]));

        // Without a vehicle every connector type counts.
        let any = s
            .req(
                "GET",
                &format!("/api/v1/recommendations?lat=6.95&lon=79.87&after={monday}&hours=1"),
                Some(&owner),
                None,
            )
            .await
            .expect(200);
        assert!(any.as_array().unwrap().iter().any(|r| r["stationId"] == type2), "{any}");

        // Owners only; another owner's vehicle is not found; bad input is named.
        let other = s.login("199012345678", support::PASSWORD).await;
        s.req("GET", &format!("/api/v1/recommendations?{q}"), Some(&other), None)
            .await
            .problem(404, "NOT_FOUND");
        let bo = s.login("a@biz.lk", support::PASSWORD).await;
        s.req("GET", "/api/v1/recommendations?lat=6.95&lon=79.87", Some(&bo), None)
            .await
            .problem(403, "FORBIDDEN");
        for bad in [
            "lat=95&lon=79.87",
            "lat=6.95&lon=79.87&hours=0",
            "lat=6.95&lon=79.87&radiusKm=500",
            "lon=79.87",
        ] {
            s.req("GET", &format!("/api/v1/recommendations?{bad}"), Some(&owner), None)
                .await
                .problem(400, "VALIDATION_FAILED");
        }
        s.stop().await;
    }
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().into()
}

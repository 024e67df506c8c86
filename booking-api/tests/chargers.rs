//! The charger projection fed over the bus, the linking rule, and `GET /chargers`, on every
//! backend; with `EVCS_TEST_MQTT_URL`, a charger published by another MQTT client too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::chargers::store;
use booking_api::clock::Clock;
use chrono::Duration;
use evcs_bus::{Bus, Event, EventEnvelope, Location, MqttBus, MqttConfig, StationId};
use serde_json::json;
use support::{backends, backoffice, epoch, station_body, TestServer};

fn status(station: &str, connector: u32, status: &str, minutes: i64) -> EventEnvelope {
    EventEnvelope::new(
        StationId::parse(station).unwrap(),
        epoch() + Duration::minutes(minutes),
        Event::ConnectorStatus {
            location: Location {
                evse_id: None,
                connector_id: Some(connector),
            },
            status: status.into(),
        },
    )
}

async fn status_of(s: &TestServer, station: &str, connector: i64) -> Option<String> {
    store::connectors(&s.state.db, station)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.connector_id == connector)
        .map(|c| c.status)
}

#[tokio::test]
async fn stations_link_only_to_chargers_and_connectors_the_central_system_reported() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let admin = s.admin().await;
        let (bo, _) = backoffice(&s, &admin, "link@biz.lk").await;
        let create = |body| s.req("POST", "/api/v1/stations", Some(&bo), Some(body));
        // Never seen: 422 UNKNOWN_CHARGER.
        create(station_body("CP-GHOST", 1, false, 6.9, 79.8))
            .await
            .problem(422, "UNKNOWN_CHARGER");
        // Not a station id at all: 422 INVALID_STATION_ID.
        create(station_body("CP/with space", 1, false, 6.9, 79.8))
            .await
            .problem(422, "INVALID_STATION_ID");
        // Known, but connector 2 (the non-bookable one) was never reported.
        s.known_charger("CP-LINK", &[1]).await;
        create(station_body("CP-LINK", 1, false, 6.9, 79.8))
            .await
            .problem(422, "UNKNOWN_CONNECTOR");
        s.known_charger("CP-LINK", &[1, 2]).await;
        let id = create(station_body("CP-LINK", 1, false, 6.9, 79.8)).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        // Connector updates are held to the same rule.
        s.req(
            "PUT",
            &format!("/api/v1/stations/{id}/connectors"),
            Some(&bo),
            Some(json!({ "connectors": [{ "connectorId": 3, "type": "CCS2", "maxPowerKw": 50 }] })),
        )
        .await
        .problem(422, "UNKNOWN_CONNECTOR");
        s.req(
            "PUT",
            &format!("/api/v1/stations/{id}/connectors"),
            Some(&bo),
            Some(json!({ "connectors": [{ "connectorId": 2, "type": "CCS2", "maxPowerKw": 50 }] })),
        )
        .await
        .expect(200);
        s.req(
            "PATCH",
            &format!("/api/v1/stations/{id}"),
            Some(&bo),
            Some(json!({ "name": "Renamed" })),
        )
        .await
        .expect(200);
        // GET /chargers lists what was reported.
        let chargers = s.req("GET", "/api/v1/chargers", Some(&bo), None).await.expect(200);
        let link = chargers
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["centralStationId"] == "CP-LINK")
            .expect("CP-LINK listed")
            .clone();
        assert_eq!(link["online"], true);
        assert_eq!(link["vendor"], "TestVendor");
        assert_eq!(link["connectors"].as_array().unwrap().len(), 2);
        assert_eq!(link["connectors"][1]["connectorId"], 2);
        assert_eq!(link["connectors"][1]["status"], "Available");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_redelivered_event_changes_the_projection_once() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        s.known_charger("CP-DUP", &[1, 2]).await;
        let occupied = status("CP-DUP", 1, "Occupied", 10);
        s.state.bus.publish(occupied.clone()).await.unwrap();
        s.wait_processed(&occupied.event_id).await;
        let before = store::connectors(&s.state.db, "CP-DUP").await.unwrap();
        // Delivered again an hour later (at least once): were it applied a second time, its
        // equal occurredAt would let it rewrite the row and move updated_at.
        s.clock.advance(Duration::hours(1));
        s.state.bus.publish(occupied.clone()).await.unwrap();
        // Events are applied in order: once this one is in, the redelivery was handled.
        let marker = status("CP-DUP", 2, "Charging", 11);
        s.state.bus.publish(marker.clone()).await.unwrap();
        s.wait_processed(&marker.event_id).await;
        let after = store::connectors(&s.state.db, "CP-DUP").await.unwrap();
        assert_eq!(after[0].status, "Occupied");
        assert_eq!(after[0].updated_at, before[0].updated_at);
        assert_ne!(after[1].updated_at, before[1].updated_at);
        // The same, applied directly: the second time is a duplicate.
        use booking_api::chargers::projection::{apply, Applied};
        let direct = status("CP-DUP", 2, "Faulted", 60);
        let now = s.clock.now().timestamp_millis();
        assert_eq!(apply(&s.state.db, &direct, now).await.unwrap(), Applied::Applied);
        assert_eq!(apply(&s.state.db, &direct, now).await.unwrap(), Applied::Duplicate);
        s.stop().await;
    }
}

#[tokio::test]
async fn an_older_status_after_a_newer_one_is_ignored() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        s.known_charger("CP-ORDER", &[1]).await;
        let newer = status("CP-ORDER", 1, "Charging", 30);
        let older = status("CP-ORDER", 1, "Available", 20);
        for e in [&newer, &older] {
            s.state.bus.publish(e.clone()).await.unwrap();
        }
        s.wait_processed(&older.event_id).await;
        assert_eq!(status_of(&s, "CP-ORDER", 1).await.as_deref(), Some("Charging"));
        // The charger went offline at 30; a late "online" from 25 does not revive it.
        let id = StationId::parse("CP-ORDER").unwrap();
        let offline = EventEnvelope::new(
            id.clone(),
            epoch() + Duration::minutes(30),
            Event::StationOffline { reason: None },
        );
        let online = EventEnvelope::new(
            id,
            epoch() + Duration::minutes(25),
            Event::StationOnline {
                ocpp_version: "1.6".into(),
            },
        );
        for e in [&offline, &online] {
            s.state.bus.publish(e.clone()).await.unwrap();
        }
        s.wait_processed(&online.event_id).await;
        let admin = s.admin().await;
        let chargers = s.req("GET", "/api/v1/chargers", Some(&admin), None).await.expect(200);
        assert_eq!(chargers[0]["centralStationId"], "CP-ORDER");
        assert_eq!(chargers[0]["online"], false);
        // An unknown kind is skipped without a trace, and the stream goes on.
        let mut unknown = status("CP-ORDER", 1, "Available", 90);
        unknown.event = Event::Unknown;
        s.state.bus.publish(unknown.clone()).await.unwrap();
        let after = status("CP-ORDER", 1, "Finishing", 40);
        s.state.bus.publish(after.clone()).await.unwrap();
        s.wait_processed(&after.event_id).await;
        assert!(!store::processed(&s.state.db, &unknown.event_id).await.unwrap());
        assert_eq!(status_of(&s, "CP-ORDER", 1).await.as_deref(), Some("Finishing"));
        s.stop().await;
    }
}

#[tokio::test]
async fn owners_and_operators_may_not_list_chargers() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = support::World::build(&s).await;
        for token in [&w.owner1, &w.op_a] {
            s.req("GET", "/api/v1/chargers", Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("GET", "/api/v1/chargers", None, None)
            .await
            .problem(401, "UNAUTHORIZED");
        let all = s.req("GET", "/api/v1/chargers", Some(&w.admin), None).await.expect(200);
        assert_eq!(all.as_array().unwrap().len(), 3);
        s.stop().await;
    }
}

/// With `EVCS_TEST_MQTT_URL` set: the booking API on `--bus mqtt`, and a charger published by
/// another client (as the central system would) reaches its projection. An unreachable broker
/// fails the test.
#[tokio::test]
async fn over_mqtt_a_charger_published_by_another_client_reaches_the_projection() {
    let Some(url) = std::env::var("EVCS_TEST_MQTT_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("EVCS_TEST_MQTT_URL not set: the MQTT scenario did not run");
        return;
    };
    for backend in backends() {
        // A fresh prefix per run keeps sessions and queued events of other runs apart.
        let prefix = format!("evcs-test-{}", uuid_like());
        let (u, p) = (url.clone(), prefix.clone());
        let s = TestServer::start_with(backend, move |c| {
            c.bus.kind = booking_api::config::BusKind::Mqtt;
            c.bus.mqtt_url = Some(service_kit::secrets::Secret::new(u));
            c.bus.topic_prefix = p;
        })
        .await;
        let central = MqttBus::connect(MqttConfig::from_url(&url, &prefix).unwrap(), "central-test")
            .await
            .expect("the broker at EVCS_TEST_MQTT_URL is reachable");
        let id = StationId::parse("CP-MQTT+1").unwrap();
        let boot = EventEnvelope::new(
            id.clone(),
            epoch(),
            Event::Booted {
                vendor: "V".into(),
                model: "M".into(),
                firmware_version: None,
                registration: None,
            },
        );
        let connector = EventEnvelope::new(
            id,
            epoch(),
            Event::ConnectorStatus {
                location: Location {
                    evse_id: Some(1),
                    connector_id: Some(1),
                },
                status: "Available".into(),
            },
        );
        central.publish(boot).await.unwrap();
        central.publish(connector.clone()).await.unwrap();
        s.wait_processed(&connector.event_id).await;
        assert_eq!(status_of(&s, "CP-MQTT+1", 1).await.as_deref(), Some("Available"));
        let admin = s.admin().await;
        let (bo, _) = backoffice(&s, &admin, "mqtt@biz.lk").await;
        let mut body = station_body("CP-MQTT+1", 1, false, 6.9, 79.8);
        body["connectors"] = json!([{ "connectorId": 1, "type": "CCS2", "maxPowerKw": 50 }]);
        s.req("POST", "/api/v1/stations", Some(&bo), Some(body))
            .await
            .expect(201);
        s.stop().await;
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

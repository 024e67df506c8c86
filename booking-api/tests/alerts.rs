//! Alerts over HTTP: raised from the charger's reports on the bus (Faulted connector, fault,
//! security event) and from a long disconnection, one unresolved alert per trouble, the
//! acknowledge/resolve lifecycle with its conflicts and audit, and every role's scope; on every
//! backend, time from the test clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::clock::Clock;
use chrono::Duration;
use evcs_bus::{Event, EventEnvelope, Location, StationId};
use serde_json::{json, Value};
use support::{backends, TestServer, World};

async fn deliver(s: &TestServer, station: &str, events: Vec<Event>) {
    let mut last = None;
    for event in events {
        let e = EventEnvelope::new(StationId::parse(station).unwrap(), s.clock.now(), event);
        last = Some(e.event_id.clone());
        s.state.bus.publish(e).await.expect("publish");
    }
    if let Some(last) = last {
        s.wait_processed(&last).await;
    }
}

fn on(connector: u32) -> Location {
    Location {
        evse_id: None,
        connector_id: Some(connector),
    }
}

fn faulted(connector: u32) -> Event {
    Event::ConnectorStatus {
        location: on(connector),
        status: "Faulted".into(),
    }
}

async fn alerts(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    s.req("GET", &format!("/api/v1/alerts{query}"), Some(token), None)
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn codes(items: &[Value]) -> Vec<String> {
    items.iter().map(|a| a["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn charger_troubles_raise_one_alert_each_until_resolved() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // The same Faulted twice, another connector, a fault, a security event; a NoError fault
        // and an Available status raise nothing.
        deliver(
            &s,
            "CP-A1",
            vec![
                faulted(1),
                faulted(1),
                Event::ConnectorStatus {
                    location: on(1),
                    status: "Available".into(),
                },
                Event::Fault {
                    location: on(1),
                    error_code: "GroundFailure".into(),
                    info: Some("RCD tripped".into()),
                },
                Event::Fault {
                    location: on(1),
                    error_code: "NoError".into(),
                    info: None,
                },
                Event::SecurityEvent {
                    kind: "TamperDetectionActivated".into(),
                    tech_info: None,
                },
            ],
        )
        .await;
        // A charger no station is linked to raises nothing.
        deliver(&s, "CP-UNLINKED", vec![faulted(1)]).await;
        let mine = alerts(&s, &w.op_a, "").await;
        assert_eq!(
            codes(&mine),
            vec!["SECURITY_EVENT", "CHARGER_FAULT", "CONNECTOR_FAULTED"],
            "{mine:?}"
        );
        let fault = &mine[1];
        assert_eq!(fault["stationId"], w.s1);
        assert_eq!(fault["connectorId"], 1);
        assert_eq!(fault["status"], "Open");
        assert!(fault["message"].as_str().unwrap().contains("RCD tripped"), "{fault}");

        // Scope: the station's staff and admins; not the other BackOffice's, not owners.
        assert_eq!(alerts(&s, &w.bo_a, "").await.len(), 3);
        assert_eq!(alerts(&s, &w.admin, "").await.len(), 3);
        assert_eq!(alerts(&s, &w.op_b, "").await.len(), 0);
        assert_eq!(alerts(&s, &w.bo_b, "").await.len(), 0);
        s.req("GET", "/api/v1/alerts", Some(&w.owner1), None)
            .await
            .problem(403, "FORBIDDEN");
        let id = mine[2]["id"].as_i64().unwrap();
        let path = format!("/api/v1/alerts/{id}");
        for t in [&w.op_b, &w.bo_b, &w.owner1] {
            s.req("GET", &path, Some(t), None).await.problem(403, "FORBIDDEN");
            s.req("POST", &format!("{path}/acknowledge"), Some(t), None)
                .await
                .problem(403, "FORBIDDEN");
            s.req("POST", &format!("{path}/resolve"), Some(t), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", "/api/v1/alerts/99999/acknowledge", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req("GET", "/api/v1/alerts?status=Closed", Some(&w.admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");

        // Acknowledge, once; resolve with a note, once; nothing after.
        let acked = s
            .req("POST", &format!("{path}/acknowledge"), Some(&w.op_a), None)
            .await
            .expect(200);
        assert_eq!(acked["status"], "Acknowledged");
        assert_eq!(acked["acknowledgedBy"], w.op_a_id);
        assert!(acked["acknowledgedAt"].is_string());
        s.req("POST", &format!("{path}/acknowledge"), Some(&w.bo_a), None)
            .await
            .problem(409, "ALERT_ALREADY_ACKNOWLEDGED");
        let long = "x".repeat(1_001);
        s.req(
            "POST",
            &format!("{path}/resolve"),
            Some(&w.op_a),
            Some(json!({"note": long})),
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        s.req(
            "POST",
            &format!("{path}/resolve"),
            Some(&w.op_a),
            Some(json!({"fixed": true})),
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        let resolved = s
            .req(
                "POST",
                &format!("{path}/resolve"),
                Some(&w.op_a),
                Some(json!({"note": "connector replaced"})),
            )
            .await
            .expect(200);
        assert_eq!(resolved["status"], "Resolved");
        assert_eq!(resolved["resolvedBy"], w.op_a_id);
        assert_eq!(resolved["resolutionNote"], "connector replaced");
        assert_eq!(resolved["acknowledgedBy"], w.op_a_id, "the acknowledgement is kept");
        for step in ["acknowledge", "resolve"] {
            s.req("POST", &format!("{path}/{step}"), Some(&w.admin), None)
                .await
                .problem(409, "ALERT_RESOLVED");
        }
        // An open alert may be resolved directly, without a body.
        let security = mine[0]["id"].as_i64().unwrap();
        let direct = s
            .req(
                "POST",
                &format!("/api/v1/alerts/{security}/resolve"),
                Some(&w.bo_a),
                None,
            )
            .await
            .expect(200);
        assert_eq!(
            (direct["status"].as_str(), &direct["resolutionNote"]),
            (Some("Resolved"), &Value::Null)
        );

        // Filters.
        assert_eq!(codes(&alerts(&s, &w.op_a, "?status=Open").await), vec!["CHARGER_FAULT"]);
        assert_eq!(alerts(&s, &w.op_a, "?status=Resolved").await.len(), 2);
        assert_eq!(alerts(&s, &w.admin, &format!("?stationId={}", w.s3)).await.len(), 0);

        // Resolved, the same trouble raises a new alert; unresolved, it does not.
        deliver(&s, "CP-A1", vec![faulted(1), faulted(1)]).await;
        let open = alerts(&s, &w.op_a, "?status=Open").await;
        assert_eq!(codes(&open), vec!["CONNECTOR_FAULTED", "CHARGER_FAULT"], "{open:?}");
        assert_ne!(open[0]["id"], json!(id));

        // Both steps were audited with their actor.
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=alert&entityId={id}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let mut actions: Vec<(String, Value)> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_string(), e["actorId"].clone()))
            .collect();
        actions.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            actions,
            vec![
                ("alert.acknowledged".to_string(), json!(w.op_a_id)),
                ("alert.resolved".to_string(), json!(w.op_a_id)),
            ]
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_charger_offline_longer_than_the_threshold_raises_one_alert() {
    for backend in backends() {
        let s = TestServer::start_with(backend, |c| c.policy.alert_offline_minutes = 10).await;
        let w = World::build(&s).await;
        deliver(&s, "CP-A2", vec![Event::StationOffline { reason: None }]).await;
        s.clock.advance(Duration::minutes(9));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert!(alerts(&s, &w.op_a, "").await.is_empty(), "not yet: 9 minutes");
        s.clock.advance(Duration::minutes(2));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let raised = alerts(&s, &w.op_a, "").await;
        assert_eq!(codes(&raised), vec!["CHARGER_OFFLINE"], "{raised:?}");
        assert_eq!(raised[0]["stationId"], w.s2);
        assert!(
            raised[0]["message"].as_str().unwrap().contains("CP-A2"),
            "{}",
            raised[0]
        );
        // Back online: the alert stays until someone resolves it (it records what happened).
        deliver(
            &s,
            "CP-A2",
            vec![Event::StationOnline {
                ocpp_version: "1.6".into(),
            }],
        )
        .await;
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert_eq!(alerts(&s, &w.op_a, "?status=Open").await.len(), 1);
        s.stop().await;
    }
}

//! Several central-system nodes behind one load balancer share a database and a bus: an
//! operator's command reaches the station whichever node the request lands on (the node without
//! the socket forwards it over the bus to the node with it), follows the station when it
//! reconnects to another node, and a station connected nowhere is 409 `STATION_OFFLINE` on every
//! node. On the in-process bus and, when `EVCS_TEST_MQTT_URL` is set, through the MQTT broker
//! (each node its own client, as separate processes would be); on SQLite (one file, two pools)
//! and, when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use central_system::auth::jwt::Role;
use central_system::config::BusKind;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn transports() -> Vec<BusKind> {
    let mut out = vec![BusKind::Inproc];
    match std::env::var("EVCS_TEST_MQTT_URL") {
        Ok(url) if !url.is_empty() => out.push(BusKind::Mqtt),
        _ => eprintln!("MQTT cluster test NOT RUN: EVCS_TEST_MQTT_URL unset"),
    }
    out
}

/// Two nodes on one database and one bus.
async fn cluster(
    backend: &'static str,
    url: Option<String>,
    transport: BusKind,
) -> (TestServer, TestServer, tempfile::TempDir) {
    let shared = tempfile::tempdir().expect("tempdir");
    let url = url.or_else(|| Some(format!("sqlite://{}", shared.path().join("cluster.db").display())));
    let prefix = format!("c{:016x}", rand::random::<u64>());
    let mqtt_url = std::env::var("EVCS_TEST_MQTT_URL").ok();
    let tweak = |name: &str| {
        let (prefix, mqtt_url, name) = (prefix.clone(), mqtt_url.clone(), format!("{prefix}-{name}"));
        move |c: &mut central_system::Config| {
            c.bus = transport;
            c.mqtt_url = mqtt_url;
            c.bus_topic_prefix = prefix;
            c.node_id = Some(name);
            c.call_timeout = 3;
        }
    };
    let (a, b) = match transport {
        BusKind::Inproc => {
            let bus: Arc<dyn evcs_bus::Bus> = Arc::new(evcs_bus::InProcBus::new());
            let a = TestServer::start_on_bus(backend, url.clone(), bus.clone(), tweak("a")).await;
            let b = TestServer::start_on_bus(backend, url, bus, tweak("b")).await;
            (a, b)
        }
        BusKind::Mqtt => {
            let a = TestServer::start_with(backend, url.clone(), tweak("a")).await;
            let b = TestServer::start_with(backend, url, tweak("b")).await;
            (a, b)
        }
    };
    (a, b, shared)
}

/// Answers the next CALL the station gets with `status`, returning the CALL.
async fn answer_next(ws: &mut Ws, status: &str) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let frame: Value = serde_json::from_str(&t).expect("JSON frame");
                if frame[0] == 2 {
                    support::send(ws, &json!([3, frame[1], {"status": status}]).to_string()).await;
                    return frame;
                }
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no CALL reached the station: {other:?}"),
        }
    }
}

/// Sends an UnlockConnector through `node`'s REST API while the station answers; retries while
/// the other node's bus subscription for the station is still being set up (MQTT).
async fn unlock_via(node: &TestServer, ws: &mut Ws, station: &str, connector_field: Value) -> (u16, Value, Value) {
    let path = format!("/api/v1/stations/{station}/commands/unlock");
    for _ in 0..20 {
        let ((status, body), call) = tokio::join!(
            node.api("POST", &path, Some(Role::Operator), Some(connector_field.clone())),
            async {
                tokio::time::timeout(Duration::from_secs(8), answer_next(ws, "Unlocked"))
                    .await
                    .ok()
            }
        );
        if let Some(call) = call {
            return (status, body, call);
        }
        eprintln!("{station}: not reached yet: {status} {body}");
        assert!(
            status == 504 || status == 409,
            "a command that never reached the station must say so: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the command never reached {station}");
}

#[tokio::test]
async fn a_command_reaches_the_station_through_whichever_node_the_request_lands_on() {
    for transport in transports() {
        for (backend, url) in backends().await {
            let (a, b, _shared) = cluster(backend, url, transport).await;
            for (id, subprotocol) in [("CL-16", "ocpp1.6"), ("CL-201", "ocpp2.0.1")] {
                let body = json!({"evseId": 1, "connectorId": 1});
                // Connected to node A; the command goes to node B's API.
                let mut ws = connect(&a.ws_url(id), subprotocol, None).await.expect("connect to A");
                if subprotocol == "ocpp1.6" {
                    boot16(&mut ws).await;
                } else {
                    boot201(&mut ws).await;
                }
                let (status, answer, call) = unlock_via(&b, &mut ws, id, body.clone()).await;
                assert_eq!(status, 200, "{transport:?} {backend} {id}: {answer}");
                assert_eq!(call[2], "UnlockConnector", "{call}");
                assert_eq!(answer["response"]["status"], "Unlocked", "{answer}");
                // Node A serves it directly as well.
                let (status, answer, _) = unlock_via(&a, &mut ws, id, body.clone()).await;
                assert_eq!(status, 200, "{answer}");

                // The station moves to node B: the command sent to node A follows it.
                ws.close(None).await.ok();
                drop(ws);
                eventually(|| async {
                    let (_, s) = a
                        .api("GET", &format!("/api/v1/stations/{id}"), Some(Role::Operator), None)
                        .await;
                    (s["online"] == false).then_some(())
                })
                .await;
                let mut ws = connect(&b.ws_url(id), subprotocol, None).await.expect("connect to B");
                if subprotocol == "ocpp1.6" {
                    boot16(&mut ws).await;
                } else {
                    boot201(&mut ws).await;
                }
                let (status, answer, _) = unlock_via(&a, &mut ws, id, body.clone()).await;
                assert_eq!(status, 200, "{transport:?} {backend} {id} after the move: {answer}");
                assert_eq!(answer["response"]["status"], "Unlocked", "{answer}");

                // Connected nowhere: both nodes say offline at once.
                ws.close(None).await.ok();
                drop(ws);
                eventually(|| async {
                    let (_, s) = b
                        .api("GET", &format!("/api/v1/stations/{id}"), Some(Role::Operator), None)
                        .await;
                    (s["online"] == false).then_some(())
                })
                .await;
                for node in [&a, &b] {
                    let (status, answer) = node
                        .api(
                            "POST",
                            &format!("/api/v1/stations/{id}/commands/unlock"),
                            Some(Role::Operator),
                            Some(body.clone()),
                        )
                        .await;
                    assert_eq!(status, 409, "{answer}");
                    assert_eq!(answer["code"], "STATION_OFFLINE", "{answer}");
                }
            }
            b.stop_and_clean().await;
            a.stop_and_clean().await;
        }
    }
}

//! The live WebSocket over a real socket (tokio-tungstenite): each role sees only its own,
//! sequence numbers, resume and resync, authentication (header, subprotocol, never the URL),
//! the per-account connection limit, a slow reader dropped, token expiry; on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::live::{Audience, Kind, MAX_CONNECTIONS_PER_ACCOUNT, RESUME_BUFFER};
use chrono::Duration;
use evcs_bus::{Event, EventEnvelope, Location, StationId};
use futures_util::StreamExt;
use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects with `headers`; the HTTP status and body of a refused upgrade otherwise.
async fn connect_with(
    s: &TestServer,
    query: &str,
    headers: &[(&str, String)],
) -> Result<(Ws, Option<String>), (u16, Value)> {
    let mut req = format!("ws://{}/api/v1/live{query}", s.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, response)) => {
            let protocol = response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string());
            Ok((ws, protocol))
        }
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("connect failed: {e}"),
    }
}

async fn connect(s: &TestServer, token: &str, query: &str) -> Ws {
    let (mut ws, _) = connect_with(s, query, &[("authorization", format!("Bearer {token}"))])
        .await
        .expect("upgrade");
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    ws
}

/// Connects as soon as the account has a place again (closed sockets give theirs back once
/// the server noticed); a bounded poll.
async fn connect_eventually(s: &TestServer, token: &str) -> Ws {
    for _ in 0..500 {
        if let Ok((mut ws, _)) = connect_with(s, "", &[("authorization", format!("Bearer {token}"))]).await {
            assert_eq!(next(&mut ws).await["type"], "hello");
            return ws;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no live connection place came back");
}

/// The next JSON message (pings skipped); fails after a bounded wait.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("frame");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads until the server closes; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the server closes within 10 s");
        match m {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

fn envelope(station: &str, event: Event, minutes: i64) -> EventEnvelope {
    EventEnvelope::new(
        StationId::parse(station).unwrap(),
        support::epoch() + Duration::days(1) + Duration::minutes(minutes),
        event,
    )
}

fn started(tx: &str, token: &str) -> Event {
    Event::TransactionStarted {
        transaction_id: tx.into(),
        id_token: Some(token.into()),
        location: Location {
            evse_id: None,
            connector_id: Some(1),
        },
        meter_start_wh: Some(0),
        remote_start_id: None,
    }
}

fn summary(tx: &str, wh: i64, minutes: i64) -> Event {
    Event::MeterSummary {
        transaction_id: tx.into(),
        location: Location {
            evse_id: None,
            connector_id: Some(1),
        },
        energy_wh: Some(wh),
        power_w: Some(7000.0),
        soc_percent: Some(50.0),
        current_a: Some(30.0),
        at: support::epoch() + Duration::days(1) + Duration::minutes(minutes),
    }
}

fn ended(tx: &str, token: &str, wh: i64) -> Event {
    Event::TransactionEnded {
        transaction_id: tx.into(),
        id_token: Some(token.into()),
        location: Location {
            evse_id: None,
            connector_id: Some(1),
        },
        meter_stop_wh: Some(wh),
        stop_reason: Some("Local".into()),
    }
}

async fn deliver(s: &TestServer, e: EventEnvelope) {
    let id = e.event_id.clone();
    s.state.bus.publish(e).await.unwrap();
    s.wait_processed(&id).await;
}

async fn book(s: &TestServer, owner: &str, station: i64, hour: u32) -> (i64, String) {
    let b = s
        .req(
            "POST",
            "/api/v1/bookings",
            Some(owner),
            Some(json!({ "stationId": station, "slotStart": slot(1, hour) })),
        )
        .await
        .expect(201);
    (b["id"].as_i64().unwrap(), b["idToken"].as_str().unwrap().to_string())
}

/// `(type, the data's id or connector)` of a message, for compact assertions.
fn what(m: &Value) -> (String, String) {
    let data = &m["data"];
    let key = match m["type"].as_str().unwrap() {
        "session" => format!(
            "tx {} {}",
            data["transactionId"].as_str().unwrap(),
            data["status"].as_str().unwrap()
        ),
        "booking" => format!("booking {} {}", data["id"], data["status"].as_str().unwrap()),
        "connector" => format!(
            "station {} connector {} {}",
            data["stationId"],
            data["connectorId"],
            data["status"].as_str().unwrap()
        ),
        "alert" if data["code"].is_string() => format!(
            "alert {} station {} {}",
            data["code"].as_str().unwrap(),
            data["stationId"],
            data["status"].as_str().unwrap()
        ),
        other => other.to_string(),
    };
    (m["type"].as_str().unwrap().to_string(), key)
}

#[tokio::test]
async fn each_role_sees_only_its_own_and_resumes_or_resyncs() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let (b1, t1) = book(&s, &w.owner1, w.s2, 10).await;
        let (b2, t2) = book(&s, &w.owner2, w.s2, 11).await;
        let mut admin = connect(&s, &w.admin, "").await;
        let mut owner1 = connect(&s, &w.owner1, "").await;
        let mut owner2 = connect(&s, &w.owner2, "").await;
        let mut op_a = connect(&s, &w.op_a, "").await;
        let mut bo_a = connect(&s, &w.bo_a, "").await;
        let mut op_b = connect(&s, &w.op_b, "").await;
        let mut bo_b = connect(&s, &w.bo_b, "").await;

        // Owner 1's charge starts at station A2.
        deliver(&s, envelope("CP-A2", started("1", &t1), 0)).await;
        // A connector of B's station changes.
        deliver(
            &s,
            envelope(
                "CP-B1",
                Event::ConnectorStatus {
                    location: Location {
                        evse_id: None,
                        connector_id: Some(1),
                    },
                    status: "Faulted".into(),
                },
                1,
            ),
        )
        .await;
        // Owner 2's charge starts at station A2.
        deliver(&s, envelope("CP-A2", started("2", &t2), 2)).await;
        // Owner 1's meter moves.
        deliver(&s, envelope("CP-A2", summary("1", 1500, 5), 5)).await;

        let booking = |id: i64, st: &str| ("booking".to_string(), format!("booking {id} {st}"));
        let session = |tx: &str, st: &str| ("session".to_string(), format!("tx {tx} {st}"));
        let connector =
            |station: i64, st: &str| ("connector".to_string(), format!("station {station} connector 1 {st}"));
        // Each client's messages, in order; the next one proves nothing came in between.
        let m = next(&mut owner1).await;
        assert_eq!(what(&m), booking(b1, "CheckedIn"));
        let seq_first = m["seq"].as_u64().unwrap();
        assert_eq!(what(&next(&mut owner1).await), session("1", "Active"));
        let last = next(&mut owner1).await;
        assert_eq!(what(&last), session("1", "Active"));
        assert_eq!(last["data"]["energyWh"].as_i64(), Some(1500));
        assert!(last["seq"].as_u64().unwrap() > seq_first);

        assert_eq!(what(&next(&mut owner2).await), booking(b2, "CheckedIn"));
        assert_eq!(what(&next(&mut owner2).await), session("2", "Active"));

        for staff in [&mut op_a, &mut bo_a] {
            assert_eq!(what(&next(staff).await), session("1", "Active"));
            assert_eq!(what(&next(staff).await), session("2", "Active"));
            assert_eq!(what(&next(staff).await), session("1", "Active"));
        }
        // The Faulted connector also raises an alert, sent to that station's staff only.
        let alert = |station: i64| {
            (
                "alert".to_string(),
                format!("alert CONNECTOR_FAULTED station {station} Open"),
            )
        };
        for staff in [&mut op_b, &mut bo_b] {
            assert_eq!(what(&next(staff).await), connector(w.s3, "Faulted"));
            assert_eq!(what(&next(staff).await), alert(w.s3));
        }
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(what(&next(&mut admin).await));
        }
        assert_eq!(
            seen,
            vec![
                booking(b1, "CheckedIn"),
                session("1", "Active"),
                connector(w.s3, "Faulted"),
                alert(w.s3),
                booking(b2, "CheckedIn"),
                session("2", "Active"),
                session("1", "Active"),
            ]
        );
        // A last message for everyone in A's scope and B's: nothing else was queued before it.
        deliver(
            &s,
            envelope(
                "CP-A2",
                Event::ConnectorStatus {
                    location: Location {
                        evse_id: None,
                        connector_id: Some(2),
                    },
                    status: "Occupied".into(),
                },
                6,
            ),
        )
        .await;
        s.state.live.publish(
            Kind::Alert,
            Audience {
                owner_id: None,
                station_id: Some(w.s3),
            },
            &json!({ "message": "B's alert" }),
        );
        for staff in [&mut op_a, &mut bo_a] {
            let m = next(staff).await;
            assert_eq!(
                (m["type"].as_str(), m["data"]["connectorId"].as_i64()),
                (Some("connector"), Some(2))
            );
        }
        for staff in [&mut op_b, &mut bo_b] {
            let m = next(staff).await;
            assert_eq!(
                (m["type"].as_str(), m["data"]["message"].as_str()),
                (Some("alert"), Some("B's alert"))
            );
        }

        // Resume: owner 1 leaves after `last`, its charge ends meanwhile, it comes back.
        let stream = {
            let (mut ws, _) = connect_with(&s, "", &[("authorization", format!("Bearer {}", w.owner1))])
                .await
                .unwrap();
            let hello = next(&mut ws).await;
            hello["stream"].as_str().unwrap().to_string()
        };
        let since = last["seq"].as_u64().unwrap();
        drop(owner1);
        deliver(&s, envelope("CP-A2", ended("1", &t1, 2000), 30)).await;
        let mut back = connect(&s, &w.owner1, &format!("?since={since}&stream={stream}")).await;
        assert_eq!(what(&next(&mut back).await), booking(b1, "Completed"));
        let done = next(&mut back).await;
        assert_eq!(what(&done), session("1", "Completed"));
        assert_eq!(done["data"]["energyWh"].as_i64(), Some(2000));
        // Then live again.
        deliver(&s, envelope("CP-A2", summary("2", 100, 31), 31)).await;
        deliver(&s, envelope("CP-A2", ended("2", &t2, 100), 32)).await;
        s.req("DELETE", &format!("/api/v1/bookings/{b1}"), Some(&w.admin), None)
            .await
            .problem(409, "ILLEGAL_TRANSITION");
        let (b3, _) = book(&s, &w.owner1, w.s2, 14).await;
        assert_eq!(what(&next(&mut back).await), booking(b3, "Approved"));

        // Another stream's number: resync.
        let (mut other, _) = connect_with(
            &s,
            &format!("?since={since}&stream=0000000000000000"),
            &[("authorization", format!("Bearer {}", w.owner1))],
        )
        .await
        .unwrap();
        let hello = next(&mut other).await;
        let resync = next(&mut other).await;
        assert_eq!(
            (resync["type"].as_str(), resync["seq"].as_u64()),
            (Some("resync"), hello["seq"].as_u64())
        );
        // The ring moved past the client: resync.
        for i in 0..=RESUME_BUFFER {
            s.state
                .live
                .publish(Kind::Alert, Audience::default(), &json!({ "i": i }));
        }
        let (mut late, _) = connect_with(
            &s,
            &format!("?since={since}&stream={stream}"),
            &[("authorization", format!("Bearer {}", w.owner1))],
        )
        .await
        .unwrap();
        next(&mut late).await;
        assert_eq!(next(&mut late).await["type"], "resync");
        s.stop().await;
    }
}

#[tokio::test]
async fn authentication_limits_slow_readers_and_expiry() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let admin = s.admin().await;
        let bearer = ("authorization", format!("Bearer {admin}"));
        // No token, a bad token: 401 before the upgrade.
        let (status, body) = connect_with(&s, "", &[]).await.err().unwrap();
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
        let (status, _) = connect_with(&s, "", &[("authorization", "Bearer nope".into())])
            .await
            .err()
            .unwrap();
        assert_eq!(status, 401);
        // Never in the URL.
        let (status, body) = connect_with(&s, &format!("?access_token={admin}"), &[])
            .await
            .err()
            .unwrap();
        assert_eq!((status, body["code"].as_str()), (400, Some("TOKEN_IN_QUERY")));
        let (status, body) = connect_with(&s, "?since=abc", std::slice::from_ref(&bearer))
            .await
            .err()
            .unwrap();
        assert_eq!((status, body["code"].as_str()), (400, Some("VALIDATION_FAILED")));
        // A browser: the token as a subprotocol; the server selects only evcs.live.v1.
        let (mut ws, protocol) = connect_with(
            &s,
            "",
            &[("sec-websocket-protocol", format!("evcs.live.v1, bearer.{admin}"))],
        )
        .await
        .unwrap();
        assert_eq!(protocol.as_deref(), Some("evcs.live.v1"));
        assert_eq!(next(&mut ws).await["type"], "hello");
        let (status, body) = connect_with(&s, "", &[("sec-websocket-protocol", format!("other, bearer.{admin}"))])
            .await
            .err()
            .unwrap();
        assert_eq!((status, body["code"].as_str()), (400, Some("UNSUPPORTED_SUBPROTOCOL")));
        // A plain GET is no WebSocket.
        s.req("GET", "/api/v1/live", Some(&admin), None)
            .await
            .problem(400, "NOT_A_WEBSOCKET");
        // Connections per account: `ws` holds one place.
        let mut open = Vec::new();
        for _ in 1..MAX_CONNECTIONS_PER_ACCOUNT {
            open.push(connect(&s, &admin, "").await);
        }
        let (status, body) = connect_with(&s, "", std::slice::from_ref(&bearer)).await.err().unwrap();
        assert_eq!((status, body["code"].as_str()), (429, Some("LIVE_CONNECTION_LIMIT")));
        // A place comes back when a socket closes.
        let mut gone = open.pop().unwrap();
        gone.close(None).await.unwrap();
        let mut slow = connect_eventually(&s, &admin).await;
        // A reader that falls more than the backlog behind is dropped (4008), not buffered: on
        // this single-threaded runtime nothing is sent while the loop publishes.
        for i in 0..(booking_api::live::SEND_BACKLOG + 10) {
            s.state
                .live
                .publish(Kind::Alert, Audience::default(), &json!({ "i": i }));
        }
        assert_eq!(close_code(&mut slow).await, Some(4008));
        assert_eq!(close_code(&mut ws).await, Some(4008));
        drop(open);
        // The token expires: the socket closes with 4001 at its next message.
        let mut expiring = connect_eventually(&s, &admin).await;
        s.clock.advance(Duration::days(61));
        s.state.live.publish(Kind::Alert, Audience::default(), &json!({}));
        assert_eq!(close_code(&mut expiring).await, Some(4001));
        s.stop().await;
    }
}

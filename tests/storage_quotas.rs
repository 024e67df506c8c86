//! Storage quotas: what a charger can make the central system store is bounded in bytes,
//! whoever it is, and stations that are not Accepted are limited before they cost anything.
//!
//! Run on SQLite and, with `EVCS_TEST_POSTGRES_URL` set, on PostgreSQL too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use central_system::auth::jwt::Role;
use central_system::config::UnknownStations;
use central_system::store::frames::FrameRow;
use central_system::store::retention::{Scope, Table};
use central_system::store::types::Ts;
use central_system::store::Db;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// A CALL of exactly `size` bytes (a DataTransfer padded with `data`).
fn call_of_size(id: &str, size: usize) -> String {
    let empty = format!(r#"[2,"{id}","DataTransfer",{{"vendorId":"v","data":""}}]"#);
    let pad = "x".repeat(size - empty.len());
    let text = format!(r#"[2,"{id}","DataTransfer",{{"vendorId":"v","data":"{pad}"}}]"#);
    assert_eq!(text.len(), size);
    text
}

/// The next message that is not a ping (None: the connection ended).
async fn next_message(ws: &mut Ws) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("timed out")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

async fn frame_bytes(server: &TestServer, scope: Scope<'_>) -> i64 {
    server
        .state
        .store
        .stored_bytes(Table::Frames, scope)
        .await
        .expect("bytes")
}

/// The acceptance test of issue 9: 1,000 frames of (just under) 1 MiB from 50 unregistered ids
/// under `--unknown-stations pending` leave the frame log within `--pending-log-bytes` (plus
/// one frame), and the database small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_1mib_frames_from_unregistered_ids_stay_within_the_pending_budget() {
    const IDS: usize = 50;
    const FRAMES_PER_ID: usize = 20;
    const FRAME: usize = (1 << 20) - 64;
    const BUDGET: i64 = 512 << 10;
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            c.unknown_stations = UnknownStations::Pending;
            c.pending_limit = IDS as i64;
            c.pending_log_bytes = BUDGET;
            // The storage bound is under test here, not the rate limits (tested below).
            c.pending_message_rate = 0;
            c.pending_connect_rate = 0;
        })
        .await;
        server.flush().await;
        let before = database_size(&server).await;
        let started = std::time::Instant::now();
        let frame = Arc::new(call_of_size("big", FRAME));
        let mut tasks = Vec::new();
        // Five stations at a time, each sending its frames and reading every answer.
        for lane in 0..5 {
            let (url, frame) = (server.ws_url(""), frame.clone());
            tasks.push(tokio::spawn(async move {
                let mut answered = 0;
                for i in (lane..IDS).step_by(5) {
                    let mut ws = connect(&format!("{url}ATTACK-{i}"), "ocpp1.6", None)
                        .await
                        .expect("connect");
                    for _ in 0..FRAMES_PER_ID {
                        ws.send(Message::Text(frame.as_str().into())).await.expect("send");
                        let answer = recv(&mut ws).await;
                        assert_eq!(answer[0], 4, "a refused frame gets a CALLERROR: {answer}");
                        answered += 1;
                    }
                    let _ = ws.close(None).await;
                }
                answered
            }));
        }
        let mut answered = 0;
        for t in tasks {
            answered += tokio::time::timeout(Duration::from_secs(600), t)
                .await
                .expect("bounded")
                .expect("task");
        }
        assert_eq!(answered, IDS * FRAMES_PER_ID);
        server.flush().await;
        let stored = frame_bytes(&server, Scope::All).await;
        let after = database_size(&server).await;
        println!(
            "{backend}: {answered} frames of {FRAME} bytes in {:.1?}; frame log {stored} bytes \
             (budget {BUDGET}); database {before} -> {after} bytes",
            started.elapsed()
        );
        assert!(stored <= BUDGET + 65_536, "{backend}: {stored} bytes logged");
        assert!(
            after - before <= 4 * BUDGET,
            "{backend}: the database grew by {} bytes",
            after - before
        );
        server.stop_and_clean().await;
    }
}

/// SQLite: the database and WAL file sizes after a checkpoint; PostgreSQL: the frame log's
/// total relation size (table, TOAST and indexes).
async fn database_size(server: &TestServer) -> i64 {
    match server.state.store.db() {
        Db::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
                .expect("checkpoint");
            let file = server.dir.path().join("central-system.db");
            let len = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len() as i64).unwrap_or(0);
            len(file.clone()) + len(file.with_extension("db-wal"))
        }
        Db::Postgres(pool) => sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size('ocpp_frames')")
            .fetch_one(pool)
            .await
            .expect("size"),
    }
}

/// Oldest first, by rows and by bytes, per station and in total, on each backend.
#[tokio::test]
async fn pruning_keeps_the_newest_rows_within_rows_and_bytes() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.frame_log = false).await;
        let store = &server.state.store;
        let row = |station: &str, size: usize| FrameRow::new(Arc::from(station), "in", &"f".repeat(size), 1000);
        // A: sizes 100, 200, 300, 400 (oldest first); B: 50 x 2.
        let rows: Vec<FrameRow> = [("A", 100), ("B", 50), ("A", 200), ("A", 300), ("B", 50), ("A", 400)]
            .iter()
            .map(|(s, n)| row(s, *n))
            .collect();
        store.insert_frames(&rows).await.unwrap();
        let sizes = |frames: Vec<central_system::store::frames::LoggedFrame>| {
            frames.iter().map(|f| f.frame.len()).collect::<Vec<_>>()
        };
        // 750 bytes: 400 + 300 fit, 200 would not.
        let pruned = store
            .prune_oldest(Table::Frames, Scope::Station("A"), 10, 750)
            .await
            .unwrap();
        assert_eq!(
            (pruned.rows, pruned.bytes, pruned.kept_bytes),
            (2, 300, 700),
            "{backend}"
        );
        assert_eq!(
            sizes(store.frames("A", None, 10).await.unwrap()),
            vec![400, 300],
            "{backend}"
        );
        // One row.
        store
            .prune_oldest(Table::Frames, Scope::Station("A"), 1, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            sizes(store.frames("A", None, 10).await.unwrap()),
            vec![400],
            "{backend}"
        );
        assert_eq!(
            sizes(store.frames("B", None, 10).await.unwrap()),
            vec![50, 50],
            "{backend}: B untouched"
        );
        // In total: the oldest rows go whatever their station (B's first, then A's).
        let pruned = store
            .prune_oldest(Table::Frames, Scope::All, i64::MAX, 450)
            .await
            .unwrap();
        assert_eq!((pruned.rows, pruned.kept_bytes), (1, 450), "{backend}");
        assert_eq!(frame_bytes(&server, Scope::Station("B")).await, 50, "{backend}");
        // Nothing over budget: nothing deleted.
        assert_eq!(
            store
                .prune_oldest(Table::Frames, Scope::All, i64::MAX, 450)
                .await
                .unwrap()
                .rows,
            0
        );
        server.stop_and_clean().await;
    }
}

/// A frame over `--max-frame-bytes` is logged cut to that size and marked, and each station's
/// log stays within its byte budget.
#[tokio::test]
async fn frame_log_truncates_large_frames_and_keeps_station_budgets() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            c.max_frame_bytes = 1000;
            c.frame_log_station_bytes = 4000;
        })
        .await;
        let mut ws = connect(&server.ws_url("TRUNC-1"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        send(&mut ws, &call_of_size("huge", 5000)).await;
        let answer = recv(&mut ws).await;
        assert_eq!(
            (answer[0].clone(), answer[2].clone()),
            (json!(4), json!("GenericError"))
        );
        server.flush().await;
        let page = server
            .admin("GET", "/api/v1/stations/TRUNC-1/frames?limit=2", None, 200)
            .await;
        let big = &page["items"][1];
        assert_eq!(big["direction"], "in", "{backend}: {page}");
        assert_eq!(
            (big["truncated"].clone(), big["originalSize"].clone()),
            (json!(true), json!(5000))
        );
        assert_eq!(big["frame"].as_str().unwrap().len(), 1000);
        assert_eq!(
            page["items"][0]["truncated"],
            json!(false),
            "{backend}: the answer is whole"
        );

        // 60 frames of about 400 bytes each way, 48 KB in all: the station is pruned to its
        // 4,000 bytes whenever it logged half that since, so it never holds 1.5 budgets.
        for i in 0..60 {
            let answer = call(
                &mut ws,
                &format!("pad-{i:03}"),
                "DataTransfer",
                json!({"vendorId": "v", "data": "y".repeat(330)}),
            )
            .await;
            assert_eq!(answer[0], 3, "{answer}");
        }
        server.flush().await;
        let stored = eventually(|| async {
            let bytes = frame_bytes(&server, Scope::Station("TRUNC-1")).await;
            (bytes <= 6000).then_some(bytes)
        })
        .await;
        assert!(stored > 2000, "{backend}: pruned to the budget, not below it: {stored}");
        let page = server
            .admin("GET", "/api/v1/stations/TRUNC-1/frames?limit=1", None, 200)
            .await;
        assert!(
            page["items"][0]["frame"].as_str().unwrap().contains("pad-059"),
            "{backend}: {page}"
        );
        server.stop_and_clean().await;
    }
}

/// The frame log's total budget holds across stations.
#[tokio::test]
async fn frame_log_total_budget_prunes_the_oldest_frames_of_any_station() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.frame_log_total_bytes = 6000).await;
        for station in ["TOTAL-1", "TOTAL-2", "TOTAL-3"] {
            let mut ws = connect(&server.ws_url(station), "ocpp1.6", None)
                .await
                .expect("connect");
            boot16(&mut ws).await;
            for i in 0..10 {
                call_ok(
                    &mut ws,
                    &format!("t{i}"),
                    "DataTransfer",
                    json!({"vendorId": "v", "data": "z".repeat(300)}),
                )
                .await;
            }
            server.flush().await;
        }
        let total = eventually(|| async {
            let bytes = frame_bytes(&server, Scope::All).await;
            (bytes <= 6000).then_some(bytes)
        })
        .await;
        assert!(total > 0, "{backend}");
        // The newest station's frames survive; the oldest station's went first.
        assert!(frame_bytes(&server, Scope::Station("TOTAL-3")).await > 0, "{backend}");
        assert_eq!(frame_bytes(&server, Scope::Station("TOTAL-1")).await, 0, "{backend}");
        server.stop_and_clean().await;
    }
}

/// Stored messages: a payload over `--message-max-bytes` is stored cut and marked, a station
/// stays within its budget, and the retention sweep removes old ones.
#[tokio::test]
async fn stored_messages_are_truncated_budgeted_and_expire() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            c.message_max_bytes = 200;
            c.message_station_bytes = 2000;
        })
        .await;
        let mut ws = connect(&server.ws_url("MSG-1"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        call_ok(
            &mut ws,
            "big",
            "DataTransfer",
            json!({"vendorId": "v", "data": "d".repeat(500)}),
        )
        .await;
        let page = server.admin("GET", "/api/v1/stations/MSG-1/messages", None, 200).await;
        let m = &page["items"][0];
        assert_eq!(
            (m["truncated"].clone(), m["originalSize"].clone()),
            (json!(true), json!(526)),
            "{backend}: {page}"
        );
        assert_eq!(m["payload"].as_str().unwrap().len(), 200);

        for i in 0..40 {
            call_ok(
                &mut ws,
                &format!("m{i}"),
                "DataTransfer",
                json!({"vendorId": "v", "messageId": format!("n{i:02}"), "data": "d".repeat(100)}),
            )
            .await;
        }
        let stored = server
            .state
            .store
            .stored_bytes(Table::Messages, Scope::Station("MSG-1"))
            .await
            .unwrap();
        // Pruned to the budget whenever half of it was added since: never above 1.5 budgets.
        assert!((1000..=3000).contains(&stored), "{backend}: {stored}");
        let page = server
            .admin("GET", "/api/v1/stations/MSG-1/messages?limit=1", None, 200)
            .await;
        assert!(
            page["items"][0]["payload"].as_str().unwrap().contains("n39"),
            "{backend}: newest kept"
        );

        // The sweep trims to the budget, and after the retention nothing is left.
        let now = Ts::now();
        server.state.messages.sweep(&server.state.store, now).await.unwrap();
        let stored = server
            .state
            .store
            .stored_bytes(Table::Messages, Scope::Station("MSG-1"))
            .await
            .unwrap();
        assert!(stored <= 2000, "{backend}: {stored}");
        let later = Ts::from_datetime(now.to_datetime() + chrono::Duration::days(91));
        server.state.messages.sweep(&server.state.store, later).await.unwrap();
        let page = server.admin("GET", "/api/v1/stations/MSG-1/messages", None, 200).await;
        assert_eq!(page["items"], json!([]), "{backend}");
        server.stop_and_clean().await;
    }
}

/// `--pending-limit`: beyond it, a new id is refused at the upgrade with a 503 problem.
#[tokio::test]
async fn pending_registrations_are_capped() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            c.unknown_stations = UnknownStations::Pending;
            c.pending_limit = 3;
        })
        .await;
        let mut open = Vec::new();
        for i in 0..3 {
            open.push(
                connect(&server.ws_url(&format!("NEW-{i}")), "ocpp1.6", None)
                    .await
                    .expect("within the cap"),
            );
        }
        let err = connect(&server.ws_url("NEW-3"), "ocpp1.6", None)
            .await
            .expect_err("over the cap");
        assert_eq!(refused_status(&err), Some(503), "{backend}: {err}");
        if let tokio_tungstenite::tungstenite::Error::Http(response) = &err {
            assert_eq!(response.headers()["retry-after"], "60");
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["code"], "PENDING_LIMIT");
        }
        let (status, _) = server
            .api("GET", "/api/v1/stations/NEW-3", Some(Role::Admin), None)
            .await;
        assert_eq!(status, 404, "{backend}: not registered");
        // Accepting one makes room.
        server
            .admin(
                "PATCH",
                "/api/v1/stations/NEW-0",
                Some(json!({"registrationStatus": "Accepted"})),
                200,
            )
            .await;
        connect(&server.ws_url("NEW-3"), "ocpp1.6", None)
            .await
            .expect("room again");
        server.stop_and_clean().await;
    }
}

/// Connection attempts of ids that are unknown or not Accepted are limited per id and per
/// client address.
#[tokio::test]
async fn connection_attempts_of_stations_that_are_not_accepted_are_limited() {
    let server = TestServer::start_with("sqlite", None, |c| {
        c.unknown_stations = UnknownStations::Pending;
        c.pending_connect_rate = 3;
    })
    .await;
    let _a = connect(&server.ws_url("RATE-1"), "ocpp1.6", None).await.expect("first");
    let _b = connect(&server.ws_url("RATE-2"), "ocpp1.6", None)
        .await
        .expect("second");
    let _c = connect(&server.ws_url("RATE-1"), "ocpp1.6", None).await.expect("third");
    // The address has used its three attempts this minute, whichever the id.
    let err = connect(&server.ws_url("RATE-3"), "ocpp1.6", None)
        .await
        .expect_err("fourth");
    assert_eq!(refused_status(&err), Some(429), "{err}");
    if let tokio_tungstenite::tungstenite::Error::Http(response) = &err {
        assert_eq!(response.headers()["retry-after"], "60");
    }
    // Accepted stations are not counted.
    server
        .admin(
            "PATCH",
            "/api/v1/stations/RATE-2",
            Some(json!({"registrationStatus": "Accepted"})),
            200,
        )
        .await;
    connect(&server.ws_url("RATE-2"), "ocpp1.6", None)
        .await
        .expect("accepted");
    server.stop_and_clean().await;
}

/// A station that is not Accepted may send `--pending-message-rate` messages per second (bursts
/// of twice as many); beyond that its connection is closed with 1008.
#[tokio::test]
async fn messages_of_stations_that_are_not_accepted_are_rate_limited() {
    let server = TestServer::start_with("sqlite", None, |c| {
        c.unknown_stations = UnknownStations::Pending;
        c.pending_message_rate = 1;
    })
    .await;
    let mut ws = connect(&server.ws_url("RATE-9"), "ocpp1.6", None)
        .await
        .expect("connect");
    // A burst of two is answered (a Pending boot, then a refused heartbeat)...
    assert_eq!(boot16(&mut ws).await["status"], "Pending");
    assert_eq!(call(&mut ws, "hb", "Heartbeat", json!({})).await[0], 4);
    // ...a third at once closes the connection.
    send(&mut ws, r#"[2,"hb2","Heartbeat",{}]"#).await;
    match next_message(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a close frame, got {other:?}"),
    }
    server.stop_and_clean().await;
}

/// A frame announcing more than the WebSocket message limit gets close code 1009 (Message Too
/// Big), at wire level: a raw upgrade, then a frame header with a 2 MiB length and no payload.
#[tokio::test]
async fn a_frame_above_the_websocket_limit_gets_close_code_1009() {
    let server = TestServer::start("sqlite", None).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ocpp/BIG-1 HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "connection closed during the handshake"
        );
        head.push(byte[0]);
        assert!(head.len() < 4096);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    // FIN + text, masked, 64-bit length 2 MiB, mask key; the payload never follows.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(2u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&header).await.unwrap();
    let mut close = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut close))
        .await
        .expect("an answer in time")
        .expect("a close frame");
    assert_eq!(close[0], 0x88, "a close frame: {close:?}");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1009, "close code");
    server.stop_and_clean().await;
}

/// A message just under the limit (1 MiB) is let in and answered.
#[tokio::test]
async fn a_1mib_message_is_let_in() {
    let server = TestServer::start("sqlite", None).await;
    let mut ws = connect(&server.ws_url("BIG-2"), "ocpp1.6", None)
        .await
        .expect("connect");
    boot16(&mut ws).await;
    send(&mut ws, &call_of_size("m", 1 << 20)).await;
    let answer = recv(&mut ws).await;
    assert_eq!(
        (answer[0].clone(), answer[1].clone()),
        (json!(4), json!("m")),
        "{answer}"
    );
    server.stop_and_clean().await;
}

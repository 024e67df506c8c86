//! Booking-creation benchmark (ignored by default): concurrent clients over keep-alive HTTP
//! connections book distinct slot units; prints throughput and latency per backend and checks
//! that no slot holds more bookings than its capacity.
//!
//! `cargo test --release -p booking-api --test bench -- --ignored --nocapture`
//! (with `EVCS_TEST_POSTGRES_URL` set it runs on PostgreSQL too; `BENCH_CLIENTS` and
//! `BENCH_BOOKINGS` change the load).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use service_kit::db::on_db;
use std::time::{Duration, Instant};
use support::{backends, backoffice, owner, slot, station, TestServer};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly in release mode"]
async fn booking_creation_throughput() {
    let clients = env("BENCH_CLIENTS", 32);
    let total = env("BENCH_BOOKINGS", 5_000);
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let admin = s.admin().await;
        let (bo, _) = backoffice(&s, &admin, "bench@biz.lk").await;
        // 10 stations x 20 connectors x 16 slots a day x 7 days = 22,400 units.
        let mut stations = Vec::new();
        for i in 0..10 {
            let connectors: Vec<_> = (1..=20)
                .map(|c| json!({ "connectorId": c, "type": "CCS2", "maxPowerKw": 50 }))
                .collect();
            let mut body = support::station_body(&format!("CP-BENCH-{i}"), 1, true, 6.9, 79.8);
            body["connectors"] = json!(connectors);
            stations.push(station(&s, &bo, body).await);
        }
        let mut owners = Vec::new();
        for i in 0..8 {
            owners.push(owner(&s, &format!("91100{i:04}V"), &format!("o{i}@bench.lk")).await.0);
        }
        // Work items: (station, slot start), each unit booked by exactly one request.
        let mut work = Vec::new();
        'outer: for day in 1..=6 {
            for hour in 6..22 {
                for st in &stations {
                    for _ in 0..20 {
                        work.push((*st, slot(day, hour)));
                        if work.len() == total {
                            break 'outer;
                        }
                    }
                }
            }
        }
        let work = std::sync::Arc::new(std::sync::Mutex::new(work));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (addr, token, work) = (s.addr, owners[c % owners.len()].clone(), work.clone());
            tasks.push(tokio::spawn(async move {
                use http_body_util::{BodyExt, Full};
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let mut latencies = Vec::new();
                let mut statuses = Vec::new();
                loop {
                    let Some((station, start)) = work.lock().unwrap().pop() else {
                        break;
                    };
                    let body = serde_json::to_vec(&json!({ "stationId": station, "slotStart": start })).unwrap();
                    let req = hyper::Request::post("/api/v1/bookings")
                        .header("host", addr.to_string())
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(bytes::Bytes::from(body)))
                        .unwrap();
                    sender.ready().await.unwrap();
                    let t = Instant::now();
                    let response = sender.send_request(req).await.unwrap();
                    let status = response.status().as_u16();
                    let _ = response.into_body().collect().await.unwrap();
                    latencies.push(t.elapsed());
                    statuses.push(status);
                }
                (latencies, statuses)
            }));
        }
        let mut latencies: Vec<Duration> = Vec::new();
        let mut created = 0;
        let mut other = 0;
        for t in tasks {
            let (l, st) = t.await.unwrap();
            latencies.extend(l);
            created += st.iter().filter(|s| **s == 201).count();
            other += st.iter().filter(|s| **s != 201).count();
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let over: i64 = on_db!(&s.state.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM slots WHERE booked > capacity"
        )
        .fetch_one(pool)
        .await)
        .unwrap();
        let mismatched: i64 = on_db!(&s.state.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM slots s WHERE s.booked <> (SELECT COUNT(*) FROM bookings b WHERE b.slot_id = s.id AND b.status IN ('Pending', 'Approved'))"
        )
        .fetch_one(pool)
        .await)
        .unwrap();
        println!(
            "{}: {created} bookings ({other} refused) by {clients} clients in {:.2} s = {:.0}/s; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; over-booked slots {over}, slots whose count disagrees {mismatched}",
            s.backend,
            elapsed.as_secs_f64(),
            created as f64 / elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
        assert_eq!((over, mismatched, other), (0, 0, 0), "{}", s.backend);
        s.stop().await;
    }
}

//! The `evcs` binary as a real process: both services on their ports, the booking API's first
//! admin printed once, and `--demo N` chargers charging against the same process.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::{Claims, Role};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts evcs on fresh ports; returns the child, the central and the booking addresses.
fn start_evcs(dir: &std::path::Path, extra: &[&str]) -> (Child, std::net::SocketAddr, std::net::SocketAddr) {
    let (central, booking) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_evcs"))
        .args(["--listen", &format!("127.0.0.1:{central}")])
        .args(["--booking-listen", &format!("127.0.0.1:{booking}")])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = |p: u16| format!("127.0.0.1:{p}").parse().unwrap();
    (child, addr(central), addr(booking))
}

/// Stops the child and returns what it printed on stdout.
fn stop(mut child: Child) -> String {
    child.kill().unwrap();
    let out = child.stdout.take().unwrap();
    let text: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
    child.wait().unwrap();
    text.join("\n")
}

#[tokio::test]
async fn both_services_run_and_the_first_admin_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (child, central, booking) = start_evcs(dir.path(), &[]);
    for addr in [central, booking] {
        eventually(|| async { tokio::net::TcpStream::connect(addr).await.ok() }).await;
        let (status, body) = http(addr, "GET", "/health", None, None).await;
        assert_eq!(status, 200, "{addr}: {body}");
    }
    // The printed password logs in to the booking API.
    let (mut child, printed) = {
        let mut child = child;
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("admin account") {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "evcs ended without printing the admin"
            );
        }
        (child, line)
    };
    let password = printed
        .split("password ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (status, body) = http(
        booking,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"identifier": "admin@evcs.local", "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["accessToken"].is_string(), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();

    // A second start on the same data keeps the account and prints no password.
    let (child, _, booking) = start_evcs(dir.path(), &[]);
    eventually(|| async { tokio::net::TcpStream::connect(booking).await.ok() }).await;
    let out = stop(child);
    assert!(!out.contains("password"), "printed again: {out}");
}

#[tokio::test]
async fn demo_chargers_charge_against_the_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "demo-test-secret-with-enough-entropy-0123";
    let (child, addr, _) = start_evcs(dir.path(), &["--demo", "2", "--jwt-secret", secret]);
    let now = chrono::Utc::now().timestamp();
    let token = central_system::auth::jwt::operator_keys(secret.as_bytes()).sign(&Claims {
        sub: "test".into(),
        role: Role::Operator,
        iat: now,
        exp: now + 600,
    });
    eventually(|| async { tokio::net::TcpStream::connect(addr).await.ok() }).await;
    // Meter values come every 10 s, so give the sessions a minute.
    let items = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let (status, body) = http(addr, "GET", "/api/v1/transactions", Some(&token), None).await;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let charging = items.iter().filter(|t| t["energyWh"].as_i64().unwrap_or(0) > 0).count();
            if status == 200 && charging == 2 {
                return items;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("two demo sessions with energy within a minute");
    let stations: Vec<&str> = items.iter().filter_map(|t| t["stationId"].as_str()).collect();
    assert!(
        stations.contains(&"DEMO-01") && stations.contains(&"DEMO-02"),
        "{items:?}"
    );
    assert!(
        items.iter().all(|t| t["stopReason"].is_null()),
        "none refused: {items:?}"
    );
    stop(child);
}

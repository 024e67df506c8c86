//! `evcs --demo N` as a real process: its simulated chargers connect to its own OCPP endpoint
//! and charge, and the operator API shows their transactions with energy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::{Claims, JwtKeys, Role};
use std::process::{Command, Stdio};
use support::*;

#[tokio::test]
async fn demo_chargers_charge_against_the_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "demo-test-secret-with-enough-entropy-0123";
    let mut child = Command::new(env!("CARGO_BIN_EXE_evcs"))
        .args(["--demo", "2", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env("EVCS_JWT_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let token = JwtKeys::new(secret.as_bytes()).sign(&Claims {
        sub: "test".into(),
        role: Role::Operator,
        iat: now,
        exp: now + 600,
    });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
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
    child.kill().unwrap();
    child.wait().unwrap();
}

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

/// `evcs mint-token` signs with the secret the server keeps in its data dir (no other build of
/// the workspace needed), and the flags work after the subcommand too.
#[tokio::test]
async fn evcs_mints_tokens_the_running_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mint = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_evcs"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let data_dir = dir.path().to_str().unwrap();
    // Before the first start: the secret is created exactly where the server will read it.
    let before = mint(&["mint-token", "--data-dir", data_dir, "--role", "operator"]);
    let (child, addr, _) = start_evcs(dir.path(), &[]);
    eventually(|| async { tokio::net::TcpStream::connect(addr).await.ok() }).await;
    let after = mint(&["--data-dir", data_dir, "mint-token"]);
    for token in [&before, &after] {
        let (status, body) = http(addr, "GET", "/api/v1/stations", Some(token), None).await;
        assert_eq!(status, 200, "{body}");
    }
    // Operator role from the flag: registering stations is refused.
    let (status, _) = http(
        addr,
        "POST",
        "/api/v1/stations",
        Some(&before),
        Some(json!({"id": "X"})),
    )
    .await;
    assert_eq!(status, 403);
    // An explicit secret after the subcommand wins over the data dir's.
    let other = mint(&[
        "mint-token",
        "--data-dir",
        data_dir,
        "--jwt-secret",
        "another-secret-0123456789abcdef",
    ]);
    let (status, _) = http(addr, "GET", "/api/v1/stations", Some(&other), None).await;
    assert_eq!(status, 401);
    stop(child);
}

/// Open access is announced in one warning line naming the flags that close it; closed, nothing.
#[test]
fn open_station_access_is_warned_about_once_at_start() {
    // The stderr lines up to the central system's "listening" line (the warning comes first).
    let start_lines = |extra: &[&str]| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_evcs"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--booking-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = rx.recv_timeout(left) else { break };
            let done = line.contains("central system listening");
            lines.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            lines.iter().any(|l| l.contains("central system listening")),
            "evcs did not start: {lines:?}"
        );
        lines
    };
    let warnings = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("WARN") && l.contains("without credentials"))
            .cloned()
            .collect()
    };
    let open = start_lines(&[]);
    let open = warnings(&open);
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(
        open[0].contains("--unknown-stations reject") && open[0].contains("--require-auth"),
        "{open:?}"
    );
    let pending = start_lines(&["--unknown-stations", "pending"]);
    let pending = warnings(&pending);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(!pending[0].contains("--unknown-stations") && pending[0].contains("--require-auth"));
    let closed = start_lines(&["--unknown-stations", "reject", "--require-auth"]);
    assert_eq!(warnings(&closed), Vec::<String>::new());
}

//! Floods any unauthenticated client can send, against the real `evcs` process (issue 9):
//! memory stays bounded under wrong passwords, concurrent guesses for one account are checked
//! no more often than the login limit allows, and idle booking connections do not stop a charger
//! from connecting. Process figures (VmHWM, the open-file limit) are read from `/proc`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::{Claims, Role};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const SECRET: &str = "limits-test-secret-with-enough-entropy-01";
const MAX_PEAK_MB: u64 = 300;

struct Evcs {
    child: Child,
    central: SocketAddr,
    booking: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Evcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts evcs on fresh ports with extra environment; with `open_files` it starts under that
/// soft open-file limit (through util-linux `prlimit`, which execs it: same pid; without
/// `prlimit`, under the test's own limit).
async fn start(env: &[(&str, &str)], open_files: Option<u64>) -> Evcs {
    let dir = tempfile::tempdir().unwrap();
    let (central, booking) = (free_port(), free_port());
    let evcs = env!("CARGO_BIN_EXE_evcs");
    let prlimit = Command::new("prlimit").arg("--version").output().is_ok();
    let mut command = match open_files.filter(|_| prlimit) {
        Some(soft) => {
            let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().1;
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={soft}:{hard}")).arg(evcs);
            c
        }
        None => Command::new(evcs),
    };
    let child = command
        .args(["--listen", &format!("127.0.0.1:{central}")])
        .args(["--booking-listen", &format!("127.0.0.1:{booking}")])
        .args(["--jwt-secret", SECRET])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    let evcs = Evcs {
        child,
        central: addr(central),
        booking: addr(booking),
        _dir: dir,
    };
    for a in [evcs.central, evcs.booking] {
        eventually(|| async { tokio::net::TcpStream::connect(a).await.ok() }).await;
    }
    evcs
}

/// A field of `/proc/PID/status` in KiB (`VmHWM`: the resident-memory peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn admin_token() -> String {
    let now = chrono::Utc::now().timestamp();
    central_system::auth::jwt::operator_keys(SECRET.as_bytes()).sign(&Claims {
        sub: "test".into(),
        role: Role::Admin,
        iat: now,
        exp: now + 600,
    })
}

/// `n` concurrent wrong-password logins, identifier `who(i)`; the statuses and how often each
/// came, and whether every 429/503 carried Retry-After.
async fn bad_logins(booking: SocketAddr, n: usize, who: impl Fn(usize) -> String) -> (BTreeMap<u16, usize>, bool) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let body = json!({ "identifier": who(i), "password": "not-the-password" });
            tokio::spawn(async move { http_raw(booking, "POST", "/api/v1/auth/login", None, Some(body)).await })
        })
        .collect();
    let mut counts = BTreeMap::new();
    let mut retry_after = true;
    for t in tasks {
        let (status, headers, _) = t.await.unwrap();
        *counts.entry(status).or_insert(0) += 1;
        if status == 429 || status == 503 {
            retry_after &= headers.contains_key("retry-after");
        }
    }
    (counts, retry_after)
}

#[tokio::test]
async fn five_hundred_bad_logins_keep_the_process_under_300_mb() {
    // The per-address limit is lifted so that the password pool alone bounds the work.
    let evcs = start(&[("EVCS_BOOKING_LOGIN_MAX_FAILURES_PER_ADDRESS", "100000")], None).await;
    let pid = evcs.child.id();
    let before = status_kib(pid, "VmHWM");
    let (counts, retry_after) = bad_logins(evcs.booking, 500, |i| format!("guess{i}@example.com")).await;
    let peak = status_kib(pid, "VmHWM");
    println!(
        "500 bad logins: statuses {counts:?}, VmHWM {} MB before, {} MB after",
        before / 1024,
        peak / 1024
    );
    assert!(counts.keys().all(|s| *s == 401 || *s == 503), "{counts:?}");
    assert!(
        counts.get(&401).is_some_and(|n| *n > 0),
        "some were checked: {counts:?}"
    );
    assert!(retry_after, "every 503 says when to retry");
    assert!(peak < MAX_PEAK_MB * 1024, "peak {} MB", peak / 1024);
}

#[tokio::test]
async fn three_hundred_bad_upgrades_keep_the_process_under_300_mb() {
    let evcs = start(&[], None).await;
    let pid = evcs.child.id();
    let (status, body) = http(
        evcs.central,
        "POST",
        "/api/v1/stations",
        Some(&admin_token()),
        Some(json!({ "id": "CP-LOCKED", "password": "the-right-password-0123" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let before = status_kib(pid, "VmHWM");
    let url = format!("ws://{}/ocpp/CP-LOCKED", evcs.central);
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                match connect(&url, "ocpp1.6", Some(("CP-LOCKED", "a-wrong-password-012345"))).await {
                    Ok(_) => 101,
                    Err(e) => refused_status(&e).unwrap_or(0),
                }
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    let peak = status_kib(pid, "VmHWM");
    println!(
        "300 bad upgrades: statuses {counts:?}, VmHWM {} MB before, {} MB after",
        before / 1024,
        peak / 1024
    );
    assert!(counts.keys().all(|s| *s == 401 || *s == 503), "{counts:?}");
    assert!(
        counts.get(&401).is_some_and(|n| *n > 0),
        "some were checked: {counts:?}"
    );
    assert!(peak < MAX_PEAK_MB * 1024, "peak {} MB", peak / 1024);
    // The right password still gets in once the flood is over.
    let ws = connect(&url, "ocpp1.6", Some(("CP-LOCKED", "the-right-password-0123"))).await;
    assert!(ws.is_ok(), "{:?}", ws.err());
}

#[tokio::test]
async fn five_hundred_concurrent_bad_logins_for_one_account_check_at_most_the_limit() {
    let evcs = start(&[], None).await;
    let (counts, retry_after) = bad_logins(evcs.booking, 500, |_| "admin@evcs.local".into()).await;
    println!("500 bad logins for one account: statuses {counts:?}");
    // 401 is a checked password; 429 (limit) and 503 (pool full) checked nothing.
    assert!(counts.keys().all(|s| [401, 429, 503].contains(s)), "{counts:?}");
    let checked = counts.get(&401).copied().unwrap_or(0);
    assert!((1..=5).contains(&checked), "the limit is 5: {counts:?}");
    assert!(counts
        .get(&429)
        .is_some_and(|n| *n >= 495 - counts.get(&503).unwrap_or(&0)));
    assert!(retry_after, "every 429 and 503 says when to retry");
}

#[tokio::test]
async fn two_thousand_idle_booking_connections_do_not_stop_a_charger() {
    // A soft limit of 1,024 (a common default) that evcs raises to the hard limit at start.
    let evcs = start(&[("EVCS_BOOKING_HTTP_HEADER_TIMEOUT", "600")], Some(1024)).await;
    let pid = evcs.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let soft: u64 = open_files.split_whitespace().nth(3).unwrap().parse().unwrap();
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().1;
    assert_eq!(soft, hard, "the soft limit is raised to the hard limit: {open_files}");

    // This test process holds the 2,000 client ends. Beyond the booking API's connection
    // limit and the kernel's accept queue, the rest keep retrying their handshake meanwhile.
    service_kit::server::raise_open_file_limit();
    let connected = Arc::new(AtomicUsize::new(0));
    let release = tokio_util::sync::CancellationToken::new();
    let clients: Vec<_> = (0..2_000)
        .map(|_| {
            let (connected, release, addr) = (connected.clone(), release.clone(), evcs.booking);
            tokio::spawn(async move {
                let attempt = tokio::time::timeout(Duration::from_secs(60), tokio::net::TcpStream::connect(addr));
                if let Ok(Ok(stream)) = attempt.await {
                    connected.fetch_add(1, Ordering::SeqCst);
                    release.cancelled().await;
                    drop(stream);
                }
            })
        })
        .collect();
    // Saturated: every place of the booking API (1,024) is taken by a silent client.
    eventually(|| async { (connected.load(Ordering::SeqCst) > 1_024).then_some(()) }).await;
    println!("{} idle booking connections open", connected.load(Ordering::SeqCst));

    let url = format!("ws://{}/ocpp/CP-IDLE-FLOOD", evcs.central);
    let boot = tokio::time::timeout(Duration::from_secs(30), async {
        let mut ws = connect(&url, "ocpp1.6", None).await.expect("the charger connects");
        boot16(&mut ws).await
    })
    .await
    .expect("the charger is answered");
    assert_eq!(boot["status"], "Accepted", "{boot}");
    release.cancel();
    for c in clients {
        c.abort();
    }
}

//! What bounds unauthenticated work on the booking API, over real sockets: the per-address login
//! limit, the password pool's 503 (an attempt it refused does not count), and the header
//! timeout that closes silent connections. (Memory and 500-request floods are measured against
//! the `evcs` process in the root package's `tests/limits.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use std::time::Duration;
use support::{owner, TestServer, PASSWORD};
use tokio::io::AsyncReadExt;

const SQLITE: (&str, Option<String>) = ("sqlite", None);

fn login(identifier: &str, password: &str) -> Option<serde_json::Value> {
    Some(json!({ "identifier": identifier, "password": password }))
}

#[tokio::test]
async fn one_address_guessing_many_identifiers_is_limited() {
    let s = TestServer::start_with(SQLITE, |c| c.policy.login_max_failures_per_address = 3).await;
    for i in 0..3 {
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            login(&format!("u{i}@mail.lk"), "wrong password"),
        )
        .await
        .problem(401, "INVALID_CREDENTIALS");
    }
    let r = s
        .req(
            "POST",
            "/api/v1/auth/login",
            None,
            login("u9@mail.lk", "wrong password"),
        )
        .await;
    assert!(r.headers.contains_key("retry-after"));
    let body = r.problem(429, "LOGIN_RATE_LIMITED");
    assert!(body["detail"].as_str().unwrap().contains("client address"), "{body}");
    s.clock.advance(chrono::Duration::seconds(901));
    s.admin().await;
    s.stop().await;
}

#[tokio::test]
async fn a_full_password_pool_answers_503_and_the_attempt_does_not_count() {
    let s = TestServer::start_with(SQLITE, |c| c.policy.login_max_failures = 1).await;
    let (_, _) = owner(&s, "912345678V", "one@mail.lk").await;
    let capacity = s.state.passwords.capacity();
    let held: Vec<_> = (0..capacity).map(|_| s.state.passwords.admit().unwrap()).collect();
    let checked = s.state.passwords.verified();
    for _ in 0..3 {
        let r = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                login("912345678V", "wrong password"),
            )
            .await;
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
        r.problem(503, "PASSWORD_CHECKS_BUSY");
    }
    // Registration hashes through the same pool.
    let r = s
        .req(
            "POST",
            "/api/v1/owners",
            None,
            Some(json!({ "nic": "200012345678", "name": "Two", "email": "two@mail.lk", "phone": "+94770000009", "password": PASSWORD })),
        )
        .await;
    r.problem(503, "PASSWORD_CHECKS_BUSY");
    assert_eq!(s.state.passwords.verified(), checked, "nothing was checked");
    drop(held);
    // None of the refused attempts used up the limit of 1.
    s.login("912345678V", PASSWORD).await;
    s.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let s = TestServer::start_with(SQLITE, |c| c.http_header_timeout = 1).await;
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf))
        .await
        .expect("closed by the server")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    s.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let s = TestServer::start_with(SQLITE, |c| {
        c.policy.login_max_failures_per_address = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let attempt = |who: &str, client: &'static str| {
        let body = login(who, "wrong password");
        let addr = s.addr;
        async move {
            support::send(
                addr,
                "POST",
                "/api/v1/auth/login",
                None,
                body,
                &[("x-forwarded-for", client)],
            )
            .await
        }
    };
    attempt("a@mail.lk", "203.0.113.5")
        .await
        .problem(401, "INVALID_CREDENTIALS");
    // The same client through the proxy, another identifier: its address budget is used up.
    attempt("b@mail.lk", "203.0.113.5")
        .await
        .problem(429, "LOGIN_RATE_LIMITED");
    // Another client behind the same proxy has its own budget.
    attempt("b@mail.lk", "203.0.113.6")
        .await
        .problem(401, "INVALID_CREDENTIALS");
    s.stop().await;
}

//! Test harness shared by the end-to-end tests: a real central system on an ephemeral port per
//! test, over each configured database backend, plus small WebSocket and HTTP clients.
//!
//! Backends: SQLite (a temp file) always; PostgreSQL too when `EVCS_TEST_POSTGRES_URL` is set
//! (each test then gets a fresh database, and an unreachable server fails the test).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pki;

use base64::Engine;
use central_system::auth::jwt::{Claims, Role};
use central_system::{AppState, Application, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Test databases are named `{TEST_DB_PREFIX}_{random}`; only those are ever dropped.
const TEST_DB_PREFIX: &str = "evcs_test";

/// The backends a storage test runs on: `("sqlite", None)` and, when configured, a fresh
/// PostgreSQL database URL.
pub async fn backends() -> Vec<(&'static str, Option<String>)> {
    let mut out = vec![("sqlite", None)];
    if let Ok(base) = std::env::var("EVCS_TEST_POSTGRES_URL") {
        if !base.is_empty() {
            let (url, _) = service_kit::test_db::create(&base, TEST_DB_PREFIX).await;
            out.push(("postgres", Some(url)));
        }
    }
    out
}

/// Another database for one more server of `backend`: SQLite servers each get their own temp
/// dir, PostgreSQL needs a fresh database per server.
pub async fn fresh_url(backend: &str) -> Option<String> {
    if backend != "postgres" {
        return None;
    }
    backends()
        .await
        .into_iter()
        .find(|(b, _)| *b == "postgres")
        .and_then(|(_, url)| url)
}

/// The Python interpreter of the independent test peers (charger.py, csms.py): `EVCS_TEST_PYTHON`
/// (scripts/test sets it to the `.venv` it creates), else the repository's `.venv` when it
/// exists, else `python3`.
pub fn python() -> std::ffi::OsString {
    if let Some(python) = std::env::var_os("EVCS_TEST_PYTHON") {
        return python;
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv.into_os_string()
    } else {
        "python3".into()
    }
}

/// A running central system.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The `--metrics-listen` address, when the test set one.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub backend: &'static str,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts a server on `database_url` (None: a SQLite file in a temp dir), after `tweak`.
    pub async fn start_with(
        backend: &'static str,
        database_url: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        central_system::tls::install_crypto_provider();
        // Server logs only when asked for (RUST_LOG=info cargo test ... -- --nocapture).
        if std::env::var_os("RUST_LOG").is_some() {
            central_system::telemetry::init(central_system::config::LogFormat::Text);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path().to_path_buf(), database_url);
        tweak(&mut config);
        let app = Application::build(config).await.expect("build app");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let state = app.state();
        let task = tokio::spawn(app.run_until_stopped());
        TestServer {
            addr,
            metrics_addr,
            state,
            backend,
            dir,
            task,
        }
    }

    /// Starts a server on a bus the test built (e.g. one it can make fail).
    pub async fn start_with_bus(
        backend: &'static str,
        database_url: Option<String>,
        bus: std::sync::Arc<dyn evcs_bus::Bus>,
    ) -> TestServer {
        Self::start_on_bus(backend, database_url, bus, |_| {}).await
    }

    /// Like [`TestServer::start_with_bus`], after `tweak` of the configuration (several nodes
    /// of one cluster: one bus, one database, a node id each).
    pub async fn start_on_bus(
        backend: &'static str,
        database_url: Option<String>,
        bus: std::sync::Arc<dyn evcs_bus::Bus>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        central_system::tls::install_crypto_provider();
        if std::env::var_os("RUST_LOG").is_some() {
            central_system::telemetry::init(central_system::config::LogFormat::Text);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path().to_path_buf(), database_url);
        tweak(&mut config);
        let app = Application::build_with_bus(config, Default::default(), bus)
            .await
            .expect("build app");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let state = app.state();
        let task = tokio::spawn(app.run_until_stopped());
        TestServer {
            addr,
            metrics_addr,
            state,
            backend,
            dir,
            task,
        }
    }

    /// Starts a server with the default test configuration.
    pub async fn start(backend: &'static str, database_url: Option<String>) -> TestServer {
        Self::start_with(backend, database_url, |_| {}).await
    }

    /// `ws://addr/ocpp/{id}`.
    pub fn ws_url(&self, id: &str) -> String {
        format!("ws://{}/ocpp/{id}", self.addr)
    }

    /// A signed token for `role`.
    pub fn token(&self, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        let secret = self.state.config.jwt_secret.clone().expect("test secret");
        central_system::auth::jwt::operator_keys(secret.as_bytes()).sign(&Claims {
            sub: "test".into(),
            role,
            iat: now,
            exp: now + 600,
        })
    }

    /// Shuts down gracefully and waits; returns the data dir so a test can reopen it.
    pub async fn stop(self) -> tempfile::TempDir {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
        self.dir
    }

    /// Stops the server and drops its PostgreSQL test database (SQLite files go with the dir).
    pub async fn stop_and_clean(self) {
        let url = self.state.config.database_url.clone();
        let _ = self.stop().await;
        if let (Some(url), Ok(base)) = (url, std::env::var("EVCS_TEST_POSTGRES_URL")) {
            let name = url.rsplit('/').next().unwrap_or_default();
            let name = name.split('?').next().unwrap_or_default();
            if name.starts_with(TEST_DB_PREFIX) {
                service_kit::test_db::drop(&base, name).await;
            }
        }
    }

    /// Commits everything the batch writer holds.
    pub async fn flush(&self) {
        self.state.writer.flush().await;
    }

    /// Calls the REST API.
    pub async fn api(&self, method: &str, path: &str, role: Option<Role>, body: Option<Value>) -> (u16, Value) {
        let token = role.map(|r| self.token(r));
        http(self.addr, method, path, token.as_deref(), body).await
    }

    /// Calls the REST API as admin and expects `status`.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.api(method, path, Some(Role::Admin), body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    /// Registers `tag` as an Accepted id token.
    pub async fn accept_token(&self, tag: &str) {
        self.admin(
            "POST",
            "/api/v1/id-tokens",
            Some(serde_json::json!({"idToken": tag, "status": "Accepted"})),
            201,
        )
        .await;
    }
}

/// A minimal HTTP/1.1 request over a fresh connection; returns status and JSON (or the text as a string).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _headers, text) = http_raw(addr, method, path, bearer, body).await;
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Like [`http`], with headers and raw text.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, hyper::HeaderMap, String) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    if bytes.is_some() {
        headers.push(("content-type", "application/json"));
    }
    http_request(addr, method, path, &headers, bytes.as_deref()).await
}

/// One HTTP/1.1 request with arbitrary headers and body, over a fresh connection.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, hyper::HeaderMap, String) {
    use http_body_util::{BodyExt, Full};
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let bytes = bytes::Bytes::copy_from_slice(body.unwrap_or_default());
    let response = sender
        .send_request(req.body(Full::new(bytes)).unwrap())
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An upgrade request offering `protocols` (verbatim, or no header at all) and optional Basic
/// credentials.
pub fn ws_request(
    url: &str,
    protocols: Option<&str>,
    basic: Option<(&str, &str)>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("request");
    if let Some(p) = protocols {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    if let Some((user, pass)) = basic {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        request
            .headers_mut()
            .insert("Authorization", HeaderValue::from_str(&value).unwrap());
    }
    request
}

/// Connects a raw OCPP client offering `subprotocol`, optionally with Basic credentials.
pub async fn connect(
    url: &str,
    subprotocol: &str,
    basic: Option<(&str, &str)>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let (ws, _) = tokio_tungstenite::connect_async(ws_request(url, Some(subprotocol), basic)).await?;
    Ok(ws)
}

/// The HTTP status of a refused upgrade.
pub fn refused_status(err: &tokio_tungstenite::tungstenite::Error) -> Option<u16> {
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// Sends one text frame.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// Receives the next text frame as JSON (skipping pings), failing after 10 s.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("timed out waiting for a frame");
        match msg.expect("socket closed").expect("socket error") {
            Message::Text(t) => return serde_json::from_str(&t).expect("server sent invalid JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Sends a CALL and returns the answer frame.
pub async fn call(ws: &mut Ws, id: &str, action: &str, payload: Value) -> Value {
    let text = serde_json::to_string(&serde_json::json!([2, id, action, payload])).unwrap();
    send(ws, &text).await;
    let answer = recv(ws).await;
    assert_eq!(answer[1], id, "answer to another id: {answer}");
    answer
}

/// Sends a CALL and expects a CALLRESULT; returns its payload.
pub async fn call_ok(ws: &mut Ws, id: &str, action: &str, payload: Value) -> Value {
    let answer = call(ws, id, action, payload).await;
    assert_eq!(answer[0], 3, "expected CALLRESULT to {action}, got {answer}");
    answer[2].clone()
}

/// A 1.6 BootNotification.
pub async fn boot16(ws: &mut Ws) -> Value {
    call_ok(
        ws,
        "boot",
        "BootNotification",
        serde_json::json!({"chargePointVendor": "TestVendor", "chargePointModel": "TM-1"}),
    )
    .await
}

/// A 2.0.1 BootNotification.
pub async fn boot201(ws: &mut Ws) -> Value {
    call_ok(
        ws,
        "boot",
        "BootNotification",
        serde_json::json!({"reason": "PowerUp", "chargingStation": {"vendorName": "TestVendor", "model": "TM-2"}}),
    )
    .await
}

/// Polls `f` until it returns Some, for up to 10 s.
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}

/// The transactions of a station, newest first, as the operator API lists them.
pub async fn transactions(server: &TestServer, station: &str) -> Vec<Value> {
    let (status, page) = server
        .api(
            "GET",
            &format!("/api/v1/transactions?stationId={station}"),
            Some(Role::Operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

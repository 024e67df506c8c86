//! Harness of the black-box tests: a real booking API on an ephemeral port per test, on each
//! configured backend, with a manual clock, and a small HTTP client.
//!
//! Backends: SQLite (a temp file) always; PostgreSQL too when `EVCS_TEST_POSTGRES_URL` is set
//! (each server then gets a fresh database, dropped when it stops; an unreachable server fails
//! the test instead of skipping it).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use booking_api::clock::{Clock, ManualClock};
use booking_api::{AppState, Application, Config, Parts};
use chrono::{DateTime, TimeZone, Utc};
use evcs_bus::{Command, CommandReply, StationId};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// The instant every test starts at: Monday 2030-01-07 00:00 UTC (05:30 in Colombo).
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0).unwrap()
}

/// `("sqlite", None)` and, when configured, `("postgres", Some(base URL))`.
pub fn backends() -> Vec<(&'static str, Option<String>)> {
    let mut out = vec![("sqlite", None)];
    if let Ok(base) = std::env::var("EVCS_TEST_POSTGRES_URL") {
        if !base.is_empty() {
            out.push(("postgres", Some(base)));
        }
    }
    out
}

/// A response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts the status and returns the body.
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts a problem with `status` and `code`; returns the body.
    pub fn problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            (self.status, self.body["code"].as_str().unwrap_or_default()),
            (status, code),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        self.body
    }

    /// The `field` of each entry of a problem's `errors`.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A running booking API.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The `--metrics-listen` address, when the test set one.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub clock: ManualClock,
    pub backend: &'static str,
    pub admin_email: String,
    pub admin_password: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The configuration it was started with (for [`TestServer::restart`]).
    config: Config,
}

impl TestServer {
    /// Starts a server on the backend, after `tweak` of the test configuration.
    /// Tests drive the maintenance round and the notification dispatcher themselves
    /// ([`booking_api::app::run_maintenance`], [`booking_api::notifications::dispatch`]), so
    /// nothing runs behind their back; [`TestServer::start_live`] runs them as in production.
    pub async fn start_with(backend: (&'static str, Option<String>), tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_full(backend, tweak, None, false).await
    }

    /// Starts a server with its background workers, as in production.
    pub async fn start_live(backend: (&'static str, Option<String>)) -> TestServer {
        Self::start_full(backend, |_| {}, None, true).await
    }

    /// Starts a server whose notifications go to `notifier`.
    pub async fn start_with_notifier(
        backend: (&'static str, Option<String>),
        notifier: Arc<dyn booking_api::notifications::Notifier>,
    ) -> TestServer {
        Self::start_full(backend, |_| {}, Some(notifier), false).await
    }

    async fn start_full(
        backend: (&'static str, Option<String>),
        tweak: impl FnOnce(&mut Config),
        notifier: Option<Arc<dyn booking_api::notifications::Notifier>>,
        background: bool,
    ) -> TestServer {
        if std::env::var_os("RUST_LOG").is_some() {
            service_kit::telemetry::init(service_kit::telemetry::LogFormat::Text);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, pg) = match &backend.1 {
            Some(base) => {
                let (url, name) = service_kit::test_db::create(base, "booking_test").await;
                (Some(url), Some((name, base.clone())))
            }
            None => (None, None),
        };
        let mut config = Config::for_tests(dir.path().to_path_buf(), url);
        // Scenarios move the clock by days; tokens outlive that unless a test says otherwise.
        config.policy.access_token_secs = 60 * 86_400;
        tweak(&mut config);
        let clock = ManualClock::new(epoch());
        let kept = config.clone();
        let mut parts = Parts {
            clock: Arc::new(clock.clone()),
            ..Parts::default()
        };
        parts.background = background;
        if let Some(n) = notifier {
            parts.notifier = n;
        }
        let app = Application::build_with(config, parts).await.expect("build app");
        let admin = app.initial_admin().cloned().expect("first start creates an admin");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let state = app.state();
        let task = tokio::spawn(app.run_until_stopped());
        TestServer {
            addr,
            metrics_addr,
            state,
            clock,
            backend: backend.0,
            admin_email: admin.email,
            admin_password: admin.password,
            dir,
            pg,
            task: Some(task),
            config: kept,
        }
    }

    /// Stops the server and starts a new one on the same database, data directory and clock
    /// (a restart); with `background`, its workers run as in production.
    pub async fn restart(mut self, background: bool) -> TestServer {
        self.state.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
        let parts = Parts {
            clock: Arc::new(self.clock.clone()),
            background,
            ..Parts::default()
        };
        let app = Application::build_with(self.config.clone(), parts)
            .await
            .expect("rebuild app");
        self.addr = app.local_addr();
        self.metrics_addr = app.metrics_addr();
        self.state = app.state();
        self.task = Some(tokio::spawn(app.run_until_stopped()));
        self
    }

    /// Starts a server with the test configuration.
    pub async fn start(backend: (&'static str, Option<String>)) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Stops the server and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        self.state.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
        if let Some((name, base)) = self.pg.take() {
            service_kit::test_db::drop(&base, &name).await;
        }
    }

    /// A request with an optional bearer token, JSON body and extra headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        send(self.addr, method, path, token, body, extra).await
    }

    /// A request with a bearer token (or none) and optional JSON body.
    pub async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.call(method, path, token, body, &[]).await
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, identifier: &str, password: &str) -> String {
        let r = self
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": identifier, "password": password })),
            )
            .await
            .expect(200);
        r["accessToken"].as_str().unwrap().to_string()
    }

    /// The admin's token.
    pub async fn admin(&self) -> String {
        self.login(&self.admin_email.clone(), &self.admin_password.clone())
            .await
    }

    /// Makes `central_id` a charger the projection knows, the way production does: publishes
    /// `booted` and one `connectorStatus` (Available) per connector on the app's bus, then
    /// waits until the projection shows them all.
    pub async fn known_charger(&self, central_id: &str, connectors: &[i64]) {
        let station = evcs_bus::StationId::parse(central_id).expect("a valid station id");
        let at = self.clock.now();
        let mut events = vec![evcs_bus::EventEnvelope::new(
            station.clone(),
            at,
            evcs_bus::Event::Booted {
                vendor: "TestVendor".into(),
                model: "TestModel".into(),
                firmware_version: Some("1.0".into()),
                registration: Some("Accepted".into()),
            },
        )];
        for c in connectors {
            events.push(evcs_bus::EventEnvelope::new(
                station.clone(),
                at,
                evcs_bus::Event::ConnectorStatus {
                    location: evcs_bus::Location {
                        evse_id: None,
                        connector_id: Some(u32::try_from(*c).expect("connector id")),
                    },
                    status: "Available".into(),
                },
            ));
        }
        let last = events.last().map(|e| e.event_id.clone()).expect("at least the boot");
        for e in events {
            self.state.bus.publish(e).await.expect("publish");
        }
        self.wait_processed(&last).await;
    }

    /// Waits (bounded) until the consumer has applied `event_id`; events of one station are
    /// applied in order, so this also covers every earlier one.
    pub async fn wait_processed(&self, event_id: &str) {
        for _ in 0..1_000 {
            if booking_api::chargers::store::processed(&self.state.db, event_id)
                .await
                .expect("query")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("event {event_id} never reached the projection");
    }
}

/// A test that fails before `stop` still drops its PostgreSQL database (on a thread of its
/// own: the test's runtime may be shutting down).
impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some((name, base)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(service_kit::test_db::drop(&base, &name));
                }
            })
            .join();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Resp {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let response = sender
        .send_request(builder.body(Full::new(bytes::Bytes::from(bytes))).unwrap())
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.into_body().collect().await.expect("body").to_bytes();
    let body =
        serde_json::from_slice(&raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    Resp { status, headers, body }
}

/// Books the slot of `station` starting at `slot_start` (RFC 3339) as `owner`; 201 expected.
pub async fn book(s: &TestServer, owner: &str, station: i64, slot_start: &str) -> Value {
    s.req(
        "POST",
        "/api/v1/bookings",
        Some(owner),
        Some(json!({ "stationId": station, "slotStart": slot_start })),
    )
    .await
    .expect(201)
}

/// Daily 06:00-22:00 in every weekday.
pub fn every_day() -> Value {
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "day": d, "open": "06:00", "close": "22:00" }))
        .collect();
    json!({ "weekly": weekly, "exceptions": [] })
}

/// A station body in Colombo with `bookable` bookable CCS2 connectors (and one non-bookable).
pub fn station_body(central_id: &str, bookable: usize, auto_approve: bool, lat: f64, lon: f64) -> Value {
    let mut connectors: Vec<Value> = (1..=bookable)
        .map(|i| json!({ "connectorId": i, "type": "CCS2", "maxPowerKw": 50 }))
        .collect();
    connectors.push(json!({ "connectorId": bookable + 1, "type": "Type2", "maxPowerKw": 22, "bookable": false }));
    json!({
        "centralStationId": central_id,
        "name": format!("Station {central_id}"),
        "address": "1 Galle Road, Colombo",
        "latitude": lat,
        "longitude": lon,
        "timeZone": "Asia/Colombo",
        "slotMinutes": 60,
        "autoApprove": auto_approve,
        "tariffRef": "STD-1",
        "connectors": connectors,
        "schedule": every_day(),
    })
}

/// The UTC start of the slot at `hour`:00 Colombo time, `days` after the epoch's date.
pub fn slot(days: i64, hour: u32) -> String {
    // Colombo is UTC+05:30 all year.
    let local = chrono::NaiveDate::from_ymd_opt(2030, 1, 7).unwrap() + chrono::Duration::days(days);
    let utc = local.and_hms_opt(hour, 0, 0).unwrap() - chrono::Duration::minutes(330);
    Utc.from_utc_datetime(&utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Everyone a scenario needs, with tokens: admin, two BackOffices with stations, their
/// operators, two owners.
pub struct World {
    pub admin: String,
    pub bo_a: String,
    pub bo_a_id: i64,
    pub bo_b: String,
    pub op_a: String,
    pub op_a_id: i64,
    pub op_b: String,
    pub owner1: String,
    pub owner1_id: i64,
    pub owner1_nic: String,
    pub owner2: String,
    /// BackOffice A's station needing approval, capacity 1.
    pub s1: i64,
    /// BackOffice A's auto-approving station, capacity 2.
    pub s2: i64,
    /// BackOffice B's station, capacity 1.
    pub s3: i64,
}

pub const PASSWORD: &str = "correct horse battery";

/// Applies as a BackOffice, gets approved, logs in; returns (token, id).
pub async fn backoffice(s: &TestServer, admin: &str, email: &str) -> (String, i64) {
    let app = s
        .req(
            "POST",
            "/api/v1/backoffice-applications",
            None,
            Some(json!({ "email": email, "name": "Biz Owner", "phone": "+94771234567", "password": PASSWORD, "businessName": format!("{email} Ltd") })),
        )
        .await
        .expect(201);
    let id = app["id"].as_i64().unwrap();
    s.req(
        "POST",
        &format!("/api/v1/backoffice-applications/{id}/approve"),
        Some(admin),
        None,
    )
    .await
    .expect(200);
    (s.login(email, PASSWORD).await, id)
}

/// Registers an owner and logs in; returns (token, id).
pub async fn owner(s: &TestServer, nic: &str, email: &str) -> (String, i64) {
    let r = s
        .req(
            "POST",
            "/api/v1/owners",
            None,
            Some(json!({ "nic": nic, "name": "Ev Owner", "email": email, "phone": "+94770000001", "password": PASSWORD })),
        )
        .await
        .expect(201);
    (s.login(nic, PASSWORD).await, r["id"].as_i64().unwrap())
}

/// Connectors every charger made known by [`station`] reports at least, so tests that later
/// add connectors to a station stay within what its charger reported.
pub const SPARE_CONNECTORS: i64 = 4;

/// Makes the charger of a station `body` known with its connectors (at least
/// [`SPARE_CONNECTORS`]).
pub async fn charger_for(s: &TestServer, body: &Value) {
    let max = body["connectors"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["connectorId"].as_i64()).max().unwrap_or(0))
        .unwrap_or(0)
        .max(SPARE_CONNECTORS);
    let ids: Vec<i64> = (1..=max).collect();
    s.known_charger(body["centralStationId"].as_str().expect("centralStationId"), &ids)
        .await;
}

/// Creates a station, its charger first made known ([`charger_for`]), and has the admin
/// approve its claim of the charger; returns its id.
pub async fn station(s: &TestServer, token: &str, body: Value) -> i64 {
    let id = pending_station(s, token, body).await;
    approve_claim(s, id).await;
    id
}

/// Creates a station whose claim of its charger is still Pending; returns its id.
pub async fn pending_station(s: &TestServer, token: &str, body: Value) -> i64 {
    charger_for(s, &body).await;
    let created = s
        .req("POST", "/api/v1/stations", Some(token), Some(body))
        .await
        .expect(201);
    assert_eq!(created["claimStatus"], "Pending");
    created["id"].as_i64().unwrap()
}

/// The admin approves station `id`'s claim of its charger.
pub async fn approve_claim(s: &TestServer, id: i64) {
    let admin = s.admin().await;
    s.req(
        "POST",
        &format!("/api/v1/stations/{id}/claim"),
        Some(&admin),
        Some(json!({ "decision": "Approved" })),
    )
    .await
    .expect(200);
}

/// Creates an operator of the BackOffice `token` with `stations`, logs in; returns (token, id).
pub async fn operator(s: &TestServer, token: &str, email: &str, stations: &[i64]) -> (String, i64) {
    let r = s
        .req(
            "POST",
            "/api/v1/operators",
            Some(token),
            Some(json!({ "email": email, "name": "Op", "phone": "+94770000002", "password": PASSWORD, "stationIds": stations })),
        )
        .await
        .expect(201);
    (s.login(email, PASSWORD).await, r["id"].as_i64().unwrap())
}

impl World {
    /// Builds the world on `s`.
    pub async fn build(s: &TestServer) -> World {
        let admin = s.admin().await;
        let (bo_a, bo_a_id) = backoffice(s, &admin, "a@biz.lk").await;
        let (bo_b, _) = backoffice(s, &admin, "b@biz.lk").await;
        let s1 = station(s, &bo_a, station_body("CP-A1", 1, false, 6.9271, 79.8612)).await;
        let s2 = station(s, &bo_a, station_body("CP-A2", 2, true, 6.95, 79.87)).await;
        let s3 = station(s, &bo_b, station_body("CP-B1", 1, false, 7.2906, 80.6337)).await;
        let (op_a, op_a_id) = operator(s, &bo_a, "op-a@biz.lk", &[s1, s2]).await;
        let (op_b, _) = operator(s, &bo_b, "op-b@biz.lk", &[s3]).await;
        let (owner1, owner1_id) = owner(s, "912345678V", "one@mail.lk").await;
        let (owner2, _) = owner(s, "199012345678", "two@mail.lk").await;
        World {
            admin,
            bo_a,
            bo_a_id,
            bo_b,
            op_a,
            op_a_id,
            op_b,
            owner1,
            owner1_id,
            owner1_nic: "912345678V".into(),
            owner2,
            s1,
            s2,
            s3,
        }
    }
}

/// A charger on the test bus: records the commands it gets and answers each with `answer`.
pub struct FakeCharger {
    pub seen: Arc<Mutex<Vec<Command>>>,
    pub answer: Arc<Mutex<CommandReply>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeCharger {
    pub async fn start(s: &TestServer, central_id: &str, answer: &str) -> FakeCharger {
        let mut server = s.state.bus.serve_commands("test-node").await.unwrap();
        server.serve(&StationId::parse(central_id).unwrap()).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(CommandReply::Status {
            status: answer.into(),
            payload: None,
        }));
        let (seen2, answer2) = (seen.clone(), answer.clone());
        let task = tokio::spawn(async move {
            while let Some(cmd) = server.next().await {
                seen2.lock().unwrap().push(cmd.envelope.command.clone());
                let reply = answer2.lock().unwrap().clone();
                let _ = cmd.reply(reply).await;
            }
        });
        FakeCharger { seen, answer, task }
    }

    pub fn commands(&self) -> Vec<Command> {
        self.seen.lock().unwrap().clone()
    }

    /// The RemoteStarts received (each check-in grants the booking's token first).
    pub fn remote_starts(&self) -> usize {
        self.commands()
            .iter()
            .filter(|c| matches!(c, Command::RemoteStart { .. }))
            .count()
    }
}

impl Drop for FakeCharger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

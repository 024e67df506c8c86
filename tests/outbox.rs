//! Events through the outbox onto the bus, end to end: a charger over a real WebSocket, a
//! consumer on the bus. On every storage backend; over MQTT too when `EVCS_TEST_MQTT_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use evcs_bus::{
    BoxFuture, Bus, BusError, CommandEnvelope, CommandReply, CommandServer, Event, EventEnvelope, EventStream,
    InProcBus,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn meter(ts: &str, wh: i64) -> Value {
    json!({"timestamp": ts, "sampledValue": [
        {"value": wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "16.0", "measurand": "Current.Import", "unit": "A"}
    ]})
}

/// The next event of `station` (others are skipped), within 10 s.
async fn next_of(events: &mut EventStream, station: &str) -> EventEnvelope {
    next_within(events, station, Duration::from_secs(10)).await
}

/// The next event of `station` within `wait`.
async fn next_within(events: &mut EventStream, station: &str, wait: Duration) -> EventEnvelope {
    loop {
        let event = tokio::time::timeout(wait, events.next())
            .await
            .expect("an event in time")
            .expect("the bus is open");
        if event.station_id.as_str() == station {
            return event;
        }
    }
}

/// Waits until every outbox row is marked sent; returns how many there are.
async fn all_sent(server: &TestServer) -> usize {
    eventually(|| async {
        let rows = server.state.store.outbox_rows().await.unwrap();
        rows.iter().all(|r| r.sent_at.is_some()).then_some(rows.len())
    })
    .await
}

/// Boot, status, a transaction with readings, its stop; then a refused start and its stop.
/// Returns the accepted transaction's id and the connection (kept open, so no stationOffline
/// follows yet).
async fn charge(server: &TestServer, station: &str) -> (i64, Ws) {
    let mut ws = connect(&server.ws_url(station), "ocpp1.6", None)
        .await
        .expect("connect");
    boot16(&mut ws).await;
    call_ok(
        &mut ws,
        "s1",
        "StatusNotification",
        json!({"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
    )
    .await;
    let start = call_ok(
        &mut ws,
        "t1",
        "StartTransaction",
        json!({"connectorId": 1, "idTag": "TAG-1", "meterStart": 10_000, "timestamp": "2026-01-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(start["idTagInfo"]["status"], "Accepted", "{start}");
    let id = start["transactionId"].as_i64().expect("transaction id");
    // Several readings within the cadence (60 s by default): none crosses the bus by itself.
    for (i, wh) in [10_400, 10_800, 11_150].into_iter().enumerate() {
        let ts = format!("2026-01-01T10:0{}:00Z", i + 1);
        call_ok(
            &mut ws,
            &format!("m{i}"),
            "MeterValues",
            json!({"connectorId": 1, "transactionId": id, "meterValue": [meter(&ts, wh)]}),
        )
        .await;
    }
    call_ok(
        &mut ws,
        "e1",
        "StopTransaction",
        json!({"transactionId": id, "idTag": "TAG-1", "meterStop": 11_150, "timestamp": "2026-01-01T10:05:00Z", "reason": "EVDisconnected"}),
    )
    .await;
    // A start with a token nobody accepted: stored as Refused, never published as started.
    let refused = call_ok(
        &mut ws,
        "t2",
        "StartTransaction",
        json!({"connectorId": 1, "idTag": "NOBODY", "meterStart": 11_150, "timestamp": "2026-01-01T10:10:00Z"}),
    )
    .await;
    assert_eq!(refused["idTagInfo"]["status"], "Invalid", "{refused}");
    let refused_id = refused["transactionId"].as_i64().expect("transaction id");
    call_ok(
        &mut ws,
        "e2",
        "StopTransaction",
        json!({"transactionId": refused_id, "meterStop": 11_150, "timestamp": "2026-01-01T10:11:00Z"}),
    )
    .await;
    call_ok(
        &mut ws,
        "s2",
        "StatusNotification",
        json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    )
    .await;
    (id, ws)
}

/// What a consumer must see for [`charge`]: each event once, in order, and nothing for the
/// refused start.
async fn expect_charge_events(events: &mut EventStream, station: &str, id: i64) {
    expect_charge_events_within(events, station, id, Duration::from_secs(10)).await
}

/// [`expect_charge_events`], waiting up to `first` for the first event (a bus coming back).
async fn expect_charge_events_within(events: &mut EventStream, station: &str, id: i64, first: Duration) {
    let mut seen_ids = HashSet::new();
    let mut kinds = Vec::new();
    let mut summary_energy = None;
    loop {
        let wait = if kinds.is_empty() {
            first
        } else {
            Duration::from_secs(10)
        };
        let Ok(event) = tokio::time::timeout(wait, next_within(events, station, Duration::MAX)).await else {
            panic!("{station}: no event within {wait:?} after {kinds:?}");
        };
        assert!(
            seen_ids.insert(event.event_id.clone()),
            "event {} delivered twice",
            event.event_id
        );
        kinds.push(event.event.kind());
        match &event.event {
            Event::Booted { registration, .. } => {
                assert_eq!(registration.as_deref(), Some("Accepted"), "the boot carries its answer");
            }
            Event::TransactionStarted {
                transaction_id,
                id_token,
                location,
                ..
            } => {
                assert_eq!(transaction_id, &id.to_string());
                assert_eq!(id_token.as_deref(), Some("TAG-1"));
                assert_eq!(location.connector_id, Some(1));
            }
            Event::MeterSummary {
                transaction_id,
                energy_wh,
                power_w,
                ..
            } => {
                assert_eq!(transaction_id, &id.to_string());
                summary_energy = *energy_wh;
                assert_eq!(*power_w, Some(7200.0));
            }
            Event::TransactionEnded {
                transaction_id,
                meter_stop_wh,
                stop_reason,
                ..
            } => {
                assert_eq!(
                    transaction_id,
                    &id.to_string(),
                    "only the accepted transaction ends on the bus"
                );
                assert_eq!(*meter_stop_wh, Some(11_150));
                assert_eq!(stop_reason.as_deref(), Some("EVDisconnected"));
            }
            Event::ConnectorStatus { status, .. } if status == "Available" => break,
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "stationOnline",
            "booted",
            "connectorStatus",
            "transactionStarted",
            "meterSummary",
            "transactionEnded",
            "connectorStatus"
        ],
        "events of {station}"
    );
    assert_eq!(
        summary_energy,
        Some(11_150),
        "the summary carries the last register sent"
    );
}

#[tokio::test]
async fn a_charging_session_reaches_the_bus_in_order_each_event_once() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut events = server.state.bus.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        let (id, _ws) = charge(&server, "CP-OUT-1").await;
        expect_charge_events(&mut events, "CP-OUT-1", id).await;
        let rows = all_sent(&server).await;
        assert_eq!(rows, 7, "{backend}: one outbox row per event");
        let (_, metrics) = server.api("GET", "/metrics", None, None).await;
        let metrics = metrics.as_str().unwrap_or_default().to_owned();
        assert!(
            metrics.contains("ocpp_outbox_events_published_total 7\n"),
            "{backend}: {metrics}"
        );
        server.stop_and_clean().await;
    }
}

/// A bus whose publishes fail while `down` is set (a broker outage, as the publisher sees it).
#[derive(Clone, Default)]
struct FlakyBus {
    inner: InProcBus,
    down: Arc<AtomicBool>,
}

impl Bus for FlakyBus {
    fn publish(&self, event: EventEnvelope) -> BoxFuture<'_, Result<(), BusError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(BusError::Transport("broker unreachable".into())) });
        }
        self.inner.publish(event)
    }

    fn subscribe<'a>(&'a self, group: &'a str, member: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>> {
        self.inner.subscribe(group, member)
    }

    fn send_command(
        &self,
        command: CommandEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandReply, BusError>> {
        self.inner.send_command(command, timeout)
    }

    fn serve_commands<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<CommandServer, BusError>> {
        self.inner.serve_commands(node)
    }
}

#[tokio::test]
async fn events_written_while_the_bus_is_down_are_published_once_it_is_back() {
    for (backend, url) in backends().await {
        let bus = FlakyBus::default();
        bus.down.store(true, Ordering::SeqCst);
        let server = TestServer::start_with_bus(backend, url, Arc::new(bus.clone())).await;
        let mut events = bus.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        let (id, _ws) = charge(&server, "CP-OUT-2").await;
        // Everything is committed (each answer came after its commit), nothing is sent.
        let rows = server.state.store.outbox_rows().await.unwrap();
        assert_eq!(rows.len(), 7, "{backend}");
        assert!(
            rows.iter().all(|r| r.sent_at.is_none()),
            "{backend}: sent while the bus was down"
        );
        bus.down.store(false, Ordering::SeqCst);
        expect_charge_events(&mut events, "CP-OUT-2", id).await;
        assert_eq!(all_sent(&server).await, 7, "{backend}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn events_cross_mqtt_in_order() {
    let Ok(mqtt_url) = std::env::var("EVCS_TEST_MQTT_URL") else {
        eprintln!("EVCS_TEST_MQTT_URL not set: the MQTT outbox test did not run");
        return;
    };
    for (backend, url) in backends().await {
        // A prefix of its own, so other tests on the same broker cannot interfere.
        let prefix = format!("evcs-test-{}", rand::random::<u32>());
        let server = TestServer::start_with(backend, url, |c| {
            c.bus = central_system::config::BusKind::Mqtt;
            c.mqtt_url = Some(mqtt_url.clone());
            c.bus_topic_prefix = prefix.clone();
            c.node_id = Some(format!("{prefix}-central"));
        })
        .await;
        let consumer = evcs_bus::MqttBus::connect(
            evcs_bus::MqttConfig::from_url(&mqtt_url, &prefix).unwrap(),
            &format!("{prefix}-consumer"),
        )
        .await
        .unwrap();
        let mut events = consumer.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        let (id, _ws) = charge(&server, "CP-OUT-3").await;
        expect_charge_events(&mut events, "CP-OUT-3", id).await;
        assert_eq!(all_sent(&server).await, 7, "{backend}");
        server.stop_and_clean().await;
    }
}

fn tx_event(kind: &str, seq: i64, ts: &str, wh: i64) -> Value {
    let trigger = match kind {
        "Started" => "RemoteStart",
        "Ended" => "StopAuthorized",
        _ => "MeterValuePeriodic",
    };
    json!({
        "eventType": kind, "timestamp": ts, "triggerReason": trigger, "seqNo": seq,
        "transactionInfo": {"transactionId": "tx-bus"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": ts, "sampledValue": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
            {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
            {"value": 55, "measurand": "SoC", "location": "EV", "unitOfMeasure": {"unit": "Percent"}}
        ]}]
    })
}

#[tokio::test]
async fn v201_transaction_events_carry_their_summaries() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut events = server.state.bus.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-2").await;
        let station = "CP-OUT-201";
        let mut ws = connect(&server.ws_url(station), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        let mut started = tx_event("Started", 0, "2026-01-01T10:00:00Z", 1_000);
        started["idToken"] = json!({"idToken": "TAG-2", "type": "ISO14443"});
        started["transactionInfo"]["remoteStartId"] = json!(42);
        call_ok(&mut ws, "s", "TransactionEvent", started).await;
        let mut charging = tx_event("Updated", 1, "2026-01-01T10:01:00Z", 1_500);
        charging["triggerReason"] = json!("ChargingStateChanged");
        charging["transactionInfo"]["chargingState"] = json!("Charging");
        call_ok(&mut ws, "u1", "TransactionEvent", charging).await;
        // A periodic event within the cadence: its values wait for the next summary.
        call_ok(
            &mut ws,
            "u2",
            "TransactionEvent",
            tx_event("Updated", 2, "2026-01-01T10:02:00Z", 2_000),
        )
        .await;
        let mut ended = tx_event("Ended", 3, "2026-01-01T10:03:00Z", 2_500);
        ended["transactionInfo"]["stoppedReason"] = json!("EVDisconnected");
        call_ok(&mut ws, "e", "TransactionEvent", ended).await;

        let mut kinds = Vec::new();
        let mut energies = Vec::new();
        let mut transaction = None;
        loop {
            let event = next_of(&mut events, station).await;
            kinds.push(event.event.kind());
            match event.event {
                Event::TransactionStarted {
                    transaction_id,
                    id_token,
                    location,
                    remote_start_id,
                    ..
                } => {
                    assert_eq!((id_token.as_deref(), remote_start_id), (Some("TAG-2"), Some(42)));
                    assert_eq!((location.evse_id, location.connector_id), (Some(1), Some(1)));
                    transaction = Some(transaction_id);
                }
                Event::MeterSummary {
                    transaction_id,
                    energy_wh,
                    power_w,
                    soc_percent,
                    ..
                } => {
                    assert_eq!(Some(&transaction_id), transaction.as_ref());
                    assert_eq!((power_w, soc_percent), (Some(11_000.0), Some(55.0)));
                    energies.extend(energy_wh);
                }
                Event::TransactionEnded {
                    transaction_id,
                    stop_reason,
                    ..
                } => {
                    assert_eq!(Some(&transaction_id), transaction.as_ref());
                    assert_eq!(stop_reason.as_deref(), Some("EVDisconnected"));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(
            kinds,
            [
                "stationOnline",
                "booted",
                "transactionStarted",
                "meterSummary",
                "transactionUpdated",
                "meterSummary",
                "transactionEnded"
            ],
            "{backend}"
        );
        assert_eq!(
            energies,
            [1_500, 2_500],
            "{backend}: one summary per transaction event, the latest values"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a_zero_cadence_summarizes_every_batch_of_readings() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.meter_summary_secs = 0).await;
        let mut events = server.state.bus.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        let (_id, _ws) = charge(&server, "CP-OUT-4").await;
        let mut energies = Vec::new();
        loop {
            let event = next_of(&mut events, "CP-OUT-4").await;
            match event.event {
                Event::MeterSummary { energy_wh, .. } => energies.extend(energy_wh),
                Event::TransactionEnded { .. } => break,
                _ => {}
            }
        }
        // One per MeterValues; the stop's meterStop equals the last reading, so no more.
        assert_eq!(energies, [10_400, 10_800, 11_150], "{backend}");
        server.stop_and_clean().await;
    }
}

/// A TCP proxy in front of the broker that the test can cut, so the central system loses the
/// broker while a consumer connected directly keeps its session.
struct CuttableLink {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped by each cut: connections of an older generation close.
    cut: tokio::sync::watch::Sender<u64>,
    _task: tokio::task::JoinHandle<()>,
}

impl CuttableLink {
    async fn start(broker: &str) -> CuttableLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (broker, accepting, cuts) = (broker.to_owned(), up.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the broker is "unreachable"
                }
                let broker = broker.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&broker).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CuttableLink {
            addr,
            up,
            cut,
            _task: task,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn events_written_while_the_broker_is_unreachable_are_published_once_it_is_back() {
    let Ok(mqtt_url) = std::env::var("EVCS_TEST_MQTT_URL") else {
        eprintln!("EVCS_TEST_MQTT_URL not set: the broker-outage test did not run");
        return;
    };
    let broker = mqtt_url.trim_start_matches("mqtt://").trim_end_matches('/').to_owned();
    for (backend, url) in backends().await {
        let link = CuttableLink::start(&broker).await;
        let prefix = format!("evcs-test-{}", rand::random::<u32>());
        let via_link = format!("mqtt://{}", link.addr);
        let server = TestServer::start_with(backend, url, |c| {
            c.bus = central_system::config::BusKind::Mqtt;
            c.mqtt_url = Some(via_link.clone());
            c.bus_topic_prefix = prefix.clone();
            c.node_id = Some(format!("{prefix}-central"));
        })
        .await;
        let consumer = evcs_bus::MqttBus::connect(
            evcs_bus::MqttConfig::from_url(&mqtt_url, &prefix).unwrap(),
            &format!("{prefix}-consumer"),
        )
        .await
        .unwrap();
        let mut events = consumer.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        link.down();
        // Chargers are answered as usual while the broker is away; their events wait.
        let (id, _ws) = charge(&server, "CP-OUT-5").await;
        let rows = server.state.store.outbox_rows().await.unwrap();
        assert_eq!(rows.len(), 7, "{backend}");
        assert!(
            rows.iter().all(|r| r.sent_at.is_none()),
            "{backend}: sent while the broker was away"
        );
        link.restore();
        expect_charge_events_within(&mut events, "CP-OUT-5", id, Duration::from_secs(60)).await;
        assert_eq!(all_sent(&server).await, 7, "{backend}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn two_nodes_on_one_database_publish_each_event_once() {
    let Ok(mqtt_url) = std::env::var("EVCS_TEST_MQTT_URL") else {
        eprintln!("EVCS_TEST_MQTT_URL not set: the two-node outbox test did not run");
        return;
    };
    let Some(db) = fresh_url("postgres").await else {
        eprintln!("EVCS_TEST_POSTGRES_URL not set: the two-node outbox test did not run");
        return;
    };
    let prefix = format!("evcs-test-{}", rand::random::<u32>());
    let node = |name: &'static str| {
        let (mqtt_url, prefix) = (mqtt_url.clone(), prefix.clone());
        move |c: &mut central_system::Config| {
            c.bus = central_system::config::BusKind::Mqtt;
            c.mqtt_url = Some(mqtt_url);
            c.bus_topic_prefix = prefix.clone();
            c.node_id = Some(format!("{prefix}-{name}"));
        }
    };
    let a = TestServer::start_with("postgres", Some(db.clone()), node("a")).await;
    let b = TestServer::start_with("postgres", Some(db), node("b")).await;
    let consumer = evcs_bus::MqttBus::connect(
        evcs_bus::MqttConfig::from_url(&mqtt_url, &prefix).unwrap(),
        &format!("{prefix}-consumer"),
    )
    .await
    .unwrap();
    let mut events = consumer.subscribe("booking-api", "test").await.unwrap();
    a.accept_token("TAG-1").await;
    // Both nodes see every row; only the lease holder publishes, so each event arrives once
    // (expect_charge_events fails on a repeated event id). Both publishers are kept busy
    // reading the outbox while the rows come in, as if each had just committed rows itself.
    let wakes = [a.state.store.outbox_wake().clone(), b.state.store.outbox_wake().clone()];
    let nudging = tokio::spawn(async move {
        loop {
            wakes.iter().for_each(|w| w.notify_one());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (id, _ws) = charge(&a, "CP-OUT-6").await;
    expect_charge_events(&mut events, "CP-OUT-6", id).await;
    assert_eq!(all_sent(&a).await, 7);
    nudging.abort();
    let published = |s: &TestServer| s.state.outbox_stats.published.load(Ordering::Relaxed);
    let mut counts = [published(&a), published(&b)];
    counts.sort_unstable();
    assert_eq!(counts, [0, 7], "one node published everything, once");
    b.stop().await;
    a.stop_and_clean().await;
}

#[tokio::test]
async fn transactions_the_central_system_closes_end_on_the_bus_once() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut events = server.state.bus.subscribe("booking-api", "test").await.unwrap();
        server.accept_token("TAG-1").await;
        let station = "CP-OUT-7";
        let mut ws = connect(&server.ws_url(station), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let start = |connector: i64, ts: &str| json!({"connectorId": connector, "idTag": "TAG-1", "meterStart": 0, "timestamp": ts});
        let first = call_ok(&mut ws, "t1", "StartTransaction", start(1, "2026-01-01T10:00:00Z")).await;
        let first = first["transactionId"].as_i64().unwrap();
        // The station reports the connector free: the central system closes what it lost.
        call_ok(
            &mut ws,
            "s1",
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        )
        .await;
        let second = call_ok(&mut ws, "t2", "StartTransaction", start(2, "2026-01-01T10:05:00Z")).await;
        let second = second["transactionId"].as_i64().unwrap();
        server
            .admin(
                "POST",
                &format!("/api/v1/transactions/{second}/end"),
                Some(json!({"reason": "station lost it"})),
                200,
            )
            .await;
        // The station's own stop afterwards changes nothing on the bus.
        call_ok(
            &mut ws,
            "e2",
            "StopTransaction",
            json!({"transactionId": second, "meterStop": 10, "timestamp": "2026-01-01T10:06:00Z"}),
        )
        .await;
        call_ok(
            &mut ws,
            "s2",
            "StatusNotification",
            json!({"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted", "info": "RCD"}),
        )
        .await;
        let mut ends = Vec::new();
        let mut kinds = Vec::new();
        loop {
            let event = next_of(&mut events, station).await;
            kinds.push(event.event.kind());
            match event.event {
                Event::TransactionEnded {
                    transaction_id,
                    stop_reason,
                    ..
                } => ends.push((transaction_id, stop_reason)),
                Event::Fault {
                    error_code,
                    info,
                    location,
                } => {
                    assert_eq!((error_code.as_str(), info.as_deref()), ("GroundFailure", Some("RCD")));
                    assert_eq!(location.connector_id, Some(2));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(
            ends,
            [
                (first.to_string(), Some("Abandoned".to_owned())),
                (second.to_string(), Some("Operator".to_owned()))
            ],
            "{backend}: {kinds:?}"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn security_events_reservations_and_refused_tokens_reach_the_bus() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut events = server.state.bus.subscribe("booking-api", "test").await.unwrap();
        let station = "CP-OUT-8";
        let mut ws = connect(&server.ws_url(station), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        call_ok(
            &mut ws,
            "sec",
            "SecurityEventNotification",
            json!({"type": "TamperDetectionActivated", "timestamp": "2026-01-01T10:00:00Z", "techInfo": "lid open"}),
        )
        .await;
        call_ok(
            &mut ws,
            "res",
            "ReservationStatusUpdate",
            json!({"reservationId": 77, "reservationUpdateStatus": "Expired"}),
        )
        .await;
        // A 2.0.1 start is stored before its token is checked: refused, it ends at once.
        let mut started = tx_event("Started", 0, "2026-01-01T10:01:00Z", 0);
        started["idToken"] = json!({"idToken": "NOBODY", "type": "ISO14443"});
        let answer = call_ok(&mut ws, "s", "TransactionEvent", started).await;
        assert_ne!(answer["idTokenInfo"]["status"], "Accepted", "{answer}");
        let mut kinds = Vec::new();
        loop {
            let event = next_of(&mut events, station).await;
            kinds.push(event.event.kind());
            match event.event {
                Event::SecurityEvent { kind, tech_info } => {
                    assert_eq!(
                        (kind.as_str(), tech_info.as_deref()),
                        ("TamperDetectionActivated", Some("lid open"))
                    );
                }
                Event::ReservationStatus { reservation_id, status } => {
                    assert_eq!((reservation_id, status.as_str()), (77, "Expired"));
                }
                Event::TransactionEnded { stop_reason, .. } => {
                    assert_eq!(stop_reason.as_deref(), Some("Refused"));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(
            kinds,
            [
                "stationOnline",
                "booted",
                "securityEvent",
                "reservationStatus",
                "transactionStarted",
                "transactionEnded"
            ],
            "{backend}"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a_clean_shutdown_publishes_the_last_events_first() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let bus = server.state.bus.clone();
        let mut events = bus.subscribe("booking-api", "test").await.unwrap();
        let station = "CP-OUT-9";
        let mut ws = connect(&server.ws_url(station), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        // Shutdown closes the socket (stationOffline) while the service winds down; the
        // publisher stops only after the sessions and the batch writer, with one more round.
        server.stop_and_clean().await;
        let mut kinds = Vec::new();
        while kinds.last() != Some(&"stationOffline") {
            kinds.push(next_of(&mut events, station).await.event.kind());
        }
        assert_eq!(kinds, ["stationOnline", "booted", "stationOffline"], "{backend}");
    }
}

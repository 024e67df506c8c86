//! Behaviour of both transports through the `Bus` trait: the same test body runs on the
//! in-process bus and on MQTT 5.
//!
//! MQTT tests use the broker at `EVCS_TEST_MQTT_URL` when it is set (and fail if it cannot be
//! reached); otherwise they start their own `mosquitto` on a free port, or say they did not run.
//! Every topic carries a fresh prefix, so tests never see each other's messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use evcs_bus::{
    command, Bus, BusError, Command, CommandReply, CommandServer, Dedup, Event, EventEnvelope, EventStream, InProcBus,
    MqttBus, MqttConfig, StationId,
};
use std::collections::HashSet;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

/// Upper bound on any single wait; tests poll conditions within it, never sleep to a deadline.
const WAIT: Duration = Duration::from_secs(10);

enum Harness {
    InProc(InProcBus),
    Mqtt {
        config: Box<MqttConfig>,
        _broker: Option<tokio::process::Child>,
    },
}

impl Harness {
    async fn bus(&self, node: &str) -> Box<dyn Bus> {
        match self {
            Harness::InProc(bus) => Box::new(bus.clone()),
            Harness::Mqtt { config, .. } => Box::new(
                MqttBus::connect(MqttConfig::clone(config), node)
                    .await
                    .expect("MQTT bus connects"),
            ),
        }
    }
}

fn inproc() -> Harness {
    Harness::InProc(InProcBus::new())
}

async fn mqtt() -> Option<Harness> {
    let prefix = format!("t{}", uuid_like());
    if let Ok(url) = std::env::var("EVCS_TEST_MQTT_URL") {
        let mut config = MqttConfig::from_url(&url, &prefix).expect("EVCS_TEST_MQTT_URL is mqtt://host:port");
        config.max_backoff = Duration::from_millis(500);
        return Some(Harness::Mqtt {
            config: Box::new(config),
            _broker: None,
        });
    }
    if !std::path::Path::new(MOSQUITTO).exists() {
        eprintln!("MQTT test NOT RUN: EVCS_TEST_MQTT_URL unset and {MOSQUITTO} missing");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let child = start_mosquitto(port).await;
    let mut config = MqttConfig::from_url(&format!("mqtt://127.0.0.1:{port}"), &prefix).expect("url");
    config.max_backoff = Duration::from_millis(500);
    Some(Harness::Mqtt {
        config: Box::new(config),
        _broker: Some(child),
    })
}

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Starts a throw-away broker on `port` (no persistence: a restart loses every session) and
/// waits until it listens.
async fn start_mosquitto(port: u16) -> tokio::process::Child {
    let dir = std::env::temp_dir().join(format!("evcs-bus-mosquitto-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .expect("broker config");
    let child = tokio::process::Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto starts");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

fn uuid_like() -> String {
    format!("{:x}", rand::random::<u64>())
}

fn station(id: &str) -> StationId {
    StationId::parse(id).expect("valid station id")
}

fn event(n: i64) -> EventEnvelope {
    EventEnvelope::new(
        station("CP+1"),
        Utc::now(),
        Event::ReservationStatus {
            reservation_id: n,
            status: "Accepted".into(),
        },
    )
}

fn number(e: &EventEnvelope) -> i64 {
    match e.event {
        Event::ReservationStatus { reservation_id, .. } => reservation_id,
        ref other => panic!("unexpected event {other:?}"),
    }
}

async fn next_within(stream: &mut EventStream) -> EventEnvelope {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("event within the wait")
        .expect("stream open")
}

/// Answers every command on `server` with `Status { status: name }`.
fn answer_as(mut server: CommandServer, name: &'static str) -> tokio::task::JoinHandle<CommandServer> {
    tokio::spawn(async move {
        if let Some(incoming) = server.next().await {
            incoming
                .reply(CommandReply::Status {
                    status: name.into(),
                    payload: None,
                })
                .await
                .expect("reply sent");
        }
        server
    })
}

fn reset() -> Command {
    Command::Reset {
        kind: evcs_bus::contract::ResetKind::Soft,
    }
}

async fn events_reach_every_group(h: Harness) {
    let bus = h.bus("node-a").await;
    let mut a = bus.subscribe("booking", "m1").await.expect("subscribe");
    let mut b = bus.subscribe("audit", "m1").await.expect("subscribe");
    for n in 0..3 {
        bus.publish(event(n)).await.expect("publish");
    }
    for stream in [&mut a, &mut b] {
        let got: Vec<i64> = [
            next_within(stream).await,
            next_within(stream).await,
            next_within(stream).await,
        ]
        .iter()
        .map(number)
        .collect();
        assert_eq!(got, vec![0, 1, 2]);
    }
}

async fn a_group_shares_the_load(h: Harness) {
    let bus = h.bus("node-a").await;
    let mut m1 = bus.subscribe("booking", "m1").await.expect("subscribe");
    let mut m2 = bus.subscribe("booking", "m2").await.expect("subscribe");
    let total = 20;
    for n in 0..total {
        bus.publish(event(n)).await.expect("publish");
    }
    let (mut seen1, mut seen2) = (HashSet::new(), HashSet::new());
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen1.len() + seen2.len() < total as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} + {} events",
            seen1.len(),
            seen2.len()
        );
        tokio::select! {
            Some(e) = m1.next() => { seen1.insert(number(&e)); }
            Some(e) = m2.next() => { seen2.insert(number(&e)); }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    assert!(
        !seen1.is_empty() && !seen2.is_empty(),
        "one member got everything: {seen1:?} / {seen2:?}"
    );
    assert!(seen1.is_disjoint(&seen2), "an event went to both members");
    assert_eq!(seen1.union(&seen2).count(), total as usize);
}

async fn a_command_gets_its_reply(h: Harness) {
    let bus = h.bus("node-a").await;
    let server = bus.serve_commands("node-a").await.expect("serve");
    server.serve(&station("CP+1")).await.expect("station served");
    let answering = answer_as(server, "Accepted");
    let reply = bus
        .send_command(command(station("CP+1"), reset(), WAIT), WAIT)
        .await
        .expect("reply");
    assert_eq!(
        reply,
        CommandReply::Status {
            status: "Accepted".into(),
            payload: None
        }
    );
    answering.await.expect("server task");
}

async fn a_command_nobody_serves_times_out(h: Harness) {
    let bus = h.bus("node-a").await;
    let t = Duration::from_millis(300);
    let outcome = bus.send_command(command(station("NOBODY"), reset(), t), t).await;
    assert!(matches!(outcome, Err(BusError::Timeout(_))), "{outcome:?}");
}

async fn commands_follow_their_station(h: Harness) {
    let node_a = h.bus("node-a").await;
    let node_b = h.bus("node-b").await;
    let sender = h.bus("booking").await;
    let cp = station("CP-7");
    let a = node_a.serve_commands("node-a").await.expect("serve");
    a.serve(&cp).await.expect("served on a");
    let a = answer_as(a, "from-a");
    let reply = sender
        .send_command(command(cp.clone(), reset(), WAIT), WAIT)
        .await
        .expect("reply");
    assert_eq!(
        reply,
        CommandReply::Status {
            status: "from-a".into(),
            payload: None
        }
    );
    let a = a.await.expect("server task");
    // The station's socket moves: it leaves a, then connects to b.
    a.leave(&cp).await.expect("left a");
    let b = node_b.serve_commands("node-b").await.expect("serve");
    b.serve(&cp).await.expect("served on b");
    let b = answer_as(b, "from-b");
    let a = answer_as(a, "from-a");
    let reply = sender
        .send_command(command(cp.clone(), reset(), WAIT), WAIT)
        .await
        .expect("reply");
    assert_eq!(
        reply,
        CommandReply::Status {
            status: "from-b".into(),
            payload: None
        }
    );
    b.await.expect("server task");
    a.abort();
}

async fn a_stale_command_never_reaches_the_server(h: Harness) {
    let bus = h.bus("node-a").await;
    let cp = station("CP-9");
    let mut server = bus.serve_commands("node-a").await.expect("serve");
    server.serve(&cp).await.expect("served");
    // The server is busy (not polling) while the caller gives up.
    let t = Duration::from_millis(200);
    let stale = command(cp.clone(), Command::CancelReservation { reservation_id: 1 }, t);
    let outcome = bus.send_command(stale, t).await;
    assert!(matches!(outcome, Err(BusError::Timeout(_))), "{outcome:?}");
    // The next command the server takes is the fresh one, not the stale one queued before it.
    let fresh = command(cp.clone(), Command::CancelReservation { reservation_id: 2 }, WAIT);
    let send = bus.send_command(fresh, WAIT);
    let serve = async {
        let incoming = tokio::time::timeout(WAIT, server.next())
            .await
            .expect("a command")
            .expect("open");
        assert_eq!(
            incoming.envelope.command,
            Command::CancelReservation { reservation_id: 2 }
        );
        incoming
            .reply(CommandReply::Status {
                status: "Accepted".into(),
                payload: None,
            })
            .await
            .expect("reply");
    };
    let (reply, ()) = tokio::join!(send, serve);
    assert!(matches!(reply, Ok(CommandReply::Status { .. })), "{reply:?}");
}

async fn a_restarted_consumer_misses_nothing(h: Harness) {
    let bus = h.bus("node-a").await;
    let first = bus.subscribe("booking", "m1").await.expect("subscribe");
    drop(first); // the consumer stops (its connection goes away; the session stays)
    for n in 0..5 {
        bus.publish(event(n)).await.expect("publish");
    }
    let mut again = bus.subscribe("booking", "m1").await.expect("resubscribe");
    let mut dedup = Dedup::new(100);
    let mut got = Vec::new();
    while got.len() < 5 {
        let e = next_within(&mut again).await;
        if dedup.first_time(&e.event_id) {
            got.push(number(&e));
        }
    }
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod inproc_bus { $(#[tokio::test] async fn $name() { super::$name(super::inproc()).await; })* }
        mod mqtt_bus {
            $(#[tokio::test] async fn $name() {
                if let Some(h) = super::mqtt().await { super::$name(h).await; }
            })*
        }
    };
}

both!(
    events_reach_every_group,
    a_group_shares_the_load,
    a_command_gets_its_reply,
    a_command_nobody_serves_times_out,
    commands_follow_their_station,
    a_stale_command_never_reaches_the_server,
);

/// Only MQTT keeps sessions: the in-process bus ends with its process.
#[tokio::test]
async fn mqtt_a_restarted_consumer_misses_nothing() {
    if let Some(h) = mqtt().await {
        a_restarted_consumer_misses_nothing(h).await;
    }
}

/// The broker restarts and forgets every session: both clients reconnect (with backoff) and
/// the consumer's subscription is restored, so events flow again without any help.
#[tokio::test]
async fn mqtt_clients_recover_from_a_broker_restart() {
    if std::env::var("EVCS_TEST_MQTT_URL").is_ok() || !std::path::Path::new(MOSQUITTO).exists() {
        eprintln!("MQTT broker-restart test NOT RUN: it needs its own {MOSQUITTO} (EVCS_TEST_MQTT_URL unset)");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let mut broker = start_mosquitto(port).await;
    let mut config = MqttConfig::from_url(&format!("mqtt://127.0.0.1:{port}"), "restart").expect("url");
    config.max_backoff = Duration::from_millis(300);
    config.ack_timeout = Duration::from_millis(500);
    let bus = MqttBus::connect(config, "node-a").await.expect("connects");
    let mut stream = bus.subscribe("booking", "m1").await.expect("subscribe");
    bus.publish(event(0)).await.expect("publish");
    assert_eq!(number(&next_within(&mut stream).await), 0);

    broker.kill().await.expect("broker stopped");
    // No broker, no PUBACK: publish reports failure (an outbox keeps the row for a retry).
    assert!(
        bus.publish(event(-1)).await.is_err(),
        "publish succeeded with no broker"
    );
    let _broker = start_mosquitto(port).await;

    // Publish until one gets through: the first ones may land before the consumer resubscribed.
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    let mut n = 1;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event after the broker restart"
        );
        // Until the reconnect, publishes may fail for want of a PUBACK; that is expected here.
        let _ = bus.publish(event(n)).await;
        n += 1;
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
            assert!(number(&e) != 0, "the event from before the restart came again");
            break;
        }
    }
}

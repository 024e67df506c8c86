//! The OCPP-J wire protocol end to end: every CALLERROR code of each version, sent for the
//! frame that should provoke it, with the exact spelling the version's specification uses;
//! frames that must never be answered; and a server that keeps serving afterwards.
//!
//! The expected codes are string literals on purpose: they are what a charger compares
//! against, so they must not be computed by the same mapping code they check
//! (`ocpp::error_code`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The frame-size limit of the servers in this file: small, so a 4 KB payload crosses it.
const MAX_FRAME_BYTES: usize = 2048;

/// One frame and the CALLERROR it must be answered with.
struct Case {
    name: &'static str,
    frame: String,
    code: &'static str,
    id: &'static str,
}

fn case(name: &'static str, frame: impl Into<String>, code: &'static str, id: &'static str) -> Case {
    Case {
        name,
        frame: frame.into(),
        code,
        id,
    }
}

/// What differs between the versions.
struct Proto {
    subprotocol: &'static str,
    /// Every CALLERROR code the version's specification defines, spelled as it spells them.
    codes: &'static [&'static str],
    /// A valid BootNotification payload.
    boot: fn() -> Value,
    /// Cases answered on an accepted station's connection (all codes but SecurityError, which
    /// needs a station that is not accepted, and InternalError, which needs broken storage).
    table: fn() -> Vec<Case>,
}

const V16: Proto = Proto {
    subprotocol: "ocpp1.6",
    codes: &[
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        // Sic: OCPP-J 1.6 misspells it, and 1.6 chargers compare against this spelling.
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    ],
    boot: || json!({"chargePointVendor": "TestVendor", "chargePointModel": "TM-1"}),
    table: v16_table,
};

const V201: Proto = Proto {
    subprotocol: "ocpp2.0.1",
    codes: &[
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    ],
    boot: || json!({"reason": "PowerUp", "chargingStation": {"vendorName": "TestVendor", "model": "TM-2"}}),
    table: v201_table,
};

fn v16_table() -> Vec<Case> {
    // A valid 1.6 StatusNotification is {"connectorId":1,"errorCode":"NoError","status":"Available"}.
    vec![
        // Dispatch: action unknown, or known but only the central system sends it.
        case("unknown action", r#"[2,"ni","FooBar",{}]"#, "NotImplemented", "ni"),
        case(
            "CSMS-only action",
            r#"[2,"ns","RemoteStartTransaction",{"idTag":"ABC"}]"#,
            "NotSupported",
            "ns",
        ),
        // Schema validation.
        case(
            "required field missing",
            r#"[2,"oc","StatusNotification",{"connectorId":1,"errorCode":"NoError"}]"#,
            "OccurenceConstraintViolation",
            "oc",
        ),
        case(
            "string for an integer",
            r#"[2,"tc","StatusNotification",{"connectorId":"one","errorCode":"NoError","status":"Available"}]"#,
            "TypeConstraintViolation",
            "tc",
        ),
        case(
            "malformed date-time",
            r#"[2,"dt","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"yesterday"}]"#,
            "TypeConstraintViolation",
            "dt",
        ),
        case(
            "value outside the enum",
            r#"[2,"en","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}]"#,
            "PropertyConstraintViolation",
            "en",
        ),
        case(
            "string over maxLength",
            format!(
                r#"[2,"ml","DataTransfer",{{"vendorId":"acme","messageId":"{}"}}]"#,
                "m".repeat(51)
            ),
            "PropertyConstraintViolation",
            "ml",
        ),
        // The schema only says "integer"; the semantic check refuses negative connector numbers.
        case(
            "negative connectorId",
            r#"[2,"neg","StatusNotification",{"connectorId":-1,"errorCode":"NoError","status":"Available"}]"#,
            "PropertyConstraintViolation",
            "neg",
        ),
        case(
            "unknown property",
            r#"[2,"ap","Heartbeat",{"foo":1}]"#,
            "FormationViolation",
            "ap",
        ),
        // Framing, with a readable id.
        case(
            "payload not an object",
            r#"[2,"po","Heartbeat",[]]"#,
            "FormationViolation",
            "po",
        ),
        case("payload missing", r#"[2,"pm","Heartbeat"]"#, "ProtocolError", "pm"),
        case("action not a string", r#"[2,"an",7,{}]"#, "FormationViolation", "an"),
        case(
            "CALL with a fifth element",
            r#"[2,"x5","Heartbeat",{},1]"#,
            "FormationViolation",
            "x5",
        ),
        // 1.6 has no MessageTypeNotSupported; ProtocolError is its closest code.
        case("unknown message type", r#"[7,"mt",{}]"#, "ProtocolError", "mt"),
        // Framing, id unreadable: answered to id "-1".
        case("not JSON", "hello", "FormationViolation", "-1"),
        case("not an array", r#"{"a":1}"#, "FormationViolation", "-1"),
        case("empty array", "[]", "FormationViolation", "-1"),
        case("number as id", r#"[2,42,"Heartbeat",{}]"#, "FormationViolation", "-1"),
        case("empty id", r#"[2,"","Heartbeat",{}]"#, "FormationViolation", "-1"),
        case(
            "id over 36 characters",
            format!(r#"[2,"{}","Heartbeat",{{}}]"#, "i".repeat(37)),
            "FormationViolation",
            "-1",
        ),
        // Size: a valid DataTransfer, refused only for its length.
        case(
            "4 KB DataTransfer frame",
            data_transfer("big", 4096),
            "GenericError",
            "big",
        ),
        case(
            "one byte over the limit",
            data_transfer("over", MAX_FRAME_BYTES + 1),
            "GenericError",
            "over",
        ),
    ]
}

fn v201_table() -> Vec<Case> {
    // A valid 2.0.1 StatusNotification:
    // {"timestamp":"2024-05-01T12:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":1}.
    vec![
        case("unknown action", r#"[2,"ni","FooBar",{}]"#, "NotImplemented", "ni"),
        case(
            "CSMS-only action",
            r#"[2,"ns","RequestStartTransaction",{"idToken":{"idToken":"ABC","type":"ISO14443"},"remoteStartId":1}]"#,
            "NotSupported",
            "ns",
        ),
        case(
            "required field missing",
            r#"[2,"oc","StatusNotification",{"timestamp":"2024-05-01T12:00:00Z","evseId":1,"connectorId":1}]"#,
            "OccurrenceConstraintViolation",
            "oc",
        ),
        case(
            "string for an integer",
            r#"[2,"tc","StatusNotification",{"timestamp":"2024-05-01T12:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":"one"}]"#,
            "TypeConstraintViolation",
            "tc",
        ),
        case(
            "malformed date-time",
            r#"[2,"dt","StatusNotification",{"timestamp":"yesterday","connectorStatus":"Available","evseId":1,"connectorId":1}]"#,
            "TypeConstraintViolation",
            "dt",
        ),
        case(
            "value outside the enum",
            r#"[2,"en","StatusNotification",{"timestamp":"2024-05-01T12:00:00Z","connectorStatus":"Sleeping","evseId":1,"connectorId":1}]"#,
            "PropertyConstraintViolation",
            "en",
        ),
        case(
            "string over maxLength",
            format!(
                r#"[2,"ml","DataTransfer",{{"vendorId":"acme","messageId":"{}"}}]"#,
                "m".repeat(51)
            ),
            "PropertyConstraintViolation",
            "ml",
        ),
        case(
            "negative connectorId",
            r#"[2,"neg","StatusNotification",{"timestamp":"2024-05-01T12:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":-1}]"#,
            "PropertyConstraintViolation",
            "neg",
        ),
        case(
            "unknown property",
            r#"[2,"ap","Heartbeat",{"foo":1}]"#,
            "FormatViolation",
            "ap",
        ),
        case(
            "payload not an object",
            r#"[2,"po","Heartbeat",[]]"#,
            "FormatViolation",
            "po",
        ),
        case("payload missing", r#"[2,"pm","Heartbeat"]"#, "ProtocolError", "pm"),
        case("action not a string", r#"[2,"an",7,{}]"#, "RpcFrameworkError", "an"),
        case(
            "CALL with a fifth element",
            r#"[2,"x5","Heartbeat",{},1]"#,
            "RpcFrameworkError",
            "x5",
        ),
        case(
            "unknown message type",
            r#"[7,"mt",{}]"#,
            "MessageTypeNotSupported",
            "mt",
        ),
        case("not JSON", "hello", "RpcFrameworkError", "-1"),
        case("not an array", r#"{"a":1}"#, "RpcFrameworkError", "-1"),
        case("empty array", "[]", "RpcFrameworkError", "-1"),
        case("number as id", r#"[2,42,"Heartbeat",{}]"#, "RpcFrameworkError", "-1"),
        case("empty id", r#"[2,"","Heartbeat",{}]"#, "RpcFrameworkError", "-1"),
        case(
            "id over 36 characters",
            format!(r#"[2,"{}","Heartbeat",{{}}]"#, "i".repeat(37)),
            "RpcFrameworkError",
            "-1",
        ),
        case(
            "4 KB DataTransfer frame",
            data_transfer("big", 4096),
            "GenericError",
            "big",
        ),
        case(
            "one byte over the limit",
            data_transfer("over", MAX_FRAME_BYTES + 1),
            "GenericError",
            "over",
        ),
    ]
}

/// A valid DataTransfer CALL (same text in both versions) padded to exactly `len` bytes.
fn data_transfer(id: &str, len: usize) -> String {
    let frame = |data: &str| format!(r#"[2,"{id}","DataTransfer",{{"vendorId":"acme","data":"{data}"}}]"#);
    let padding = len - frame("").len();
    let text = frame(&"x".repeat(padding));
    assert_eq!(text.len(), len);
    text
}

/// Sends `case.frame` and checks the answer is exactly `[4, id, code, <description>, {}]`.
async fn expect_call_error(ws: &mut Ws, case: &Case) {
    send(ws, &case.frame).await;
    let answer = recv(ws).await;
    let shown: String = case.frame.chars().take(100).collect();
    let what = format!("{}: {shown} -> {answer}", case.name);
    let items = answer
        .as_array()
        .unwrap_or_else(|| panic!("{what}: answer is not an array"));
    assert_eq!(items.len(), 5, "{what}: a CALLERROR has 5 elements");
    assert_eq!(items[0], json!(4), "{what}: not a CALLERROR");
    assert_eq!(items[1], json!(case.id), "{what}: wrong message id");
    assert_eq!(items[2], json!(case.code), "{what}: wrong code");
    let description = items[3]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: description is not a string"));
    assert!(
        description.chars().count() <= 255,
        "{what}: description over 255 characters"
    );
    assert!(items[4].is_object(), "{what}: details must be an object");
}

/// Runs the whole table of `proto` against one server per backend, then checks the server
/// (and the very connection that received all those frames) still works.
async fn every_code_is_sent(proto: &Proto) {
    let version = proto.subprotocol;
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.max_frame_bytes = MAX_FRAME_BYTES).await;
        // How many CALLERRORs of each code this server sent, to check /metrics and coverage.
        let mut sent: BTreeMap<&str, u64> = BTreeMap::new();

        let mut ws = connect(&server.ws_url("WP-MAIN"), version, None)
            .await
            .expect("connect");
        let boot = call_ok(&mut ws, "boot-1", "BootNotification", (proto.boot)()).await;
        assert_eq!(boot["status"], "Accepted", "{backend} {version}");
        for case in (proto.table)() {
            expect_call_error(&mut ws, &case).await;
            *sent.entry(case.code).or_default() += 1;
        }

        // SecurityError: a station registered as Pending may only send BootNotification, and
        // its boot keeps it Pending.
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": "WP-PENDING", "registrationStatus": "Pending"})),
                201,
            )
            .await;
        let mut pending = connect(&server.ws_url("WP-PENDING"), version, None)
            .await
            .expect("connect pending");
        expect_call_error(
            &mut pending,
            &case(
                "Heartbeat before boot",
                r#"[2,"se1","Heartbeat",{}]"#,
                "SecurityError",
                "se1",
            ),
        )
        .await;
        let boot = call_ok(&mut pending, "boot-p", "BootNotification", (proto.boot)()).await;
        assert_eq!(boot["status"], "Pending", "{backend} {version}: {boot}");
        expect_call_error(
            &mut pending,
            &case(
                "Heartbeat after a Pending boot",
                r#"[2,"se2","Heartbeat",{}]"#,
                "SecurityError",
                "se2",
            ),
        )
        .await;
        *sent.entry("SecurityError").or_default() += 2;

        // The connection that received the whole table still boots and heartbeats, and a frame
        // of exactly the limit is accepted.
        let boot = call_ok(&mut ws, "boot-2", "BootNotification", (proto.boot)()).await;
        assert_eq!(boot["status"], "Accepted", "{backend} {version}");
        let hb = call_ok(&mut ws, "hb-1", "Heartbeat", json!({})).await;
        assert!(hb["currentTime"].is_string(), "{hb}");
        send(&mut ws, &data_transfer("at-limit", MAX_FRAME_BYTES)).await;
        let answer = recv(&mut ws).await;
        assert_eq!(
            answer,
            json!([3, "at-limit", {"status": "UnknownVendorId"}]),
            "{backend} {version}"
        );

        // The server survived: a second station connects and works.
        let mut other = connect(&server.ws_url("WP-OTHER"), version, None)
            .await
            .expect("connect second station");
        let boot = call_ok(&mut other, "boot", "BootNotification", (proto.boot)()).await;
        assert_eq!(boot["status"], "Accepted", "{backend} {version}");
        call_ok(&mut other, "hb", "Heartbeat", json!({})).await;

        // /metrics (no authentication) counts what was sent, per exact wire code.
        let (status, _, text) = http_raw(server.addr, "GET", "/metrics", None, None).await;
        assert_eq!(status, 200, "{text}");
        // Served as OpenMetrics, whose parsers refuse anything after `# EOF`.
        assert!(
            text.ends_with("\n# EOF\n"),
            "{backend} {version}: `# EOF` is not last:\n{text}"
        );
        for (code, n) in &sent {
            let line = format!("ocpp_call_errors_total{{code=\"{code}\",direction=\"sent\"}} {n}");
            assert!(
                text.lines().any(|l| l == line),
                "{backend} {version}: /metrics lacks `{line}`:\n{text}"
            );
        }

        // InternalError: storage fails under a booted station. The answer is a CALLERROR, not
        // a dropped connection: a second Heartbeat on the same socket gets the same answer.
        server.state.store.close().await;
        for id in ["ie1", "ie2"] {
            let frame = format!(r#"[2,"{id}","Heartbeat",{{}}]"#);
            expect_call_error(
                &mut ws,
                &case("Heartbeat with storage closed", frame, "InternalError", id),
            )
            .await;
        }
        *sent.entry("InternalError").or_default() += 2;

        // Every code of the version was seen on the wire, and nothing outside its list.
        let mut expected: Vec<&str> = proto.codes.to_vec();
        expected.sort_unstable();
        let seen: Vec<&str> = sent.keys().copied().collect();
        assert_eq!(seen, expected, "{backend} {version}: codes sent vs the version's codes");

        // Not `server.stop()`: with storage closed, the batch writer retries its last frame-log
        // batch for ~11 s before giving up. Dropping the runtime at the end of the test is enough.
        drop(server);
    }
}

#[tokio::test]
async fn ocpp16_every_call_error_code() {
    every_code_is_sent(&V16).await;
}

#[tokio::test]
async fn ocpp201_every_call_error_code() {
    every_code_is_sent(&V201).await;
}

/// CALLRESULTs and CALLERRORs are never answered, malformed or not: answering a response could
/// start an endless error ping-pong between two peers. The Heartbeat sent afterwards must get
/// the very next frame, which proves nothing was queued in between and the socket is alive.
#[tokio::test]
async fn responses_are_never_answered() {
    let ignored = [
        r#"[3,"nobody",{}]"#,                   // CALLRESULT for an id never sent
        r#"[4,"nobody","GenericError","",{}]"#, // CALLERROR for an id never sent
        r#"[3,"x"]"#,                           // malformed CALLRESULT (no payload)
        r#"[4,"x"]"#,                           // malformed CALLERROR
        r#"[4,"x",7,"description",{}]"#,        // CALLERROR whose code is not a string
        r#"[3,5,{}]"#,                          // CALLRESULT with an unreadable id
    ];
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for (station, version, boot) in [
            ("WP-RESP-16", "ocpp1.6", V16.boot),
            ("WP-RESP-201", "ocpp2.0.1", V201.boot),
        ] {
            let mut ws = connect(&server.ws_url(station), version, None).await.expect("connect");
            call_ok(&mut ws, "boot", "BootNotification", boot()).await;
            for frame in ignored {
                send(&mut ws, frame).await;
            }
            let answer = call(&mut ws, "after", "Heartbeat", json!({})).await;
            assert_eq!(
                answer[0], 3,
                "{backend} {version}: expected the Heartbeat's CALLRESULT, got {answer}"
            );
        }
        server.stop_and_clean().await;
    }
}

/// OCPP-J is text only. A binary frame that is not even UTF-8 is answered like an unreadable
/// text frame (CALLERROR to id "-1"), and the connection stays usable.
#[tokio::test]
async fn binary_frame_with_invalid_utf8() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let versions = [
            ("WP-BIN-16", "ocpp1.6", V16.boot, "FormationViolation"),
            ("WP-BIN-201", "ocpp2.0.1", V201.boot, "RpcFrameworkError"),
        ];
        for (station, version, boot, code) in versions {
            let mut ws = connect(&server.ws_url(station), version, None).await.expect("connect");
            call_ok(&mut ws, "boot", "BootNotification", boot()).await;
            let frames: [&[u8]; 2] = [
                // Not UTF-8 at all.
                &[0xff, 0xfe, 0x00, 0x80],
                // A Heartbeat CALL whose id holds a byte that is not UTF-8: the id cannot be
                // read, so it cannot be echoed back either.
                b"[2,\"b\xff\",\"Heartbeat\",{}]",
            ];
            for bytes in frames {
                ws.send(Message::Binary(bytes.to_vec().into()))
                    .await
                    .expect("send binary");
                let answer = recv(&mut ws).await;
                assert_eq!(answer[0], 4, "{backend} {version} {bytes:?}: {answer}");
                assert_eq!(answer[1], "-1", "{backend} {version} {bytes:?}: {answer}");
                assert_eq!(answer[2], code, "{backend} {version} {bytes:?}: {answer}");
            }
            call_ok(&mut ws, "hb", "Heartbeat", json!({})).await;
        }
        server.stop_and_clean().await;
    }
}

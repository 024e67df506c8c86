//! End-to-end tests of the operator REST API (`/api/v1`, `/health`, `/ready`, `/metrics`):
//! authentication and roles, station and id-token CRUD, live connection state, cursor
//! pagination, the frame log, commands to stations and the OpenAPI document.
//!
//! Every test runs on each backend of [`backends`] (SQLite always, PostgreSQL when
//! `EVCS_TEST_POSTGRES_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use central_system::auth::jwt::{Claims, Role};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A raw HTTP answer.
struct Resp {
    status: u16,
    headers: hyper::HeaderMap,
    text: String,
    json: Value,
}

impl Resp {
    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One HTTP/1.1 request with arbitrary headers and body, over a fresh connection.
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let (status, headers, text) = http_request(addr, method, path, headers, body).await;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

/// A JSON request with an optional bearer token.
async fn call_api(addr: SocketAddr, method: &str, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Resp {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    if bytes.is_some() {
        headers.push(("content-type", "application/json"));
    }
    request(addr, method, path, &headers, bytes.as_deref()).await
}

/// Asserts an RFC 9457 problem with `status` and `code`; returns its body.
#[track_caller]
fn assert_problem(r: &Resp, status: u16, code: &str, context: &str) -> Value {
    assert_eq!(r.status, status, "{context}: {}", r.text);
    assert_eq!(r.content_type(), "application/problem+json", "{context}: content-type");
    let p = &r.json;
    assert_eq!(p["code"], code, "{context}: {p}");
    assert_eq!(p["status"], status, "{context}: {p}");
    assert!(
        p["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: type in {p}"
    );
    assert!(
        p["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: title in {p}"
    );
    assert!(
        p["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: detail in {p}"
    );
    p.clone()
}

/// Like [`TestServer::api`], but also checks that an error status comes as a problem with `code`.
async fn expect_problem(
    server: &TestServer,
    method: &str,
    path: &str,
    role: Option<Role>,
    body: Option<Value>,
    status: u16,
    code: &str,
) -> Value {
    let token = role.map(|r| server.token(r));
    let r = call_api(server.addr, method, path, token.as_deref(), body.as_ref()).await;
    assert_problem(&r, status, code, &format!("{} {method} {path}", server.backend))
}

/// The next text frame, verbatim.
async fn recv_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("timed out waiting for a frame");
        match msg.expect("socket closed").expect("socket error") {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Connects and boots a 1.6 station.
async fn station16(server: &TestServer, id: &str) -> Ws {
    let mut ws = connect(&server.ws_url(id), "ocpp1.6", None).await.expect("connect 1.6");
    assert_eq!(boot16(&mut ws).await["status"], "Accepted");
    ws
}

/// Connects and boots a 2.0.1 station.
async fn station201(server: &TestServer, id: &str) -> Ws {
    let mut ws = connect(&server.ws_url(id), "ocpp2.0.1", None)
        .await
        .expect("connect 2.0.1");
    assert_eq!(boot201(&mut ws).await["status"], "Accepted");
    ws
}

/// Reads every page of a cursor-paged list; returns the pages' sizes and all items.
async fn all_pages(server: &TestServer, path: &str, limit: usize) -> (Vec<usize>, Vec<Value>) {
    let mut sizes = Vec::new();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = server.api("GET", &url, Some(Role::Operator), None).await;
        assert_eq!(status, 200, "{url}: {page}");
        let got = page["items"].as_array().expect("items").clone();
        assert!(got.len() <= limit, "{url}: page larger than the limit");
        sizes.push(got.len());
        items.extend(got);
        assert!(
            page.get("nextCursor").is_some(),
            "{url}: nextCursor must be present (null at the end): {page}"
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(sizes.len() < 100, "pagination does not end");
    }
    (sizes, items)
}

fn item_ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().expect("id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Authentication and the role matrix
// ---------------------------------------------------------------------------------------------

/// Every operation of the API: (method, path, admin only).
const EXPECTED_ROUTES: &[(&str, &str, bool)] = &[
    ("get", "/api/v1/stations", false),
    ("post", "/api/v1/stations", true),
    ("get", "/api/v1/stations/{stationId}", false),
    ("patch", "/api/v1/stations/{stationId}", true),
    ("delete", "/api/v1/stations/{stationId}", true),
    ("get", "/api/v1/stations/{stationId}/frames", false),
    ("get", "/api/v1/stations/{stationId}/messages", false),
    ("get", "/api/v1/stations/{stationId}/device-model", false),
    ("get", "/api/v1/stations/{stationId}/reservations", false),
    ("post", "/api/v1/stations/{stationId}/password-rotation", true),
    ("post", "/api/v1/stations/{stationId}/calls", false),
    ("post", "/api/v1/stations/{stationId}/commands/{command}", false),
    ("get", "/api/v1/stations/{stationId}/certificates", false),
    ("post", "/api/v1/stations/{stationId}/certificates/renew", false),
    ("get", "/api/v1/stations/{stationId}/charging-needs", false),
    (
        "post",
        "/api/v1/stations/{stationId}/charging-needs/{needsId}/renegotiate",
        false,
    ),
    ("get", "/api/v1/stations/{stationId}/installed-certificates", false),
    ("post", "/api/v1/stations/{stationId}/installed-certificates", false),
    (
        "post",
        "/api/v1/stations/{stationId}/installed-certificates/delete",
        false,
    ),
    ("get", "/api/v1/security-events", false),
    ("get", "/api/v1/id-tokens", false),
    ("post", "/api/v1/id-tokens", true),
    ("get", "/api/v1/id-tokens/{idToken}", false),
    ("put", "/api/v1/id-tokens/{idToken}", true),
    ("delete", "/api/v1/id-tokens/{idToken}", true),
    ("get", "/api/v1/transactions", false),
    ("get", "/api/v1/transactions/{id}", false),
    ("post", "/api/v1/transactions/{id}/end", false),
    ("get", "/api/v1/meter-values", false),
];

const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The operations the OpenAPI document lists, with the roles its description names.
fn documented_routes(doc: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let description = op["description"].as_str().expect("description");
            let roles = description
                .strip_prefix("Roles: ")
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or_else(|| panic!("{method} {path}: description {description:?} does not name roles"));
            let roles: Vec<String> = roles.split(", ").map(str::to_string).collect();
            for r in &roles {
                assert!(r == "admin" || r == "operator", "{method} {path}: unknown role {r}");
            }
            out.insert((method.clone(), path.clone()), roles);
        }
    }
    out
}

/// A concrete URL and a valid body for an operation, so a permitted caller gets past validation.
fn concrete(method: &str, path: &str, n: usize) -> (String, Option<Value>) {
    let (station, token) = if method == "delete" {
        ("RM-DEL", "TAG-RM-DEL")
    } else {
        ("RM-1", "TAG-RM")
    };
    let url = path
        .replace("{stationId}", station)
        .replace("{idToken}", token)
        .replace("{id}", "1")
        .replace("{needsId}", "1")
        .replace("{command}", "clear-cache");
    let body = match (method, path) {
        ("post", "/api/v1/stations") => Some(json!({ "id": format!("RM-NEW-{n}") })),
        ("patch", _) => Some(json!({ "description": "changed" })),
        ("post", "/api/v1/id-tokens") => Some(json!({ "idToken": format!("TAG-NEW-{n}"), "status": "Accepted" })),
        ("put", _) => Some(json!({ "status": "Blocked" })),
        ("post", p) if p.ends_with("/calls") => Some(json!({ "action": "ClearCache" })),
        ("post", p) if p.contains("/commands/") => Some(json!({})),
        ("post", p) if p.ends_with("/end") => Some(json!({ "reason": "role matrix" })),
        ("post", p) if p.ends_with("/installed-certificates") => {
            Some(json!({ "certificateType": "CSMSRootCertificate", "certificate": "PEM" }))
        }
        ("post", p) if p.ends_with("/installed-certificates/delete") => Some(json!({
            "hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"
        })),
        _ => None,
    };
    (url, body)
}

fn claims(role: Role, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "matrix".into(),
        role,
        iat: now - 10,
        exp: now + exp_offset,
    }
}

/// Tokens that must all be refused with 401.
fn bad_tokens(server: &TestServer) -> Vec<(&'static str, String)> {
    let secret = server.state.config.jwt_secret.clone().expect("secret");
    let keys = central_system::auth::jwt::operator_keys(secret.as_bytes());
    let operator = keys.sign(&claims(Role::Operator, 600));
    // Swap the payload for an admin one, keeping the operator signature.
    let parts: Vec<&str> = operator.split('.').collect();
    let admin_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Role::Admin, 600)).unwrap());
    let tampered = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
    // Change the first character of the signature.
    let sig = parts[2];
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    let bad_sig = format!("{}.{}.{first}{}", parts[0], parts[1], &sig[1..]);
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Role::Admin, 600)).unwrap())
    );
    vec![
        ("tampered payload", tampered),
        ("tampered signature", bad_sig),
        ("expired", keys.sign(&claims(Role::Admin, -5))),
        ("expiring now", keys.sign(&claims(Role::Admin, 0))),
        (
            "wrong secret",
            central_system::auth::jwt::operator_keys(b"some-other-secret-of-sufficient-length")
                .sign(&claims(Role::Admin, 600)),
        ),
        ("alg none", none_alg),
        ("garbage", "not-a-jwt".into()),
        ("empty", String::new()),
    ]
}

#[tokio::test]
async fn role_matrix_covers_every_documented_route() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let (status, doc) = server.api("GET", "/api/v1/openapi.json", None, None).await;
        assert_eq!(status, 200, "{backend}: {doc}");
        let routes = documented_routes(&doc);

        // The document lists exactly the routes, and names admin alone where admin alone may act.
        let expected: BTreeMap<(String, String), bool> = EXPECTED_ROUTES
            .iter()
            .map(|(m, p, admin)| ((m.to_string(), p.to_string()), *admin))
            .collect();
        let documented: BTreeMap<(String, String), bool> = routes
            .iter()
            .map(|(k, roles)| (k.clone(), roles.len() == 1 && roles[0] == "admin"))
            .collect();
        assert_eq!(documented, expected, "{backend}: route table of the OpenAPI document");
        for ((m, p), roles) in &routes {
            assert!(roles.contains(&"admin".to_string()), "{m} {p}: admin may do everything");
        }

        // Fixtures the concrete URLs refer to.
        for id in ["RM-1", "RM-DEL"] {
            server
                .admin("POST", "/api/v1/stations", Some(json!({ "id": id })), 201)
                .await;
        }
        for t in ["TAG-RM", "TAG-RM-DEL"] {
            server
                .admin(
                    "POST",
                    "/api/v1/id-tokens",
                    Some(json!({ "idToken": t, "status": "Accepted" })),
                    201,
                )
                .await;
        }
        let bad = bad_tokens(&server);

        for (n, ((method, path), roles)) in routes.iter().enumerate() {
            let m = method.to_uppercase();
            let (url, body) = concrete(method, path, n);
            let ctx = format!("{backend} {m} {url}");

            // No token at all.
            let r = call_api(server.addr, &m, &url, None, body.as_ref()).await;
            assert_problem(&r, 401, "UNAUTHORIZED", &format!("{ctx} without a token"));
            assert_eq!(
                r.headers.get("www-authenticate").and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{ctx}: WWW-Authenticate"
            );

            // Refused tokens.
            for (what, token) in &bad {
                let r = call_api(server.addr, &m, &url, Some(token.as_str()), body.as_ref()).await;
                assert_problem(&r, 401, "UNAUTHORIZED", &format!("{ctx} with a {what} token"));
                assert!(
                    r.headers.contains_key("www-authenticate"),
                    "{ctx} {what}: WWW-Authenticate"
                );
            }

            // Another scheme than Bearer.
            let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
            let mut headers = vec![("authorization", "Basic YWRtaW46YWRtaW4=")];
            if bytes.is_some() {
                headers.push(("content-type", "application/json"));
            }
            let r = request(server.addr, &m, &url, &headers, bytes.as_deref()).await;
            assert_problem(&r, 401, "UNAUTHORIZED", &format!("{ctx} with Basic credentials"));

            // The operator: refused where the document says admin only.
            let operator = server.token(Role::Operator);
            let r = call_api(server.addr, &m, &url, Some(operator.as_str()), body.as_ref()).await;
            if roles.contains(&"operator".to_string()) {
                assert!(
                    ![401, 403].contains(&r.status),
                    "{ctx} as operator: {} {}",
                    r.status,
                    r.text
                );
                assert!(r.status < 500, "{ctx} as operator: {} {}", r.status, r.text);
            } else {
                assert_problem(&r, 403, "FORBIDDEN", &format!("{ctx} as operator"));
            }
        }

        // The admin, after every operator attempt (the admin's DELETEs remove fixtures).
        for (n, (method, path)) in routes.keys().enumerate() {
            let m = method.to_uppercase();
            let (url, body) = concrete(method, path, n);
            let (status, json) = server.api(&m, &url, Some(Role::Admin), body).await;
            assert!(
                ![401, 403].contains(&status),
                "{backend} {m} {url} as admin: {status} {json}"
            );
            assert!(status < 500, "{backend} {m} {url} as admin: {status} {json}");
            if method == "delete" {
                assert_eq!(status, 204, "{backend} {m} {url} as admin: {json}");
            }
        }
        // The operator's refused writes changed nothing; the admin's went through.
        let station = server.admin("GET", "/api/v1/stations/RM-1", None, 200).await;
        assert_eq!(station["description"], "changed");
        let token = server.admin("GET", "/api/v1/id-tokens/TAG-RM", None, 200).await;
        assert_eq!(token["status"], "Blocked");

        // A lower-case scheme is accepted too.
        let auth = format!("bearer {}", server.token(Role::Operator));
        let r = request(
            server.addr,
            "GET",
            "/api/v1/stations",
            &[("authorization", auth.as_str())],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: lower-case bearer: {}", r.text);
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Station registrations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn station_crud_and_validation() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;

        // Create.
        let password = "a-long-enough-secret-1";
        let r = call_api(
            s.addr,
            "POST",
            "/api/v1/stations",
            Some(s.token(Role::Admin).as_str()),
            Some(&json!({ "id": "CP-CRUD-1", "description": "Bay 1", "password": password })),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert!(
            r.content_type().starts_with("application/json"),
            "{backend}: {}",
            r.content_type()
        );
        assert!(
            !r.text.contains(password),
            "{backend}: the password is echoed: {}",
            r.text
        );
        assert!(!r.text.contains("$argon2"), "{backend}: the hash is echoed: {}", r.text);
        let st = &r.json;
        assert_eq!(st["id"], "CP-CRUD-1");
        assert_eq!(st["description"], "Bay 1");
        assert_eq!(st["hasPassword"], true);
        assert_eq!(st["registrationStatus"], "Accepted");
        assert_eq!(st["online"], false);
        assert_eq!(st["connectors"], json!([]));
        assert!(st.get("password").is_none() && st.get("passwordHash").is_none(), "{st}");
        assert!(
            st["createdAt"]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{st}"
        );

        // GET shows the same and never the password either.
        let r = call_api(
            s.addr,
            "GET",
            "/api/v1/stations/CP-CRUD-1",
            Some(s.token(Role::Operator).as_str()),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(!r.text.contains(password));
        assert_eq!(r.json["hasPassword"], true);

        // Without a password, with an explicit status.
        let st = s
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({ "id": "CP-CRUD-2", "registrationStatus": "Pending" })),
                201,
            )
            .await;
        assert_eq!(st["hasPassword"], false);
        assert_eq!(st["registrationStatus"], "Pending");
        assert_eq!(st["description"], Value::Null);

        // Conflicts and validation.
        expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!({ "id": "CP-CRUD-1" })),
            409,
            "ALREADY_EXISTS",
        )
        .await;
        for bad_id in ["has space", "", "slash/inside", "é", "x".repeat(49).as_str()] {
            let p = expect_problem(
                s,
                "POST",
                "/api/v1/stations",
                Some(Role::Admin),
                Some(json!({ "id": bad_id })),
                400,
                "VALIDATION_FAILED",
            )
            .await;
            assert_eq!(p["errors"][0]["field"], "id", "{backend} {bad_id:?}: {p}");
        }
        s.admin("POST", "/api/v1/stations", Some(json!({ "id": "x".repeat(48) })), 201)
            .await;
        for bad_password in ["short", "p".repeat(41).as_str(), "sixteen chars but spaces"] {
            let p = expect_problem(
                s,
                "POST",
                "/api/v1/stations",
                Some(Role::Admin),
                Some(json!({ "id": "CP-CRUD-3", "password": bad_password })),
                400,
                "VALIDATION_FAILED",
            )
            .await;
            assert_eq!(p["errors"][0]["field"], "password", "{backend} {bad_password:?}: {p}");
        }
        let p = expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!({ "id": "CP-CRUD-3", "registrationStatus": "Maybe" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(p["errors"][0]["field"], "registrationStatus", "{p}");
        expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!({ "id": "CP-CRUD-3", "colour": "red" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!({ "description": "no id" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!({ "id": 42 })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "POST",
            "/api/v1/stations",
            Some(Role::Admin),
            Some(json!(["CP-CRUD-3"])),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        // Malformed JSON.
        let admin = s.token(Role::Admin);
        let auth = format!("Bearer {admin}");
        let r = request(
            s.addr,
            "POST",
            "/api/v1/stations",
            &[("authorization", auth.as_str()), ("content-type", "application/json")],
            Some(b"{\"id\": \"CP-CRUD-3\"".as_slice()),
        )
        .await;
        assert_problem(&r, 400, "VALIDATION_FAILED", "malformed JSON");
        // Not JSON at all, or no content type.
        let r = request(
            s.addr,
            "POST",
            "/api/v1/stations",
            &[("authorization", auth.as_str()), ("content-type", "text/plain")],
            Some(b"id=CP-CRUD-3".as_slice()),
        )
        .await;
        assert_problem(&r, 415, "UNSUPPORTED_MEDIA_TYPE", "text/plain body");
        let r = request(
            s.addr,
            "POST",
            "/api/v1/stations",
            &[("authorization", auth.as_str())],
            Some(b"{\"id\":\"CP-CRUD-3\"}".as_slice()),
        )
        .await;
        assert_problem(&r, 415, "UNSUPPORTED_MEDIA_TYPE", "no content type");
        let r = request(
            s.addr,
            "POST",
            "/api/v1/stations",
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json; charset=utf-8"),
            ],
            Some(b"{\"id\":\"CP-CRUD-3\"}".as_slice()),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: JSON with a charset: {}", r.text);
        // None of the refused creations left a row behind (CP-CRUD-3 only from the last one).
        let (_, page) = s.api("GET", "/api/v1/stations", Some(Role::Operator), None).await;
        let ids = item_ids(page["items"].as_array().unwrap(), "id");
        assert_eq!(
            ids,
            vec![
                "CP-CRUD-1".to_string(),
                "CP-CRUD-2".into(),
                "CP-CRUD-3".into(),
                "x".repeat(48)
            ],
            "{backend}"
        );

        // PATCH: description and registration status; absent fields stay.
        let st = s
            .admin(
                "PATCH",
                "/api/v1/stations/CP-CRUD-1",
                Some(json!({ "description": "Bay 1 (north)", "registrationStatus": "Rejected" })),
                200,
            )
            .await;
        assert_eq!(st["description"], "Bay 1 (north)");
        assert_eq!(st["registrationStatus"], "Rejected");
        assert_eq!(st["hasPassword"], true, "an absent password stays");
        assert!(st.get("connectors").is_some(), "{st}");
        let st = s
            .admin(
                "PATCH",
                "/api/v1/stations/CP-CRUD-1",
                Some(json!({ "registrationStatus": "Accepted" })),
                200,
            )
            .await;
        assert_eq!(st["description"], "Bay 1 (north)", "an absent description stays");
        assert_eq!(st["registrationStatus"], "Accepted");
        // null clears.
        let st = s
            .admin(
                "PATCH",
                "/api/v1/stations/CP-CRUD-1",
                Some(json!({ "description": null })),
                200,
            )
            .await;
        assert_eq!(st["description"], Value::Null);
        let st = s.admin("GET", "/api/v1/stations/CP-CRUD-1", None, 200).await;
        assert_eq!(
            st["description"],
            Value::Null,
            "{backend}: the cleared description is stored"
        );
        let st = s
            .admin(
                "PATCH",
                "/api/v1/stations/CP-CRUD-1",
                Some(json!({ "password": null })),
                200,
            )
            .await;
        assert_eq!(st["hasPassword"], false);
        let st = s
            .admin(
                "PATCH",
                "/api/v1/stations/CP-CRUD-2",
                Some(json!({ "password": "another-good-secret-22" })),
                200,
            )
            .await;
        assert_eq!(st["hasPassword"], true);
        let p = expect_problem(
            s,
            "PATCH",
            "/api/v1/stations/CP-CRUD-2",
            Some(Role::Admin),
            Some(json!({ "password": "short" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(p["errors"][0]["field"], "password");
        let p = expect_problem(
            s,
            "PATCH",
            "/api/v1/stations/CP-CRUD-2",
            Some(Role::Admin),
            Some(json!({ "registrationStatus": "Sideways" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(p["errors"][0]["field"], "registrationStatus");
        expect_problem(
            s,
            "PATCH",
            "/api/v1/stations/CP-CRUD-2",
            Some(Role::Admin),
            Some(json!({ "id": "renamed" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "PATCH",
            "/api/v1/stations/NOPE",
            Some(Role::Admin),
            Some(json!({ "description": "x" })),
            404,
            "NOT_FOUND",
        )
        .await;
        let st = s.admin("GET", "/api/v1/stations/CP-CRUD-2", None, 200).await;
        assert_eq!(
            st["registrationStatus"], "Pending",
            "{backend}: a refused PATCH changed the station"
        );

        // Unknown station.
        expect_problem(
            s,
            "GET",
            "/api/v1/stations/NOPE",
            Some(Role::Operator),
            None,
            404,
            "NOT_FOUND",
        )
        .await;
        for sub in ["frames", "messages", "device-model", "reservations"] {
            expect_problem(
                s,
                "GET",
                &format!("/api/v1/stations/NOPE/{sub}"),
                Some(Role::Operator),
                None,
                404,
                "NOT_FOUND",
            )
            .await;
        }

        // DELETE.
        let r = call_api(
            s.addr,
            "DELETE",
            "/api/v1/stations/CP-CRUD-1",
            Some(admin.as_str()),
            None,
        )
        .await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        assert!(r.text.is_empty(), "204 with a body: {}", r.text);
        expect_problem(
            s,
            "GET",
            "/api/v1/stations/CP-CRUD-1",
            Some(Role::Admin),
            None,
            404,
            "NOT_FOUND",
        )
        .await;
        expect_problem(
            s,
            "DELETE",
            "/api/v1/stations/CP-CRUD-1",
            Some(Role::Admin),
            None,
            404,
            "NOT_FOUND",
        )
        .await;
        // The id can be registered again.
        s.admin("POST", "/api/v1/stations", Some(json!({ "id": "CP-CRUD-1" })), 201)
            .await;
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Live connection state
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn live_state_of_connected_stations() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        s.admin("POST", "/api/v1/stations", Some(json!({ "id": "LIVE-REG" })), 201)
            .await;

        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let mut ws16 = station16(s, "LIVE-16").await;
        call_ok(
            &mut ws16,
            "sn1",
            "StatusNotification",
            json!({ "connectorId": 1, "errorCode": "NoError", "status": "Charging" }),
        )
        .await;
        call_ok(
            &mut ws16,
            "sn0",
            "StatusNotification",
            json!({ "connectorId": 0, "errorCode": "NoError", "status": "Available" }),
        )
        .await;

        let st = s.admin("GET", "/api/v1/stations/LIVE-16", None, 200).await;
        assert_eq!(st["online"], true, "{backend}: {st}");
        assert_eq!(st["vendor"], "TestVendor");
        assert_eq!(st["model"], "TM-1");
        assert_eq!(st["ocppVersion"], "1.6");
        assert_eq!(
            st["registrationStatus"], "Accepted",
            "unknown stations are accepted in tests"
        );
        for field in ["lastSeenAt", "lastBootAt", "connectedAt"] {
            let at = st[field]
                .as_str()
                .unwrap_or_else(|| panic!("{backend}: {field} missing: {st}"));
            let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
            assert!(at >= before, "{backend}: {field} {at} is before the connection");
        }
        let connectors = st["connectors"].as_array().expect("connectors");
        let brief: Vec<Value> = connectors
            .iter()
            .map(|c| json!({ "evseId": c["evseId"], "connectorId": c["connectorId"], "status": c["status"] }))
            .collect();
        assert_eq!(
            brief,
            vec![
                json!({ "evseId": 0, "connectorId": 0, "status": "Available" }),
                json!({ "evseId": 1, "connectorId": 1, "status": "Charging" }),
            ],
            "{backend}: {st}"
        );
        assert_eq!(connectors[1]["errorCode"], "NoError");
        assert!(connectors[1]["statusAt"].is_string());

        // A later status replaces the earlier one.
        call_ok(
            &mut ws16,
            "sn1b",
            "StatusNotification",
            json!({ "connectorId": 1, "errorCode": "NoError", "status": "Finishing" }),
        )
        .await;
        let st = s.admin("GET", "/api/v1/stations/LIVE-16", None, 200).await;
        assert_eq!(st["connectors"].as_array().unwrap().len(), 2, "{st}");
        assert_eq!(st["connectors"][1]["status"], "Finishing");

        // 2.0.1: EVSE and connector as reported.
        let mut ws201 = station201(s, "LIVE-201").await;
        call_ok(
            &mut ws201,
            "sn",
            "StatusNotification",
            json!({ "timestamp": "2024-05-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1 }),
        )
        .await;
        let st = s.admin("GET", "/api/v1/stations/LIVE-201", None, 200).await;
        assert_eq!(st["online"], true);
        assert_eq!(st["ocppVersion"], "2.0.1");
        assert_eq!(st["vendor"], "TestVendor");
        assert_eq!(st["model"], "TM-2");
        let c = &st["connectors"];
        assert_eq!(c.as_array().map(Vec::len), Some(1), "{backend}: {st}");
        assert_eq!(
            (
                c[0]["evseId"].clone(),
                c[0]["connectorId"].clone(),
                c[0]["status"].clone()
            ),
            (json!(2), json!(1), json!("Occupied"))
        );
        assert_eq!(c[0]["statusAt"], "2024-05-01T10:00:00.000Z");

        // The online filter.
        let online = |v: &'static str| async move {
            let (status, page) = s
                .api(
                    "GET",
                    &format!("/api/v1/stations?online={v}"),
                    Some(Role::Operator),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            item_ids(page["items"].as_array().unwrap(), "id")
        };
        assert_eq!(online("true").await, vec!["LIVE-16", "LIVE-201"], "{backend}");
        assert_eq!(online("false").await, vec!["LIVE-REG"], "{backend}");
        let (_, page) = s.api("GET", "/api/v1/stations", Some(Role::Operator), None).await;
        assert_eq!(
            item_ids(page["items"].as_array().unwrap(), "id"),
            vec!["LIVE-16", "LIVE-201", "LIVE-REG"]
        );

        // Closing the socket takes the station offline.
        let seen_before: String = s.admin("GET", "/api/v1/stations/LIVE-16", None, 200).await["lastSeenAt"]
            .as_str()
            .unwrap()
            .into();
        ws16.close(None).await.expect("close");
        drop(ws16);
        let st = eventually(|| async move {
            let (_, st) = s
                .api("GET", "/api/v1/stations/LIVE-16", Some(Role::Operator), None)
                .await;
            (st["online"] == false).then_some(st)
        })
        .await;
        assert!(st["lastSeenAt"].as_str().unwrap() >= seen_before.as_str(), "{st}");
        assert_eq!(st["ocppVersion"], "1.6", "the last connection's version stays");
        assert_eq!(online("true").await, vec!["LIVE-201"], "{backend}");
        assert_eq!(online("false").await, vec!["LIVE-16", "LIVE-REG"], "{backend}");

        // Dropping the TCP connection without a close frame does too.
        drop(ws201);
        eventually(|| async move {
            let (_, st) = s
                .api("GET", "/api/v1/stations/LIVE-201", Some(Role::Operator), None)
                .await;
            (st["online"] == false).then_some(())
        })
        .await;
        assert!(online("true").await.is_empty(), "{backend}");
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Id tokens
// ---------------------------------------------------------------------------------------------

/// The token type of a record (the request calls it `type`; accept `tokenType` in answers too).
fn token_type(record: &Value) -> Value {
    record
        .get("type")
        .or_else(|| record.get("tokenType"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn id_token_crud_and_authorize() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        let tokens = "/api/v1/id-tokens";

        let t = s
            .admin(
                "POST",
                tokens,
                Some(json!({ "idToken": "TAG-0001", "status": "Accepted" })),
                201,
            )
            .await;
        assert_eq!(t["idToken"], "TAG-0001");
        assert_eq!(t["status"], "Accepted");
        assert_eq!(token_type(&t), "ISO14443", "{backend}: default type: {t}");
        assert_eq!(t["expiresAt"], Value::Null);
        assert_eq!(t["parentIdToken"], Value::Null);
        assert!(t["createdAt"].is_string() && t["updatedAt"].is_string(), "{t}");

        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "TAG-GROUP", "status": "Accepted", "type": "Central" })),
            201,
        )
        .await;
        let child = s
            .admin(
                "POST",
                tokens,
                Some(json!({
                    "idToken": "TAG-CHILD", "status": "Accepted", "type": "KeyCode",
                    "expiresAt": "2099-01-01T00:00:00Z", "parentIdToken": "TAG-GROUP"
                })),
                201,
            )
            .await;
        assert_eq!(token_type(&child), "KeyCode", "{child}");
        assert_eq!(child["expiresAt"], "2099-01-01T00:00:00.000Z");
        assert_eq!(child["parentIdToken"], "TAG-GROUP");
        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "TAG-BLOCKED", "status": "Blocked" })),
            201,
        )
        .await;
        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "TAG-OLD", "status": "Accepted", "expiresAt": "2000-01-01T00:00:00Z" })),
            201,
        )
        .await;
        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "TAG-EXPIRED", "status": "Expired" })),
            201,
        )
        .await;

        // Validation and conflicts.
        let bad_bodies = [
            (json!({ "idToken": "TAG-X", "status": "Happy" }), Some("status")),
            (
                json!({ "idToken": "TAG-X", "status": "Accepted", "type": "Barcode" }),
                Some("type"),
            ),
            (json!({ "status": "Accepted" }), Some("idToken")),
            (json!({ "idToken": "", "status": "Accepted" }), Some("idToken")),
            (
                json!({ "idToken": "x".repeat(37), "status": "Accepted" }),
                Some("idToken"),
            ),
            (
                json!({ "idToken": "with space", "status": "Accepted" }),
                Some("idToken"),
            ),
            (
                json!({ "idToken": "TAG-X", "status": "Accepted", "parentIdToken": "" }),
                Some("idToken"),
            ),
            (json!({ "idToken": "TAG-X" }), None),
            (
                json!({ "idToken": "TAG-X", "status": "Accepted", "expiresAt": "tomorrow" }),
                None,
            ),
            (
                json!({ "idToken": "TAG-X", "status": "Accepted", "colour": "red" }),
                None,
            ),
        ];
        for (body, field) in bad_bodies {
            let p = expect_problem(
                s,
                "POST",
                tokens,
                Some(Role::Admin),
                Some(body.clone()),
                400,
                "VALIDATION_FAILED",
            )
            .await;
            if let Some(f) = field {
                assert_eq!(p["errors"][0]["field"], f, "{backend} {body}: {p}");
            }
        }
        expect_problem(
            s,
            "GET",
            "/api/v1/id-tokens/TAG-X",
            Some(Role::Admin),
            None,
            404,
            "NOT_FOUND",
        )
        .await;
        expect_problem(
            s,
            "POST",
            tokens,
            Some(Role::Admin),
            Some(json!({ "idToken": "TAG-0001", "status": "Blocked" })),
            409,
            "ALREADY_EXISTS",
        )
        .await;
        let t = s.admin("GET", "/api/v1/id-tokens/TAG-0001", None, 200).await;
        assert_eq!(t["status"], "Accepted", "a refused duplicate changed the token");
        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "x".repeat(36), "status": "Accepted" })),
            201,
        )
        .await;

        // PUT replaces every field.
        let t = s
            .admin(
                "PUT",
                "/api/v1/id-tokens/TAG-0001",
                Some(json!({ "status": "Blocked", "type": "Central", "parentIdToken": "TAG-GROUP" })),
                200,
            )
            .await;
        assert_eq!(
            (t["idToken"].clone(), t["status"].clone(), token_type(&t)),
            (json!("TAG-0001"), json!("Blocked"), json!("Central"))
        );
        assert_eq!(t["parentIdToken"], "TAG-GROUP");
        let t = s
            .admin(
                "PUT",
                "/api/v1/id-tokens/TAG-0001",
                Some(json!({ "idToken": "TAG-0001", "status": "Accepted" })),
                200,
            )
            .await;
        assert_eq!(t["status"], "Accepted");
        assert_eq!(
            token_type(&t),
            "ISO14443",
            "PUT replaces: the type goes back to the default"
        );
        assert_eq!(t["parentIdToken"], Value::Null, "PUT replaces: the parent is removed");
        let t = s.admin("GET", "/api/v1/id-tokens/TAG-0001", None, 200).await;
        assert_eq!(t["parentIdToken"], Value::Null);
        expect_problem(
            s,
            "PUT",
            "/api/v1/id-tokens/TAG-0001",
            Some(Role::Admin),
            Some(json!({ "idToken": "OTHER", "status": "Accepted" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "PUT",
            "/api/v1/id-tokens/TAG-0001",
            Some(Role::Admin),
            Some(json!({ "status": "Sometimes" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "PUT",
            "/api/v1/id-tokens/TAG-NONE",
            Some(Role::Admin),
            Some(json!({ "status": "Accepted" })),
            404,
            "NOT_FOUND",
        )
        .await;

        // DELETE.
        s.admin(
            "POST",
            tokens,
            Some(json!({ "idToken": "TAG-GONE", "status": "Accepted" })),
            201,
        )
        .await;
        s.admin("DELETE", "/api/v1/id-tokens/TAG-GONE", None, 204).await;
        expect_problem(
            s,
            "GET",
            "/api/v1/id-tokens/TAG-GONE",
            Some(Role::Admin),
            None,
            404,
            "NOT_FOUND",
        )
        .await;
        expect_problem(
            s,
            "DELETE",
            "/api/v1/id-tokens/TAG-GONE",
            Some(Role::Admin),
            None,
            404,
            "NOT_FOUND",
        )
        .await;

        // 1.6 Authorize.
        let mut ws = station16(s, "AUTH-16").await;
        let cases = [
            ("TAG-0001", "Accepted"),
            ("TAG-BLOCKED", "Blocked"),
            ("TAG-OLD", "Expired"),
            ("TAG-EXPIRED", "Expired"),
            ("TAG-UNKNOWN", "Invalid"),
            ("TAG-GONE", "Invalid"),
            ("TAG-CHILD", "Accepted"),
        ];
        for (i, (tag, status)) in cases.iter().enumerate() {
            let answer = call_ok(&mut ws, &format!("a{i}"), "Authorize", json!({ "idTag": tag })).await;
            assert_eq!(answer["idTagInfo"]["status"], *status, "{backend} 1.6 {tag}: {answer}");
        }
        let answer = call_ok(&mut ws, "child", "Authorize", json!({ "idTag": "TAG-CHILD" })).await;
        assert_eq!(answer["idTagInfo"]["parentIdTag"], "TAG-GROUP", "{answer}");
        assert!(
            answer["idTagInfo"]["expiryDate"]
                .as_str()
                .is_some_and(|d| d.starts_with("2099-01-01T00:00:00")),
            "{answer}"
        );
        let answer = call_ok(&mut ws, "plain", "Authorize", json!({ "idTag": "TAG-0001" })).await;
        assert!(answer["idTagInfo"].get("parentIdTag").is_none(), "{answer}");

        // A change through the API applies to the next Authorize.
        s.admin(
            "PUT",
            "/api/v1/id-tokens/TAG-0001",
            Some(json!({ "status": "Blocked" })),
            200,
        )
        .await;
        let answer = call_ok(&mut ws, "after-put", "Authorize", json!({ "idTag": "TAG-0001" })).await;
        assert_eq!(answer["idTagInfo"]["status"], "Blocked");
        s.admin("DELETE", "/api/v1/id-tokens/TAG-0001", None, 204).await;
        let answer = call_ok(&mut ws, "after-delete", "Authorize", json!({ "idTag": "TAG-0001" })).await;
        assert_eq!(answer["idTagInfo"]["status"], "Invalid");

        // 2.0.1 Authorize.
        let mut ws2 = station201(s, "AUTH-201").await;
        let auth201 = |token: &str| json!({ "idToken": { "idToken": token, "type": "ISO14443" } });
        let answer = call_ok(&mut ws2, "u", "Authorize", auth201("TAG-UNKNOWN")).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Unknown", "{backend}: {answer}");
        let answer = call_ok(&mut ws2, "c", "Authorize", auth201("TAG-CHILD")).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Accepted", "{answer}");
        assert_eq!(
            answer["idTokenInfo"]["groupIdToken"]["idToken"], "TAG-GROUP",
            "{answer}"
        );
        assert!(answer["idTokenInfo"]["groupIdToken"]["type"].is_string(), "{answer}");
        let answer = call_ok(&mut ws2, "b", "Authorize", auth201("TAG-BLOCKED")).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Blocked");
        let answer = call_ok(&mut ws2, "o", "Authorize", auth201("TAG-OLD")).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Expired");
        drop(ws);
        drop(ws2);
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Pagination
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cursor_pagination() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        // Created out of order; listed in id order.
        let mut station_ids: Vec<String> = [4, 1, 6, 0, 3, 5, 2].iter().map(|i| format!("PAGE-{i}")).collect();
        for id in &station_ids {
            s.admin("POST", "/api/v1/stations", Some(json!({ "id": id })), 201)
                .await;
        }
        let mut token_ids: Vec<String> = [3, 6, 0, 2, 5, 1, 4].iter().map(|i| format!("PTAG-{i}")).collect();
        for t in &token_ids {
            s.admin(
                "POST",
                "/api/v1/id-tokens",
                Some(json!({ "idToken": t, "status": "Accepted" })),
                201,
            )
            .await;
        }
        station_ids.sort();
        token_ids.sort();

        for (list, field, expected) in [
            ("/api/v1/stations", "id", &station_ids),
            ("/api/v1/id-tokens", "idToken", &token_ids),
        ] {
            let ctx = format!("{backend} {list}");
            let (sizes, items) = all_pages(s, list, 3).await;
            assert_eq!(sizes, vec![3, 3, 1], "{ctx}");
            let ids = item_ids(&items, field);
            assert_eq!(&ids, expected, "{ctx}: every item once, in order");
            let unique: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "{ctx}: duplicates");

            // A page size that divides the total: the last full page still has a cursor, which
            // leads to an empty page without one.
            let (sizes, items) = all_pages(s, list, 7).await;
            assert!(sizes == vec![7, 0] || sizes == vec![7], "{ctx}: {sizes:?}");
            assert_eq!(item_ids(&items, field), *expected);
            let (sizes, _) = all_pages(s, list, 500).await;
            assert_eq!(sizes, vec![7], "{ctx}");
            // Default page size.
            let (_, page) = s.api("GET", list, Some(Role::Operator), None).await;
            assert_eq!(page["items"].as_array().unwrap().len(), 7);
            assert_eq!(page["nextCursor"], Value::Null);

            for bad in ["limit=0", "limit=501", "limit=-1", "cursor=!!!", "cursor=%25%25"] {
                let p = expect_problem(
                    s,
                    "GET",
                    &format!("{list}?{bad}"),
                    Some(Role::Operator),
                    None,
                    400,
                    "VALIDATION_FAILED",
                )
                .await;
                assert!(
                    p["detail"]
                        .as_str()
                        .unwrap()
                        .contains(if bad.starts_with("limit") { "limit" } else { "cursor" }),
                    "{ctx} {bad}: {p}"
                );
            }
        }

        // The online filter pages too.
        let (sizes, items) = all_pages(s, "/api/v1/stations?online=false", 3).await;
        assert_eq!(sizes, vec![3, 3, 1], "{backend}");
        assert_eq!(item_ids(&items, "id"), station_ids);

        // Integer cursors (frames, transactions, meter values) refuse non-integer keys.
        let not_int = URL_SAFE_NO_PAD.encode("abc");
        s.admin("POST", "/api/v1/stations", Some(json!({ "id": "PAGE-F" })), 201)
            .await;
        for list in [
            "/api/v1/stations/PAGE-F/frames",
            "/api/v1/stations/PAGE-F/messages",
            "/api/v1/transactions",
            "/api/v1/meter-values",
        ] {
            expect_problem(
                s,
                "GET",
                &format!("{list}?cursor={not_int}"),
                Some(Role::Operator),
                None,
                400,
                "VALIDATION_FAILED",
            )
            .await;
            expect_problem(
                s,
                "GET",
                &format!("{list}?limit=0"),
                Some(Role::Operator),
                None,
                400,
                "VALIDATION_FAILED",
            )
            .await;
            let (status, page) = s
                .api("GET", &format!("{list}?limit=5"), Some(Role::Operator), None)
                .await;
            assert_eq!(status, 200, "{backend} {list}: {page}");
            assert_eq!(page, json!({ "items": [], "nextCursor": null }), "{backend} {list}");
        }
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Frame log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn frame_log_lists_exact_frames_newest_first() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        let mut ws = connect(&s.ws_url("FRAMES-1"), "ocpp1.6", None).await.expect("connect");
        let sent = [
            r#"[2,"f-boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
            r#"[2, "f-hb", "Heartbeat", {}]"#,
            r#"[2,"f-sn","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]"#,
        ];
        let mut expected = Vec::new();
        for text in sent {
            send(&mut ws, text).await;
            let answer = recv_text(&mut ws).await;
            assert!(answer.starts_with("[3,"), "{backend}: {answer}");
            expected.push(json!({ "direction": "in", "frame": text }));
            expected.push(json!({ "direction": "out", "frame": answer }));
        }
        assert_eq!(expected[5]["frame"], r#"[3,"f-sn",{}]"#);
        expected.reverse();
        s.flush().await;

        let (status, page) = s
            .api("GET", "/api/v1/stations/FRAMES-1/frames", Some(Role::Operator), None)
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        let got: Vec<Value> = items
            .iter()
            .map(|f| json!({ "direction": f["direction"], "frame": f["frame"] }))
            .collect();
        assert_eq!(got, expected, "{backend}: frames newest first, verbatim");
        assert_eq!(page["nextCursor"], Value::Null);
        let ids: Vec<i64> = items.iter().map(|f| f["id"].as_i64().expect("id")).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{backend}: ids descend: {ids:?}");
        for f in items {
            assert!(
                f["loggedAt"]
                    .as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
                "{f}"
            );
        }

        // Paged by two.
        let (sizes, paged) = all_pages(s, "/api/v1/stations/FRAMES-1/frames", 2).await;
        assert!(sizes.starts_with(&[2, 2, 2]), "{backend}: {sizes:?}");
        assert_eq!(&paged, items, "{backend}: paging yields the same frames");

        // Another station's frames are its own.
        let mut other = station16(s, "FRAMES-2").await;
        call_ok(&mut other, "x", "Heartbeat", json!({})).await;
        s.flush().await;
        let (_, page) = s
            .api("GET", "/api/v1/stations/FRAMES-1/frames", Some(Role::Admin), None)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 6, "{backend}");
        let (_, page) = s
            .api("GET", "/api/v1/stations/FRAMES-2/frames", Some(Role::Admin), None)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 4, "{backend}");
        assert_eq!(page["items"][1]["frame"], r#"[2,"x","Heartbeat",{}]"#);

        // Calls from the central system are logged as out, their answers as in.
        let (api, station) = tokio::join!(
            s.api(
                "POST",
                "/api/v1/stations/FRAMES-1/commands/clear-cache",
                Some(Role::Operator),
                None
            ),
            async {
                let call = recv_text(&mut ws).await;
                let parsed: Value = serde_json::from_str(&call).unwrap();
                let answer = format!(r#"[3,{},{{"status":"Accepted"}}]"#, parsed[1]);
                send(&mut ws, &answer).await;
                (call, answer)
            }
        );
        assert_eq!(api.0, 200, "{}", api.1);
        s.flush().await;
        let (_, page) = s
            .api(
                "GET",
                "/api/v1/stations/FRAMES-1/frames?limit=2",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(page["items"][0]["direction"], "in");
        assert_eq!(page["items"][0]["frame"], station.1.as_str());
        assert_eq!(page["items"][1]["direction"], "out");
        assert_eq!(page["items"][1]["frame"], station.0.as_str());
        assert!(page["nextCursor"].is_string());
        drop(ws);
        drop(other);
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Commands
// ---------------------------------------------------------------------------------------------

/// Sends a REST call while the station side answers the CALL it receives with `answer(id)`.
async fn with_station_answer(
    server: &TestServer,
    ws: &mut Ws,
    path: &str,
    body: Option<Value>,
    answer: impl FnOnce(&Value) -> Value,
) -> ((u16, Value), Value) {
    tokio::join!(server.api("POST", path, Some(Role::Operator), body), async {
        let call = recv(ws).await;
        assert_eq!(call[0], 2, "expected a CALL: {call}");
        send(ws, &answer(&call[1]).to_string()).await;
        call
    })
}

#[tokio::test]
async fn commands_to_stations() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;

        // Offline (registered: 409) and unknown (404, a typo is not "try again later").
        s.admin("POST", "/api/v1/stations", Some(json!({ "id": "CMD-OFF" })), 201)
            .await;
        for (station, status, code) in [
            ("CMD-OFF", 409, "STATION_OFFLINE"),
            ("CMD-NEVER", 404, "UNKNOWN_STATION"),
        ] {
            expect_problem(
                s,
                "POST",
                &format!("/api/v1/stations/{station}/commands/reset"),
                Some(Role::Operator),
                Some(json!({})),
                status,
                code,
            )
            .await;
            expect_problem(
                s,
                "POST",
                &format!("/api/v1/stations/{station}/commands/clear-cache"),
                Some(Role::Operator),
                None,
                status,
                code,
            )
            .await;
            expect_problem(
                s,
                "POST",
                &format!("/api/v1/stations/{station}/calls"),
                Some(Role::Operator),
                Some(json!({ "action": "Reset", "payload": { "type": "Soft" } })),
                status,
                code,
            )
            .await;
        }

        let mut ws = station16(s, "CMD-16").await;
        let commands = "/api/v1/stations/CMD-16/commands";
        let calls = "/api/v1/stations/CMD-16/calls";

        // Refused before anything is sent.
        expect_problem(
            s,
            "POST",
            &format!("{commands}/explode"),
            Some(Role::Operator),
            Some(json!({})),
            404,
            "UNKNOWN_COMMAND",
        )
        .await;
        expect_problem(
            s,
            "POST",
            &format!("{commands}/get-variables"),
            Some(Role::Operator),
            Some(json!({ "variables": [] })),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;
        let p = expect_problem(
            s,
            "POST",
            &format!("{commands}/remote-start"),
            Some(Role::Operator),
            Some(json!({})),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(p["errors"][0]["field"], "idToken");
        expect_problem(
            s,
            "POST",
            &format!("{commands}/reset"),
            Some(Role::Operator),
            Some(json!({ "type": "Sideways" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        expect_problem(
            s,
            "POST",
            &format!("{commands}/reset"),
            Some(Role::Operator),
            Some(json!({ "kind": "Hard" })),
            400,
            "VALIDATION_FAILED",
        )
        .await;
        let p = expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "RequestStartTransaction", "payload": { "idToken": { "idToken": "T", "type": "Central" }, "remoteStartId": 1 } })),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("RequestStartTransaction"), "{p}");
        // Actions only chargers send cannot be sent to them.
        expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "Heartbeat" })),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;
        expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "NoSuchAction" })),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;
        let p = expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "Reset", "payload": { "type": "Sideways" } })),
            422,
            "INVALID_PAYLOAD",
        )
        .await;
        assert!(p.get("errors").is_some(), "{p}");
        expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "Reset" })),
            422,
            "INVALID_PAYLOAD",
        )
        .await;
        expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "payload": {} })),
            400,
            "VALIDATION_FAILED",
        )
        .await;

        // Nothing of the above reached the station: the next CALL it sees is the first one.
        let ((status, body), call) = with_station_answer(
            s,
            &mut ws,
            calls,
            Some(json!({ "action": "Reset", "payload": { "type": "Soft" } })),
            |id| json!([3, id, { "status": "Accepted" }]),
        )
        .await;
        assert_eq!(call[2], "Reset", "{backend}: {call}");
        assert_eq!(call[3], json!({ "type": "Soft" }));
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body, json!({ "action": "Reset", "response": { "status": "Accepted" } }));

        // Typed commands translate to the 1.6 action.
        let ((status, body), call) = with_station_answer(
            s,
            &mut ws,
            &format!("{commands}/reset"),
            Some(json!({ "type": "Immediate" })),
            |id| json!([3, id, { "status": "Rejected" }]),
        )
        .await;
        assert_eq!(
            (call[2].clone(), call[3].clone()),
            (json!("Reset"), json!({ "type": "Hard" }))
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({ "action": "Reset", "response": { "status": "Rejected" } }));
        let ((status, body), call) = with_station_answer(
            s,
            &mut ws,
            &format!("{commands}/remote-start"),
            Some(json!({ "idToken": "TAG-R", "evseId": 1 })),
            |id| json!([3, id, { "status": "Accepted" }]),
        )
        .await;
        assert_eq!(
            (call[2].clone(), call[3].clone()),
            (
                json!("RemoteStartTransaction"),
                json!({ "idTag": "TAG-R", "connectorId": 1 })
            )
        );
        assert_eq!((status, body["action"].clone()), (200, json!("RemoteStartTransaction")));
        // No body for a command without parameters.
        let ((status, body), call) = with_station_answer(
            s,
            &mut ws,
            &format!("{commands}/clear-cache"),
            None,
            |id| json!([3, id, { "status": "Accepted" }]),
        )
        .await;
        assert_eq!((call[2].clone(), call[3].clone()), (json!("ClearCache"), json!({})));
        assert_eq!(status, 200, "{body}");

        // A CALLERROR from the station.
        let ((status, body), _) = with_station_answer(
            s,
            &mut ws,
            calls,
            Some(json!({ "action": "ClearCache" })),
            |id| json!([4, id, "NotImplemented", "no cache here", { "why": "none" }]),
        )
        .await;
        assert_eq!(status, 502, "{backend}: {body}");
        assert_eq!(body["code"], "STATION_CALL_ERROR");
        assert_eq!(body["errors"]["code"], "NotImplemented");
        assert_eq!(body["errors"]["description"], "no cache here");
        assert_eq!(body["errors"]["details"], json!({ "why": "none" }));

        // The session keeps working after an error.
        let ((status, _), _) = with_station_answer(
            s,
            &mut ws,
            calls,
            Some(json!({ "action": "ClearCache" })),
            |id| json!([3, id, { "status": "Accepted" }]),
        )
        .await;
        assert_eq!(status, 200);

        // 2.0.1: typed commands translate to 2.0.1 actions; 1.6-only commands are refused.
        let mut ws2 = station201(s, "CMD-201").await;
        let ((status, body), call) = with_station_answer(
            s,
            &mut ws2,
            "/api/v1/stations/CMD-201/commands/reset",
            Some(json!({ "type": "Hard" })),
            |id| json!([3, id, { "status": "Accepted" }]),
        )
        .await;
        assert_eq!(
            (call[2].clone(), call[3].clone()),
            (json!("Reset"), json!({ "type": "Immediate" }))
        );
        assert_eq!(status, 200, "{body}");
        expect_problem(
            s,
            "POST",
            "/api/v1/stations/CMD-201/commands/get-configuration",
            Some(Role::Operator),
            Some(json!({})),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;
        expect_problem(
            s,
            "POST",
            "/api/v1/stations/CMD-201/calls",
            Some(Role::Operator),
            Some(json!({ "action": "RemoteStartTransaction", "payload": { "idTag": "T" } })),
            422,
            "UNSUPPORTED_ACTION",
        )
        .await;

        // The station closes the socket instead of answering.
        let ((status, body), _) = tokio::join!(
            s.api(
                "POST",
                calls,
                Some(Role::Operator),
                Some(json!({ "action": "ClearCache" }))
            ),
            async {
                let call = recv(&mut ws).await;
                assert_eq!(call[2], "ClearCache");
                ws.close(None).await.expect("close");
            }
        );
        assert_eq!(status, 504, "{backend}: {body}");
        assert_eq!(body["code"], "STATION_DISCONNECTED", "{body}");
        eventually(|| async move { s.state.registry.get("CMD-16").is_none().then_some(()) }).await;
        // The store follows the registry a moment later; until then the station may be on
        // another node of a cluster, and the command is forwarded there (tests/cluster.rs).
        eventually(|| async move {
            let station = s.state.store.station("CMD-16").await.expect("store");
            station.is_some_and(|st| !st.online.0).then_some(())
        })
        .await;
        expect_problem(
            s,
            "POST",
            calls,
            Some(Role::Operator),
            Some(json!({ "action": "ClearCache" })),
            409,
            "STATION_OFFLINE",
        )
        .await;
        drop(ws2);
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn command_to_a_silent_station_times_out() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.call_timeout = 1).await;
        let s = &server;
        // The station boots, then never reads again (the socket stays open).
        let ws = station16(s, "SILENT-1").await;
        let started = Instant::now();
        let p = expect_problem(
            s,
            "POST",
            "/api/v1/stations/SILENT-1/calls",
            Some(Role::Operator),
            Some(json!({ "action": "ClearCache" })),
            504,
            "STATION_TIMEOUT",
        )
        .await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "{backend}: answered after {waited:?}: {p}"
        );
        assert!(waited < Duration::from_secs(5), "{backend}: answered after {waited:?}");
        // The station is still connected; the next call times out as well.
        let (status, st) = s
            .api("GET", "/api/v1/stations/SILENT-1", Some(Role::Operator), None)
            .await;
        assert_eq!((status, st["online"].clone()), (200, json!(true)), "{st}");
        expect_problem(
            s,
            "POST",
            "/api/v1/stations/SILENT-1/commands/clear-cache",
            Some(Role::Operator),
            None,
            504,
            "STATION_TIMEOUT",
        )
        .await;
        drop(ws);
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Health, readiness, metrics, OpenAPI, unknown paths
// ---------------------------------------------------------------------------------------------

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.insert(v.as_str().unwrap_or_default().to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn health_ready_metrics_openapi_and_unknown_paths() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;

        let r = request(s.addr, "GET", "/health", &[], None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["status"], "ok");
        let r = request(s.addr, "GET", "/ready", &[], None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json, json!({ "status": "ready", "database": backend }));

        // Metrics, with a station connected.
        let mut ws = station16(s, "METRICS-1").await;
        call_ok(&mut ws, "hb", "Heartbeat", json!({})).await;
        s.flush().await;
        let r = request(s.addr, "GET", "/metrics", &[], None).await;
        assert_eq!(r.status, 200);
        assert!(r.content_type().contains("text"), "{}", r.content_type());
        assert!(r.text.contains("ocpp_connected_stations"), "{}", r.text);
        assert!(
            r.text.lines().any(|l| l == "ocpp_connected_stations 1"),
            "{backend}: {}",
            r.text
        );
        assert!(r.text.contains("ocpp_meter_rows_written_total"), "{}", r.text);
        assert!(r.text.contains("ocpp_frames_dropped_total"), "{}", r.text);
        if r.content_type().starts_with("application/openmetrics-text") {
            // OpenMetrics: `# EOF` ends the exposition, once; scrapers refuse anything after it.
            assert_eq!(r.text.matches("# EOF").count(), 1, "{backend}: {}", r.text);
            assert!(r.text.ends_with("# EOF\n"), "{backend}: data after # EOF:\n{}", r.text);
        }
        drop(ws);

        // The OpenAPI document is public.
        let r = request(s.addr, "GET", "/api/v1/openapi.json", &[], None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.content_type().starts_with("application/json"), "{}", r.content_type());
        let doc = &r.json;
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{}",
            doc["openapi"]
        );
        assert!(doc["info"]["title"].is_string());
        let documented: BTreeSet<(String, String)> = documented_routes(doc).into_keys().collect();
        let expected: BTreeSet<(String, String)> = EXPECTED_ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            documented, expected,
            "{backend}: every route is documented, and only those"
        );
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "Station",
            "StationDetail",
            "Connector",
            "IdTokenRecord",
            "Problem",
            "CommandResponse",
            "GenericCall",
            "LoggedFrame",
        ] {
            assert!(schemas.contains_key(name), "{backend}: schema {name} missing");
        }
        let problem = &schemas["Problem"]["properties"];
        for field in ["type", "title", "status", "detail", "code"] {
            assert!(problem.get(field).is_some(), "Problem lacks {field}: {problem}");
        }
        assert!(
            doc["components"]["securitySchemes"]["bearer"].is_object(),
            "{}",
            doc["components"]
        );
        // Every reference resolves.
        let mut all = BTreeSet::new();
        refs(doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(schemas.contains_key(name), "{backend}: dangling $ref {r}");
        }
        // Path parameters are declared.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !HTTP_METHODS.contains(&method.as_str()) {
                    continue;
                }
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                let in_path: BTreeSet<&str> = path
                    .split('/')
                    .filter(|seg| seg.starts_with('{'))
                    .map(|seg| seg.trim_matches(|c| c == '{' || c == '}'))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }

        // Unknown paths: 404 problems, with or without a token.
        for path in ["/nope", "/api/v1/nope", "/api/v1/stations/X/nope", "/api/v2/stations"] {
            let r = request(s.addr, "GET", path, &[], None).await;
            assert_problem(&r, 404, "NOT_FOUND", &format!("{backend} {path}"));
            let (status, body) = s.api("GET", path, Some(Role::Admin), None).await;
            assert_eq!((status, body["code"].clone()), (404, json!("NOT_FOUND")), "{path}");
        }
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Errors raised by the framework itself (query strings, methods, role before body) are problems too.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_is_a_problem() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let admin = server.token(Role::Admin);
        let operator = server.token(Role::Operator);
        let cases = vec![
            (
                admin.as_str(),
                "GET",
                "/api/v1/stations?limit=abc",
                None,
                400,
                "VALIDATION_FAILED",
            ),
            (
                admin.as_str(),
                "GET",
                "/api/v1/stations?online=maybe",
                None,
                400,
                "VALIDATION_FAILED",
            ),
            (
                admin.as_str(),
                "GET",
                "/api/v1/id-tokens?limit=1.5",
                None,
                400,
                "VALIDATION_FAILED",
            ),
            (
                admin.as_str(),
                "GET",
                "/api/v1/meter-values?transactionId=x",
                None,
                400,
                "VALIDATION_FAILED",
            ),
            (
                admin.as_str(),
                "PUT",
                "/api/v1/stations",
                Some(json!({})),
                405,
                "METHOD_NOT_ALLOWED",
            ),
            (
                admin.as_str(),
                "DELETE",
                "/api/v1/transactions/1",
                None,
                405,
                "METHOD_NOT_ALLOWED",
            ),
            // An operator learns that it may not create stations before its body is checked.
            (
                operator.as_str(),
                "POST",
                "/api/v1/stations",
                Some(json!({ "id": "CP-X", "colour": "red" })),
                403,
                "FORBIDDEN",
            ),
            (
                operator.as_str(),
                "PUT",
                "/api/v1/id-tokens/T",
                Some(json!({ "state": "Accepted" })),
                403,
                "FORBIDDEN",
            ),
        ];
        let mut deviations = Vec::new();
        for (token, method, path, body, status, code) in cases {
            let r = call_api(server.addr, method, path, Some(token), body.as_ref()).await;
            if r.status != status || r.content_type() != "application/problem+json" || r.json["code"] != code {
                deviations.push(format!(
                    "{backend} {method} {path}: expected {status} {code} problem, got {} {:?} {:?}",
                    r.status,
                    r.content_type(),
                    r.text
                ));
            }
        }
        assert!(deviations.is_empty(), "{}", deviations.join("\n"));
        server.stop_and_clean().await;
    }
}

//! Accounts over HTTP: registration and validation, unified login, refresh rotation, logout,
//! rate limiting, BackOffice applications, operators and their scope, owner lifecycle,
//! vehicles, the first admin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{backends, backoffice, operator, owner, station, station_body, TestServer, PASSWORD};

#[tokio::test]
async fn owner_registration_validates_every_field() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let r = s
            .req(
                "POST",
                "/api/v1/owners",
                None,
                Some(
                    json!({ "nic": "12345", "name": " ", "email": "nope", "phone": "0771234567", "password": "short" }),
                ),
            )
            .await;
        let fields = r.fields();
        r.problem(400, "VALIDATION_FAILED");
        assert_eq!(fields, ["nic", "email", "name", "phone", "password"], "{}", s.backend);
        // A missing field and an unknown field are named too.
        let r = s
            .req("POST", "/api/v1/owners", None, Some(json!({ "nic": "912345678V" })))
            .await;
        assert_eq!(r.fields(), ["name"]);
        r.problem(400, "VALIDATION_FAILED");
        let r = s
            .req(
                "POST",
                "/api/v1/owners",
                None,
                Some(json!({ "nic": "912345678V", "name": "A", "email": "a@b.lk", "phone": "+94771234567", "password": PASSWORD, "role": "admin" })),
            )
            .await;
        assert_eq!(r.fields(), ["role"]);
        r.problem(400, "VALIDATION_FAILED");
        // Both NIC formats register; a second account with the same NIC or email is refused.
        owner(&s, "912345678v", "old@nic.lk").await;
        owner(&s, "200012345678", "new@nic.lk").await;
        s.req(
            "POST",
            "/api/v1/owners",
            None,
            Some(json!({ "nic": "912345678V", "name": "B", "email": "other@nic.lk", "phone": "+94771234567", "password": PASSWORD })),
        )
        .await
        .problem(409, "ACCOUNT_EXISTS");
        s.req(
            "POST",
            "/api/v1/owners",
            None,
            Some(json!({ "nic": "923456789V", "name": "B", "email": "OLD@nic.lk", "phone": "+94771234567", "password": PASSWORD })),
        )
        .await
        .problem(409, "ACCOUNT_EXISTS");
        s.stop().await;
    }
}

#[tokio::test]
async fn login_refresh_logout_and_rate_limit() {
    for backend in backends() {
        let s = TestServer::start_with(backend, |c| {
            c.policy.login_max_failures = 3;
            c.policy.access_token_secs = 900;
        })
        .await;
        owner(&s, "912345678V", "one@mail.lk").await;
        // Owners log in with their NIC, in either case; not with their email.
        let tokens = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "912345678v", "password": PASSWORD })),
            )
            .await
            .expect(200);
        assert_eq!(tokens["role"], "owner");
        assert_eq!(tokens["tokenType"], "Bearer");
        assert_eq!(tokens["expiresIn"], 900);
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "identifier": "one@mail.lk", "password": PASSWORD })),
        )
        .await
        .problem(401, "INVALID_CREDENTIALS");
        let me = s
            .req("GET", "/api/v1/me", tokens["accessToken"].as_str(), None)
            .await
            .expect(200);
        assert_eq!(me["nic"], "912345678V");
        // Refresh rotates: the new token works once, the old one is refused and revokes the family.
        let first = tokens["refreshToken"].as_str().unwrap().to_string();
        let second = s
            .req(
                "POST",
                "/api/v1/auth/refresh",
                None,
                Some(json!({ "refreshToken": first })),
            )
            .await
            .expect(200);
        let second = second["refreshToken"].as_str().unwrap().to_string();
        s.req(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refreshToken": first })),
        )
        .await
        .problem(401, "REFRESH_TOKEN_REUSED");
        s.req(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refreshToken": second })),
        )
        .await
        .problem(401, "REFRESH_TOKEN_REUSED");
        s.req(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refreshToken": "garbage" })),
        )
        .await
        .problem(401, "INVALID_REFRESH_TOKEN");
        // Logout revokes the refresh token.
        let tokens = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "912345678V", "password": PASSWORD })),
            )
            .await
            .expect(200);
        let refresh = tokens["refreshToken"].as_str().unwrap();
        s.req(
            "POST",
            "/api/v1/auth/logout",
            None,
            Some(json!({ "refreshToken": refresh })),
        )
        .await
        .expect(204);
        assert_eq!(
            s.req(
                "POST",
                "/api/v1/auth/refresh",
                None,
                Some(json!({ "refreshToken": refresh }))
            )
            .await
            .status,
            401
        );
        // Refresh tokens expire after 30 days.
        let old = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "912345678V", "password": PASSWORD })),
            )
            .await
            .expect(200);
        s.clock
            .advance(chrono::Duration::days(30) + chrono::Duration::seconds(1));
        s.req(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refreshToken": old["refreshToken"] })),
        )
        .await
        .problem(401, "REFRESH_TOKEN_EXPIRED");
        // Access tokens expire with the clock.
        let token = tokens["accessToken"].as_str().unwrap();
        s.clock.advance(chrono::Duration::seconds(901));
        s.req("GET", "/api/v1/me", Some(token), None)
            .await
            .problem(401, "UNAUTHORIZED");
        s.req("GET", "/api/v1/me", None, None)
            .await
            .problem(401, "UNAUTHORIZED");
        s.req("GET", "/api/v1/me", Some("not.a.token"), None)
            .await
            .problem(401, "UNAUTHORIZED");
        // Three failures lock the identifier (even with the right password) until the window passes.
        for _ in 0..3 {
            s.req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "912345678V", "password": "wrong password" })),
            )
            .await
            .problem(401, "INVALID_CREDENTIALS");
        }
        let r = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "912345678V", "password": PASSWORD })),
            )
            .await;
        assert!(r.headers.contains_key("retry-after"));
        r.problem(429, "LOGIN_RATE_LIMITED");
        // Another identifier is not affected.
        s.admin().await;
        s.clock.advance(chrono::Duration::seconds(901));
        s.login("912345678V", PASSWORD).await;
        s.stop().await;
    }
}

#[tokio::test]
async fn backoffice_applications_operators_and_owner_lifecycle() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let admin = s.admin().await;
        let (owner_token, _) = owner(&s, "912345678V", "one@mail.lk").await;
        // Applying validates; a pending application cannot log in.
        let r = s
            .req(
                "POST",
                "/api/v1/backoffice-applications",
                None,
                Some(json!({ "email": "x@biz.lk", "name": "X", "password": PASSWORD })),
            )
            .await;
        assert_eq!(r.fields(), ["phone", "businessName"]);
        let app = s
            .req(
                "POST",
                "/api/v1/backoffice-applications",
                None,
                Some(json!({ "email": "x@biz.lk", "name": "X", "phone": "+94771111111", "password": PASSWORD, "businessName": "X Ltd", "nic": "912345679V" })),
            )
            .await
            .expect(201);
        assert_eq!(app["status"], "pending");
        let id = app["id"].as_i64().unwrap();
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "identifier": "x@biz.lk", "password": PASSWORD })),
        )
        .await
        .problem(403, "ACCOUNT_PENDING");
        // Only admins list and review.
        let pending = s
            .req(
                "GET",
                "/api/v1/backoffice-applications?status=pending",
                Some(&admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(pending["items"].as_array().unwrap().len(), 1);
        s.req("GET", "/api/v1/backoffice-applications", Some(&owner_token), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req(
            "POST",
            &format!("/api/v1/backoffice-applications/{id}/approve"),
            Some(&owner_token),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req(
            "POST",
            &format!("/api/v1/backoffice-applications/{id}/reject"),
            Some(&admin),
            None,
        )
        .await
        .expect(200);
        s.req(
            "POST",
            &format!("/api/v1/backoffice-applications/{id}/approve"),
            Some(&admin),
            None,
        )
        .await
        .problem(409, "ILLEGAL_TRANSITION");
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "identifier": "x@biz.lk", "password": PASSWORD })),
        )
        .await
        .problem(403, "ACCOUNT_REJECTED");
        // An approved BackOffice creates operators on its own stations only.
        let (bo_a, _) = backoffice(&s, &admin, "a@biz.lk").await;
        let (bo_b, _) = backoffice(&s, &admin, "b@biz.lk").await;
        let s1 = station(&s, &bo_a, station_body("CP-1", 1, false, 6.9, 79.8)).await;
        let s2 = station(&s, &bo_a, station_body("CP-2", 1, false, 6.9, 79.8)).await;
        let s3 = station(&s, &bo_b, station_body("CP-3", 1, false, 6.9, 79.8)).await;
        s.req(
            "POST",
            "/api/v1/operators",
            Some(&bo_a),
            Some(json!({ "email": "op@biz.lk", "name": "Op", "phone": "+94772222222", "password": PASSWORD, "stationIds": [s3] })),
        )
        .await
        .problem(403, "FORBIDDEN");
        let (op, op_id) = operator(&s, &bo_a, "op@biz.lk", &[s1]).await;
        let me = s.req("GET", "/api/v1/me", Some(&op), None).await.expect(200);
        assert_eq!(me["stationIds"], json!([s1]));
        // The operator sees s1, not s2, until the BackOffice changes its scope.
        s.req("GET", &format!("/api/v1/stations/{s1}"), Some(&op), None)
            .await
            .expect(200);
        s.req("GET", &format!("/api/v1/stations/{s2}"), Some(&op), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req(
            "PUT",
            &format!("/api/v1/operators/{op_id}/stations"),
            Some(&bo_b),
            Some(json!({ "stationIds": [s3] })),
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req(
            "PUT",
            &format!("/api/v1/operators/{op_id}/stations"),
            Some(&bo_a),
            Some(json!({ "stationIds": [s3] })),
        )
        .await
        .problem(403, "FORBIDDEN");
        let r = s
            .req(
                "PUT",
                &format!("/api/v1/operators/{op_id}/stations"),
                Some(&bo_a),
                Some(json!({ "stationIds": [999] })),
            )
            .await;
        assert_eq!(r.fields(), ["stationIds[0]"]);
        r.problem(400, "VALIDATION_FAILED");
        let changed = s
            .req(
                "PUT",
                &format!("/api/v1/operators/{op_id}/stations"),
                Some(&bo_a),
                Some(json!({ "stationIds": [s2, s1] })),
            )
            .await
            .expect(200);
        assert_eq!(changed["stationIds"], json!([s1, s2]));
        // The change applies at once, to tokens issued before it too.
        s.req("GET", &format!("/api/v1/stations/{s2}"), Some(&op), None)
            .await
            .expect(200);
        s.req(
            "PUT",
            &format!("/api/v1/operators/{op_id}/stations"),
            Some(&bo_a),
            Some(json!({ "stationIds": [s2] })),
        )
        .await
        .expect(200);
        s.req("GET", &format!("/api/v1/stations/{s1}"), Some(&op), None)
            .await
            .problem(403, "FORBIDDEN");
        // A new token's claim shows the new scope.
        let fresh = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": "op@biz.lk", "password": PASSWORD })),
            )
            .await
            .expect(200);
        assert_eq!(fresh["stationIds"], json!([s2]));
        // Operators are listed per BackOffice.
        let mine = s.req("GET", "/api/v1/operators", Some(&bo_a), None).await.expect(200);
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
        let theirs = s.req("GET", "/api/v1/operators", Some(&bo_b), None).await.expect(200);
        assert!(theirs["items"].as_array().unwrap().is_empty());
        assert_eq!(
            s.req("GET", "/api/v1/operators", Some(&admin), None).await.expect(200)["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Admins create admins.
        s.req(
            "POST",
            "/api/v1/admins",
            Some(&admin),
            Some(json!({ "email": "root2@evcs.lk", "name": "Root", "password": PASSWORD })),
        )
        .await
        .expect(201);
        s.login("root2@evcs.lk", PASSWORD).await;
        // Owner lifecycle: self-deactivation ends login; only an admin reactivates.
        let other = owner(&s, "923456789V", "two@mail.lk").await.0;
        s.req("GET", "/api/v1/owners/912345678V", Some(&other), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("POST", "/api/v1/owners/912345678V/deactivate", Some(&other), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/owners/912345678V", Some(&owner_token), None)
            .await
            .expect(200);
        let r = s
            .req("POST", "/api/v1/owners/912345678V/deactivate", Some(&owner_token), None)
            .await
            .expect(200);
        assert_eq!(r["status"], "inactive");
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "identifier": "912345678V", "password": PASSWORD })),
        )
        .await
        .problem(403, "ACCOUNT_INACTIVE");
        s.req("POST", "/api/v1/owners/912345678V/deactivate", Some(&admin), None)
            .await
            .problem(409, "ILLEGAL_TRANSITION");
        s.req("POST", "/api/v1/owners/912345678V/reactivate", Some(&owner_token), None)
            .await
            .problem(403, "FORBIDDEN");
        let inactive = s
            .req("GET", "/api/v1/owners?status=inactive", Some(&admin), None)
            .await
            .expect(200);
        assert_eq!(inactive["items"][0]["nic"], "912345678V");
        s.req("POST", "/api/v1/owners/912345678V/reactivate", Some(&admin), None)
            .await
            .expect(200);
        s.login("912345678V", PASSWORD).await;
        s.req("GET", "/api/v1/owners/12", Some(&admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");
        s.req("GET", "/api/v1/owners/923456788V", Some(&admin), None)
            .await
            .problem(404, "NOT_FOUND");
        // Every change is in the audit trail.
        let audit = s
            .req("GET", "/api/v1/audit-events?entityType=account", Some(&admin), None)
            .await
            .expect(200);
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for expected in [
            "admin.bootstrapped",
            "owner.created",
            "backoffice.created",
            "backoffice.rejected",
            "backoffice.approved",
            "operator.created",
            "operator.scope_changed",
            "owner.deactivated",
            "owner.reactivated",
        ] {
            assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
        }
        s.req("GET", "/api/v1/audit-events", Some(&bo_a), None)
            .await
            .problem(403, "FORBIDDEN");
        s.stop().await;
    }
}

#[tokio::test]
async fn vehicles_belong_to_their_owner() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let admin = s.admin().await;
        let (one, _) = owner(&s, "912345678V", "one@mail.lk").await;
        let (two, _) = owner(&s, "923456789V", "two@mail.lk").await;
        let body = json!({ "make": "Nissan", "model": "Leaf", "plate": "cab-1234", "batteryKwh": 40, "connectorTypes": ["chademo", "Type2"] });
        let v = s
            .req("POST", "/api/v1/vehicles", Some(&one), Some(body.clone()))
            .await
            .expect(201);
        assert_eq!(v["plate"], "CAB-1234");
        assert_eq!(v["connectorTypes"], json!(["CHAdeMO", "Type2"]));
        assert_eq!(v["batteryKwh"], 40.0);
        s.req("POST", "/api/v1/vehicles", Some(&one), Some(body))
            .await
            .problem(409, "VEHICLE_EXISTS");
        let r = s
            .req(
                "POST",
                "/api/v1/vehicles",
                Some(&one),
                Some(json!({ "make": "", "model": "M", "plate": "P", "batteryKwh": 0, "connectorTypes": ["Schuko"] })),
            )
            .await;
        assert_eq!(r.fields(), ["make", "batteryKwh", "connectorTypes[0]"]);
        s.req("POST", "/api/v1/vehicles", Some(&admin), Some(json!({})))
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/vehicles", Some(&admin), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/vehicles", None, None)
            .await
            .problem(401, "UNAUTHORIZED");
        assert_eq!(
            s.req("GET", "/api/v1/vehicles", Some(&one), None)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(s
            .req("GET", "/api/v1/vehicles", Some(&two), None)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .is_empty());
        let id = v["id"].as_i64().unwrap();
        s.req("DELETE", &format!("/api/v1/vehicles/{id}"), Some(&two), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req("DELETE", &format!("/api/v1/vehicles/{id}"), Some(&one), None)
            .await
            .expect(204);
        s.stop().await;
    }
}

#[tokio::test]
async fn initial_admin_is_created_once_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = booking_api::Config::for_tests(dir.path().to_path_buf(), None);
    let created = booking_api::initial_admin(&config)
        .await
        .unwrap()
        .expect("an empty database gets an admin");
    assert_eq!(created.email, "admin@evcs.local");
    assert!(created.password.len() >= 20);
    assert!(booking_api::initial_admin(&config).await.unwrap().is_none());
    // The service then starts without creating (or printing) another.
    let app = booking_api::Application::build(config).await.unwrap();
    assert!(app.initial_admin().is_none());
}

#[tokio::test]
async fn first_start_creates_one_admin_and_serves_health_and_openapi() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        // A second bootstrap on the same database does nothing.
        let again = booking_api::bootstrap_admin(&s.state.db, &s.state.passwords, "other@evcs.local", 0)
            .await
            .unwrap();
        assert!(again.is_none());
        assert_eq!(s.req("GET", "/health", None, None).await.expect(200)["status"], "ok");
        assert_eq!(
            s.req("GET", "/ready", None, None).await.expect(200)["database"],
            s.backend
        );
        let doc = s.req("GET", "/api/v1/openapi.json", None, None).await.expect(200);
        assert!(doc["paths"]["/api/v1/bookings"]["post"].is_object());
        assert!(doc["components"]["schemas"]["Booking"].is_object());
        let page = s.req("GET", "/api/v1/docs", None, None).await.expect(200);
        assert!(page.as_str().unwrap().contains("/api/v1/openapi.json"));
        s.req("GET", "/api/v1/nothing-here", None, None)
            .await
            .problem(404, "NOT_FOUND");
        s.req("PATCH", "/api/v1/auth/login", None, None)
            .await
            .problem(405, "METHOD_NOT_ALLOWED");
        // Every request carries an id (the client's when sane), and metrics count routes and codes.
        let r = s
            .call("GET", "/api/v1/me", None, None, &[("x-request-id", "trace-42")])
            .await;
        assert_eq!(r.headers.get("x-request-id").unwrap(), "trace-42");
        let r = s
            .call("GET", "/health", None, None, &[("x-request-id", "bad id")])
            .await;
        assert_eq!(r.headers.get("x-request-id").unwrap().len(), 16);
        let metrics = s.req("GET", "/metrics", None, None).await.expect(200);
        let text = metrics.as_str().unwrap();
        assert!(
            text.contains(r#"booking_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"booking_problems_total{code="UNAUTHORIZED"} 1"#),
            "{text}"
        );
        assert!(text.contains("booking_http_request_duration_seconds_bucket"), "{text}");
        s.stop().await;
    }
}

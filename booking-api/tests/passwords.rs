//! Password changes: every role changes its own with the current password; admins reset
//! anyone's; either ends the account's other sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use serde_json::json;
use support::*;

const NEW: &str = "a brand new passphrase";

/// Logs in and returns the whole token response.
async fn login_full(s: &TestServer, identifier: &str, password: &str) -> serde_json::Value {
    s.req(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "identifier": identifier, "password": password })),
    )
    .await
    .expect(200)
}

#[tokio::test]
async fn every_role_changes_its_own_password_with_the_current_one() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let admin_email = s.admin_email.clone();
        let admin_password = s.admin_password.clone();
        // (role, login identifier, current password): the first admin's generated password
        // is exactly what the first-start message tells the operator to change.
        let accounts = [
            ("admin", admin_email.as_str(), admin_password.as_str()),
            ("backoffice", "a@biz.lk", PASSWORD),
            ("operator", "op-a@biz.lk", PASSWORD),
            ("owner", "912345678V", PASSWORD),
        ];
        for (role, identifier, current) in accounts {
            let session = login_full(&s, identifier, current).await;
            let token = session["accessToken"].as_str().unwrap();
            let change = |current: &str, new: &str| json!({ "currentPassword": current, "newPassword": new });
            s.req(
                "PUT",
                "/api/v1/me/password",
                Some(token),
                Some(change("not the password", NEW)),
            )
            .await
            .problem(403, "WRONG_PASSWORD");
            let r = s
                .req(
                    "PUT",
                    "/api/v1/me/password",
                    Some(token),
                    Some(change(current, "short")),
                )
                .await;
            assert_eq!(r.fields(), ["newPassword"], "{role}");
            r.problem(400, "VALIDATION_FAILED");
            s.req("PUT", "/api/v1/me/password", None, Some(change(current, NEW)))
                .await
                .problem(401, "UNAUTHORIZED");
            // Nothing changed so far.
            login_full(&s, identifier, current).await;

            s.req("PUT", "/api/v1/me/password", Some(token), Some(change(current, NEW)))
                .await
                .expect(204);
            s.req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": identifier, "password": current })),
            )
            .await
            .problem(401, "INVALID_CREDENTIALS");
            login_full(&s, identifier, NEW).await;
            // Sessions opened with the old password cannot be refreshed any more.
            let r = s
                .req(
                    "POST",
                    "/api/v1/auth/refresh",
                    None,
                    Some(json!({ "refreshToken": session["refreshToken"] })),
                )
                .await;
            assert_eq!(r.status, 401, "{role}: {}", r.body);
        }
        // Access tokens live on until they expire: the admin's from before the change still reads.
        let events = s
            .req(
                "GET",
                "/api/v1/audit-events?action=account.password_changed",
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(events["items"].as_array().unwrap().len(), 4, "{events}");
        s.stop().await;
    }
}

#[tokio::test]
async fn only_admins_reset_other_accounts_passwords() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let reset = json!({ "newPassword": NEW });
        let path = format!("/api/v1/accounts/{}/password", w.owner1_id);
        for (role, token) in [("backoffice", &w.bo_a), ("operator", &w.op_a), ("owner", &w.owner1)] {
            let r = s.req("PUT", &path, Some(token), Some(reset.clone())).await;
            assert_eq!(r.status, 403, "{role}: {}", r.body);
            r.problem(403, "FORBIDDEN");
        }
        s.req("PUT", &path, None, Some(reset.clone()))
            .await
            .problem(401, "UNAUTHORIZED");
        login_full(&s, "912345678V", PASSWORD).await;

        let session = login_full(&s, "912345678V", PASSWORD).await;
        s.req("PUT", &path, Some(&w.admin), Some(json!({ "newPassword": "short" })))
            .await
            .problem(400, "VALIDATION_FAILED");
        s.req("PUT", &path, Some(&w.admin), Some(reset.clone()))
            .await
            .expect(204);
        login_full(&s, "912345678V", NEW).await;
        s.req(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "identifier": "912345678V", "password": PASSWORD })),
        )
        .await
        .problem(401, "INVALID_CREDENTIALS");
        let r = s
            .req(
                "POST",
                "/api/v1/auth/refresh",
                None,
                Some(json!({ "refreshToken": session["refreshToken"] })),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.body);

        s.req(
            "PUT",
            "/api/v1/accounts/999999/password",
            Some(&w.admin),
            Some(reset.clone()),
        )
        .await
        .problem(404, "NOT_FOUND");
        s.req("PUT", "/api/v1/accounts/abc/password", Some(&w.admin), Some(reset))
            .await
            .problem(400, "VALIDATION_FAILED");
        let events = s
            .req(
                "GET",
                "/api/v1/audit-events?action=account.password_reset",
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let items = events["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{events}");
        assert!(!events.to_string().contains(NEW), "the audit trail holds no password");
        s.stop().await;
    }
}

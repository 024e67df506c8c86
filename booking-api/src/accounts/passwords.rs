//! Password changes: every account changes its own (proving the current one), and admins reset
//! anyone's (the first admin's generated password is meant to be changed this way).
//!
//! Either way every refresh token of the account is revoked, so sessions opened with the old
//! password end when their access token expires, and the change is audited.

use super::store;
use crate::api::auth::{Admins, Caller, Only};
use crate::app::AppState;
use crate::audit;
use crate::validate::{Fields, NewPassword};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use service_kit::extract::{ApiJson, ApiPath};
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// Password routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/password", put(change_own))
        .route("/accounts/{id}/password", put(reset))
}

/// Body of `PUT /me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    pub current_password: String,
    /// The new password (10-128 characters).
    pub new_password: String,
}

/// Body of `PUT /accounts/{id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordReset {
    /// The new password (10-128 characters).
    pub new_password: String,
}

fn new_password(raw: &str) -> Result<NewPassword, Problem> {
    let mut fields = Fields::new();
    let password = fields.check("newPassword", NewPassword::parse(raw));
    fields.finish()?;
    password.ok_or_else(|| Problem::internal("validation passed without a value"))
}

/// `PUT /me/password` (every role): 204, or 403 `WRONG_PASSWORD` when the current password
/// does not match.
async fn change_own(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, Problem> {
    let new = new_password(&req.new_password)?;
    let hash = store::password_hash(&state.db, caller.id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))?;
    if !state.passwords.verify(req.current_password, hash).await? {
        return Err(Problem::forbidden_code(
            "WRONG_PASSWORD",
            "the current password does not match",
        ));
    }
    store_password(&state, &caller, caller.id, new, "account.password_changed").await
}

/// `PUT /accounts/{id}/password` (admin): 204, or 404 when there is no such account.
async fn reset(
    State(state): State<AppState>,
    Only(caller, _): Only<Admins>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<PasswordReset>,
) -> Result<StatusCode, Problem> {
    let new = new_password(&req.new_password)?;
    store_password(&state, &caller, id, new, "account.password_reset").await
}

async fn store_password(
    state: &AppState,
    caller: &Caller,
    id: i64,
    new: NewPassword,
    action: &str,
) -> Result<StatusCode, Problem> {
    let hash = state.passwords.hash(new.into_inner()).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    if !store::set_password_hash(&mut tx, id, &hash, now).await? {
        return Err(Problem::not_found("account"));
    }
    // The payload names no secret: who changed whose password is the whole story.
    audit::record(
        &mut tx,
        "account",
        &id.to_string(),
        action,
        Some(caller),
        &json!({}),
        now,
    )
    .await?;
    tx.commit().await?;
    store::revoke_all_refresh(&state.db, id, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

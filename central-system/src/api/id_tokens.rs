//! Id tokens the central system authorises.

use super::auth::{Admin, Caller};
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::ApiJson;
use super::ApiQuery;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::store::id_tokens::{IdTokenFields, IdTokenRecord};
use crate::store::types::Ts;
use crate::store::StoreError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Id-token routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/id-tokens", get(list).post(create))
        .route("/id-tokens/{id_token}", get(detail).put(replace).delete(remove))
}

/// Body of `POST /id-tokens` (and, without `idToken`, of `PUT /id-tokens/{idToken}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdTokenBody {
    /// Token value (1-36 characters; 1.6 idTags allow 20, 2.0.1 idTokens 36).
    pub id_token: Option<String>,
    /// `Accepted`, `Blocked`, `Expired` or `Invalid`.
    pub status: String,
    /// 2.0.1 token type (default `ISO14443`).
    #[serde(rename = "type")]
    pub token_type: Option<String>,
    /// Expiry (RFC 3339).
    pub expires_at: Option<DateTime<Utc>>,
    /// Parent / group token.
    pub parent_id_token: Option<String>,
}

const TOKEN_TYPES: &[&str] = &ocpp::model::IdToken::V201_KINDS;

fn check_token(token: &str) -> Result<(), Problem> {
    if (1..=36).contains(&token.len()) && token.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Problem::validation("idToken must be 1-36 printable ASCII characters")
            .with_errors(json!([{ "field": "idToken", "message": "1-36 printable ASCII characters" }])))
    }
}

fn fields(body: IdTokenBody) -> Result<IdTokenFields, Problem> {
    if !["Accepted", "Blocked", "Expired", "Invalid"].contains(&body.status.as_str()) {
        return Err(
            Problem::validation("status must be Accepted, Blocked, Expired or Invalid")
                .with_errors(json!([{ "field": "status", "message": "one of Accepted, Blocked, Expired, Invalid" }])),
        );
    }
    let token_type = body.token_type.unwrap_or_else(|| "ISO14443".into());
    if !TOKEN_TYPES.contains(&token_type.as_str()) {
        return Err(
            Problem::validation(format!("type must be one of {}", TOKEN_TYPES.join(", ")))
                .with_errors(json!([{ "field": "type", "message": format!("one of {}", TOKEN_TYPES.join(", ")) }])),
        );
    }
    if let Some(parent) = &body.parent_id_token {
        check_token(parent)?;
    }
    Ok(IdTokenFields {
        token_type,
        status: body.status,
        expires_at: body.expires_at.map(Ts::from_datetime),
        parent_id_token: body.parent_id_token,
    })
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<IdTokenRecord>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let limit = page.limit()?;
    let items = state.store.id_tokens(page.key()?.as_deref(), limit).await?;
    Ok(Json(Page::new(items, limit, |t| t.id_token.clone())))
}

async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(mut body): ApiJson<IdTokenBody>,
) -> Result<(StatusCode, Json<IdTokenRecord>), Problem> {
    let token = body.id_token.take().ok_or_else(|| {
        Problem::validation("idToken is required").with_errors(json!([{ "field": "idToken", "message": "required" }]))
    })?;
    check_token(&token)?;
    let record = state.store.create_id_token(&token, fields(body)?, Ts::now()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<IdTokenRecord>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    state
        .store
        .id_token(&token)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("id token"))
}

async fn replace(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(token): ApiPath<String>,
    ApiJson(body): ApiJson<IdTokenBody>,
) -> Result<Json<IdTokenRecord>, Problem> {
    if body.id_token.as_deref().is_some_and(|t| t != token) {
        return Err(Problem::validation("idToken in the body differs from the path"));
    }
    state
        .store
        .update_id_token(&token, fields(body)?, Ts::now())
        .await
        .map(Json)
        .map_err(|e| match e {
            StoreError::NotFound => Problem::not_found("id token"),
            other => other.into(),
        })
}

async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(token): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    if state.store.delete_id_token(&token).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("id token"))
    }
}

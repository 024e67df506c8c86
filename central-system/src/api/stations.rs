//! Station registrations, live state, frame log, stored messages, device model, reservations.

use super::auth::{Admin, Caller};
use super::page::{Page, PageQuery};
use super::problem::Problem;
use super::ApiJson;
use super::ApiQuery;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::ocpp_ws::security_profile;
use crate::ocpp_ws::upgrade::valid_station_id;
use crate::store::frames::LoggedFrame;
use crate::store::messages::{DeviceVariable, Reservation, StationMessage};
use crate::store::stations::{Connector, NewStation, Station, StationPatch};
use crate::store::types::Ts;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Station routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations", get(list).post(create))
        .route("/stations/{station_id}", get(detail).patch(update).delete(remove))
        .route("/stations/{station_id}/frames", get(frames))
        .route("/stations/{station_id}/messages", get(messages))
        .route("/stations/{station_id}/device-model", get(device_model))
        .route("/stations/{station_id}/reservations", get(reservations))
}

/// A station with its connectors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationDetail {
    /// Registration and connection state.
    #[serde(flatten)]
    pub station: Station,
    /// Connectors with live status.
    pub connectors: Vec<Connector>,
}

/// Body of `POST /stations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStation {
    /// Station id (1-48 URL-safe characters).
    pub id: String,
    /// Description.
    pub description: Option<String>,
    /// Basic-auth password (security profiles 1/2); 16-40 characters as OCPP recommends.
    pub password: Option<String>,
    /// `Accepted` (default), `Pending` or `Rejected`.
    pub registration_status: Option<String>,
}

/// Body of `PATCH /stations/{id}`; absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStation {
    /// New description (`null` clears).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New password (`null` removes it).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// New registration status.
    pub registration_status: Option<String>,
    /// New security-profile floor (0-3). Connections raise it on their own; setting it lower
    /// is how an admin lets a station fall back to a lower profile.
    pub security_profile: Option<i64>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of the station list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only online (`true`) or offline (`false`) stations.
    pub online: Option<bool>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

fn check_status(status: &str) -> Result<(), Problem> {
    match status {
        "Accepted" | "Pending" | "Rejected" => Ok(()),
        _ => Err(Problem::validation("registrationStatus must be Accepted, Pending or Rejected")
            .with_errors(serde_json::json!([{ "field": "registrationStatus", "message": "must be Accepted, Pending or Rejected" }]))),
    }
}

pub(crate) fn check_password(password: &str) -> Result<(), Problem> {
    // OCPP 1.6 security whitepaper: 16 to 40 characters of printable ASCII.
    if (16..=40).contains(&password.len()) && password.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(
            Problem::validation("password must be 16-40 printable ASCII characters").with_errors(
                serde_json::json!([{ "field": "password", "message": "must be 16-40 printable ASCII characters" }]),
            ),
        )
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Station>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let items = state.store.stations(page.key()?.as_deref(), q.online, limit).await?;
    Ok(Json(Page::new(items, limit, |s| s.id.clone())))
}

async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<CreateStation>,
) -> Result<(StatusCode, Json<StationDetail>), Problem> {
    if !valid_station_id(&body.id) {
        return Err(Problem::validation("id must be 1-48 URL-safe characters").with_errors(
            serde_json::json!([{ "field": "id", "message": "1-48 characters from A-Z a-z 0-9 - . _ ~ * = : + | @" }]),
        ));
    }
    let status = body.registration_status.unwrap_or_else(|| "Accepted".into());
    check_status(&status)?;
    let password_hash = match body.password {
        Some(p) => {
            check_password(&p)?;
            Some(state.passwords.hash(p).await?)
        }
        None => None,
    };
    let station = state
        .store
        .create_station(
            NewStation {
                id: body.id,
                description: body.description,
                password_hash,
                registration_status: status,
            },
            Ts::now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(StationDetail {
            station,
            connectors: Vec::new(),
        }),
    ))
}

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<StationDetail>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let station = state
        .store
        .station(&id)
        .await?
        .ok_or_else(|| Problem::not_found("station"))?;
    let connectors = state.store.connectors(&id).await?;
    Ok(Json(StationDetail { station, connectors }))
}

async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateStation>,
) -> Result<Json<StationDetail>, Problem> {
    if let Some(status) = &body.registration_status {
        check_status(status)?;
    }
    if let Some(profile) = body.security_profile {
        if !security_profile::valid(profile) {
            return Err(Problem::validation("securityProfile must be 0, 1, 2 or 3")
                .with_errors(serde_json::json!([{ "field": "securityProfile", "message": "must be 0, 1, 2 or 3" }])));
        }
    }
    let password_hash = match body.password {
        Some(Some(p)) => {
            check_password(&p)?;
            Some(Some(state.passwords.hash(p).await?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let patch = StationPatch {
        description: body.description,
        password_hash,
        registration_status: body.registration_status,
        security_profile_floor: body.security_profile,
    };
    let station = state
        .store
        .update_station(&id, patch, Ts::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => Problem::not_found("station"),
            other => other.into(),
        })?;
    let connectors = state.store.connectors(&id).await?;
    Ok(Json(StationDetail { station, connectors }))
}

async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    if state.store.delete_station(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("station"))
    }
}

async fn ensure_station(state: &AppState, id: &str) -> Result<(), Problem> {
    state
        .store
        .station(id)
        .await?
        .map(|_| ())
        .ok_or_else(|| Problem::not_found("station"))
}

async fn frames(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<LoggedFrame>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    ensure_station(&state, &id).await?;
    let limit = page.limit()?;
    let items = state.store.frames(&id, page.int_key()?, limit).await?;
    Ok(Json(Page::new(items, limit, |f| f.id.to_string())))
}

/// Query of the stored-message list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQuery {
    /// Only this action.
    pub action: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> Result<Json<Page<StationMessage>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    ensure_station(&state, &id).await?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let items = state
        .store
        .station_messages(&id, q.action.as_deref(), page.int_key()?, limit)
        .await?;
    Ok(Json(Page::new(items, limit, |m| m.id.to_string())))
}

async fn device_model(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<DeviceVariable>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    ensure_station(&state, &id).await?;
    Ok(Json(state.store.device_variables(&id).await?))
}

async fn reservations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Reservation>>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    ensure_station(&state, &id).await?;
    Ok(Json(state.store.reservations(&id).await?))
}

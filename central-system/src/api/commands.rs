//! Commands to stations: typed endpoints for the common ones, translated to the station's OCPP
//! version, and one generic endpoint for any central-system action of that version.
//!
//! Answers: 200 with the station's CALLRESULT payload; 502 `STATION_CALL_ERROR` with the
//! CALLERROR it sent; 502 `STATION_INVALID_RESPONSE` when its CALLRESULT fails the response
//! schema (the violation in `errors`; nothing is recorded from it); 409 `STATION_OFFLINE`;
//! 504 `STATION_TIMEOUT`; 422 `INVALID_PAYLOAD` or `UNSUPPORTED_ACTION` before anything is
//! sent.
//!
//! 2.0.1 id tokens (remote-start, reserve-now) go out with their own `IdTokenEnumType`: the
//! body's `type`, else the type stored with the token (`/id-tokens`), else `Central` (the
//! spec's type for an id the CSMS made up, the truth for a token it has never seen).

use super::auth::Caller;
use super::problem::Problem;
use super::ApiJson;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::ocpp_ws::commands::{self, CommandError};
use crate::ocpp_ws::registry::CallOutcome;
use crate::store::messages::Reservation;
use crate::store::types::Ts;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use ocpp::Version;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use service_kit::extract::ApiPath;
use utoipa::ToSchema;

/// Command routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations/{station_id}/calls", post(generic))
        .route("/stations/{station_id}/commands/{command}", post(typed))
}

/// Body of the generic call endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericCall {
    /// Any central-system action of the station's version, e.g. `GetVariables`.
    pub action: String,
    /// Its payload, validated against the official schema before sending.
    #[serde(default = "empty_object")]
    pub payload: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// The station's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandResponse {
    /// The OCPP action sent.
    pub action: String,
    /// The station's CALLRESULT payload.
    pub response: Value,
}

async fn generic(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(station_id): ApiPath<String>,
    ApiJson(body): ApiJson<GenericCall>,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    send(&state, &station_id, &body.action, body.payload).await
}

async fn send(
    state: &AppState,
    station_id: &str,
    action: &str,
    payload: Value,
) -> Result<Json<CommandResponse>, Problem> {
    match commands::call(state, station_id, action, payload).await {
        Ok(CallOutcome::Result(response)) => Ok(Json(CommandResponse {
            action: action.to_string(),
            response,
        })),
        Ok(CallOutcome::Error {
            code,
            description,
            details,
        }) => Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "STATION_CALL_ERROR",
            format!("the station answered {action} with {code}: {description}"),
        )
        .with_errors(json!({ "code": code, "description": description, "details": details }))),
        Err(CommandError::Offline) => Err(not_connected(state, station_id).await),
        Err(e) => Err(command_problem(e)),
    }
}

/// Why a station cannot take a command now: 404 `UNKNOWN_STATION` when no such station is
/// registered (a typo should not read as "try again later"), else 409 `STATION_OFFLINE`.
async fn not_connected(state: &AppState, station_id: &str) -> Problem {
    match state.store.station(station_id).await {
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            "UNKNOWN_STATION",
            format!("no station {station_id} is registered"),
        ),
        Ok(Some(_)) => command_problem(CommandError::Offline),
        Err(e) => Problem::from(e),
    }
}

pub(crate) fn command_problem(e: CommandError) -> Problem {
    match e {
        CommandError::Offline => Problem::new(StatusCode::CONFLICT, "STATION_OFFLINE", "the station is not connected"),
        CommandError::Timeout => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "STATION_TIMEOUT",
            "the station did not answer in time",
        ),
        CommandError::Disconnected => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "STATION_DISCONNECTED",
            "the station disconnected before answering",
        ),
        e @ CommandError::UnknownAction { .. } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "UNSUPPORTED_ACTION", e.to_string())
        }
        CommandError::InvalidResponse { action, violation } => Problem::new(
            StatusCode::BAD_GATEWAY,
            "STATION_INVALID_RESPONSE",
            format!("the station answered {action} with a payload that breaks the OCPP schema"),
        )
        .with_errors(json!({
            "violation": format!("{:?}", violation.fault),
            "description": violation.description,
        })),
        CommandError::InvalidPayload(v) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PAYLOAD",
            v.description.clone(),
        )
        .with_errors(json!({ "violation": format!("{:?}", v.fault) })),
    }
}

/// Fields the typed commands accept (each command reads the ones it needs).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandBody {
    /// Token for remote start / reservations.
    pub id_token: Option<String>,
    /// EVSE id (1.6: the connector id).
    pub evse_id: Option<u32>,
    /// Connector id on the EVSE (2.0.1).
    pub connector_id: Option<u32>,
    /// CSMS transaction id (remote stop).
    pub transaction_id: Option<i64>,
    /// Reset type: `Soft`/`Hard` (1.6) or `OnIdle`/`Immediate` (2.0.1); either spelling works.
    /// For remote-start and reserve-now: the id token's 2.0.1 type (`ISO14443`, `eMAID`...),
    /// overriding the type stored with the token.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `Operative` or `Inoperative`.
    pub availability: Option<String>,
    /// Configuration keys to read (1.6).
    pub keys: Option<Vec<String>>,
    /// Configuration key to change (1.6).
    pub key: Option<String>,
    /// New value (1.6 configuration).
    pub value: Option<String>,
    /// 2.0.1 GetVariables `getVariableData` / SetVariables `setVariableData`.
    pub variables: Option<Value>,
    /// Message to trigger, e.g. `StatusNotification`.
    pub requested_message: Option<String>,
    /// Reservation id.
    pub reservation_id: Option<i32>,
    /// Reservation expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Remote-start id (2.0.1).
    pub remote_start_id: Option<i32>,
    /// DataTransfer vendor id.
    pub vendor_id: Option<String>,
    /// DataTransfer message id.
    pub message_id: Option<String>,
    /// DataTransfer data.
    pub data: Option<String>,
}

fn missing(field: &str) -> Problem {
    Problem::validation(format!("{field} is required for this command"))
        .with_errors(json!([{ "field": field, "message": "required" }]))
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

/// The typed commands (path segment after `/commands/`).
pub const COMMANDS: &[&str] = &[
    "remote-start",
    "remote-stop",
    "reset",
    "unlock",
    "change-availability",
    "get-configuration",
    "change-configuration",
    "get-variables",
    "set-variables",
    "trigger-message",
    "reserve-now",
    "cancel-reservation",
    "clear-cache",
    "data-transfer",
];

/// Commands whose `type` is an id token type.
const TOKEN_COMMANDS: &[&str] = &["remote-start", "reserve-now"];

/// The 2.0.1 type an id token is sent with: the body's, else the stored one, else `Central`.
pub fn token_type(b: &CommandBody, stored: Option<&str>) -> Result<String, Problem> {
    let kinds = &ocpp::model::IdToken::V201_KINDS;
    match b.kind.as_deref() {
        Some(kind) if kinds.contains(&kind) => Ok(kind.to_string()),
        Some(_) => Err(Problem::validation(format!("type must be one of {}", kinds.join(", ")))
            .with_errors(json!([{ "field": "type", "message": "not an IdTokenEnumType" }]))),
        None => Ok(stored.unwrap_or("Central").to_string()),
    }
}

/// Translates a typed command into the station's action and payload; `station_tx_id` is the
/// charger's own id of the transaction to stop (2.0.1) and `token_type` the type of the id
/// token (2.0.1), both looked up by the caller.
pub fn to_call(
    command: &str,
    version: Version,
    b: &CommandBody,
    station_tx_id: Option<&str>,
    token_type: &str,
) -> Result<(&'static str, Value), Problem> {
    let v16 = version == Version::V16;
    let evse = |b: &CommandBody| b.evse_id;
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let call = match command {
        "remote-start" => {
            let token = b.id_token.clone().ok_or_else(|| missing("idToken"))?;
            let mut p = Map::new();
            if v16 {
                p.insert("idTag".into(), json!(token));
                insert_opt(&mut p, "connectorId", evse(b).map(|e| json!(e)));
                ("RemoteStartTransaction", p)
            } else {
                p.insert("idToken".into(), json!({ "idToken": token, "type": token_type }));
                p.insert(
                    "remoteStartId".into(),
                    json!(b.remote_start_id.unwrap_or_else(remote_start_id)),
                );
                insert_opt(&mut p, "evseId", evse(b).map(|e| json!(e)));
                ("RequestStartTransaction", p)
            }
        }
        "remote-stop" => {
            let id = b.transaction_id.ok_or_else(|| missing("transactionId"))?;
            if v16 {
                ("RemoteStopTransaction", obj(json!({ "transactionId": id })))
            } else {
                let tx = station_tx_id.ok_or_else(|| Problem::not_found("transaction"))?;
                ("RequestStopTransaction", obj(json!({ "transactionId": tx })))
            }
        }
        "reset" => {
            let kind = b.kind.as_deref().unwrap_or(if v16 { "Soft" } else { "OnIdle" });
            let kind = match (v16, kind) {
                (true, "Soft" | "OnIdle") => "Soft",
                (true, "Hard" | "Immediate") => "Hard",
                (false, "Soft" | "OnIdle") => "OnIdle",
                (false, "Hard" | "Immediate") => "Immediate",
                _ => return Err(Problem::validation("type must be Soft, Hard, OnIdle or Immediate")),
            };
            let mut p = obj(json!({ "type": kind }));
            if !v16 {
                insert_opt(&mut p, "evseId", evse(b).map(|e| json!(e)));
            }
            ("Reset", p)
        }
        "unlock" => {
            let e = evse(b).ok_or_else(|| missing("evseId"))?;
            if v16 {
                ("UnlockConnector", obj(json!({ "connectorId": e })))
            } else {
                (
                    "UnlockConnector",
                    obj(json!({ "evseId": e, "connectorId": b.connector_id.unwrap_or(1) })),
                )
            }
        }
        "change-availability" => {
            let status = b.availability.clone().ok_or_else(|| missing("availability"))?;
            if status != "Operative" && status != "Inoperative" {
                return Err(Problem::validation("availability must be Operative or Inoperative"));
            }
            if v16 {
                (
                    "ChangeAvailability",
                    obj(json!({ "connectorId": evse(b).unwrap_or(0), "type": status })),
                )
            } else {
                let mut p = obj(json!({ "operationalStatus": status }));
                if let Some(e) = evse(b) {
                    let mut target = obj(json!({ "id": e }));
                    insert_opt(&mut target, "connectorId", b.connector_id.map(|c| json!(c)));
                    p.insert("evse".into(), Value::Object(target));
                }
                ("ChangeAvailability", p)
            }
        }
        "get-configuration" if v16 => {
            let mut p = Map::new();
            insert_opt(&mut p, "key", b.keys.clone().map(|k| json!(k)));
            ("GetConfiguration", p)
        }
        "change-configuration" if v16 => {
            let key = b.key.clone().ok_or_else(|| missing("key"))?;
            let value = b.value.clone().ok_or_else(|| missing("value"))?;
            ("ChangeConfiguration", obj(json!({ "key": key, "value": value })))
        }
        "get-variables" if !v16 => (
            "GetVariables",
            obj(json!({ "getVariableData": b.variables.clone().ok_or_else(|| missing("variables"))? })),
        ),
        "set-variables" if !v16 => (
            "SetVariables",
            obj(json!({ "setVariableData": b.variables.clone().ok_or_else(|| missing("variables"))? })),
        ),
        "trigger-message" => {
            let message = b.requested_message.clone().ok_or_else(|| missing("requestedMessage"))?;
            let mut p = obj(json!({ "requestedMessage": message }));
            if v16 {
                insert_opt(&mut p, "connectorId", evse(b).map(|e| json!(e)));
            } else if let Some(e) = evse(b) {
                let mut target = obj(json!({ "id": e }));
                insert_opt(&mut target, "connectorId", b.connector_id.map(|c| json!(c)));
                p.insert("evse".into(), Value::Object(target));
            }
            ("TriggerMessage", p)
        }
        "reserve-now" => {
            let token = b.id_token.clone().ok_or_else(|| missing("idToken"))?;
            let expires = b.expires_at.ok_or_else(|| missing("expiresAt"))?;
            let id = b.reservation_id.ok_or_else(|| missing("reservationId"))?;
            if v16 {
                (
                    "ReserveNow",
                    obj(
                        json!({ "connectorId": evse(b).unwrap_or(0), "expiryDate": rfc(expires), "idTag": token, "reservationId": id }),
                    ),
                )
            } else {
                let mut p = obj(
                    json!({ "id": id, "expiryDateTime": rfc(expires), "idToken": { "idToken": token, "type": token_type } }),
                );
                insert_opt(&mut p, "evseId", evse(b).map(|e| json!(e)));
                ("ReserveNow", p)
            }
        }
        "cancel-reservation" => (
            "CancelReservation",
            obj(json!({ "reservationId": b.reservation_id.ok_or_else(|| missing("reservationId"))? })),
        ),
        "clear-cache" => ("ClearCache", Map::new()),
        "data-transfer" => {
            let mut p = obj(json!({ "vendorId": b.vendor_id.clone().ok_or_else(|| missing("vendorId"))? }));
            insert_opt(&mut p, "messageId", b.message_id.clone().map(Value::String));
            insert_opt(&mut p, "data", b.data.clone().map(Value::String));
            ("DataTransfer", p)
        }
        "get-configuration" | "change-configuration" | "get-variables" | "set-variables" => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNSUPPORTED_ACTION",
                format!(
                    "{command} does not exist in OCPP {version}; use {}",
                    if v16 {
                        "get-configuration/change-configuration"
                    } else {
                        "get-variables/set-variables"
                    }
                ),
            ));
        }
        other => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "UNKNOWN_COMMAND",
                format!("no command named {other}"),
            ))
        }
    };
    Ok((call.0, Value::Object(call.1)))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn remote_start_id() -> i32 {
    // Unique enough to correlate the TransactionEvent that follows; positive as 2.0.1 expects.
    (Utc::now().timestamp_millis() % i64::from(i32::MAX)) as i32
}

async fn typed(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((station_id, command)): ApiPath<(String, String)>,
    service_kit::extract::ApiBody(body): service_kit::extract::ApiBody,
) -> Result<Json<CommandResponse>, Problem> {
    caller.require(&[Role::Admin, Role::Operator])?;
    // Commands without parameters (clear-cache) may omit the body.
    let body: CommandBody = if body.iter().all(u8::is_ascii_whitespace) {
        CommandBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::validation(format!("invalid request body: {e}")))?
    };
    let Some(version) = commands::connected_version(&state, &station_id) else {
        return Err(not_connected(&state, &station_id).await);
    };
    let station_tx_id = match (command.as_str(), body.transaction_id) {
        ("remote-stop", Some(id)) => {
            let t = state
                .store
                .transaction(id)
                .await?
                .filter(|t| t.station_id == station_id);
            let t = t.ok_or_else(|| Problem::not_found("transaction"))?;
            Some(t.station_transaction_id)
        }
        _ => None,
    };
    let token_type = if TOKEN_COMMANDS.contains(&command.as_str()) {
        let stored = match body.id_token.as_deref() {
            Some(token) if body.kind.is_none() => state.store.id_token(token).await?.map(|t| t.token_type),
            _ => None,
        };
        token_type(&body, stored.as_deref())?
    } else {
        String::new()
    };
    let (action, payload) = to_call(&command, version, &body, station_tx_id.as_deref(), &token_type)?;
    let answer = send(&state, &station_id, action, payload).await?;
    if action == "ReserveNow" || action == "CancelReservation" {
        record_reservation(&state, &station_id, action, &body, &answer.0.response).await?;
    }
    Ok(answer)
}

async fn record_reservation(
    state: &AppState,
    station_id: &str,
    action: &str,
    b: &CommandBody,
    answer: &Value,
) -> Result<(), Problem> {
    let status = answer.get("status").and_then(Value::as_str).unwrap_or("Unknown");
    let Some(id) = b.reservation_id else {
        return Ok(());
    };
    if action == "ReserveNow" {
        let r = Reservation {
            reservation_id: i64::from(id),
            evse_id: i64::from(b.evse_id.unwrap_or(0)),
            id_token: b.id_token.clone().unwrap_or_default(),
            expires_at: b.expires_at.map(Ts::from_datetime).unwrap_or_else(Ts::now),
            status: status.to_string(),
            updated_at: Ts::now(),
        };
        state.store.upsert_reservation(station_id, &r).await?;
    } else if status == "Accepted" {
        state
            .store
            .set_reservation_status(station_id, i64::from(id), "Cancelled", Ts::now())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ocpp::schema::{validate, Direction};

    fn body(v: Value) -> CommandBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn typed_commands_translate_to_valid_payloads_of_each_version() {
        let cases = [
            ("remote-start", json!({"idToken": "TAG", "evseId": 1})),
            ("remote-stop", json!({"transactionId": 7})),
            ("reset", json!({"type": "Hard"})),
            ("unlock", json!({"evseId": 1})),
            (
                "change-availability",
                json!({"evseId": 1, "availability": "Inoperative"}),
            ),
            (
                "trigger-message",
                json!({"requestedMessage": "StatusNotification", "evseId": 1}),
            ),
            (
                "reserve-now",
                json!({"idToken": "TAG", "evseId": 1, "reservationId": 3, "expiresAt": "2030-01-01T00:00:00Z"}),
            ),
            ("cancel-reservation", json!({"reservationId": 3})),
            ("clear-cache", json!({})),
            ("data-transfer", json!({"vendorId": "acme", "data": "x"})),
        ];
        for version in [Version::V16, Version::V201] {
            for (command, b) in &cases {
                let (action, payload) = to_call(command, version, &body(b.clone()), Some("tx-1"), "ISO14443").unwrap();
                validate(version, action, Direction::Request, &payload)
                    .unwrap_or_else(|v| panic!("{command} {version}: {v}"));
            }
        }
        let (a, p) = to_call(
            "get-configuration",
            Version::V16,
            &body(json!({"keys": ["HeartbeatInterval"]})),
            None,
            "",
        )
        .unwrap();
        assert_eq!((a, p), ("GetConfiguration", json!({"key": ["HeartbeatInterval"]})));
        let vars = json!([{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]);
        let (a, p) = to_call(
            "get-variables",
            Version::V201,
            &body(json!({"variables": vars})),
            None,
            "",
        )
        .unwrap();
        assert_eq!(a, "GetVariables");
        validate(Version::V201, a, Direction::Request, &p).unwrap();
        assert_eq!(
            to_call("reset", Version::V201, &body(json!({"type": "Hard"})), None, "")
                .unwrap()
                .1,
            json!({"type": "Immediate"})
        );
    }

    #[test]
    fn id_tokens_go_out_with_their_own_type() {
        let start = body(json!({"idToken": "TAG", "evseId": 1}));
        assert_eq!(token_type(&start, Some("ISO14443")).unwrap(), "ISO14443");
        assert_eq!(token_type(&start, None).unwrap(), "Central");
        let explicit = body(json!({"idToken": "TAG", "type": "eMAID"}));
        assert_eq!(token_type(&explicit, Some("ISO14443")).unwrap(), "eMAID");
        let wrong = body(json!({"idToken": "TAG", "type": "Hard"}));
        assert_eq!(token_type(&wrong, None).unwrap_err().code, "VALIDATION_FAILED");
        let (_, p) = to_call("remote-start", Version::V201, &start, None, "KeyCode").unwrap();
        assert_eq!(p["idToken"], json!({"idToken": "TAG", "type": "KeyCode"}));
        let reserve = body(json!({"idToken": "TAG", "reservationId": 3, "expiresAt": "2030-01-01T00:00:00Z"}));
        let (_, p) = to_call("reserve-now", Version::V201, &reserve, None, "ISO15693").unwrap();
        assert_eq!(p["idToken"], json!({"idToken": "TAG", "type": "ISO15693"}));
        validate(Version::V201, "ReserveNow", Direction::Request, &p).unwrap();
    }

    #[test]
    fn typed_command_errors() {
        let err = to_call("remote-start", Version::V16, &body(json!({})), None, "").unwrap_err();
        assert_eq!(err.code, "VALIDATION_FAILED");
        let err = to_call("get-variables", Version::V16, &body(json!({"variables": []})), None, "").unwrap_err();
        assert_eq!(err.code, "UNSUPPORTED_ACTION");
        let err = to_call("explode", Version::V16, &body(json!({})), None, "").unwrap_err();
        assert_eq!(err.code, "UNKNOWN_COMMAND");
        let err = to_call("reset", Version::V16, &body(json!({"type": "Sideways"})), None, "").unwrap_err();
        assert_eq!(err.code, "VALIDATION_FAILED");
    }
}

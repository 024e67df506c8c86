//! Commands to stations: typed endpoints for the common ones, translated to the station's OCPP
//! version, and one generic endpoint for any central-system action of that version.
//!
//! Answers: 200 with the station's CALLRESULT payload; 502 `STATION_CALL_ERROR` with the
//! CALLERROR it sent; 502 `STATION_INVALID_RESPONSE` when its CALLRESULT fails the response
//! schema (the violation in `errors`; nothing is recorded from it); 409 `STATION_OFFLINE`;
//! 504 `STATION_TIMEOUT`; 422 `INVALID_PAYLOAD` or `UNSUPPORTED_ACTION` before anything is
//! sent.
//!
//! The typed endpoints build an `ocpp::commands::Command` and send it through
//! [`commands::send`], the path bus commands take too: one translation per version, one
//! reading of the answer. 2.0.1 id tokens (remote-start, reserve-now) go out with their own
//! `IdTokenEnumType`: the body's `type`, else the type stored with the token (`/id-tokens`),
//! else `Central` (see [`commands::token_kind`]). A remote-start id or reservation id the body
//! does not give is allocated from the database (`store::command_ids`), never from the clock.

use super::auth::Caller;
use super::problem::Problem;
use super::ApiJson;
use crate::app::AppState;
use crate::auth::jwt::Role;
use crate::ocpp_ws::commands::{self, CommandError, Outcome, Sent};
use crate::ocpp_ws::registry::CallOutcome;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ocpp::commands::{Availability, Command, Location, RemoteStart, ReserveNow, ResetKind, Token, TokenKind};
use ocpp::model::IdToken;
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
    // Station limits set here bound the profiles computed for ISO 15118 charging needs.
    let observed = matches!(action, "SetChargingProfile" | "ClearChargingProfile").then(|| payload.clone());
    match commands::call(state, station_id, action, payload).await {
        Ok(CallOutcome::Result(response)) => {
            if let Some(request) = observed {
                crate::smart_charging::negotiation::observe_station_call(
                    state, station_id, action, &request, &response,
                )
                .await?;
            }
            Ok(Json(CommandResponse {
                action: action.to_string(),
                response,
            }))
        }
        Ok(CallOutcome::Error {
            code,
            description,
            details,
        }) => Err(call_error(action, code, description, details)),
        Err(CommandError::Offline) => Err(not_connected(state, station_id).await),
        Err(e) => Err(command_problem(e)),
    }
}

/// 502 `STATION_CALL_ERROR`: the station answered with a CALLERROR.
fn call_error(action: &str, code: String, description: String, details: Value) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "STATION_CALL_ERROR",
        format!("the station answered {action} with {code}: {description}"),
    )
    .with_errors(json!({ "code": code, "description": description, "details": details }))
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
        e @ CommandError::Untranslatable(_) => Problem::validation(e.to_string()),
        e @ CommandError::UnreadableAnswer { .. } => {
            Problem::new(StatusCode::BAD_GATEWAY, "STATION_INVALID_RESPONSE", e.to_string())
        }
        CommandError::Store(e) => Problem::from(e),
        e @ CommandError::Forwarded(_) => {
            Problem::new(StatusCode::BAD_GATEWAY, "STATION_NODE_UNREACHABLE", e.to_string())
        }
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
    /// Reservation id (reserve-now: allocated by the central system when not given).
    pub reservation_id: Option<i32>,
    /// Reservation expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Remote-start id (2.0.1; allocated by the central system when not given).
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

/// Ids the typed commands need from the database or the store, resolved before translation so
/// [`to_command`] stays a pure function.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    /// The charger's own id of the transaction to stop (2.0.1).
    pub station_tx_id: Option<String>,
    /// The 2.0.1 type of the id token (remote-start, reserve-now).
    pub token_kind: Option<TokenKind>,
    /// The remote-start id: the body's, else allocated.
    pub remote_start_id: Option<i32>,
    /// The reservation id: the body's, else allocated (reserve-now).
    pub reservation_id: Option<i32>,
}

/// The `type` of the body, for remote-start and reserve-now: an `IdTokenEnumType`.
pub fn explicit_token_kind(b: &CommandBody) -> Result<Option<TokenKind>, Problem> {
    b.kind.as_deref().map(TokenKind::parse).transpose().map_err(|e| {
        Problem::validation(format!("type must be one of {}", IdToken::V201_KINDS.join(", ")))
            .with_errors(json!([{ "field": "type", "message": e.to_string() }]))
    })
}

/// Builds the typed command of an endpoint from its body. The common commands become the
/// version-neutral model (translated by `ocpp::commands`); the version-specific ones
/// (configuration, variables) and those that are the same in both versions (ClearCache,
/// DataTransfer) become generic calls.
pub fn to_command(command: &str, version: Version, b: &CommandBody, ids: &Resolved) -> Result<Command, Problem> {
    let v16 = version == Version::V16;
    let location = Location {
        evse_id: b.evse_id,
        connector_id: b.connector_id,
    };
    let token = |b: &CommandBody| -> Result<Token, Problem> {
        Ok(Token {
            value: b.id_token.clone().ok_or_else(|| missing("idToken"))?,
            kind: ids.token_kind.unwrap_or(TokenKind::CENTRAL),
        })
    };
    let call = |action: &str, payload: Map<String, Value>| Command::Call {
        action: action.to_string(),
        payload: Value::Object(payload),
    };
    Ok(match command {
        "remote-start" => {
            let id_token = token(b)?;
            Command::RemoteStart(RemoteStart {
                remote_start_id: ids.remote_start_id.ok_or_else(|| missing("remoteStartId"))?,
                id_token,
                evse_id: b.evse_id,
            })
        }
        "remote-stop" => {
            let id = b.transaction_id.ok_or_else(|| missing("transactionId"))?;
            let station_transaction_id = if v16 {
                // 1.6 stations know the id the central system gave them.
                id.to_string()
            } else {
                ids.station_tx_id
                    .clone()
                    .ok_or_else(|| Problem::not_found("transaction"))?
            };
            Command::RemoteStop { station_transaction_id }
        }
        "reset" => {
            let kind = match b.kind.as_deref().unwrap_or("Soft") {
                "Soft" | "OnIdle" => ResetKind::Soft,
                "Hard" | "Immediate" => ResetKind::Hard,
                _ => return Err(Problem::validation("type must be Soft, Hard, OnIdle or Immediate")),
            };
            Command::Reset {
                kind,
                evse_id: b.evse_id,
            }
        }
        "unlock" => Command::UnlockConnector {
            evse_id: b.evse_id.ok_or_else(|| missing("evseId"))?,
            connector_id: b.connector_id,
        },
        "change-availability" => {
            let availability = match b.availability.as_deref().ok_or_else(|| missing("availability"))? {
                "Operative" => Availability::Operative,
                "Inoperative" => Availability::Inoperative,
                _ => return Err(Problem::validation("availability must be Operative or Inoperative")),
            };
            Command::ChangeAvailability { location, availability }
        }
        "trigger-message" => Command::TriggerMessage {
            message: b.requested_message.clone().ok_or_else(|| missing("requestedMessage"))?,
            location,
        },
        "reserve-now" => {
            let id_token = token(b)?;
            let expires_at = b.expires_at.ok_or_else(|| missing("expiresAt"))?;
            Command::ReserveNow(ReserveNow {
                reservation_id: ids.reservation_id.ok_or_else(|| missing("reservationId"))?,
                id_token,
                evse_id: b.evse_id,
                expires_at,
            })
        }
        "cancel-reservation" => Command::CancelReservation {
            reservation_id: b.reservation_id.ok_or_else(|| missing("reservationId"))?,
        },
        "get-configuration" if v16 => {
            let mut p = Map::new();
            insert_opt(&mut p, "key", b.keys.clone().map(|k| json!(k)));
            call("GetConfiguration", p)
        }
        "change-configuration" if v16 => {
            let key = b.key.clone().ok_or_else(|| missing("key"))?;
            let value = b.value.clone().ok_or_else(|| missing("value"))?;
            call("ChangeConfiguration", obj(json!({ "key": key, "value": value })))
        }
        "get-variables" if !v16 => call(
            "GetVariables",
            obj(json!({ "getVariableData": b.variables.clone().ok_or_else(|| missing("variables"))? })),
        ),
        "set-variables" if !v16 => call(
            "SetVariables",
            obj(json!({ "setVariableData": b.variables.clone().ok_or_else(|| missing("variables"))? })),
        ),
        "clear-cache" => call("ClearCache", Map::new()),
        "data-transfer" => {
            let mut p = obj(json!({ "vendorId": b.vendor_id.clone().ok_or_else(|| missing("vendorId"))? }));
            insert_opt(&mut p, "messageId", b.message_id.clone().map(Value::String));
            insert_opt(&mut p, "data", b.data.clone().map(Value::String));
            call("DataTransfer", p)
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
    })
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
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
    let version = match commands::station_version(&state, &station_id).await {
        Ok(version) => version,
        Err(CommandError::Offline) => return Err(not_connected(&state, &station_id).await),
        Err(e) => return Err(command_problem(e)),
    };
    let ids = resolve(&state, &station_id, &command, &body).await?;
    let typed = to_command(&command, version, &body, &ids)?;
    match commands::send(&state, &station_id, &typed).await {
        Ok(Sent {
            action,
            outcome: Outcome::Answered(answer),
        }) => Ok(Json(CommandResponse {
            action,
            response: answer.payload,
        })),
        Ok(Sent {
            action,
            outcome:
                Outcome::CallError {
                    code,
                    description,
                    details,
                },
        }) => Err(call_error(&action, code, description, details)),
        Err(CommandError::Offline) => Err(not_connected(&state, &station_id).await),
        Err(e) => Err(command_problem(e)),
    }
}

/// Looks up and allocates what the command needs, once its own fields are there (a body that
/// fails validation allocates nothing).
async fn resolve(state: &AppState, station_id: &str, command: &str, b: &CommandBody) -> Result<Resolved, Problem> {
    let mut ids = Resolved::default();
    match command {
        "remote-stop" => {
            if let Some(id) = b.transaction_id {
                let t = state
                    .store
                    .transaction(id)
                    .await?
                    .filter(|t| t.station_id == station_id);
                ids.station_tx_id = t.map(|t| t.station_transaction_id);
            }
        }
        "remote-start" | "reserve-now" => {
            let explicit = explicit_token_kind(b)?;
            let Some(token) = b.id_token.as_deref() else {
                return Ok(ids);
            };
            ids.token_kind = Some(commands::token_kind(state, token, explicit).await?);
            if command == "remote-start" {
                ids.remote_start_id = Some(match b.remote_start_id {
                    Some(id) => id,
                    None => state.store.next_remote_start_id().await?,
                });
            } else if b.expires_at.is_some() {
                ids.reservation_id = Some(match b.reservation_id {
                    Some(id) => id,
                    None => state.store.next_reservation_id().await?,
                });
            }
        }
        _ => {}
    }
    Ok(ids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ocpp::schema::{validate, Direction};

    fn body(v: Value) -> CommandBody {
        serde_json::from_value(v).unwrap()
    }

    fn ids() -> Resolved {
        Resolved {
            station_tx_id: Some("tx-1".into()),
            token_kind: Some(TokenKind::parse("ISO14443").unwrap()),
            remote_start_id: Some(5),
            reservation_id: Some(3),
        }
    }

    /// The endpoint's action and payload for `version`.
    fn wire(command: &str, version: Version, b: &CommandBody, ids: &Resolved) -> Result<(String, Value), Problem> {
        let request = to_command(command, version, b, ids)?.request(version).unwrap();
        Ok((request.action, request.payload))
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
                let (action, payload) = wire(command, version, &body(b.clone()), &ids()).unwrap();
                validate(version, &action, Direction::Request, &payload)
                    .unwrap_or_else(|v| panic!("{command} {version}: {v}"));
            }
        }
        let (a, p) = wire(
            "get-configuration",
            Version::V16,
            &body(json!({"keys": ["HeartbeatInterval"]})),
            &Resolved::default(),
        )
        .unwrap();
        assert_eq!(
            (a.as_str(), p),
            ("GetConfiguration", json!({"key": ["HeartbeatInterval"]}))
        );
        let vars = json!([{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]);
        let (a, p) = wire(
            "get-variables",
            Version::V201,
            &body(json!({"variables": vars})),
            &Resolved::default(),
        )
        .unwrap();
        assert_eq!(a, "GetVariables");
        validate(Version::V201, &a, Direction::Request, &p).unwrap();
        assert_eq!(
            wire("reset", Version::V201, &body(json!({"type": "Hard"})), &ids())
                .unwrap()
                .1,
            json!({"type": "Immediate"})
        );
        // The resolved ids go out as given: nothing is made up from the clock.
        let (_, p) = wire("remote-start", Version::V201, &body(json!({"idToken": "TAG"})), &ids()).unwrap();
        assert_eq!(p["remoteStartId"], 5);
        let reserve = body(json!({"idToken": "TAG", "expiresAt": "2030-01-01T00:00:00Z"}));
        let (_, p) = wire("reserve-now", Version::V16, &reserve, &ids()).unwrap();
        assert_eq!(p["reservationId"], 3);
    }

    #[test]
    fn id_tokens_go_out_with_their_own_type() {
        let explicit = body(json!({"idToken": "TAG", "type": "eMAID"}));
        assert_eq!(
            explicit_token_kind(&explicit).unwrap().map(TokenKind::as_str),
            Some("eMAID")
        );
        assert_eq!(explicit_token_kind(&body(json!({"idToken": "TAG"}))).unwrap(), None);
        let wrong = body(json!({"idToken": "TAG", "type": "Hard"}));
        assert_eq!(explicit_token_kind(&wrong).unwrap_err().code, "VALIDATION_FAILED");
        let start = body(json!({"idToken": "TAG", "evseId": 1}));
        let key_code = Resolved {
            token_kind: Some(TokenKind::parse("KeyCode").unwrap()),
            ..ids()
        };
        let (_, p) = wire("remote-start", Version::V201, &start, &key_code).unwrap();
        assert_eq!(p["idToken"], json!({"idToken": "TAG", "type": "KeyCode"}));
        let reserve = body(json!({"idToken": "TAG", "reservationId": 3, "expiresAt": "2030-01-01T00:00:00Z"}));
        let iso15693 = Resolved {
            token_kind: Some(TokenKind::parse("ISO15693").unwrap()),
            ..ids()
        };
        let (_, p) = wire("reserve-now", Version::V201, &reserve, &iso15693).unwrap();
        assert_eq!(p["idToken"], json!({"idToken": "TAG", "type": "ISO15693"}));
        validate(Version::V201, "ReserveNow", Direction::Request, &p).unwrap();
        // Unresolved: Central.
        let unresolved = Resolved {
            token_kind: None,
            ..ids()
        };
        let (_, p) = wire("remote-start", Version::V201, &start, &unresolved).unwrap();
        assert_eq!(p["idToken"]["type"], "Central");
    }

    #[test]
    fn typed_command_errors() {
        let none = Resolved::default();
        let err = wire("remote-start", Version::V16, &body(json!({})), &none).unwrap_err();
        assert_eq!(err.code, "VALIDATION_FAILED");
        let err = wire("get-variables", Version::V16, &body(json!({"variables": []})), &none).unwrap_err();
        assert_eq!(err.code, "UNSUPPORTED_ACTION");
        let err = wire("explode", Version::V16, &body(json!({})), &none).unwrap_err();
        assert_eq!(err.code, "UNKNOWN_COMMAND");
        let err = wire("reset", Version::V16, &body(json!({"type": "Sideways"})), &none).unwrap_err();
        assert_eq!(err.code, "VALIDATION_FAILED");
        let err = wire("remote-stop", Version::V201, &body(json!({"transactionId": 9})), &none).unwrap_err();
        assert_eq!(err.code, "NOT_FOUND");
    }
}

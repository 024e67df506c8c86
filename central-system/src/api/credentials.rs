//! Basic-auth password rotation (OCPP 2.0.1 A01; 1.6 security whitepaper, AuthorizationKey).
//!
//! `POST /stations/{id}/password-rotation` sends the new password to the connected station
//! (2.0.1 SetVariables `SecurityCtrlr.BasicAuthPassword`, 1.6 ChangeConfiguration
//! `AuthorizationKey`, whose value is the hex encoding of the password bytes, at most 40 hex
//! digits, so 1.6 passwords are 16-20 characters, as the 1.6 compliance test TC_073_CSMS
//! checks; the station still sends the password itself in Basic). Only an Accepted answer stores its hash, as *pending*: the
//! old password stays valid until the station's first connection with the new one, which drops
//! the old one (issue 14: the old one stays valid only until then), so a station that fails to reconnect is not locked out. Admin
//! only: a password is a credential, and changing credentials is the admin's right everywhere
//! else in this API (`PATCH password`); operators only send commands.

use super::auth::Admin;
use super::commands::command_problem;
use super::problem::Problem;
use super::stations::check_password;
use crate::app::AppState;
use crate::ocpp_ws::commands::{self, CommandError};
use crate::ocpp_ws::registry::CallOutcome;
use crate::store::types::Ts;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use ocpp::Version;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// Credential routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/stations/{station_id}/password-rotation", post(rotate))
}

/// Body of a rotation; without `password` the central system generates one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotatePassword {
    /// The new password, 16-40 printable ASCII characters.
    pub password: Option<String>,
}

/// Outcome of a rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationResult {
    /// The station's answer: `Accepted`, `Rejected`, `RebootRequired`...
    pub status: String,
    /// Whether the new password now waits for the station's next connection; otherwise the
    /// old one stays in force.
    pub pending: bool,
    /// The generated password, shown this once (absent when the caller chose it or the
    /// station did not accept it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The OCPP action sent.
    pub action: String,
    /// The station's CALLRESULT payload.
    pub response: Value,
}

/// Longest password a version can carry: 2.0.1 takes 40 characters, 1.6's AuthorizationKey
/// 40 hex digits, i.e. 20 bytes.
fn max_len(version: Version) -> usize {
    match version {
        Version::V16 => 20,
        _ => 40,
    }
}

/// A password of `len` characters from the operating system's CSPRNG (rand's `ThreadRng` is
/// reseeded from it), drawn from the printable ASCII range without the space.
fn generate(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(rng.random_range(b'!'..=b'~'))).collect()
}

/// The call that sets the password, and whether the answer accepted it.
fn password_call(version: Version, password: &str) -> (&'static str, Value) {
    match version {
        Version::V16 => (
            "ChangeConfiguration",
            json!({ "key": "AuthorizationKey", "value": hex_upper(password) }),
        ),
        _ => (
            "SetVariables",
            json!({ "setVariableData": [{
                "attributeValue": password,
                "component": { "name": "SecurityCtrlr" },
                "variable": { "name": "BasicAuthPassword" },
            }]}),
        ),
    }
}

fn hex_upper(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

/// The status in a ChangeConfiguration or SetVariables answer.
fn answer_status(response: &Value) -> String {
    response
        .get("status")
        .or_else(|| response.pointer("/setVariableResult/0/attributeStatus"))
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_string()
}

async fn rotate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(station_id): Path<String>,
    body: Bytes,
) -> Result<Json<RotationResult>, Problem> {
    // The body is optional: an empty one asks for a generated password.
    let body: RotatePassword = if body.iter().all(u8::is_ascii_whitespace) {
        RotatePassword::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::validation(format!("invalid body: {e}")))?
    };
    if state.store.station(&station_id).await?.is_none() {
        return Err(Problem::not_found("station"));
    }
    let version =
        commands::connected_version(&state, &station_id).ok_or_else(|| command_problem(CommandError::Offline))?;
    let (password, generated) = match body.password {
        Some(p) => {
            check_password(&p)?;
            if p.len() > max_len(version) {
                return Err(
                    Problem::validation("an OCPP 1.6 station takes passwords of 16-20 characters")
                        .with_errors(json!([{ "field": "password", "message": "at most 20 characters for OCPP 1.6" }])),
                );
            }
            (p, false)
        }
        None => (generate(max_len(version)), true),
    };
    // Hashed before sending: once the station accepted, storing must not wait on argon2.
    let hash = state.passwords.hash(password.clone()).await?;
    let (action, payload) = password_call(version, &password);
    let response = match commands::call(&state, &station_id, action, payload).await {
        Ok(CallOutcome::Result(response)) => response,
        Ok(CallOutcome::Error { code, description, .. }) => {
            return Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "STATION_CALL_ERROR",
                format!("the station answered {action} with {code}: {description}; the old password stays in force"),
            ));
        }
        Err(e) => return Err(command_problem(e)),
    };
    let status = answer_status(&response);
    let pending = status == "Accepted";
    if pending {
        state.store.set_pending_password(&station_id, &hash, Ts::now()).await?;
        tracing::info!(station = %station_id, "password rotation accepted; old password valid until the station reconnects");
    } else {
        tracing::warn!(station = %station_id, %status, "password rotation not accepted; old password stays");
    }
    Ok(Json(RotationResult {
        status,
        pending,
        password: (generated && pending).then_some(password),
        action: action.to_string(),
        response,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_valid_and_differ() {
        let a = generate(20);
        assert!(check_password(&a).is_ok(), "{a}");
        assert_ne!(a, generate(20));
        assert_eq!(generate(40).len(), 40);
    }

    #[test]
    fn authorization_key_is_hex() {
        assert_eq!(
            hex_upper("OCA_OCTT_admin_test"),
            "4F43415F4F4354545F61646D696E5F74657374"
        );
    }

    #[test]
    fn answer_status_of_both_versions() {
        assert_eq!(answer_status(&json!({"status": "Rejected"})), "Rejected");
        let v201 = json!({"setVariableResult": [{"attributeStatus": "Accepted"}]});
        assert_eq!(answer_status(&v201), "Accepted");
        assert_eq!(answer_status(&json!({})), "Unknown");
    }
}

//! OCPP-J RPC framing: `[2, id, action, payload]`, `[3, id, payload]`, `[4, id, code, description, details]`.
//!
//! Parsing is strict about shape, because a reply can only be correlated when the frame is
//! well formed; whatever cannot be understood comes back as a [`FrameError`] that still carries
//! the message id when one was readable, so the caller can answer with a CALLERROR.

use crate::error_code::{ErrorCode, Fault, Violation};
use crate::Version;
use serde_json::Value;

/// The largest message id the specifications allow (36 characters, enough for a UUID).
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// The message id to use in a CALLERROR when the offending frame's id could not be read.
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// A request (`[2, ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Unique message id chosen by the sender.
    pub id: String,
    /// Action name, e.g. `BootNotification`.
    pub action: String,
    /// The request payload (a JSON object).
    pub payload: Value,
}

/// A successful response (`[3, ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// The id of the CALL this answers.
    pub id: String,
    /// The response payload.
    pub payload: Value,
}

/// An error response (`[4, ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// The id of the CALL this answers (`-1` when it could not be read).
    pub id: String,
    /// The error code as written on the wire.
    pub code: String,
    /// Free-text description.
    pub description: String,
    /// Error details (a JSON object).
    pub details: Value,
}

impl CallError {
    /// Builds the CALLERROR for `violation` in the spelling of `version`.
    pub fn from_violation(id: Option<&str>, violation: &Violation, version: Version) -> Self {
        Self::new(id, violation.fault.code(version), &violation.description, version)
    }

    /// Builds a CALLERROR with a given code.
    pub fn new(id: Option<&str>, code: ErrorCode, description: &str, version: Version) -> Self {
        // Descriptions are for humans; keep them bounded so a huge input can't echo back.
        let description: String = description.chars().take(255).collect();
        CallError {
            id: id.unwrap_or(UNKNOWN_MESSAGE_ID).to_string(),
            code: code.as_str(version).to_string(),
            description,
            details: Value::Object(Default::default()),
        }
    }
}

/// Any OCPP-J frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request.
    Call(Call),
    /// A successful response.
    CallResult(CallResult),
    /// An error response.
    CallError(CallError),
}

/// Why a text could not be read as a frame, with the id to answer to when one was readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The message id, if it could be read.
    pub id: Option<String>,
    /// Whether the frame claimed to be a CALL.
    pub is_call: bool,
    /// Whether the frame claimed to be a CALLRESULT or CALLERROR: those are never answered
    /// (answering a response could start an endless error ping-pong), only logged.
    pub is_response: bool,
    /// What went wrong.
    pub violation: Violation,
}

impl FrameError {
    fn new(id: Option<String>, is_call: bool, fault: Fault, description: impl Into<String>) -> Self {
        FrameError {
            id,
            is_call,
            is_response: false,
            violation: Violation::new(fault, description),
        }
    }

    /// The CALLERROR that answers this error in `version`.
    pub fn to_call_error(&self, version: Version) -> CallError {
        CallError::from_violation(self.id.as_deref(), &self.violation, version)
    }
}

impl Frame {
    /// Parses one WebSocket text message as an OCPP-J frame.
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FrameError::new(None, false, Fault::NotRpc, format!("invalid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Interprets an already parsed JSON value as a frame.
    pub fn from_value(value: Value) -> Result<Frame, FrameError> {
        let Value::Array(items) = value else {
            return Err(FrameError::new(None, false, Fault::NotRpc, "frame is not a JSON array"));
        };
        let id = match items.get(1) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_MESSAGE_ID_LEN => Some(s.clone()),
            _ => None,
        };
        let type_id = match items.first() {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let Some(type_id) = type_id else {
            return Err(FrameError::new(
                id,
                false,
                Fault::NotRpc,
                "first element is not a message type number",
            ));
        };
        Self::from_items(items, id, type_id).map_err(|mut e| {
            e.is_response = type_id == 3 || type_id == 4;
            e
        })
    }

    fn from_items(mut items: Vec<Value>, id: Option<String>, type_id: u64) -> Result<Frame, FrameError> {
        let is_call = type_id == 2;
        let Some(id) = id else {
            let why = match items.get(1) {
                Some(Value::String(s)) if s.is_empty() => "message id is empty".to_string(),
                Some(Value::String(s)) => format!(
                    "message id is longer than {MAX_MESSAGE_ID_LEN} characters ({})",
                    s.len()
                ),
                Some(_) => "message id is not a string".to_string(),
                None => "message id is missing".to_string(),
            };
            return Err(FrameError::new(None, is_call, Fault::NotRpc, why));
        };
        match type_id {
            2 => {
                if items.len() < 4 {
                    return Err(FrameError::new(
                        Some(id),
                        true,
                        Fault::IncompleteFrame,
                        "CALL needs [2, id, action, payload]",
                    ));
                }
                if items.len() > 4 {
                    return Err(FrameError::new(
                        Some(id),
                        true,
                        Fault::NotRpc,
                        "CALL has more than 4 elements",
                    ));
                }
                let payload = items.pop().unwrap_or(Value::Null);
                let action = match items.pop() {
                    Some(Value::String(a)) if !a.is_empty() => a,
                    _ => {
                        return Err(FrameError::new(
                            Some(id),
                            true,
                            Fault::NotRpc,
                            "action is not a non-empty string",
                        ))
                    }
                };
                if !payload.is_object() {
                    return Err(FrameError::new(
                        Some(id),
                        true,
                        Fault::Formation,
                        "payload is not a JSON object",
                    ));
                }
                Ok(Frame::Call(Call { id, action, payload }))
            }
            3 => {
                if items.len() != 3 {
                    return Err(FrameError::new(
                        Some(id),
                        false,
                        Fault::NotRpc,
                        "CALLRESULT needs [3, id, payload]",
                    ));
                }
                let payload = items.pop().unwrap_or(Value::Null);
                Ok(Frame::CallResult(CallResult { id, payload }))
            }
            4 => {
                if items.len() != 5 {
                    return Err(FrameError::new(
                        Some(id),
                        false,
                        Fault::NotRpc,
                        "CALLERROR needs [4, id, code, description, details]",
                    ));
                }
                let details = items.pop().unwrap_or(Value::Null);
                let description = items.pop();
                let code = items.pop();
                match (code, description) {
                    (Some(Value::String(code)), Some(Value::String(description))) => Ok(Frame::CallError(CallError {
                        id,
                        code,
                        description,
                        details,
                    })),
                    _ => Err(FrameError::new(
                        Some(id),
                        false,
                        Fault::NotRpc,
                        "CALLERROR code and description must be strings",
                    )),
                }
            }
            other => Err(FrameError::new(
                Some(id),
                false,
                Fault::UnknownMessageType,
                format!("message type {other} is not supported"),
            )),
        }
    }

    /// The frame's message id.
    pub fn id(&self) -> &str {
        match self {
            Frame::Call(c) => &c.id,
            Frame::CallResult(r) => &r.id,
            Frame::CallError(e) => &e.id,
        }
    }

    /// Writes the frame as OCPP-J text.
    pub fn to_text(&self) -> String {
        // Serialising tuples of references avoids cloning the payloads into a Value array.
        let result = match self {
            Frame::Call(c) => serde_json::to_string(&(2, &c.id, &c.action, &c.payload)),
            Frame::CallResult(r) => serde_json::to_string(&(3, &r.id, &r.payload)),
            Frame::CallError(e) => serde_json::to_string(&(4, &e.id, &e.code, &e.description, &e.details)),
        };
        // Serialising a serde_json::Value tree cannot fail (all keys are strings).
        result.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_writes_each_frame_type() {
        let cases = [
            r#"[2,"19223201","BootNotification",{"chargePointModel":"M","chargePointVendor":"V"}]"#,
            r#"[3,"19223201",{"status":"Accepted"}]"#,
            r#"[4,"19223201","NotImplemented","no such action",{}]"#,
        ];
        for text in cases {
            let frame = Frame::parse(text).expect("valid frame");
            assert_eq!(frame.to_text(), text);
            assert_eq!(frame.id(), "19223201");
        }
    }

    #[test]
    fn bad_frames_map_to_faults() {
        let table: &[(&str, Option<&str>, Fault)] = &[
            ("not json", None, Fault::NotRpc),
            ("{}", None, Fault::NotRpc),
            ("[]", None, Fault::NotRpc),
            (r#"["2","a","Heartbeat",{}]"#, Some("a"), Fault::NotRpc),
            (r#"[2,5,"Heartbeat",{}]"#, None, Fault::NotRpc),
            (r#"[2,"","Heartbeat",{}]"#, None, Fault::NotRpc),
            (
                r#"[2,"0123456789012345678901234567890123456","Heartbeat",{}]"#,
                None,
                Fault::NotRpc,
            ),
            (r#"[2,"a","Heartbeat"]"#, Some("a"), Fault::IncompleteFrame),
            (r#"[2,"a","Heartbeat",{},1]"#, Some("a"), Fault::NotRpc),
            (r#"[2,"a",7,{}]"#, Some("a"), Fault::NotRpc),
            (r#"[2,"a","Heartbeat",[]]"#, Some("a"), Fault::Formation),
            (r#"[2,"a","Heartbeat",null]"#, Some("a"), Fault::Formation),
            (r#"[7,"a",{}]"#, Some("a"), Fault::UnknownMessageType),
            (r#"[3,"a"]"#, Some("a"), Fault::NotRpc),
            (r#"[4,"a","X",{}]"#, Some("a"), Fault::NotRpc),
        ];
        for (text, id, fault) in table {
            let err = Frame::parse(text).expect_err(text);
            assert_eq!(err.id.as_deref(), *id, "{text}");
            assert_eq!(err.violation.fault, *fault, "{text}");
        }
    }

    #[test]
    fn call_error_uses_minus_one_without_id() {
        let err = Frame::parse("garbage").expect_err("invalid");
        let ce = err.to_call_error(Version::V201);
        assert_eq!(ce.id, "-1");
        assert_eq!(ce.code, "RpcFrameworkError");
        let text = Frame::CallError(err.to_call_error(Version::V16)).to_text();
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v[0], json!(4));
        assert_eq!(v[2], json!("FormationViolation"));
    }
}

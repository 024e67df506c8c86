//! Payload validation against the official OCA JSON schemas, plus the checks they cannot express.
//!
//! The schemas are compiled into the binary (`include_str!`), so a deployment needs no schema
//! files. Each one is compiled on first use and kept for the life of the process, so a tool or
//! test pays only for the messages it touches; a server can call [`preload`] at start-up (all
//! 206 take tens of milliseconds) to keep that cost off the first charger's first message.
//!
//! [`validate`] is on the hot path (every MeterValues of every charger), so success costs a map
//! lookup, jsonschema's `is_valid` and one walk of the payload for the semantic checks, and
//! allocates nothing. Only a failing payload pays for collecting jsonschema's errors and writing
//! a description.
//!
//! Schema errors map to faults as the OCPP-J specifications define them: a missing property or a
//! wrong number of array items is an occurrence fault, a wrong JSON type or a malformed date-time
//! a type fault, a value outside its enum, length or range a property fault, an unknown property
//! a formation fault.

mod semantic;

use crate::catalogue;
use crate::error_code::{Fault, Violation};
use crate::Version;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// Which half of an exchange a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The payload of a CALL.
    Request,
    /// The payload of a CALLRESULT.
    Response,
}

/// The longest description a [`Violation`] from this module carries (the CALLERROR limit).
pub const MAX_DESCRIPTION_LEN: usize = 255;

/// Checks `payload` of `action` against the schema of `version` and the semantic rules.
///
/// An action the version does not define is [`Fault::NotImplemented`].
pub fn validate(version: Version, action: &str, direction: Direction, payload: &Value) -> Result<(), Violation> {
    let Some(schema) = SCHEMAS.get(&(version, action, direction)) else {
        return Err(Violation::new(
            Fault::NotImplemented,
            truncate(format!("{action} is not an OCPP {version} action")),
        ));
    };
    // Frame::parse already refuses a CALL whose payload is not an object, but a CALLRESULT's
    // payload reaches here unchecked.
    if !payload.is_object() {
        return Err(Violation::new(Fault::Formation, describe_at("", "not a JSON object")));
    }
    let validator = schema.validator(version, action, direction)?;
    if !validator.is_valid(payload) {
        return Err(classify(validator, payload));
    }
    semantic::check(version, payload)
}

/// Compiles every schema of both versions now instead of on first use.
pub fn preload() -> Result<(), Violation> {
    for version in [Version::V16, Version::V201] {
        for (action, _) in catalogue::actions(version) {
            for direction in [Direction::Request, Direction::Response] {
                let schema = SCHEMAS.get(&(version, *action, direction)).ok_or_else(|| {
                    Violation::new(
                        Fault::Internal,
                        format!("no {direction:?} schema for {version} {action}"),
                    )
                })?;
                schema.validator(version, action, direction)?;
            }
        }
    }
    Ok(())
}

/// One schema's text and, once first needed, its compiled form.
struct Schema {
    source: &'static str,
    compiled: OnceLock<Result<Validator, String>>,
}

impl Schema {
    fn validator(&self, version: Version, action: &str, direction: Direction) -> Result<&Validator, Violation> {
        self.compiled
            .get_or_init(|| compile(self.source))
            .as_ref()
            .map_err(|e| {
                // Cannot happen with the vendored schemas (a unit test compiles them all), so
                // this is our fault, not the sender's.
                Violation::new(
                    Fault::Internal,
                    truncate(format!("{version} {action} {direction:?} schema does not compile: {e}")),
                )
            })
    }
}

fn compile(source: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(source).map_err(|e| e.to_string())?;
    jsonschema::options()
        // Drafts 4 and 6 do assert formats in jsonschema 0.60, but that is a library default
        // that has changed between releases and across drafts; the date-time check is part of
        // our contract, so it is switched on explicitly.
        .should_validate_formats(true)
        .with_format("date-time", is_rfc3339_instant)
        .build(&schema)
        .map_err(|e| e.to_string())
}

/// Whether `text` is an RFC 3339 instant that chrono (and so the typed payloads) can read.
///
/// jsonschema's own date-time check is replaced so that the schema accepts exactly what
/// deserialisation into `DateTime` accepts afterwards; the `T` is required because chrono also
/// takes a space there, which RFC 3339's grammar does not.
pub(crate) fn is_rfc3339_instant(text: &str) -> bool {
    matches!(text.as_bytes().get(10), Some(b'T' | b't')) && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// The `enum` values a request schema allows at `path`: property names, with `[]` stepping into
/// an array's items and local `$ref`s followed. Empty when the path leads to no enum (a test
/// pins every path that is used).
///
/// Lets a hand-written reader check enum values against the official schema's own lists
/// rather than a copy that could drift.
pub(crate) fn request_enum(version: Version, action: &str, path: &[&str]) -> Vec<String> {
    let Some(schema) = SCHEMAS.get(&(version, action, Direction::Request)) else {
        return Vec::new();
    };
    let Ok(root) = serde_json::from_str::<Value>(schema.source) else {
        return Vec::new();
    };
    let resolve = |node: &Value| -> Option<Value> {
        let mut node = node.clone();
        // Local references only, and a bounded number of hops in case of a cycle.
        for _ in 0..8 {
            let Some(target) = node.get("$ref").and_then(Value::as_str) else {
                return Some(node);
            };
            node = root.pointer(target.strip_prefix('#')?)?.clone();
        }
        None
    };
    let mut node = root.clone();
    for step in path {
        let Some(here) = resolve(&node) else {
            return Vec::new();
        };
        let next = if *step == "[]" {
            here.get("items")
        } else {
            here.get("properties").and_then(|p| p.get(*step))
        };
        let Some(next) = next else {
            return Vec::new();
        };
        node = next.clone();
    }
    resolve(&node)
        .and_then(|n| n.get("enum").cloned())
        .and_then(|e| serde_json::from_value::<Vec<String>>(e).ok())
        .unwrap_or_default()
}

type Key = (Version, &'static str, Direction);

/// Every schema of both catalogues, keyed by (version, action, direction).
static SCHEMAS: LazyLock<HashMap<Key, Schema>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for (version, sources) in [(Version::V16, V16_SOURCES), (Version::V201, V201_SOURCES)] {
        for (action, request, response) in sources {
            // Only what the catalogue lists is accepted; the tests keep the two lists equal.
            if catalogue::initiator(version, action).is_none() {
                continue;
            }
            for (direction, source) in [(Direction::Request, *request), (Direction::Response, *response)] {
                let schema = Schema {
                    source,
                    compiled: OnceLock::new(),
                };
                map.insert((version, *action, direction), schema);
            }
        }
    }
    map
});

/// Embeds `schemas/<dir>/<Action><suffix>.json` and `<Action>Response.json` for each action.
macro_rules! schema_sources {
    ($dir:literal, $request_suffix:literal; $($action:ident),* $(,)?) => {
        &[$((
            stringify!($action),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/schemas/", $dir, "/",
                stringify!($action), $request_suffix, ".json"
            )),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/schemas/", $dir, "/",
                stringify!($action), "Response.json"
            )),
        )),*]
    };
}

/// (action, request schema, response schema) for OCPP 1.6 with the security extension.
const V16_SOURCES: &[(&str, &str, &str)] = schema_sources!("v16", "";
    Authorize, BootNotification, CancelReservation, ChangeAvailability, ChangeConfiguration,
    ClearCache, ClearChargingProfile, DataTransfer, DiagnosticsStatusNotification,
    FirmwareStatusNotification, GetCompositeSchedule, GetConfiguration, GetDiagnostics,
    GetLocalListVersion, Heartbeat, MeterValues, RemoteStartTransaction, RemoteStopTransaction,
    ReserveNow, Reset, SendLocalList, SetChargingProfile, StartTransaction, StatusNotification,
    StopTransaction, TriggerMessage, UnlockConnector, UpdateFirmware,
    CertificateSigned, DeleteCertificate, ExtendedTriggerMessage, GetInstalledCertificateIds,
    GetLog, InstallCertificate, LogStatusNotification, SecurityEventNotification,
    SignCertificate, SignedFirmwareStatusNotification, SignedUpdateFirmware,
);

/// (action, request schema, response schema) for OCPP 2.0.1.
const V201_SOURCES: &[(&str, &str, &str)] = schema_sources!("v201", "Request";
    Authorize, BootNotification, CancelReservation, CertificateSigned, ChangeAvailability,
    ClearCache, ClearChargingProfile, ClearDisplayMessage, ClearVariableMonitoring,
    ClearedChargingLimit, CostUpdated, CustomerInformation, DataTransfer, DeleteCertificate,
    FirmwareStatusNotification, Get15118EVCertificate, GetBaseReport, GetCertificateStatus,
    GetChargingProfiles, GetCompositeSchedule, GetDisplayMessages, GetInstalledCertificateIds,
    GetLocalListVersion, GetLog, GetMonitoringReport, GetReport, GetTransactionStatus,
    GetVariables, Heartbeat, InstallCertificate, LogStatusNotification, MeterValues,
    NotifyChargingLimit, NotifyCustomerInformation, NotifyDisplayMessages, NotifyEVChargingNeeds,
    NotifyEVChargingSchedule, NotifyEvent, NotifyMonitoringReport, NotifyReport, PublishFirmware,
    PublishFirmwareStatusNotification, ReportChargingProfiles, RequestStartTransaction,
    RequestStopTransaction, ReservationStatusUpdate, ReserveNow, Reset, SecurityEventNotification,
    SendLocalList, SetChargingProfile, SetDisplayMessage, SetMonitoringBase, SetMonitoringLevel,
    SetNetworkProfile, SetVariableMonitoring, SetVariables, SignCertificate, StatusNotification,
    TransactionEvent, TriggerMessage, UnlockConnector, UnpublishFirmware, UpdateFirmware,
);

/// Turns the errors of an invalid payload into the one violation to report.
#[cold]
fn classify(validator: &Validator, payload: &Value) -> Violation {
    validator
        .iter_errors(payload)
        .map(|error| describe(&error))
        // One payload can break several rules; report the most structural one, because it
        // usually explains the others (a misspelt property is both unknown and, under its
        // right name, missing: the misspelling is the news). Ties go to the first reported.
        .min_by_key(|violation| rank(violation.fault))
        .unwrap_or_else(|| {
            // is_valid said no but no error came back: report something rather than nothing.
            Violation::new(Fault::Formation, "payload does not match the schema")
        })
}

fn rank(fault: Fault) -> u8 {
    match fault {
        Fault::Formation => 0,
        Fault::TypeConstraint => 1,
        Fault::OccurrenceConstraint => 2,
        Fault::PropertyConstraint => 3,
        _ => 4,
    }
}

fn describe(error: &ValidationError<'_>) -> Violation {
    let at = error.instance_path().as_str();
    let (fault, field, reason) = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            (
                Fault::OccurrenceConstraint,
                child(at, name),
                "required property missing".to_string(),
            )
        }
        ValidationErrorKind::MinItems { limit } => (
            Fault::OccurrenceConstraint,
            at.to_string(),
            format!("needs at least {limit} item(s)"),
        ),
        ValidationErrorKind::MaxItems { limit } => (
            Fault::OccurrenceConstraint,
            at.to_string(),
            format!("allows at most {limit} item(s)"),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => (
            Fault::Formation,
            child(at, unexpected.first().map(String::as_str).unwrap_or_default()),
            "property not defined for this message".to_string(),
        ),
        ValidationErrorKind::Type { kind } if at.is_empty() => (
            Fault::Formation,
            at.to_string(),
            format!("payload must be {}", expected(kind)),
        ),
        ValidationErrorKind::Type { kind } => (
            Fault::TypeConstraint,
            at.to_string(),
            format!("expected {}", expected(kind)),
        ),
        ValidationErrorKind::Format { format } if format == "date-time" => (
            Fault::TypeConstraint,
            at.to_string(),
            "not an RFC 3339 date-time".to_string(),
        ),
        ValidationErrorKind::Format { format } => (
            Fault::PropertyConstraint,
            at.to_string(),
            format!("not a valid {format}"),
        ),
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => (
            Fault::PropertyConstraint,
            at.to_string(),
            "value not allowed".to_string(),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            Fault::PropertyConstraint,
            at.to_string(),
            format!("longer than {limit} characters"),
        ),
        ValidationErrorKind::MinLength { limit } => (
            Fault::PropertyConstraint,
            at.to_string(),
            format!("shorter than {limit} characters"),
        ),
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => (
            Fault::PropertyConstraint,
            at.to_string(),
            format!("below the minimum {limit}"),
        ),
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => (
            Fault::PropertyConstraint,
            at.to_string(),
            format!("above the maximum {limit}"),
        ),
        ValidationErrorKind::MultipleOf { .. } => (
            Fault::PropertyConstraint,
            at.to_string(),
            "not a multiple of the allowed step".to_string(),
        ),
        ValidationErrorKind::Pattern { .. } => (
            Fault::PropertyConstraint,
            at.to_string(),
            "does not match the required pattern".to_string(),
        ),
        other => (
            Fault::Formation,
            at.to_string(),
            format!("violates `{}`", keyword(other)),
        ),
    };
    Violation::new(fault, describe_at(&field, &reason))
}

fn expected(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
    }
}

fn keyword(kind: &ValidationErrorKind) -> &'static str {
    match kind {
        ValidationErrorKind::AdditionalItems { .. } => "additionalItems",
        ValidationErrorKind::UniqueItems => "uniqueItems",
        ValidationErrorKind::AnyOf { .. } => "anyOf",
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. } => "oneOf",
        ValidationErrorKind::Not { .. } => "not",
        _ => "the schema",
    }
}

/// The JSON pointer of property `name` under `parent`, escaped as RFC 6901 requires.
fn child(parent: &str, name: &str) -> String {
    let mut pointer = String::with_capacity(parent.len() + name.len() + 1);
    pointer.push_str(parent);
    pointer.push('/');
    for c in name.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    pointer
}

/// `"<pointer>: <reason>"`, bounded; the root is written `(payload)` since its pointer is empty.
fn describe_at(pointer: &str, reason: &str) -> String {
    let pointer = if pointer.is_empty() { "(payload)" } else { pointer };
    truncate(format!("{pointer}: {reason}"))
}

/// Cuts `text` to [`MAX_DESCRIPTION_LEN`] characters: property names come from the sender and
/// may be arbitrarily long.
fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DESCRIPTION_LEN) {
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use Direction::{Request, Response};
    use Version::{V16, V201};

    /// One bad payload: what it is checked as, the fault, the wire code, the pointer named
    /// (for NotImplemented, the description).
    struct Row {
        version: Version,
        action: &'static str,
        direction: Direction,
        payload: Value,
        fault: Fault,
        code: &'static str,
        pointer: &'static str,
    }

    fn row(
        version: Version,
        action: &'static str,
        direction: Direction,
        payload: Value,
        fault: Fault,
        code: &'static str,
        pointer: &'static str,
    ) -> Row {
        Row {
            version,
            action,
            direction,
            payload,
            fault,
            code,
            pointer,
        }
    }

    fn check_rows(rows: &[Row]) {
        for (i, r) in rows.iter().enumerate() {
            let violation = validate(r.version, r.action, r.direction, &r.payload)
                .expect_err(&format!("row {i} ({} {}) should fail", r.version, r.action));
            assert_eq!(violation.fault, r.fault, "row {i}: {violation}");
            assert_eq!(violation.fault.code(r.version).as_str(r.version), r.code, "row {i}");
            // A schema fault names the field's pointer; NotImplemented has no field and the
            // row holds the whole description instead.
            let expected = match r.fault {
                Fault::NotImplemented => r.pointer.to_string(),
                _ => format!("{}: ", r.pointer),
            };
            assert!(
                violation.description.starts_with(&expected),
                "row {i}: description {:?} should name {:?}",
                violation.description,
                r.pointer
            );
            assert!(violation.description.chars().count() <= MAX_DESCRIPTION_LEN);
        }
    }

    fn v16_meter_values(value: &str, format: Option<&str>) -> Value {
        let mut sample = json!({"value": value, "measurand": "Energy.Active.Import.Register", "unit": "Wh"});
        if let Some(format) = format {
            sample["format"] = json!(format);
        }
        json!({
            "connectorId": 1,
            "transactionId": 17,
            "meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [sample]}]
        })
    }

    #[test]
    fn v16_faults_and_wire_codes() {
        const F: &str = "FormationViolation";
        const P: &str = "PropertyConstraintViolation";
        const O: &str = "OccurenceConstraintViolation";
        const T: &str = "TypeConstraintViolation";
        const N: &str = "NotImplemented";
        let boot = |extra: Value| {
            let mut p = json!({"chargePointVendor": "Acme", "chargePointModel": "Wallbox 22"});
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            p
        };
        let rows = [
            // Formation: unknown property, misspelt property, payload not an object.
            row(
                V16,
                "BootNotification",
                Request,
                boot(json!({"colour": "red"})),
                Fault::Formation,
                F,
                "/colour",
            ),
            row(
                V16,
                "BootNotification",
                Request,
                json!({"chargePointVendor": "Acme", "chargePointModle": "W"}),
                Fault::Formation,
                F,
                "/chargePointModle",
            ),
            row(V16, "Heartbeat", Response, json!([]), Fault::Formation, F, "(payload)"),
            row(
                V16,
                "StatusNotification",
                Request,
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": {"x": 1}, "x~/y": 0}),
                Fault::Formation,
                F,
                "/x~0~1y",
            ),
            // PropertyConstraint: enum, maxLength, and the semantic rules.
            row(
                V16,
                "StatusNotification",
                Request,
                json!({"connectorId": 1, "errorCode": "Broken", "status": "Available"}),
                Fault::PropertyConstraint,
                P,
                "/errorCode",
            ),
            row(
                V16,
                "BootNotification",
                Request,
                boot(json!({"chargePointVendor": "A".repeat(21)})),
                Fault::PropertyConstraint,
                P,
                "/chargePointVendor",
            ),
            row(
                V16,
                "StatusNotification",
                Request,
                json!({"connectorId": -1, "errorCode": "NoError", "status": "Available"}),
                Fault::PropertyConstraint,
                P,
                "/connectorId",
            ),
            row(
                V16,
                "StartTransaction",
                Request,
                json!({"connectorId": 1, "idTag": "ABC", "meterStart": 0, "timestamp": "2024-05-01T10:00:00Z", "reservationId": -5}),
                Fault::PropertyConstraint,
                P,
                "/reservationId",
            ),
            row(
                V16,
                "StopTransaction",
                Request,
                json!({"transactionId": -2, "meterStop": 10, "timestamp": "2024-05-01T10:00:00Z"}),
                Fault::PropertyConstraint,
                P,
                "/transactionId",
            ),
            row(
                V16,
                "MeterValues",
                Request,
                v16_meter_values("12.5kWh", None),
                Fault::PropertyConstraint,
                P,
                "/meterValue/0/sampledValue/0/value",
            ),
            row(
                V16,
                "MeterValues",
                Request,
                v16_meter_values("NaN", Some("Raw")),
                Fault::PropertyConstraint,
                P,
                "/meterValue/0/sampledValue/0/value",
            ),
            row(
                V16,
                "StopTransaction",
                Request,
                json!({"transactionId": 2, "meterStop": 10, "timestamp": "2024-05-01T10:00:00Z", "transactionData": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{"value": "1"}, {"value": ""}]}]}),
                Fault::PropertyConstraint,
                P,
                "/transactionData/0/sampledValue/1/value",
            ),
            row(
                V16,
                "GetDiagnostics",
                Request,
                json!({"location": "not a uri"}),
                Fault::PropertyConstraint,
                P,
                "/location",
            ),
            // OccurrenceConstraint: missing required property, minItems.
            row(
                V16,
                "BootNotification",
                Request,
                json!({"chargePointVendor": "Acme"}),
                Fault::OccurrenceConstraint,
                O,
                "/chargePointModel",
            ),
            row(
                V16,
                "MeterValues",
                Request,
                json!({"connectorId": 1, "meterValue": []}),
                Fault::OccurrenceConstraint,
                O,
                "/meterValue",
            ),
            row(
                V16,
                "MeterValues",
                Request,
                json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T10:00:00Z"}]}),
                Fault::OccurrenceConstraint,
                O,
                "/meterValue/0/sampledValue",
            ),
            row(
                V16,
                "BootNotificationResponse",
                Response,
                json!({}),
                Fault::NotImplemented,
                N,
                "BootNotificationResponse is not an OCPP 1.6 action",
            ),
            // TypeConstraint: wrong JSON type, malformed or impossible date-times.
            row(
                V16,
                "StatusNotification",
                Request,
                json!({"connectorId": "1", "errorCode": "NoError", "status": "Available"}),
                Fault::TypeConstraint,
                T,
                "/connectorId",
            ),
            row(
                V16,
                "Heartbeat",
                Response,
                json!({"currentTime": 1714557600}),
                Fault::TypeConstraint,
                T,
                "/currentTime",
            ),
            row(
                V16,
                "Heartbeat",
                Response,
                json!({"currentTime": "2024-02-30T10:00:00Z"}),
                Fault::TypeConstraint,
                T,
                "/currentTime",
            ),
            row(
                V16,
                "StartTransaction",
                Request,
                json!({"connectorId": 1, "idTag": "ABC", "meterStart": 0, "timestamp": "yesterday"}),
                Fault::TypeConstraint,
                T,
                "/timestamp",
            ),
            row(
                V16,
                "StartTransaction",
                Request,
                json!({"connectorId": 1, "idTag": "ABC", "meterStart": 0, "timestamp": "2024-05-01T10:00:00"}),
                Fault::TypeConstraint,
                T,
                "/timestamp",
            ),
            row(
                V16,
                "StartTransaction",
                Request,
                json!({"connectorId": 1, "idTag": "ABC", "meterStart": 0, "timestamp": "2024-05-01 10:00:00Z"}),
                Fault::TypeConstraint,
                T,
                "/timestamp",
            ),
            row(
                V16,
                "Authorize",
                Response,
                json!({"idTagInfo": {"status": "Accepted", "expiryDate": "2024-05-01T25:00:00Z"}}),
                Fault::TypeConstraint,
                T,
                "/idTagInfo/expiryDate",
            ),
            row(
                V16,
                "SecurityEventNotification",
                Request,
                json!({"type": "StartupOfTheDevice", "timestamp": "2024-05-01T10:00:00+24:00"}),
                Fault::TypeConstraint,
                T,
                "/timestamp",
            ),
            row(
                V16,
                "MeterValues",
                Request,
                json!({"connectorId": 1.5, "meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{"value": "1"}]}]}),
                Fault::TypeConstraint,
                T,
                "/connectorId",
            ),
            // NotImplemented: a 2.0.1 action, an unknown one.
            row(
                V16,
                "TransactionEvent",
                Request,
                json!({}),
                Fault::NotImplemented,
                N,
                "TransactionEvent is not an OCPP 1.6 action",
            ),
            row(
                V16,
                "Foo",
                Response,
                json!({}),
                Fault::NotImplemented,
                N,
                "Foo is not an OCPP 1.6 action",
            ),
        ];
        check_rows(&rows);
    }

    fn v201_boot(station: Value) -> Value {
        json!({"reason": "PowerUp", "chargingStation": station})
    }

    fn v201_transaction_event(extra: Value) -> Value {
        let mut p = json!({
            "eventType": "Updated",
            "timestamp": "2024-05-01T10:00:00Z",
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 3,
            "transactionInfo": {"transactionId": "tx-0001", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1}
        });
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        p
    }

    #[test]
    fn v201_faults_and_wire_codes() {
        const F: &str = "FormatViolation";
        const P: &str = "PropertyConstraintViolation";
        const O: &str = "OccurrenceConstraintViolation";
        const T: &str = "TypeConstraintViolation";
        const N: &str = "NotImplemented";
        let rows = [
            // Formation: unknown property (nested), payload not an object.
            row(
                V201,
                "BootNotification",
                Request,
                v201_boot(json!({"model": "M", "vendorName": "V", "colour": 1})),
                Fault::Formation,
                F,
                "/chargingStation/colour",
            ),
            row(
                V201,
                "Heartbeat",
                Response,
                json!("ok"),
                Fault::Formation,
                F,
                "(payload)",
            ),
            // PropertyConstraint: enum, maxLength, and the semantic rules.
            row(
                V201,
                "BootNotification",
                Request,
                json!({"reason": "Because", "chargingStation": {"model": "M", "vendorName": "V"}}),
                Fault::PropertyConstraint,
                P,
                "/reason",
            ),
            row(
                V201,
                "BootNotification",
                Request,
                v201_boot(json!({"model": "M".repeat(21), "vendorName": "V"})),
                Fault::PropertyConstraint,
                P,
                "/chargingStation/model",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"seqNo": -1})),
                Fault::PropertyConstraint,
                P,
                "/seqNo",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"evse": {"id": -1}})),
                Fault::PropertyConstraint,
                P,
                "/evse/id",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"evse": {"id": 1, "connectorId": -1}})),
                Fault::PropertyConstraint,
                P,
                "/evse/connectorId",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"reservationId": -3})),
                Fault::PropertyConstraint,
                P,
                "/reservationId",
            ),
            row(
                V201,
                "MeterValues",
                Request,
                json!({"evseId": -1, "meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{"value": 1.5}]}]}),
                Fault::PropertyConstraint,
                P,
                "/evseId",
            ),
            row(
                V201,
                "NotifyReport",
                Request,
                json!({"requestId": 1, "generatedAt": "2024-05-01T10:00:00Z", "seqNo": 0, "reportData": [{"component": {"name": "EVSE", "evse": {"id": -2}}, "variable": {"name": "Available"}, "variableAttribute": [{"value": "true"}]}]}),
                Fault::PropertyConstraint,
                P,
                "/reportData/0/component/evse/id",
            ),
            row(
                V201,
                "NotifyEVChargingNeeds",
                Request,
                json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC", "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 101}}}),
                Fault::PropertyConstraint,
                P,
                "/chargingNeeds/dcChargingParameters/stateOfCharge",
            ),
            // OccurrenceConstraint: missing required property, minItems.
            row(
                V201,
                "BootNotification",
                Request,
                json!({"reason": "PowerUp"}),
                Fault::OccurrenceConstraint,
                O,
                "/chargingStation",
            ),
            row(
                V201,
                "MeterValues",
                Request,
                json!({"evseId": 1, "meterValue": []}),
                Fault::OccurrenceConstraint,
                O,
                "/meterValue",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(
                    json!({"meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": []}]}),
                ),
                Fault::OccurrenceConstraint,
                O,
                "/meterValue/0/sampledValue",
            ),
            // TypeConstraint: wrong JSON type, malformed date-time.
            row(
                V201,
                "BootNotification",
                Request,
                json!({"reason": 5, "chargingStation": {"model": "M", "vendorName": "V"}}),
                Fault::TypeConstraint,
                T,
                "/reason",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"seqNo": "3"})),
                Fault::TypeConstraint,
                T,
                "/seqNo",
            ),
            row(
                V201,
                "Heartbeat",
                Response,
                json!({"currentTime": "2024-05-01T10:00Z"}),
                Fault::TypeConstraint,
                T,
                "/currentTime",
            ),
            row(
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(json!({"timestamp": "2024-05-01"})),
                Fault::TypeConstraint,
                T,
                "/timestamp",
            ),
            // NotImplemented: a 1.6-only action.
            row(
                V201,
                "StartTransaction",
                Request,
                json!({}),
                Fault::NotImplemented,
                N,
                "StartTransaction is not an OCPP 2.0.1 action",
            ),
            row(
                V201,
                "SignedUpdateFirmware",
                Request,
                json!({}),
                Fault::NotImplemented,
                N,
                "SignedUpdateFirmware is not an OCPP 2.0.1 action",
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn valid_payloads_pass() {
        let rows: Vec<(Version, &str, Direction, Value)> = vec![
            (
                V16,
                "BootNotification",
                Request,
                json!({"chargePointVendor": "Acme", "chargePointModel": "Wallbox 22", "chargePointSerialNumber": "SN-1", "firmwareVersion": "2.3.1", "meterType": "ABB B23"}),
            ),
            (
                V16,
                "BootNotification",
                Response,
                json!({"status": "Accepted", "currentTime": "2024-05-01T10:00:00.123Z", "interval": 300}),
            ),
            (V16, "Heartbeat", Request, json!({})),
            (
                V16,
                "Heartbeat",
                Response,
                json!({"currentTime": "2024-05-01T12:00:00+02:00"}),
            ),
            (
                V16,
                "StatusNotification",
                Request,
                json!({"connectorId": 0, "errorCode": "NoError", "status": "Available", "timestamp": "2024-05-01T10:00:00Z"}),
            ),
            (V16, "StatusNotification", Response, json!({})),
            (V16, "Authorize", Request, json!({"idTag": "04A2B3C4D5E6F7"})),
            (
                V16,
                "Authorize",
                Response,
                json!({"idTagInfo": {"status": "Accepted", "expiryDate": "2025-01-01T00:00:00Z", "parentIdTag": "FLEET-1"}}),
            ),
            (
                V16,
                "StartTransaction",
                Request,
                json!({"connectorId": 1, "idTag": "04A2B3C4D5E6F7", "meterStart": 12345, "timestamp": "2024-05-01T10:00:00Z", "reservationId": 0}),
            ),
            (
                V16,
                "StartTransaction",
                Response,
                json!({"transactionId": 17, "idTagInfo": {"status": "Accepted"}}),
            ),
            (
                V16,
                "StopTransaction",
                Request,
                json!({"transactionId": 17, "meterStop": 23456, "timestamp": "2024-05-01T11:00:00Z", "reason": "EVDisconnected", "transactionData": [{"timestamp": "2024-05-01T11:00:00Z", "sampledValue": [{"value": "23456", "context": "Transaction.End"}]}]}),
            ),
            (
                V16,
                "StopTransaction",
                Response,
                json!({"idTagInfo": {"status": "Accepted"}}),
            ),
            (V16, "MeterValues", Request, v16_meter_values("12345.5", None)),
            (V16, "MeterValues", Request, v16_meter_values("-0.5e3", Some("Raw"))),
            (
                V16,
                "MeterValues",
                Request,
                v16_meter_values("AQIDBAUG==", Some("SignedData")),
            ),
            (V16, "MeterValues", Response, json!({})),
            // multipleOf 0.1 on decimals that binary floating point cannot represent exactly.
            (
                V16,
                "SetChargingProfile",
                Request,
                json!({"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7.4}, {"startPeriod": 60, "limit": 0.3}, {"startPeriod": 120, "limit": 32.1}, {"startPeriod": 180, "limit": 16}], "minChargingRate": 6.1, "startSchedule": "2024-05-01T00:00:00Z"}}}),
            ),
            (
                V16,
                "DataTransfer",
                Request,
                json!({"vendorId": "com.acme", "messageId": "x", "data": "{\"connectorId\":-1}"}),
            ),
            (
                V201,
                "BootNotification",
                Request,
                json!({"reason": "PowerUp", "chargingStation": {"model": "Wallbox 22", "vendorName": "Acme", "serialNumber": "SN-1", "modem": {"iccid": "8931", "imsi": "2040"}, "firmwareVersion": "2.3.1"}, "customData": {"vendorId": "com.acme", "anything": {"connectorId": -1}}}),
            ),
            (
                V201,
                "BootNotification",
                Response,
                json!({"currentTime": "2024-05-01T10:00:00Z", "interval": 300, "status": "Accepted"}),
            ),
            (
                V201,
                "TransactionEvent",
                Request,
                v201_transaction_event(
                    json!({"meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{"value": 1234.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}, {"value": -3.2, "measurand": "Current.Import", "phase": "L1"}]}], "idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}, "offline": false, "reservationId": 0}),
                ),
            ),
            (
                V201,
                "TransactionEvent",
                Response,
                json!({"totalCost": 12.34, "idTokenInfo": {"status": "Accepted"}}),
            ),
            (
                V201,
                "MeterValues",
                Request,
                json!({"evseId": 0, "meterValue": [{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [{"value": 230.1, "measurand": "Voltage", "phase": "L1-N"}]}]}),
            ),
            (V201, "MeterValues", Response, json!({})),
            (
                V201,
                "NotifyReport",
                Request,
                json!({"requestId": 1, "generatedAt": "2024-05-01T10:00:00Z", "seqNo": 0, "tbc": false, "reportData": [{"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}, "variableAttribute": [{"type": "Actual", "value": "Available", "mutability": "ReadOnly"}], "variableCharacteristics": {"dataType": "OptionList", "supportsMonitoring": true, "valuesList": "Available,Occupied"}}]}),
            ),
            (V201, "NotifyReport", Response, json!({})),
            (
                V201,
                "DataTransfer",
                Request,
                json!({"vendorId": "com.acme", "data": {"connectorId": -1, "nested": [{"evse": {"id": -1}}]}}),
            ),
        ];
        for (version, action, direction, payload) in rows {
            if let Err(v) = validate(version, action, direction, &payload) {
                panic!("{version} {action} {direction:?} rejected: {v}");
            }
        }
    }

    #[test]
    fn every_catalogue_action_has_both_schemas_and_they_compile() {
        for (version, sources) in [(V16, V16_SOURCES), (V201, V201_SOURCES)] {
            let actions = catalogue::actions(version);
            assert_eq!(
                sources.len(),
                actions.len(),
                "{version}: schema table and catalogue differ"
            );
            for (action, _) in actions {
                for direction in [Request, Response] {
                    let schema = SCHEMAS
                        .get(&(version, *action, direction))
                        .unwrap_or_else(|| panic!("{version} {action} {direction:?}: no schema"));
                    if let Err(v) = schema.validator(version, action, direction) {
                        panic!("{v}");
                    }
                }
            }
        }
        assert_eq!(SCHEMAS.len(), 2 * (39 + 64));
        preload().expect("all schemas compile");
    }

    #[test]
    fn the_most_structural_error_wins() {
        // Unknown property + missing property + enum violation: the unknown property explains
        // the rest and is reported.
        let payload = json!({"chargePointVendr": "A", "chargePointModel": 5});
        let v = validate(V16, "BootNotification", Request, &payload).unwrap_err();
        assert_eq!(v.fault, Fault::Formation, "{v}");
        // Type before occurrence.
        let payload = json!({"chargePointModel": 5});
        let v = validate(V16, "BootNotification", Request, &payload).unwrap_err();
        assert_eq!(v.fault, Fault::TypeConstraint, "{v}");
    }

    #[test]
    fn descriptions_stay_short_whatever_the_sender_writes() {
        let long_name = "x".repeat(10_000);
        let mut payload = json!({"chargePointVendor": "A", "chargePointModel": "B"});
        payload[&long_name] = json!(1);
        let v = validate(V16, "BootNotification", Request, &payload).unwrap_err();
        assert_eq!(v.fault, Fault::Formation);
        assert_eq!(v.description.chars().count(), MAX_DESCRIPTION_LEN);
        let v = validate(V16, &long_name, Request, &payload).unwrap_err();
        assert_eq!(v.fault, Fault::NotImplemented);
        assert!(v.description.chars().count() <= MAX_DESCRIPTION_LEN);
    }

    #[test]
    fn decimal_grammar() {
        for ok in [
            "0",
            "-1",
            "+1",
            "12.5",
            "12.",
            ".5",
            "1e3",
            "1.5E-3",
            "-0.0",
            " 42 ",
            "000123.4500",
            "1e+3",
        ] {
            assert!(semantic::is_decimal(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            ".",
            "e3",
            "1e",
            "1e+",
            "NaN",
            "inf",
            "-infinity",
            "1,5",
            "1 2",
            "  ",
            "0x10",
            "1.2.3",
        ] {
            assert!(!semantic::is_decimal(bad), "{bad}");
        }
    }
}

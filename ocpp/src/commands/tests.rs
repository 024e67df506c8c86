#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::schema::{validate, Direction};
use chrono::TimeZone;
use serde_json::json;

fn token(kind: &str) -> Token {
    Token {
        value: "TAG-1".into(),
        kind: TokenKind::parse(kind).unwrap(),
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 8, 30, 0).unwrap()
}

/// One of each command, with and without the optional parts.
fn every_command() -> Vec<Command> {
    let here = Location {
        evse_id: Some(2),
        connector_id: Some(1),
    };
    vec![
        Command::RemoteStart(RemoteStart {
            remote_start_id: 17,
            id_token: token("ISO14443"),
            evse_id: Some(1),
        }),
        Command::RemoteStart(RemoteStart {
            remote_start_id: 1,
            id_token: token("Central"),
            evse_id: None,
        }),
        Command::RemoteStop {
            station_transaction_id: "42".into(),
        },
        Command::ReserveNow(ReserveNow {
            reservation_id: 3,
            id_token: token("eMAID"),
            evse_id: Some(1),
            expires_at: at(),
        }),
        Command::ReserveNow(ReserveNow {
            reservation_id: 4,
            id_token: token("Central"),
            evse_id: None,
            expires_at: at(),
        }),
        Command::CancelReservation { reservation_id: 3 },
        Command::ChangeAvailability {
            location: here,
            availability: Availability::Inoperative,
        },
        Command::ChangeAvailability {
            location: Location::default(),
            availability: Availability::Operative,
        },
        Command::Reset {
            kind: ResetKind::Soft,
            evse_id: None,
        },
        Command::Reset {
            kind: ResetKind::Hard,
            evse_id: Some(1),
        },
        Command::UnlockConnector {
            evse_id: 1,
            connector_id: None,
        },
        Command::TriggerMessage {
            message: "StatusNotification".into(),
            location: here,
        },
        Command::TriggerMessage {
            message: "Heartbeat".into(),
            location: Location::default(),
        },
        Command::Call {
            action: "ClearCache".into(),
            payload: json!({}),
        },
    ]
}

#[test]
fn every_command_is_valid_against_the_official_schema_of_each_version() {
    for version in [Version::V16, Version::V201] {
        for command in every_command() {
            let request = command.request(version).unwrap();
            validate(version, &request.action, Direction::Request, &request.payload)
                .unwrap_or_else(|v| panic!("{version} {command:?} -> {request:?}: {v}"));
        }
    }
}

#[test]
fn names_and_shapes_per_version() {
    let start = &every_command()[0];
    assert_eq!(
        start.request(Version::V16).unwrap(),
        Request {
            action: "RemoteStartTransaction".into(),
            payload: json!({"idTag": "TAG-1", "connectorId": 1}),
        }
    );
    assert_eq!(
        start.request(Version::V201).unwrap(),
        Request {
            action: "RequestStartTransaction".into(),
            payload: json!({"idToken": {"idToken": "TAG-1", "type": "ISO14443"}, "remoteStartId": 17, "evseId": 1}),
        }
    );
    let reserve = &every_command()[3];
    assert_eq!(
        reserve.request(Version::V16).unwrap().payload,
        json!({"connectorId": 1, "expiryDate": "2030-01-01T08:30:00Z", "idTag": "TAG-1", "reservationId": 3})
    );
    assert_eq!(
        reserve.request(Version::V201).unwrap().payload,
        json!({"id": 3, "expiryDateTime": "2030-01-01T08:30:00Z", "idToken": {"idToken": "TAG-1", "type": "eMAID"}, "evseId": 1})
    );
    let stop = Command::RemoteStop {
        station_transaction_id: "42".into(),
    };
    assert_eq!(
        stop.request(Version::V16).unwrap().payload,
        json!({"transactionId": 42})
    );
    assert_eq!(
        stop.request(Version::V201).unwrap().payload,
        json!({"transactionId": "42"})
    );
    let hard = Command::Reset {
        kind: ResetKind::Hard,
        evse_id: None,
    };
    assert_eq!(hard.request(Version::V16).unwrap().payload, json!({"type": "Hard"}));
    assert_eq!(
        hard.request(Version::V201).unwrap().payload,
        json!({"type": "Immediate"})
    );
    let inoperative = &every_command()[6];
    assert_eq!(
        inoperative.request(Version::V16).unwrap().payload,
        json!({"connectorId": 2, "type": "Inoperative"})
    );
    assert_eq!(
        inoperative.request(Version::V201).unwrap().payload,
        json!({"operationalStatus": "Inoperative", "evse": {"id": 2, "connectorId": 1}})
    );
    let unlock = &every_command()[10];
    assert_eq!(unlock.request(Version::V16).unwrap().payload, json!({"connectorId": 1}));
    assert_eq!(
        unlock.request(Version::V201).unwrap().payload,
        json!({"evseId": 1, "connectorId": 1})
    );
}

#[test]
fn what_a_version_cannot_express_is_refused_before_sending() {
    let stop = Command::RemoteStop {
        station_transaction_id: "a1b2".into(),
    };
    assert_eq!(
        stop.request(Version::V16),
        Err(TranslateError::NotAnIntegerTransactionId("a1b2".into()))
    );
    // A 2.0.1-only trigger is caught by the 1.6 schema, not silently renamed.
    let trigger = Command::TriggerMessage {
        message: "TransactionEvent".into(),
        location: Location::default(),
    };
    let request = trigger.request(Version::V16).unwrap();
    assert!(validate(Version::V16, &request.action, Direction::Request, &request.payload).is_err());
}

#[test]
fn token_kinds_are_the_2_0_1_enum() {
    assert_eq!(TokenKind::parse("KeyCode").unwrap().as_str(), "KeyCode");
    assert_eq!(TokenKind::CENTRAL.as_str(), "Central");
    assert!(TokenKind::parse("IdTag").is_err(), "the 1.6 kind is no IdTokenEnumType");
    assert!(TokenKind::parse("iso14443").is_err());
}

#[test]
fn answers_read_back_as_the_station_said_them() {
    // Every status both versions' response schemas allow for the typed commands.
    let cases: &[(usize, &[&str])] = &[
        (0, &["Accepted", "Rejected"]),
        (3, &["Accepted", "Faulted", "Occupied", "Rejected", "Unavailable"]),
        (5, &["Accepted", "Rejected"]),
        (6, &["Accepted", "Rejected", "Scheduled"]),
        (8, &["Accepted", "Rejected"]),
        (10, &["Unlocked", "UnlockFailed"]),
        (11, &["Accepted", "Rejected", "NotImplemented"]),
    ];
    let commands = every_command();
    for version in [Version::V16, Version::V201] {
        for (index, statuses) in cases {
            let command = &commands[*index];
            let action = command.request(version).unwrap().action;
            for status in *statuses {
                let payload = json!({ "status": status });
                validate(version, &action, Direction::Response, &payload)
                    .unwrap_or_else(|v| panic!("{version} {action} {status}: {v}"));
                let answer = command.read_answer(payload).unwrap();
                assert_eq!(answer.status.as_ref().map(Status::as_str), Some(*status));
                assert_eq!(answer.status, Some(Status::parse(status)));
                assert!(
                    !matches!(answer.status, Some(Status::Other(_))),
                    "{status} is a known status"
                );
            }
        }
    }
    let unlock = &commands[10];
    assert_eq!(
        unlock.read_answer(json!({"status": "NotSupported"})).unwrap().status,
        Some(Status::NotSupported)
    );
    assert_eq!(
        unlock
            .read_answer(json!({"status": "OngoingAuthorizedTransaction"}))
            .unwrap()
            .status,
        Some(Status::OngoingAuthorizedTransaction)
    );
    // 2.0.1 extras: the reason and an already running transaction.
    let answer = commands[0]
        .read_answer(
            json!({"status": "Rejected", "transactionId": "tx-9", "statusInfo": {"reasonCode": "TxInProgress"}}),
        )
        .unwrap();
    assert_eq!(
        (
            answer.status,
            answer.reason.as_deref(),
            answer.transaction_id.as_deref()
        ),
        (Some(Status::Rejected), Some("TxInProgress"), Some("tx-9"))
    );
    // A typed command needs a status; a generic call does not.
    assert_eq!(commands[0].read_answer(json!({})), Err(AnswerError::MissingStatus));
    let generic = commands.last().unwrap();
    assert_eq!(
        generic.read_answer(json!({"getVariableResult": []})).unwrap().status,
        None
    );
    assert_eq!(
        generic.read_answer(json!({"status": "Whatever"})).unwrap().status,
        Some(Status::Other("Whatever".into()))
    );
}

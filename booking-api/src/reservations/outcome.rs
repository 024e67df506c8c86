//! What a charger's reply means for a booking: pure rules, no I/O.

use evcs_bus::{BusError, CommandReply};

/// How a command to the charger (or the central system) ended, for a booking's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Accepted`.
    Done,
    /// The charger (or central system) said no, or could not take the command; `status` is what
    /// it said (`Occupied`, `Faulted`, `Unavailable`, `Rejected`, ...) and `note` why in words.
    /// Not retried.
    Refused { status: String, note: String },
    /// Nobody answered (station offline, timeout, bus trouble): retried later.
    Unreachable { status: &'static str, note: String },
}

/// Reads a bus reply (or the bus's own failure).
pub fn of(reply: &Result<CommandReply, BusError>) -> Outcome {
    match reply {
        Ok(reply) if crate::chargers::commands::accepted(reply) => Outcome::Done,
        Ok(CommandReply::Offline) => Outcome::Unreachable {
            status: "Offline",
            note: "the charger is offline".into(),
        },
        Ok(CommandReply::Timeout) | Err(BusError::Timeout(_)) => Outcome::Unreachable {
            status: "Timeout",
            note: "the charger did not answer in time".into(),
        },
        Err(e) => Outcome::Unreachable {
            status: "Timeout",
            note: format!("the command could not be delivered: {e}"),
        },
        Ok(reply @ CommandReply::Status { status, .. }) => Outcome::Refused {
            status: status.clone(),
            note: format!("the charger answered {}", crate::chargers::commands::describe(reply)),
        },
        Ok(reply) => Outcome::Refused {
            status: "Error".into(),
            note: crate::chargers::commands::describe(reply),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(s: &str) -> Result<CommandReply, BusError> {
        Ok(CommandReply::Status {
            status: s.into(),
            payload: None,
        })
    }

    #[test]
    fn accepted_is_done_refusals_keep_the_chargers_word_and_silence_is_retried() {
        assert_eq!(of(&status("Accepted")), Outcome::Done);
        for word in ["Occupied", "Faulted", "Unavailable", "Rejected"] {
            match of(&status(word)) {
                Outcome::Refused { status, note } => {
                    assert_eq!(status, word);
                    assert!(note.contains(word), "{note}");
                }
                other => panic!("{word}: {other:?}"),
            }
        }
        assert!(matches!(
            of(&Ok(CommandReply::CallError {
                code: "NotSupported".into(),
                description: None
            })),
            Outcome::Refused { status, .. } if status == "Error"
        ));
        assert!(matches!(
            of(&Ok(CommandReply::Offline)),
            Outcome::Unreachable { status: "Offline", .. }
        ));
        assert!(matches!(
            of(&Err(BusError::Timeout(Duration::from_secs(1)))),
            Outcome::Unreachable { status: "Timeout", .. }
        ));
        assert!(matches!(
            of(&Ok(CommandReply::Timeout)),
            Outcome::Unreachable { status: "Timeout", .. }
        ));
    }
}

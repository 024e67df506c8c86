//! The booking state machine and policy checks: plain functions returning domain errors
//! ([`RuleError`]), tested without a server; the HTTP edge turns them into problems.

use crate::config::Policy;
use serde::{Deserialize, Serialize};
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// Why a booking rule refused, with the figures the message needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a {from} booking cannot be {action}")]
    IllegalTransition { from: &'static str, action: &'static str },
    #[error("the slot has already started")]
    SlotInPast,
    #[error("bookings may start at most {days} days ahead")]
    HorizonExceeded { days: i64 },
    #[error("changes are closed {hours} hours before the start")]
    CutoffPassed { hours: i64 },
    #[error("check-in opens {minutes} minutes before the start")]
    CheckinTooEarly { minutes: i64 },
    #[error("the slot has ended")]
    CheckinWindowClosed,
    #[error("a no-show can be recorded {minutes} minutes after the start")]
    NoShowTooEarly { minutes: i64 },
}

impl RuleError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::IllegalTransition { .. } => "ILLEGAL_TRANSITION",
            RuleError::SlotInPast => "SLOT_IN_PAST",
            RuleError::HorizonExceeded { .. } => "BOOKING_HORIZON_EXCEEDED",
            RuleError::CutoffPassed { .. } => "BOOKING_CUTOFF_PASSED",
            RuleError::CheckinTooEarly { .. } => "CHECKIN_TOO_EARLY",
            RuleError::CheckinWindowClosed => "CHECKIN_WINDOW_CLOSED",
            RuleError::NoShowTooEarly { .. } => "NO_SHOW_TOO_EARLY",
        }
    }
}

/// Every rule refusal is a 409 with its code.
impl From<RuleError> for Problem {
    fn from(e: RuleError) -> Problem {
        Problem::conflict(e.code(), e.to_string())
    }
}

/// Booking statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Status {
    /// Waiting for the station's BackOffice or an admin.
    Pending,
    /// Confirmed; the slot is held.
    Approved,
    /// The driver arrived and was checked in by an operator.
    CheckedIn,
    /// Charging finished.
    Completed,
    /// Cancelled by the owner (or an admin) before the cutoff.
    Cancelled,
    /// Refused by the BackOffice or an admin.
    Rejected,
    /// The driver did not come.
    NoShow,
    /// Charging started but was stopped abnormally.
    Aborted,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::Approved => "Approved",
            Status::CheckedIn => "CheckedIn",
            Status::Completed => "Completed",
            Status::Cancelled => "Cancelled",
            Status::Rejected => "Rejected",
            Status::NoShow => "NoShow",
            Status::Aborted => "Aborted",
        }
    }

    /// Every status.
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Approved,
        Status::CheckedIn,
        Status::Completed,
        Status::Cancelled,
        Status::Rejected,
        Status::NoShow,
        Status::Aborted,
    ];

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the booking still holds its slot unit.
    pub fn holds_slot(self) -> bool {
        matches!(self, Status::Pending | Status::Approved | Status::CheckedIn)
    }
}

/// What can happen to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Approve,
    Reject,
    Cancel,
    Reschedule,
    CheckIn,
    Complete,
    Abort,
    NoShow,
    /// Staff cancel at the station (the driver came but cannot or will not charge).
    CancelOnSite,
}

impl Action {
    /// The audit action name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Approve => "booking.approved",
            Action::Reject => "booking.rejected",
            Action::Cancel => "booking.cancelled",
            Action::Reschedule => "booking.rescheduled",
            Action::CheckIn => "booking.checked_in",
            Action::Complete => "booking.completed",
            Action::Abort => "booking.aborted",
            Action::NoShow => "booking.no_show",
            Action::CancelOnSite => "booking.cancelled_on_site",
        }
    }
}

/// The state machine: the status `action` leads to from `from`, or 409 `ILLEGAL_TRANSITION`.
/// A reschedule keeps the status (`auto_approve` decides whether a moved booking needs a new
/// approval).
pub fn next(from: Status, action: Action, auto_approve: bool) -> Result<Status, RuleError> {
    use Action as A;
    use Status as S;
    let to = match (from, action) {
        (S::Pending, A::Approve) => Some(S::Approved),
        (S::Pending, A::Reject) => Some(S::Rejected),
        (S::Pending | S::Approved, A::Cancel) => Some(S::Cancelled),
        (S::Pending | S::Approved, A::Reschedule) => Some(if auto_approve { S::Approved } else { S::Pending }),
        (S::Approved, A::CheckIn) => Some(S::CheckedIn),
        (S::Approved, A::NoShow) => Some(S::NoShow),
        (S::CheckedIn, A::Complete) => Some(S::Completed),
        (S::CheckedIn, A::Abort) => Some(S::Aborted),
        (S::Approved | S::CheckedIn, A::CancelOnSite) => Some(S::Cancelled),
        _ => None,
    };
    to.ok_or_else(|| RuleError::IllegalTransition {
        from: from.as_str(),
        action: action.name().trim_start_matches("booking."),
    })
}

/// A new slot start must lie in the future and within the booking horizon.
pub fn check_start(policy: &Policy, now_ms: i64, start_ms: i64) -> Result<(), RuleError> {
    if start_ms <= now_ms {
        return Err(RuleError::SlotInPast);
    }
    if start_ms > now_ms + policy.booking_horizon_days * 86_400_000 {
        return Err(RuleError::HorizonExceeded {
            days: policy.booking_horizon_days,
        });
    }
    Ok(())
}

/// Reschedule and cancel are allowed until `cutoff_hours` before the booked start.
pub fn check_cutoff(policy: &Policy, now_ms: i64, booked_start_ms: i64) -> Result<(), RuleError> {
    if now_ms > booked_start_ms - policy.cutoff_hours * 3_600_000 {
        return Err(RuleError::CutoffPassed {
            hours: policy.cutoff_hours,
        });
    }
    Ok(())
}

/// Check-in opens `early_checkin_minutes` before the start and closes at the slot's end.
pub fn check_checkin(policy: &Policy, now_ms: i64, start_ms: i64, end_ms: i64) -> Result<(), RuleError> {
    if now_ms < start_ms - policy.early_checkin_minutes * 60_000 {
        return Err(RuleError::CheckinTooEarly {
            minutes: policy.early_checkin_minutes,
        });
    }
    if now_ms >= end_ms {
        return Err(RuleError::CheckinWindowClosed);
    }
    Ok(())
}

/// A booking can be marked NoShow only once its start plus the grace period has passed.
pub fn check_no_show(policy: &Policy, now_ms: i64, start_ms: i64) -> Result<(), RuleError> {
    if now_ms < start_ms + policy.no_show_grace_minutes * 60_000 {
        return Err(RuleError::NoShowTooEarly {
            minutes: policy.no_show_grace_minutes,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 9] = [
        Action::Approve,
        Action::Reject,
        Action::Cancel,
        Action::Reschedule,
        Action::CheckIn,
        Action::Complete,
        Action::Abort,
        Action::NoShow,
        Action::CancelOnSite,
    ];

    #[test]
    fn legal_transitions() {
        assert_eq!(next(Status::Pending, Action::Approve, false).unwrap(), Status::Approved);
        assert_eq!(next(Status::Pending, Action::Reject, false).unwrap(), Status::Rejected);
        assert_eq!(
            next(Status::Approved, Action::Cancel, false).unwrap(),
            Status::Cancelled
        );
        assert_eq!(
            next(Status::Approved, Action::Reschedule, false).unwrap(),
            Status::Pending
        );
        assert_eq!(
            next(Status::Approved, Action::Reschedule, true).unwrap(),
            Status::Approved
        );
        assert_eq!(
            next(Status::Approved, Action::CheckIn, false).unwrap(),
            Status::CheckedIn
        );
        assert_eq!(next(Status::Approved, Action::NoShow, false).unwrap(), Status::NoShow);
        assert_eq!(
            next(Status::CheckedIn, Action::Complete, false).unwrap(),
            Status::Completed
        );
        assert_eq!(next(Status::CheckedIn, Action::Abort, false).unwrap(), Status::Aborted);
        for from in [Status::Approved, Status::CheckedIn] {
            assert_eq!(next(from, Action::CancelOnSite, false).unwrap(), Status::Cancelled);
        }
        assert!(next(Status::Pending, Action::CancelOnSite, false).is_err());
    }

    #[test]
    fn terminal_states_refuse_everything() {
        for from in [
            Status::Completed,
            Status::Cancelled,
            Status::Rejected,
            Status::NoShow,
            Status::Aborted,
        ] {
            for action in ACTIONS {
                let e = next(from, action, true).unwrap_err();
                assert_eq!(e.code(), "ILLEGAL_TRANSITION", "{from:?} {action:?}");
                let p = Problem::from(e);
                assert_eq!((p.status, p.code.as_str()), (409, "ILLEGAL_TRANSITION"));
            }
        }
        assert!(next(Status::Approved, Action::Approve, false).is_err());
        assert!(next(Status::Pending, Action::CheckIn, false).is_err());
        assert!(next(Status::CheckedIn, Action::Cancel, false).is_err());
    }

    #[test]
    fn names_round_trip_and_slot_holding() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Nope"), None);
        assert!(Status::Approved.holds_slot());
        assert!(!Status::Cancelled.holds_slot());
    }

    #[test]
    fn policies() {
        let p = Policy::default();
        let hour = 3_600_000;
        assert_eq!(check_start(&p, 0, 0).unwrap_err().code(), "SLOT_IN_PAST");
        assert!(check_start(&p, 0, 7 * 24 * hour).is_ok());
        assert_eq!(
            check_start(&p, 0, 7 * 24 * hour + 1).unwrap_err().code(),
            "BOOKING_HORIZON_EXCEEDED"
        );
        assert!(check_cutoff(&p, 0, 12 * hour).is_ok());
        assert_eq!(
            check_cutoff(&p, 1, 12 * hour).unwrap_err().code(),
            "BOOKING_CUTOFF_PASSED"
        );
        assert_eq!(
            check_checkin(&p, 0, 16 * 60_000, 60 * 60_000).unwrap_err().code(),
            "CHECKIN_TOO_EARLY"
        );
        assert!(check_checkin(&p, 0, 15 * 60_000, 60 * 60_000).is_ok());
        assert_eq!(
            check_checkin(&p, 60 * 60_000, 0, 60 * 60_000).unwrap_err().code(),
            "CHECKIN_WINDOW_CLOSED"
        );
        assert_eq!(check_no_show(&p, 0, 0).unwrap_err().code(), "NO_SHOW_TOO_EARLY");
        assert!(check_no_show(&p, 15 * 60_000, 0).is_ok());
    }
}

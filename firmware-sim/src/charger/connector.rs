//! One connector (1.6) or EVSE (2.0.1): what is plugged in, who is authorised, the transaction,
//! the reservation, availability and faults, and the status all of that adds up to.

use super::ev::Ev;
use chrono::{DateTime, Utc};

/// An open transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The station's own number for it (1.6 messages refer to it until the id is known).
    pub local: u64,
    /// 2.0.1 transaction id (chosen by the station), or the 1.6 central id once known.
    pub id: String,
    /// Who started it.
    pub token: String,
    /// The token's type (2.0.1 `IdTokenEnumType`).
    pub token_type: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// Register reading at the start, in Wh.
    pub meter_start_wh: f64,
    /// 2.0.1 TransactionEvent sequence number of the next event.
    pub seq_no: u64,
    /// 2.0.1 remoteStartId, if a RequestStartTransaction started it.
    pub remote_start_id: Option<i64>,
    /// Whether energy flows (authorised and plugged).
    pub energising: bool,
    /// ISO 15118: EV schedules proposed so far in this transaction.
    pub ev_schedules: u32,
}

/// A token authorised at a connector, waiting for the cable.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The token.
    pub token: String,
    /// Its 2.0.1 type.
    pub token_type: String,
    /// The reservation it uses.
    pub reservation: Option<i64>,
    /// The 2.0.1 remoteStartId of a remote start.
    pub remote_start_id: Option<i64>,
    /// When it was authorised (it lapses after ConnectionTimeOut).
    pub at: tokio::time::Instant,
}

/// A reservation held on the connector.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Reservation id.
    pub id: i64,
    /// The token it is for.
    pub token: String,
    /// Its parent/group token, which may also use it.
    pub group: Option<String>,
    /// When it lapses.
    pub expiry: DateTime<Utc>,
}

/// Availability as ChangeAvailability sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Usable.
    Operative,
    /// Out of service.
    Inoperative,
}

/// A connector's state.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Connector (1.6) or EVSE (2.0.1) id, from 1.
    pub id: u32,
    /// Connector type (2.0.1 spelling).
    pub connector_type: String,
    /// Maximum power in W.
    pub max_w: f64,
    /// Phases.
    pub phases: u8,
    /// The EV, when one is plugged in.
    pub ev: Option<Ev>,
    /// A token authorised before the cable was plugged in.
    pub authorized: Option<Authorized>,
    /// The open transaction.
    pub tx: Option<Transaction>,
    /// A transaction ended but the cable is still plugged in.
    pub finishing: bool,
    /// Reservation.
    pub reservation: Option<Reservation>,
    /// Availability.
    pub availability: Availability,
    /// Availability to apply when the transaction ends (ChangeAvailability answered Scheduled).
    pub scheduled: Option<Availability>,
    /// Fault error code (1.6 `errorCode`), when faulted.
    pub fault: Option<String>,
    /// Energy register in Wh (monotonic, survives restarts with a state directory).
    pub register_wh: f64,
    /// Power now, in W.
    pub power_w: f64,
    /// Whether the profile limit is what holds the power at zero.
    pub limited_to_zero: bool,
    /// The status last reported to the central system.
    pub reported: Option<Status>,
}

/// The status of a connector, in 1.6 terms; 2.0.1 reports the connector part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Free.
    Available,
    /// EV plugged or token presented, no energy yet.
    Preparing,
    /// Energy flows.
    Charging,
    /// The EV takes no energy.
    SuspendedEV,
    /// The station offers no energy.
    SuspendedEVSE,
    /// Transaction over, cable still plugged.
    Finishing,
    /// Reserved.
    Reserved,
    /// Out of service.
    Unavailable,
    /// Faulted.
    Faulted,
}

impl Status {
    /// The 1.6 `ChargePointStatus` spelling.
    pub fn v16(self) -> &'static str {
        match self {
            Status::Available => "Available",
            Status::Preparing => "Preparing",
            Status::Charging => "Charging",
            Status::SuspendedEV => "SuspendedEV",
            Status::SuspendedEVSE => "SuspendedEVSE",
            Status::Finishing => "Finishing",
            Status::Reserved => "Reserved",
            Status::Unavailable => "Unavailable",
            Status::Faulted => "Faulted",
        }
    }

    /// The 2.0.1 `ConnectorStatusEnumType` spelling.
    pub fn v201(self) -> &'static str {
        match self {
            Status::Available => "Available",
            Status::Preparing | Status::Charging | Status::SuspendedEV | Status::SuspendedEVSE | Status::Finishing => {
                "Occupied"
            }
            Status::Reserved => "Reserved",
            Status::Unavailable => "Unavailable",
            Status::Faulted => "Faulted",
        }
    }
}

impl Connector {
    /// A free, operative connector.
    pub fn new(id: u32, connector_type: &str, max_w: f64, phases: u8, register_wh: f64) -> Connector {
        Connector {
            id,
            connector_type: connector_type.to_string(),
            max_w,
            phases,
            ev: None,
            authorized: None,
            tx: None,
            finishing: false,
            reservation: None,
            availability: Availability::Operative,
            scheduled: None,
            fault: None,
            register_wh,
            power_w: 0.0,
            limited_to_zero: false,
            reported: None,
        }
    }

    /// The status the state adds up to.
    pub fn status(&self) -> Status {
        if self.fault.is_some() {
            return Status::Faulted;
        }
        if let Some(tx) = &self.tx {
            if !tx.energising {
                return Status::Preparing;
            }
            return if self.power_w > 0.0 {
                Status::Charging
            } else if self.limited_to_zero {
                Status::SuspendedEVSE
            } else {
                Status::SuspendedEV
            };
        }
        if self.availability == Availability::Inoperative {
            return Status::Unavailable;
        }
        if self.finishing && self.ev.is_some() {
            return Status::Finishing;
        }
        if self.reservation.is_some() && self.ev.is_none() {
            return Status::Reserved;
        }
        if self.ev.is_some() || self.authorized.is_some() {
            return Status::Preparing;
        }
        Status::Available
    }

    /// Whether `token` (or its group) may use this connector's reservation, or there is none.
    pub fn reservation_admits(&self, token: &str, group: Option<&str>) -> bool {
        match &self.reservation {
            None => true,
            Some(r) => r.token == token || (r.group.is_some() && r.group.as_deref() == group),
        }
    }

    /// Whether a new transaction could start here.
    pub fn usable(&self) -> bool {
        self.fault.is_none() && self.availability == Availability::Operative && self.tx.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Ev {
        Ev {
            capacity_wh: 1.0,
            soc_percent: 0.0,
            max_w: 1.0,
        }
    }

    fn tx(energising: bool) -> Transaction {
        Transaction {
            ev_schedules: 0,
            local: 1,
            id: "1".into(),
            token: "T".into(),
            token_type: "ISO14443".into(),
            started: Utc::now(),
            meter_start_wh: 0.0,
            seq_no: 0,
            remote_start_id: None,
            energising,
        }
    }

    #[test]
    fn status_follows_the_session() {
        let mut c = Connector::new(1, "cType2", 22_000.0, 3, 0.0);
        assert_eq!(c.status(), Status::Available);
        c.ev = Some(ev());
        assert_eq!(c.status(), Status::Preparing);
        c.tx = Some(tx(true));
        c.power_w = 7000.0;
        assert_eq!(c.status(), Status::Charging);
        c.power_w = 0.0;
        assert_eq!(c.status(), Status::SuspendedEV);
        c.limited_to_zero = true;
        assert_eq!(c.status(), Status::SuspendedEVSE);
        c.tx = None;
        c.finishing = true;
        assert_eq!(c.status(), Status::Finishing);
        c.ev = None;
        assert_eq!(c.status(), Status::Available);
        c.fault = Some("GroundFailure".into());
        assert_eq!(c.status(), Status::Faulted);
        assert_eq!(c.status().v201(), "Faulted");
    }

    #[test]
    fn reservations_and_availability() {
        let mut c = Connector::new(1, "cType2", 22_000.0, 3, 0.0);
        c.reservation = Some(Reservation {
            id: 5,
            token: "OWNER".into(),
            group: Some("FLEET".into()),
            expiry: Utc::now(),
        });
        assert_eq!(c.status(), Status::Reserved);
        assert!(c.reservation_admits("OWNER", None));
        assert!(c.reservation_admits("OTHER", Some("FLEET")));
        assert!(!c.reservation_admits("OTHER", None));
        c.availability = Availability::Inoperative;
        assert_eq!(c.status(), Status::Unavailable);
        assert!(!c.usable());
        assert_eq!(Status::SuspendedEV.v201(), "Occupied");
    }
}

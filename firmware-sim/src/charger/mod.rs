//! One simulated charging station with real firmware behaviour, for `run` and `scenario`.
//!
//! # Layout
//! - [`engine`]: the station task: link (connect, backoff, reboot), registration, the one call
//!   in flight, timers, and dispatch of everything the central system sends.
//! - [`session`]: plug, authorise, start, meter, stop: the charging session, shared by both
//!   versions; `v16` and `v201` write its messages and answer the central system's calls,
//!   through `operations` where both versions do the same thing.
//! - `iso15118`: the EV's side of ISO 15118 smart charging (2.0.1 K15-K17).
//! - `security`: the station side of OCPP security: its certificate (CSR, CertificateSigned,
//!   renewal), password and security/network profile changes with reconnects, and
//!   CustomerInformation; over [`certificate`] (key pair, CSR, chain checks) and [`network`]
//!   (slots, priority, credentials, persisted in the state directory).
//! - [`connector`], [`ev`], [`profiles`], [`settings`], [`local_auth`], [`outbox`]: plain state
//!   and rules, unit-tested without a socket.
//!
//! A station runs as one tokio task. It is driven through a [`Handle`]: [`Control`]s in, a
//! broadcast of [`Event`]s out (every frame, status change, transaction and schema violation),
//! which is how `run` logs, how scenarios assert, and how the end-to-end tests watch it.

pub mod certificate;
pub mod connector;
mod engine;
pub mod ev;
mod iso15118;
pub mod local_auth;
pub mod network;
mod operations;
pub mod outbox;
pub mod profiles;
mod security;
mod session;
pub mod settings;
mod v16;
mod v201;

use crate::spec::StationSpec;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

/// A command to a running station (a person at the charger, or the test driving it).
#[derive(Debug, Clone)]
pub enum Control {
    /// Plug the EV into connector/EVSE `connector` (from 1).
    Plug(u32),
    /// Unplug the EV.
    Unplug(u32),
    /// Present an id token (RFID card) at a connector: starts, or stops its own transaction.
    Present(u32, String),
    /// Stop the connector's transaction locally (the stop button).
    Stop(u32),
    /// Raise a fault with a 1.6 error code (e.g. `GroundFailure`).
    Fault(u32, String),
    /// Clear the fault.
    ClearFault(u32),
    /// Set the plugged (or next) EV's state of charge, in percent.
    SetSoc(u32, f64),
    /// Set the most power the plugged (or next) EV accepts, in kW.
    SetEvPower(u32, f64),
    /// ISO 15118: the EV on the connector renegotiates (K17): NotifyEVChargingNeeds again.
    Renegotiate(u32),
    /// Drop the network link and stay offline.
    Offline,
    /// Come back online.
    Online,
    /// Answer the next call of `action` from the central system with this payload instead of
    /// the firmware's own answer (`Err((code, description))` sends a CALLERROR).
    Override(String, Result<Value, (String, String)>),
    /// Send a call of the station's choosing.
    Call(String, Value),
    /// Close the link cleanly and end the task.
    Shutdown,
}

/// Something the station did or saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// The WebSocket opened.
    Connected,
    /// The WebSocket closed or failed.
    Disconnected(String),
    /// A frame went out (`true`) or came in.
    Frame(bool, String),
    /// BootNotification answered with this status.
    Booted(String),
    /// A connector's reported status (1.6 or 2.0.1 spelling).
    Status(u32, String),
    /// A transaction started on a connector; the string is its 2.0.1 id or the 1.6 local number.
    TransactionStarted(u32, String),
    /// A transaction ended, with the stop reason.
    TransactionEnded(u32, String),
    /// The central system sent a call (after validation).
    CallReceived(String, Value),
    /// The central system answered the station's call: payload or `code: description`.
    Response(String, Result<Value, String>),
    /// Something the central system sent broke the schema or the protocol.
    Violation(String),
    /// A token or request was refused at a connector.
    Refused(u32, String),
    /// The station is rebooting (Reset, firmware update).
    Rebooting,
    /// Certificates, passwords, security and network profiles: what changed or was refused.
    Security(String),
}

/// The handle of a running station.
pub struct Handle {
    control: mpsc::UnboundedSender<Control>,
    events: broadcast::Sender<Event>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Handle {
    /// Sends a control; ignored when the station has ended.
    pub fn send(&self, control: Control) {
        let _ = self.control.send(control);
    }

    /// A sender of controls that outlives borrows of the handle.
    pub fn sender(&self) -> mpsc::UnboundedSender<Control> {
        self.control.clone()
    }

    /// Subscribes to the station's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Shuts the station down cleanly and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.control.send(Control::Shutdown);
        self.task.await?
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts a station task, with a subscription that sees its first event. Fails when the spec
/// is invalid or its state directory cannot be read.
pub fn spawn(spec: StationSpec) -> anyhow::Result<(Handle, broadcast::Receiver<Event>)> {
    spec.check()?;
    let (control, rx) = mpsc::unbounded_channel();
    let (events, first) = broadcast::channel(4096);
    let charger = engine::Charger::new(spec, rx, events.clone())?;
    let task = tokio::spawn(charger.run());
    Ok((Handle { control, events, task }, first))
}

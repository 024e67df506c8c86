//! One charger's WebSocket session: reads frames, answers CALLs, sends the central system's
//! calls one at a time, and keeps the connection alive.
//!
//! A single task owns the socket. Inbound CALLs are handled one after another (OCPP allows a
//! charger one outstanding CALL), outbound calls wait in a queue while one is in flight (the
//! spec allows one per direction), and each has a deadline after which its caller gets
//! [`CallFailure::Timeout`]. The session ends when the charger closes, stays silent for two
//! ping intervals, is replaced by a newer connection of the same station, or the server shuts
//! down (close code 1001).

use super::pending::MessageRate;
use super::registry::{CallFailure, CallOutcome, OutboundCall, SessionCommand, SessionHandle};
use crate::app::AppState;
use crate::handlers::{self, Ctx};
use crate::metrics::{ActionLabels, ErrorLabels, MessageLabels};
use crate::store::frames::FrameRow;
use crate::store::types::Ts;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chrono::Utc;
use ocpp::frame::{Call, CallError, CallResult, Frame};
use ocpp::{Fault, Version, Violation};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the upgrade handler learned about the connection.
#[derive(Debug, Clone)]
pub struct SessionInit {
    /// Station id from the URL.
    pub station_id: Arc<str>,
    /// Negotiated version.
    pub version: Version,
    /// Registration status at connection time.
    pub registration: String,
}

struct InFlight {
    id: String,
    action: String,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<CallOutcome, CallFailure>>,
}

struct Session {
    state: AppState,
    station_id: Arc<str>,
    version: Version,
    registration: String,
    known_transactions: std::collections::HashSet<i64>,
    v201_transactions: std::collections::HashMap<String, handlers::KnownTransaction>,
    active_by_evse: std::collections::HashMap<u32, Option<i64>>,
    boot_check: Option<handlers::BootCheck>,
    /// When `last_seen_at` was last written (each message counts, writes are throttled).
    last_seen_written: Instant,
    in_flight: Option<InFlight>,
    queue: VecDeque<OutboundCall>,
    next_id: u64,
    /// Messages allowed while the station is not Accepted.
    not_accepted_rate: MessageRate,
}

/// Why the loop ended, for the log.
#[derive(Debug)]
enum End {
    ClosedByStation,
    Replaced,
    Silent,
    Shutdown,
    SocketError,
    TooBig,
    RateLimited,
}

/// Runs a session until the connection ends.
pub async fn run(mut socket: WebSocket, state: AppState, init: SessionInit) {
    let conn_id = state.registry.next_conn_id();
    let (tx, mut commands) = mpsc::channel(64);
    let handle = SessionHandle {
        conn_id,
        version: init.version,
        tx,
    };
    if let Some(old) = state.registry.insert(init.station_id.clone(), handle) {
        // The old socket may be half-dead; it closes itself when it reads this.
        let _ = old.tx.try_send(SessionCommand::Replace);
    } else {
        state.metrics.connected_stations.inc();
    }
    if let Err(e) = state
        .store
        .set_connected(&init.station_id, init.version, Ts::now(), &state.node_id)
        .await
    {
        tracing::error!(station = %init.station_id, error = %e, "could not record the connection");
    }
    tracing::info!(station = %init.station_id, version = %init.version, conn_id, "station connected");

    let mut session = Session {
        state: state.clone(),
        station_id: init.station_id.clone(),
        version: init.version,
        registration: init.registration,
        known_transactions: Default::default(),
        v201_transactions: Default::default(),
        active_by_evse: Default::default(),
        boot_check: None,
        last_seen_written: Instant::now(),
        in_flight: None,
        queue: VecDeque::new(),
        next_id: 0,
        not_accepted_rate: MessageRate::new(state.config.pending_message_rate, std::time::Instant::now()),
    };
    let ping_every = state.config.ping_interval();
    let mut ping = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    ping.reset();
    let mut last_heard = Instant::now();
    let mut commands_open = true;
    let shutdown = state.shutdown.clone();

    let end = loop {
        let deadline = session.in_flight.as_ref().map(|f| f.deadline);
        let boot_due = session.boot_check.map(|c| c.due);
        tokio::select! {
            _ = shutdown.cancelled() => {
                close(&mut socket, 1001, "central system shutting down").await;
                break End::Shutdown;
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(_) | Message::Binary(_))) if !session.within_rate() => {
                    close(&mut socket, 1008, "too many messages before acceptance").await;
                    break End::RateLimited;
                }
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    session.heard().await;
                    if session.on_text(&mut socket, text.as_str()).await.is_err() {
                        break End::SocketError;
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    last_heard = Instant::now();
                    session.heard().await;
                    // OCPP-J is text only; a binary frame is answered like malformed text, and
                    // invalid UTF-8 is unreadable: repairing it could yield another, valid CALL.
                    let text = std::str::from_utf8(&bytes).unwrap_or("<binary frame, not UTF-8>").to_owned();
                    if session.on_text(&mut socket, &text).await.is_err() {
                        break End::SocketError;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    last_heard = Instant::now();
                    session.heard().await;
                }
                Some(Ok(Message::Close(_))) | None => break End::ClosedByStation,
                Some(Err(e)) => {
                    if is_too_big(e) {
                        // tungstenite only reports it; RFC 6455 has a close code for it.
                        close(&mut socket, 1009, "message too big").await;
                        break End::TooBig;
                    }
                    break End::SocketError;
                }
            },
            cmd = commands.recv(), if commands_open => match cmd {
                Some(SessionCommand::Call(call)) => session.queue.push_back(call),
                Some(SessionCommand::Replace) => {
                    close(&mut socket, 1000, "replaced by a new connection").await;
                    break End::Replaced;
                }
                None => commands_open = false,
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if let Some(f) = session.in_flight.take() {
                    tracing::warn!(station = %session.station_id, action = %f.action, id = %f.id, "call timed out");
                    let _ = f.reply.send(Err(CallFailure::Timeout));
                }
            }
            _ = tokio::time::sleep_until(boot_due.unwrap_or_else(Instant::now)), if boot_due.is_some() => {
                if let Some(check) = session.boot_check.take() {
                    handlers::abandon_unreported(&session.state, &session.station_id, check.booted_at).await;
                }
            }
            _ = ping.tick(), if ping_every.is_some() => {
                let every = ping_every.unwrap_or_default();
                if last_heard.elapsed() > every * 2 {
                    close(&mut socket, 1001, "no answer to pings").await;
                    break End::Silent;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break End::SocketError;
                }
            }
        }
        if session.pump(&mut socket).await.is_err() {
            break End::SocketError;
        }
    };

    // Whoever waits for an answer learns that none will come.
    if let Some(f) = session.in_flight.take() {
        let _ = f.reply.send(Err(CallFailure::Disconnected));
    }
    for queued in session.queue.drain(..) {
        let _ = queued.reply.send(Err(CallFailure::Disconnected));
    }
    commands.close();
    while let Ok(cmd) = commands.try_recv() {
        if let SessionCommand::Call(c) = cmd {
            let _ = c.reply.send(Err(CallFailure::Disconnected));
        }
    }
    if state.registry.remove(&init.station_id, conn_id) {
        state.metrics.connected_stations.dec();
        if let Err(e) = state
            .store
            .set_disconnected(&init.station_id, Ts::now(), &state.node_id)
            .await
        {
            tracing::error!(station = %init.station_id, error = %e, "could not record the disconnection");
        }
    }
    tracing::info!(station = %init.station_id, conn_id, reason = ?end, "station disconnected");
}

/// Whether a read failed on a message or frame above the configured size limit (logged).
fn is_too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    let inner = e.into_inner();
    let too_big = matches!(
        inner.downcast_ref::<Error>(),
        Some(Error::Capacity(CapacityError::MessageTooLong { .. }))
    );
    tracing::debug!(error = %inner, too_big, "socket error");
    too_big
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

impl Session {
    /// Advances the station's `last_seen_at` for any message, at most once per
    /// `last_seen_write_ms` (a write per message would cost the hot path a statement each).
    async fn heard(&mut self) {
        let every = Duration::from_millis(self.state.config.last_seen_write_ms);
        if self.last_seen_written.elapsed() < every {
            return;
        }
        self.last_seen_written = Instant::now();
        if let Err(e) = self.state.store.touch_station(&self.station_id, Ts::now()).await {
            tracing::error!(station = %self.station_id, error = %e, "could not record when the station was last seen");
        }
    }

    fn log_frame(&self, direction: &'static str, text: &str) {
        let accepted = self.registration == "Accepted";
        self.state.writer.frame_with(accepted, || {
            FrameRow::new(
                self.station_id.clone(),
                direction,
                text,
                self.state.config.max_frame_bytes,
            )
        });
    }

    /// Whether another message is allowed: always once Accepted, else within the rate limit.
    fn within_rate(&mut self) -> bool {
        self.registration == "Accepted" || self.not_accepted_rate.allow(std::time::Instant::now())
    }

    async fn send_text(&self, socket: &mut WebSocket, text: String) -> Result<(), axum::Error> {
        self.log_frame("out", &text);
        socket.send(Message::Text(text.into())).await
    }

    async fn on_text(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), axum::Error> {
        self.log_frame("in", text);
        // Most traffic is MeterValues: read it without a JSON tree when it is plainly valid.
        // Anything the fast path declines (including every error) takes the general path below.
        if self.registration == "Accepted" && text.len() <= self.state.config.max_frame_bytes {
            if let Some(call) = ocpp::fast_path::meter_values(self.version, text) {
                return self.on_meter_values(socket, call).await;
            }
        }
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                if e.is_response {
                    tracing::warn!(station = %self.station_id, error = %e.violation, "malformed response ignored");
                    return Ok(());
                }
                tracing::warn!(station = %self.station_id, error = %e.violation, "malformed frame");
                return self.send_error(socket, e.to_call_error(self.version), "unknown").await;
            }
        };
        match frame {
            Frame::Call(call) => self.on_call(socket, call, text.len()).await,
            Frame::CallResult(r) => {
                self.on_response(r.id.clone(), CallOutcome::Result(r.payload), None);
                Ok(())
            }
            Frame::CallError(e) => {
                self.on_response(
                    e.id.clone(),
                    CallOutcome::Error {
                        code: e.code.clone(),
                        description: e.description,
                        details: e.details,
                    },
                    Some(e.code),
                );
                Ok(())
            }
        }
    }

    async fn on_call(&mut self, socket: &mut WebSocket, call: Call, size: usize) -> Result<(), axum::Error> {
        let started = std::time::Instant::now();
        // Label values come from the catalogue only: a charger inventing action names must not
        // be able to create unbounded metric series.
        let label = ocpp::catalogue::canonical(self.version, &call.action).unwrap_or("unknown");
        self.count_call(label);
        let result = if size > self.state.config.max_frame_bytes {
            Err(Violation::new(
                Fault::Generic,
                format!(
                    "frame of {size} bytes exceeds the limit of {} bytes",
                    self.state.config.max_frame_bytes
                ),
            ))
        } else {
            handlers::dispatch(&mut self.ctx(), &call).await
        };
        self.answer(socket, &call.id, &call.action, label, started, result)
            .await
    }

    async fn on_meter_values(
        &mut self,
        socket: &mut WebSocket,
        call: ocpp::fast_path::MeterValuesCall<'_>,
    ) -> Result<(), axum::Error> {
        let started = std::time::Instant::now();
        self.count_call("MeterValues");
        let result = handlers::meter_values(&mut self.ctx(), call.target, call.transaction_id, call.samples)
            .await
            .map(|()| Value::Object(Default::default()));
        self.answer(socket, call.id, "MeterValues", "MeterValues", started, result)
            .await
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            state: &self.state,
            station_id: &self.station_id,
            version: self.version,
            registration: &mut self.registration,
            known_transactions: &mut self.known_transactions,
            v201_transactions: &mut self.v201_transactions,
            active_by_evse: &mut self.active_by_evse,
            boot_check: &mut self.boot_check,
            now: Utc::now(),
        }
    }

    fn count_call(&self, label: &'static str) {
        self.state
            .metrics
            .messages
            .get_or_create(&MessageLabels {
                action: label,
                direction: "in",
                kind: "call",
            })
            .inc();
    }

    /// Sends the CALLRESULT or CALLERROR for a handled CALL and records its handling time.
    async fn answer(
        &self,
        socket: &mut WebSocket,
        id: &str,
        action: &str,
        label: &'static str,
        started: std::time::Instant,
        result: Result<Value, Violation>,
    ) -> Result<(), axum::Error> {
        let sent = match result {
            Ok(payload) => {
                let text = Frame::CallResult(CallResult {
                    id: id.to_owned(),
                    payload,
                })
                .to_text();
                self.send_text(socket, text).await
            }
            Err(violation) => {
                tracing::info!(station = %self.station_id, action = %action, error = %violation, "CALL refused");
                let error = CallError::from_violation(Some(id), &violation, self.version);
                self.send_error(socket, error, label).await
            }
        };
        self.state
            .metrics
            .handling_seconds
            .get_or_create(&ActionLabels { action: label })
            .observe(started.elapsed().as_secs_f64());
        sent
    }

    async fn send_error(
        &self,
        socket: &mut WebSocket,
        error: CallError,
        action: &'static str,
    ) -> Result<(), axum::Error> {
        let metrics = &self.state.metrics;
        metrics
            .call_errors
            .get_or_create(&ErrorLabels {
                code: error.code.clone(),
                direction: "sent",
            })
            .inc();
        metrics
            .messages
            .get_or_create(&MessageLabels {
                action,
                direction: "out",
                kind: "error",
            })
            .inc();
        self.send_text(socket, Frame::CallError(error).to_text()).await
    }

    fn on_response(&mut self, id: String, outcome: CallOutcome, error_code: Option<String>) {
        match self.in_flight.take() {
            Some(f) if f.id == id => {
                let kind = if error_code.is_some() { "error" } else { "result" };
                self.state
                    .metrics
                    .messages
                    .get_or_create(&MessageLabels {
                        action: ocpp::catalogue::canonical(self.version, &f.action).unwrap_or("unknown"),
                        direction: "in",
                        kind,
                    })
                    .inc();
                if let Some(code) = error_code {
                    self.state
                        .metrics
                        .call_errors
                        .get_or_create(&ErrorLabels {
                            code,
                            direction: "received",
                        })
                        .inc();
                }
                let _ = f.reply.send(Ok(outcome));
            }
            other => {
                self.in_flight = other;
                // Late answers to timed-out calls land here too; they are logged, never answered.
                tracing::warn!(station = %self.station_id, id = %id, "response to an unknown message id ignored");
            }
        }
    }

    /// Sends the next queued call when none is in flight.
    async fn pump(&mut self, socket: &mut WebSocket) -> Result<(), axum::Error> {
        while self.in_flight.is_none() {
            let Some(call) = self.queue.pop_front() else {
                return Ok(());
            };
            if call.reply.is_closed() {
                continue;
            }
            self.next_id += 1;
            let id = format!("cs-{}", self.next_id);
            let text = Frame::Call(Call {
                id: id.clone(),
                action: call.action.clone(),
                payload: call.payload,
            })
            .to_text();
            self.state
                .metrics
                .messages
                .get_or_create(&MessageLabels {
                    action: ocpp::catalogue::canonical(self.version, &call.action).unwrap_or("unknown"),
                    direction: "out",
                    kind: "call",
                })
                .inc();
            self.send_text(socket, text).await?;
            self.in_flight = Some(InFlight {
                id,
                action: call.action,
                deadline: Instant::now() + self.state.config.call_timeout(),
                reply: call.reply,
            });
        }
        Ok(())
    }
}

//! Handlers of charger-initiated CALLs, one module per version, sharing the rules in
//! [`authorization`] and the storage helpers here.

pub mod authorization;
pub mod charging;
pub mod data_transfer;
pub mod v16;
pub mod v201;

use crate::app::AppState;
use crate::store::meter_values::MeterRow;
use crate::store::outbox::{self, bus_location};
use crate::store::types::Ts;
use crate::store::writer::{CommitFailed, SeqNoSeen};
use crate::store::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};
use ocpp::catalogue;
use ocpp::model::{Location, Sample};
use ocpp::schema::{self, Direction};
use ocpp::{Call, Fault, Version, Violation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// A 2.0.1 transaction as this connection knows it.
#[derive(Debug, Clone, Copy)]
pub struct KnownTransaction {
    /// The CSMS id.
    pub id: i64,
    /// The EVSE and connector stored on the row, once both are set.
    pub location: Option<Location>,
}

/// What a handler knows about the connection it serves.
pub struct Ctx<'a> {
    /// Shared service state.
    pub state: &'a AppState,
    /// The station on the other end.
    pub station_id: &'a Arc<str>,
    /// Its protocol version.
    pub version: Version,
    /// Registration status as of the last boot (`Accepted`, `Pending`, `Rejected`).
    pub registration: &'a mut String,
    /// CSMS transaction ids known to belong to this station (spares a query per 1.6 MeterValues).
    pub known_transactions: &'a mut std::collections::HashSet<i64>,
    /// 2.0.1 transactions seen on this connection, by the charger's transaction id.
    pub v201_transactions: &'a mut std::collections::HashMap<String, KnownTransaction>,
    /// Active transaction per EVSE as last seen on this connection (2.0.1 MeterValues carry no
    /// transaction id; this links them without a query per message).
    pub active_by_evse: &'a mut std::collections::HashMap<u32, Option<i64>>,
    /// Set by an accepted 2.0.1 boot: when the session should close the transactions the
    /// station has not reported on since (see [`abandon_unreported`]).
    pub boot_check: &'a mut Option<BootCheck>,
    /// The CSMS clock at receipt.
    pub now: DateTime<Utc>,
}

/// A pending check after a 2.0.1 boot.
#[derive(Debug, Clone, Copy)]
pub struct BootCheck {
    /// When to run it.
    pub due: tokio::time::Instant,
    /// The boot's receipt instant: Active transactions not heard of since are abandoned.
    pub booted_at: Ts,
}

impl Ctx<'_> {
    /// Whether CSMS transaction `id` belongs to this station, cached per connection.
    pub async fn owns_transaction(&mut self, id: i64) -> Result<bool, Violation> {
        if self.known_transactions.contains(&id) {
            return Ok(true);
        }
        let owned = self
            .state
            .store
            .transaction_belongs(self.station_id, id)
            .await
            .map_err(internal)?;
        if owned {
            self.remember_transaction(id);
        }
        Ok(owned)
    }

    /// The active transaction on an EVSE, from the per-connection cache or the database.
    pub async fn active_on_evse(&mut self, evse_id: u32) -> Result<Option<i64>, Violation> {
        if let Some(known) = self.active_by_evse.get(&evse_id) {
            return Ok(*known);
        }
        let active = self
            .state
            .store
            .active_transaction_on_evse(self.station_id, i64::from(evse_id))
            .await
            .map_err(internal)?;
        self.active_by_evse.insert(evse_id, active);
        Ok(active)
    }

    /// Records a transaction of this station in the per-connection cache (bounded).
    pub fn remember_transaction(&mut self, id: i64) {
        if self.known_transactions.len() >= 1024 {
            self.known_transactions.clear();
        }
        self.known_transactions.insert(id);
    }

    /// Records a 2.0.1 transaction of this connection (bounded, like the 1.6 cache).
    pub fn remember_v201_transaction(&mut self, station_tx_id: &str, id: i64, location: Option<Location>) {
        let known = KnownTransaction { id, location };
        // Every periodic event lands here: update in place rather than allocate the key again.
        if let Some(entry) = self.v201_transactions.get_mut(station_tx_id) {
            *entry = known;
            return;
        }
        if self.v201_transactions.len() >= 1024 {
            self.v201_transactions.clear();
        }
        self.v201_transactions.insert(station_tx_id.to_owned(), known);
    }

    /// `now` as stored.
    pub fn now_ts(&self) -> Ts {
        Ts::from_datetime(self.now)
    }

    /// Stores the payload as received (for messages whose content is kept, not interpreted).
    /// A security event also goes onto the bus, through the outbox in the same commit.
    pub async fn keep(&self, action: &str, payload: &Value) -> Result<(), Violation> {
        let events: Vec<_> = security_event(action, payload)
            .and_then(|event| outbox::envelope(self.station_id, self.now, event))
            .into_iter()
            .collect();
        self.state
            .messages
            .keep(
                &self.state.store,
                self.station_id,
                action,
                &payload.to_string(),
                &events,
                self.now_ts(),
            )
            .await
            .map_err(internal)
    }

    /// Stores readings (and a seqNo to record with them) through the batch writer; returns once
    /// they are committed, so the answer that follows never acknowledges readings that a crash
    /// could still lose. With `summarize`, a transaction's readings update its meter summary,
    /// and when the cadence has passed the `meterSummary` event commits with them (a
    /// transaction event that carries readings writes its own summary instead).
    pub async fn store_samples(
        &self,
        location: Location,
        transaction_id: Option<i64>,
        samples: Vec<Sample>,
        seq_no: Option<SeqNoSeen>,
        summarize: bool,
    ) -> Result<(), Violation> {
        let due = match transaction_id {
            Some(tx) if summarize && !samples.is_empty() => {
                let at = bus_location(self.version, location);
                self.state
                    .meter_summaries
                    .observe(tx, at, &samples, self.now)
                    .map(|snapshot| (tx, snapshot))
            }
            _ => None,
        };
        let events: Vec<_> = due
            .as_ref()
            .and_then(|(tx, snapshot)| outbox::envelope(self.station_id, snapshot.at, snapshot.event(*tx)))
            .into_iter()
            .collect();
        let rows = MeterRow::group(
            self.station_id,
            transaction_id,
            i64::from(location.evse_id),
            i64::from(location.connector_id),
            samples,
        );
        self.state
            .writer
            .commit_with_events(rows, seq_no, events)
            .await
            .map_err(not_committed)?;
        if let Some((tx, _)) = due {
            self.state.meter_summaries.summarized(tx, self.now);
        }
        Ok(())
    }
}

/// MeterValues of either version once read (by the general path or [`ocpp::fast_path`]): links
/// the readings to their transaction and stores them (committed before this returns). `target` is the 1.6 connector or the
/// 2.0.1 EVSE; `transaction_id` the 1.6 one, trusted only if it belongs to this station.
pub async fn meter_values(
    ctx: &mut Ctx<'_>,
    target: u32,
    transaction_id: Option<i64>,
    samples: Vec<Sample>,
) -> Result<(), Violation> {
    let (location, tx) = match ctx.version {
        Version::V16 => {
            let tx = match transaction_id {
                Some(id) if ctx.owns_transaction(id).await? => Some(id),
                _ => None,
            };
            (Location::from_v16_connector(target), tx)
        }
        Version::V201 => {
            // Readings of an EVSE during a transaction count towards it; EVSE 0 is the main meter.
            let tx = if target == 0 {
                None
            } else {
                ctx.active_on_evse(target).await?
            };
            (
                Location {
                    evse_id: target,
                    connector_id: 0,
                },
                tx,
            )
        }
    };
    ctx.store_samples(location, tx, samples, None, true).await
}

/// The bus event of a SecurityEventNotification (the 1.6 security extension and 2.0.1 name
/// their fields alike), from its validated payload.
fn security_event(action: &str, payload: &Value) -> Option<evcs_bus::Event> {
    if action != "SecurityEventNotification" {
        return None;
    }
    let kind = payload.get("type").and_then(Value::as_str)?;
    Some(evcs_bus::Event::SecurityEvent {
        kind: kind.to_owned(),
        tech_info: payload.get("techInfo").and_then(Value::as_str).map(str::to_owned),
    })
}

/// SignCertificate of either version (validated, so `csr` is present): the answer, and when
/// Accepted a task that sends CertificateSigned once this answer is out (see
/// [`crate::certificates`]).
pub async fn sign_certificate(ctx: &Ctx<'_>, csr: &str, certificate_type: Option<&str>) -> Value {
    let outcome =
        crate::certificates::sign_request(ctx.state, ctx.station_id, ctx.version, csr, certificate_type, ctx.now).await;
    if let Some((serial, chain)) = outcome.deliver {
        tokio::spawn(crate::certificates::deliver(
            ctx.state.clone(),
            ctx.station_id.to_string(),
            ctx.version,
            serial,
            chain,
        ));
    }
    outcome.response
}

/// SecurityEventNotification of either version (same fields): stored as a security event.
pub async fn security_event_notification(ctx: &Ctx<'_>, payload: &Value) -> Result<(), Violation> {
    let event_type = payload.get("type").and_then(Value::as_str).unwrap_or_default();
    let tech_info = payload.get("techInfo").and_then(Value::as_str);
    let at = payload
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| ctx.now_ts(), |t| Ts::from_datetime(t.with_timezone(&Utc)));
    ctx.state
        .store
        .insert_security_event(ctx.station_id, "station", event_type, tech_info, at)
        .await
        .map_err(internal)
}

/// Answers one CALL: checks direction and state, validates, and runs the version's handler.
pub async fn dispatch(ctx: &mut Ctx<'_>, call: &Call) -> Result<Value, Violation> {
    let Some(initiator) = catalogue::initiator(ctx.version, &call.action) else {
        return Err(Violation::new(
            Fault::NotImplemented,
            format!("{} is not an OCPP {} action", call.action, ctx.version),
        ));
    };
    if !initiator.station_may_send() {
        return Err(Violation::new(
            Fault::NotSupported,
            format!("{} is sent by the central system, not by a charger", call.action),
        ));
    }
    if ctx.registration.as_str() != "Accepted" && call.action != "BootNotification" {
        // Both versions forbid other requests until the boot is accepted.
        return Err(Violation::new(
            Fault::Security,
            format!(
                "boot not accepted (registration {}): only BootNotification is allowed",
                ctx.registration
            ),
        ));
    }
    schema::validate(ctx.version, &call.action, Direction::Request, &call.payload)?;
    let response = match ctx.version {
        Version::V16 => v16::handle(ctx, call).await?,
        Version::V201 => v201::handle(ctx, call).await?,
    };
    if cfg!(debug_assertions) {
        // Our own answers must satisfy the official schemas; checked in every test build.
        if let Err(v) = schema::validate(ctx.version, &call.action, Direction::Response, &response) {
            tracing::error!(action = %call.action, violation = %v, "central system built an invalid response");
        }
    }
    Ok(response)
}

/// BootNotification for both versions: record what the station reported and answer with its
/// registration status (and the heartbeat or retry interval that goes with it).
pub async fn boot(ctx: &mut Ctx<'_>, info: ocpp::model::BootInfo) -> Result<Value, Violation> {
    let store = &ctx.state.store;
    let status = store
        .station_auth(ctx.station_id)
        .await
        .map_err(internal)?
        .map_or_else(|| "Rejected".to_string(), |a| a.registration_status);
    store
        .record_boot(ctx.station_id, &info, &status, ctx.now_ts())
        .await
        .map_err(internal)?;
    let interval = if status == "Accepted" {
        ctx.state.config.heartbeat_interval
    } else {
        ctx.state.config.boot_retry_interval
    };
    *ctx.registration = status.clone();
    if status == "Accepted" && ctx.version == Version::V201 {
        // A rebooted 2.0.1 station sends what it queued for its transactions, and periodic
        // events for those still running; the ones it is silent about it no longer has.
        *ctx.boot_check = Some(BootCheck {
            due: tokio::time::Instant::now() + ctx.state.config.abandon_after_boot(),
            booted_at: ctx.now_ts(),
        });
    }
    Ok(serde_json::json!({ "status": status, "currentTime": rfc3339(ctx.now), "interval": interval }))
}

/// Closes what the central system still holds `Active` on an EVSE that the station has shown
/// to be free or in another transaction (see [`crate::store::Store::abandon_on_evse`]).
pub async fn abandon_on_evse(
    ctx: &mut Ctx<'_>,
    evse_id: u32,
    started_by: Ts,
    except: Option<i64>,
    why: &str,
) -> Result<(), Violation> {
    let closed = ctx
        .state
        .store
        .abandon_on_evse(
            ctx.station_id,
            i64::from(evse_id),
            started_by,
            except,
            why,
            ctx.now_ts(),
        )
        .await
        .map_err(internal)?;
    if !closed.is_empty() {
        tracing::info!(station = %ctx.station_id, evse = evse_id, transactions = ?closed, reason = why, "transactions closed as abandoned");
        if ctx
            .active_by_evse
            .get(&evse_id)
            .copied()
            .flatten()
            .is_some_and(|id| closed.contains(&id))
        {
            ctx.active_by_evse.remove(&evse_id);
        }
    }
    Ok(())
}

/// Closes the transactions of a 2.0.1 station that it has not reported on since its boot,
/// once the bound after that boot has passed (run by the session).
pub async fn abandon_unreported(state: &AppState, station_id: &str, booted_at: Ts) {
    let why = "the station booted and sent no event for it within the bound";
    match state
        .store
        .abandon_unreported(station_id, booted_at, why, Ts::now())
        .await
    {
        Ok(closed) if !closed.is_empty() => {
            tracing::info!(station = %station_id, transactions = ?closed, reason = why, "transactions closed as abandoned");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(station = %station_id, error = %e, "could not close unreported transactions"),
    }
}

/// Heartbeat for both versions.
pub async fn heartbeat(ctx: &Ctx<'_>) -> Result<Value, Violation> {
    ctx.state
        .store
        .touch_station(ctx.station_id, ctx.now_ts())
        .await
        .map_err(internal)?;
    Ok(serde_json::json!({ "currentTime": rfc3339(ctx.now) }))
}

/// Deserialises a validated payload into its typed form.
pub fn typed<T: DeserializeOwned>(payload: &Value) -> Result<T, Violation> {
    T::deserialize(payload).map_err(|e| {
        Violation::new(
            Fault::TypeConstraint,
            format!("payload does not fit the message type: {e}"),
        )
    })
}

/// A storage failure becomes InternalError for the charger and an error log for us.
pub fn internal(e: StoreError) -> Violation {
    tracing::error!(error = %e, "storage failed while handling a charger message");
    Violation::new(
        Fault::Internal,
        "the central system could not store the message; retry later",
    )
}

/// Readings the writer could not commit: InternalError, never a CALLRESULT, so the charger keeps
/// the message and sends it again (the writer has logged the cause).
fn not_committed(_: CommitFailed) -> Violation {
    Violation::new(
        Fault::Internal,
        "the central system could not store the readings; retry later",
    )
}

/// An RFC 3339 timestamp as OCPP writes them.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

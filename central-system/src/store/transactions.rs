//! Transactions of both versions, idempotent under replay.
//!
//! 1.6 starts are keyed by a replay key built from the StartTransaction payload, so a charger
//! that resends it after a reconnect gets the same transaction id back; 2.0.1 rows are keyed by
//! the charger's own transactionId, and any of Started/Updated/Ended may arrive first (offline
//! queues are not always replayed in order), so each of them creates the row if it is missing.
//!
//! A transaction is `Active`, `Ended` or `Refused` (its start was answered with a token status
//! other than Accepted). The central system closes an `Active` one itself when the station can
//! no longer be in it (see [`Store::abandon_on_evse`], [`Store::abandon_unreported`]) or when
//! an operator ends it ([`Store::end_by_operator`]); such a close records why, when, and the
//! last time the station was heard from about the transaction.

use super::outbox;
use super::types::Ts;
use super::writer::SeqNoSeen;
use super::{on_db, Store, StoreError};
use crate::outbox::MeterSnapshot;
use chrono::{DateTime, Utc};
use evcs_bus::{Event, EventEnvelope};
use ocpp::model::{Location, TransactionEnded, TransactionStarted, TransactionUpdated};
use ocpp::Version;
use serde::Serialize;
use service_kit::db::{on_tx, Tx};
use utoipa::ToSchema;

/// A transaction as the operator sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// CSMS id (the 1.6 transactionId).
    pub id: i64,
    /// Station.
    pub station_id: String,
    /// The charger's transaction id (2.0.1), or the 1.6 replay key.
    pub station_transaction_id: String,
    /// EVSE (1.6: connector) id.
    pub evse_id: i64,
    /// Connector id on the EVSE.
    pub connector_id: i64,
    /// Token that started it.
    pub id_token: Option<String>,
    /// `Active`, `Ended` or `Refused` (its token was not Accepted at the start).
    pub status: String,
    /// 2.0.1 charging state.
    pub charging_state: Option<String>,
    /// Start instant.
    pub started_at: Ts,
    /// End instant.
    pub ended_at: Option<Ts>,
    /// Energy register at start (Wh).
    pub meter_start_wh: Option<i64>,
    /// Energy register at stop (Wh).
    pub meter_stop_wh: Option<i64>,
    /// Energy delivered so far or in total (Wh), from the registers and readings.
    pub energy_wh: Option<i64>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Reservation consumed.
    pub reservation_id: Option<i64>,
    /// Highest 2.0.1 seqNo seen.
    pub last_seq_no: Option<i64>,
    /// Set when the station did not end it: `Abandoned` or `Operator`; for a `Refused`
    /// transaction, the token status its start was answered with.
    pub end_reason: Option<String>,
    /// Why the central system closed it, in words.
    pub end_note: Option<String>,
    /// When the central system closed it.
    pub closed_at: Option<Ts>,
    /// The last time the station reported on it (its last event or reading), recorded when the
    /// central system closed it.
    pub last_heard_at: Option<Ts>,
}

/// Who ended a transaction that the station did not end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// The station can no longer be in it.
    Abandoned,
    /// An operator ended it through the API.
    Operator,
}

impl Closure {
    /// The `end_reason` stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Closure::Abandoned => "Abandoned",
            Closure::Operator => "Operator",
        }
    }
}

/// The stored state of a transaction, as a replayed start needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TransactionState {
    /// The CSMS id.
    pub id: i64,
    /// `Active`, `Ended` or `Refused`.
    pub status: String,
    /// See [`Transaction::end_reason`].
    pub end_reason: Option<String>,
}

/// What an operator's end did.
#[derive(Debug, Clone)]
pub enum OperatorEnd {
    /// It was active and is now ended.
    Ended(Box<Transaction>),
    /// It was not active (its status is given).
    NotActive(String),
    /// No such transaction.
    NotFound,
}

/// Filters of the transaction list.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    /// Only this station.
    pub station_id: Option<String>,
    /// Only `Active`, `Ended` or `Refused`.
    pub status: Option<String>,
    /// Only this token.
    pub id_token: Option<String>,
}

// Energy falls back to the Outlet energy register readings when the start/stop registers are
// missing (2.0.1 chargers need not send them), so a running transaction shows progress.
const SELECT: &str = "SELECT t.id, t.station_id, t.station_tx_id AS station_transaction_id, t.evse_id, \
    t.connector_id, t.id_token, t.status, t.charging_state, t.started_at, t.ended_at, t.meter_start_wh, \
    t.meter_stop_wh, \
    CAST(COALESCE(t.meter_stop_wh, (SELECT MAX(m.energy_wh) FROM meter_values m WHERE m.transaction_id = t.id)) \
      - COALESCE(t.meter_start_wh, (SELECT MIN(m.energy_wh) FROM meter_values m WHERE m.transaction_id = t.id)) \
      AS BIGINT) AS energy_wh, \
    t.stop_reason, t.reservation_id, t.last_seq_no, t.end_reason, t.end_note, t.closed_at, t.last_heard_at \
    FROM transactions t";

// The last time the station reported on the transaction being closed: its newest reading or its
// last event, whichever is later (1.6 readings do not touch the row, so both are needed).
const LAST_HEARD: &str = "CASE WHEN COALESCE((SELECT MAX(m.sampled_at) FROM meter_values m \
      WHERE m.transaction_id = transactions.id), 0) > transactions.updated_at \
    THEN (SELECT MAX(m.sampled_at) FROM meter_values m WHERE m.transaction_id = transactions.id) \
    ELSE transactions.updated_at END";

impl Transaction {
    /// The EVSE and connector stored on the row (0 where not known yet).
    pub fn location(&self) -> Location {
        Location {
            evse_id: self.evse_id.try_into().unwrap_or(0),
            connector_id: self.connector_id.try_into().unwrap_or(0),
        }
    }
}

impl Store {
    /// Records a start; returns the CSMS id and whether this call created it. `refused` is the
    /// token status of a start that was not Accepted: the row is then `Refused`, never `Active`.
    /// A start that creates an `Active` row writes `transactionStarted` (with `remote_start_id`,
    /// when the charger reported one) in the same database transaction.
    pub async fn start_transaction(
        &self,
        station_id: &str,
        station_tx_id: &str,
        start: &TransactionStarted,
        refused: Option<&str>,
        remote_start_id: Option<i64>,
        now: Ts,
    ) -> Result<(i64, bool), StoreError> {
        let mut tx = self.db().begin().await?;
        let existing = tx_transaction_id(&mut tx, station_id, station_tx_id).await?;
        let created = existing.is_none()
            && on_tx!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO transactions (station_id, station_tx_id, evse_id, connector_id, id_token, status, \
                   started_at, meter_start_wh, reservation_id, last_seq_no, updated_at, end_reason) \
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $11 IS NULL THEN 'Active' ELSE 'Refused' END, \
                   $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (station_id, station_tx_id) DO NOTHING",
                )
                .bind(station_id)
                .bind(station_tx_id)
                .bind(i64::from(start.location.evse_id))
                .bind(i64::from(start.location.connector_id))
                .bind(start.id_token.as_ref().map(|t| t.value.as_str()))
                .bind(Ts::from_datetime(start.timestamp))
                .bind(start.meter_start_wh)
                .bind(start.reservation_id.map(i64::from))
                .bind(start.seq_no.map(i64::from))
                .bind(now)
                .bind(refused)
                .execute(&mut *conn)
                .await?
                .rows_affected()
            }) > 0;
        let id = tx_transaction_id(&mut tx, station_id, station_tx_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if !created {
            // A 2.0.1 Updated/Ended may have created the row first: fill in what only Started knows.
            on_tx!(&mut tx, |conn| {
                sqlx::query(
                    "UPDATE transactions SET started_at = CASE WHEN started_at > $2 THEN $2 ELSE started_at END, \
                       meter_start_wh = COALESCE(meter_start_wh, $3), id_token = COALESCE(id_token, $4), \
                       reservation_id = COALESCE(reservation_id, $5) WHERE id = $1",
                )
                .bind(id)
                .bind(Ts::from_datetime(start.timestamp))
                .bind(start.meter_start_wh)
                .bind(start.id_token.as_ref().map(|t| t.value.as_str()))
                .bind(start.reservation_id.map(i64::from))
                .execute(&mut *conn)
                .await?;
            });
        }
        let mut events = Vec::new();
        if created && refused.is_none() {
            let version = station_version(&mut tx, station_id).await?;
            events.extend(outbox::envelope(
                station_id,
                start.timestamp,
                Event::TransactionStarted {
                    transaction_id: id.to_string(),
                    id_token: start.id_token.as_ref().map(|t| t.value.clone()),
                    location: outbox::bus_location(version, start.location),
                    meter_start_wh: start.meter_start_wh,
                    remote_start_id,
                },
            ));
        }
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok((id, created))
    }

    /// The CSMS id of a charger's transaction.
    pub async fn transaction_id(&self, station_id: &str, station_tx_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>("SELECT id FROM transactions WHERE station_id = $1 AND station_tx_id = $2")
                .bind(station_id)
                .bind(station_tx_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The id and status of a charger's transaction (a replayed start is answered from it).
    pub async fn transaction_state(
        &self,
        station_id: &str,
        station_tx_id: &str,
    ) -> Result<Option<TransactionState>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, TransactionState>(
                "SELECT id, status, end_reason FROM transactions WHERE station_id = $1 AND station_tx_id = $2",
            )
            .bind(station_id)
            .bind(station_tx_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Marks an `Active` transaction `Refused` with the token status it was answered with
    /// (a 2.0.1 event whose token is not Accepted); false if it was not `Active`. Its
    /// `transactionStarted` was published, so it ends on the bus (stop reason `Refused`).
    pub async fn refuse_transaction(&self, id: i64, token_status: &str) -> Result<bool, StoreError> {
        let mut tx = self.db().begin().await?;
        let closed = on_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, Closed>(
                "UPDATE transactions SET status = 'Refused', end_reason = $2 WHERE id = $1 AND status = 'Active' \
                 RETURNING id, station_id, id_token, evse_id, connector_id, meter_stop_wh",
            )
            .bind(id)
            .bind(token_status)
            .fetch_all(&mut *conn)
            .await?
        });
        let events = ended_events(&mut tx, &closed, "Refused", Utc::now()).await?;
        outbox::append(&mut tx, &events, Ts::now()).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(!closed.is_empty())
    }

    /// Closes the `Active` transactions on an EVSE of a station that started at or before
    /// `started_by` (other than `except`) as abandoned: the station started another one there,
    /// or reported the EVSE free. Returns the ids closed.
    pub async fn abandon_on_evse(
        &self,
        station_id: &str,
        evse_id: i64,
        started_by: Ts,
        except: Option<i64>,
        note: &str,
        now: Ts,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "UPDATE transactions SET status = 'Ended', end_reason = 'Abandoned', end_note = $5, closed_at = $6, \
               charging_state = NULL, last_heard_at = {LAST_HEARD}, ended_at = {LAST_HEARD} \
             WHERE station_id = $1 AND evse_id = $2 AND status = 'Active' AND started_at <= $3 AND id <> $4 \
             RETURNING {CLOSED}"
        );
        let mut tx = self.db().begin().await?;
        let closed = on_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, Closed>(&sql)
                .bind(station_id)
                .bind(evse_id)
                .bind(started_by)
                .bind(except.unwrap_or(-1))
                .bind(note)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?
        });
        let events = ended_events(&mut tx, &closed, Closure::Abandoned.as_str(), now.to_datetime()).await?;
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(closed.into_iter().map(|c| c.id).collect())
    }

    /// Closes as abandoned the `Active` transactions of a station that it has not reported on
    /// since `since` (its boot): a 2.0.1 station sends the events it queued for a transaction,
    /// or periodic ones for a running transaction, soon after it boots. Returns the ids closed.
    pub async fn abandon_unreported(
        &self,
        station_id: &str,
        since: Ts,
        note: &str,
        now: Ts,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "UPDATE transactions SET status = 'Ended', end_reason = 'Abandoned', end_note = $3, closed_at = $4, \
               charging_state = NULL, last_heard_at = {LAST_HEARD}, ended_at = {LAST_HEARD} \
             WHERE station_id = $1 AND status = 'Active' AND updated_at < $2 \
             RETURNING {CLOSED}"
        );
        let mut tx = self.db().begin().await?;
        let closed = on_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, Closed>(&sql)
                .bind(station_id)
                .bind(since)
                .bind(note)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?
        });
        let events = ended_events(&mut tx, &closed, Closure::Abandoned.as_str(), now.to_datetime()).await?;
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(closed.into_iter().map(|c| c.id).collect())
    }

    /// Ends an `Active` transaction on an operator's word. A stop the station sends later
    /// still fills in its own end instant and meter register.
    pub async fn end_by_operator(&self, id: i64, note: &str, now: Ts) -> Result<OperatorEnd, StoreError> {
        let sql = format!(
            "UPDATE transactions SET status = 'Ended', end_reason = 'Operator', end_note = $2, closed_at = $3, \
               charging_state = NULL, last_heard_at = {LAST_HEARD}, ended_at = {LAST_HEARD} \
             WHERE id = $1 AND status = 'Active' RETURNING {CLOSED}"
        );
        let mut tx = self.db().begin().await?;
        let closed = on_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, Closed>(&sql)
                .bind(id)
                .bind(note)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?
        });
        let events = ended_events(&mut tx, &closed, Closure::Operator.as_str(), now.to_datetime()).await?;
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        let ended = closed.first().map(|c| c.id);
        Ok(match (ended, self.transaction(id).await?) {
            (_, None) => OperatorEnd::NotFound,
            (Some(_), Some(t)) => OperatorEnd::Ended(Box::new(t)),
            (None, Some(t)) => OperatorEnd::NotActive(t.status),
        })
    }

    /// Whether `id` is a transaction of `station_id` (1.6 messages name it by CSMS id).
    pub async fn transaction_belongs(&self, station_id: &str, id: i64) -> Result<bool, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>("SELECT id FROM transactions WHERE station_id = $1 AND id = $2")
                .bind(station_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
        })
        .is_some())
    }

    /// Ensures a 2.0.1 transaction row exists (an Updated or Ended may come first) and returns
    /// its id; a row created here writes `transactionStarted` (the central system learns of
    /// the transaction now; the Started event that may follow adds nothing on the bus).
    async fn ensure_v201_transaction(
        tx: &mut Tx,
        station_id: &str,
        station_tx_id: &str,
        evse: (i64, i64),
        token: Option<&str>,
        at: Ts,
        now: Ts,
    ) -> Result<(i64, Vec<EventEnvelope>), StoreError> {
        // Look first: an INSERT that hits the conflict would still burn a sequence number, and
        // CSMS ids are the 1.6 transactionId, a 32-bit integer.
        if let Some(id) = tx_transaction_id(tx, station_id, station_tx_id).await? {
            return Ok((id, Vec::new()));
        }
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO transactions (station_id, station_tx_id, evse_id, connector_id, status, started_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'Active', $5, $6) ON CONFLICT (station_id, station_tx_id) DO NOTHING",
            )
            .bind(station_id)
            .bind(station_tx_id)
            .bind(evse.0)
            .bind(evse.1)
            .bind(at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        let id = tx_transaction_id(tx, station_id, station_tx_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let location = Location {
            evse_id: u32::try_from(evse.0).unwrap_or(0),
            connector_id: u32::try_from(evse.1).unwrap_or(0),
        };
        let started = Event::TransactionStarted {
            transaction_id: id.to_string(),
            id_token: token.map(str::to_owned),
            location: outbox::bus_location(Version::V201, location),
            meter_start_wh: None,
            remote_start_id: None,
        };
        Ok((
            id,
            outbox::envelope(station_id, at.to_datetime(), started)
                .into_iter()
                .collect(),
        ))
    }

    /// Applies a 2.0.1 Updated event; returns the CSMS id. Writes `transactionUpdated`, after
    /// `meterSummary` for the values in `summary` (see [`crate::outbox::MeterSummaries`]).
    pub async fn update_transaction(
        &self,
        station_id: &str,
        update: &TransactionUpdated,
        summary: Option<&MeterSnapshot>,
        now: Ts,
    ) -> Result<i64, StoreError> {
        let loc = update
            .location
            .map_or((0, 0), |l| (i64::from(l.evse_id), i64::from(l.connector_id)));
        let at = Ts::from_datetime(update.timestamp);
        let mut tx = self.db().begin().await?;
        let token = update.id_token.as_ref().map(|t| t.value.as_str());
        let (id, mut events) =
            Self::ensure_v201_transaction(&mut tx, station_id, &update.station_transaction_id, loc, token, at, now)
                .await?;
        events.extend(apply_update(&mut tx, station_id, id, update, summary, now).await?);
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(id)
    }

    /// Applies a 2.0.1 Updated event to the transaction with CSMS id `id`, known to exist and
    /// to be this station's (a session caches that, sparing the lookup per event).
    pub async fn apply_transaction_update(
        &self,
        station_id: &str,
        id: i64,
        update: &TransactionUpdated,
        summary: Option<&MeterSnapshot>,
        now: Ts,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let events = apply_update(&mut tx, station_id, id, update, summary, now).await?;
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// Records the seqNos of events that changed nothing else (see [`SeqNoSeen`]), in one
    /// database transaction; a lower seqNo than the stored one changes nothing.
    pub async fn record_seq_nos(&self, seen: &[SeqNoSeen]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.db().begin().await?;
        record_seq_nos_in(&mut tx, seen).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a transaction (1.6 by CSMS id, 2.0.1 by the charger's id); returns the CSMS id,
    /// or `None` for a 1.6 id that does not exist. Ending an `Active` transaction writes
    /// `meterSummary` (the values `summary_for` gives for the id and the row's location) and then
    /// `transactionEnded`; a replayed stop, or the stop of a refused or already closed
    /// transaction, writes nothing.
    pub async fn end_transaction(
        &self,
        station_id: &str,
        ended: &TransactionEnded,
        v16_id: Option<i64>,
        summary_for: impl FnOnce(i64, evcs_bus::Location) -> Option<MeterSnapshot>,
        now: Ts,
    ) -> Result<Option<i64>, StoreError> {
        let at = Ts::from_datetime(ended.timestamp);
        let mut tx = self.db().begin().await?;
        let mut events = Vec::new();
        let id = match v16_id {
            Some(id) => {
                let owned = on_tx!(&mut tx, |conn| {
                    sqlx::query_scalar::<_, i64>("SELECT id FROM transactions WHERE station_id = $1 AND id = $2")
                        .bind(station_id)
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?
                });
                if owned.is_none() {
                    return Ok(None);
                }
                id
            }
            None => {
                let loc = ended
                    .location
                    .map_or((0, 0), |l| (i64::from(l.evse_id), i64::from(l.connector_id)));
                let token = ended.id_token.as_ref().map(|t| t.value.as_str());
                let (id, started) =
                    Self::ensure_v201_transaction(&mut tx, station_id, &ended.transaction_ref, loc, token, at, now)
                        .await?;
                events.extend(started);
                id
            }
        };
        let was_active = on_tx!(&mut tx, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT id FROM transactions WHERE id = $1 AND status = 'Active'")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        })
        .is_some();
        // A replayed stop rewrites the same values: the end is idempotent. A refused start stays
        // `Refused`; one the central system closed takes the station's own end values.
        let closed = on_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, Closed>(
                "UPDATE transactions SET status = CASE WHEN status = 'Refused' THEN 'Refused' ELSE 'Ended' END, ended_at = $2, meter_stop_wh = COALESCE($3, meter_stop_wh), \
                   stop_reason = COALESCE($4, stop_reason), charging_state = 'Idle', \
                   last_seq_no = CASE WHEN $5 IS NULL THEN last_seq_no WHEN last_seq_no IS NULL OR last_seq_no < $5 THEN $5 ELSE last_seq_no END, \
                   updated_at = $6 WHERE id = $1 \
                 RETURNING id, station_id, id_token, evse_id, connector_id, meter_stop_wh",
            )
            .bind(id)
            .bind(at)
            .bind(ended.meter_stop_wh)
            .bind(&ended.stop_reason)
            .bind(ended.seq_no.map(i64::from))
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        });
        if was_active {
            let version = station_version(&mut tx, station_id).await?;
            let location = closed
                .first()
                .map(|c| {
                    let row = Location {
                        evse_id: u32::try_from(c.evse_id).unwrap_or(0),
                        connector_id: u32::try_from(c.connector_id).unwrap_or(0),
                    };
                    outbox::bus_location(version, row)
                })
                .unwrap_or_default();
            if let Some(snapshot) = summary_for(id, location) {
                events.extend(outbox::envelope(station_id, snapshot.at, snapshot.event(id)));
            }
            let reason = ended.stop_reason.as_deref().unwrap_or("Local");
            events.extend(ended_events(&mut tx, &closed, reason, ended.timestamp).await?);
        }
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(Some(id))
    }

    /// The newest active transaction on an EVSE of a station, if any.
    pub async fn active_transaction_on_evse(&self, station_id: &str, evse_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM transactions WHERE station_id = $1 AND evse_id = $2 AND status = 'Active' \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(station_id)
            .bind(evse_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// A transaction of `token` other than `except` that is plausibly still going on (for
    /// ConcurrentTx): `Active`, on a station that is connected and was heard from at or after
    /// `heard_since`. An `Active` row of a station that went silent may be a session the
    /// station lost, and must not lock the driver out.
    pub async fn live_transaction_of_token(
        &self,
        token: &str,
        except: Option<i64>,
        heard_since: Ts,
    ) -> Result<Option<(String, i64)>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT t.station_id, t.id FROM transactions t JOIN stations s ON s.id = t.station_id \
                 WHERE t.id_token = $1 AND t.status = 'Active' AND t.id <> $2 \
                   AND s.online = 1 AND s.last_seen_at >= $3 LIMIT 1",
            )
            .bind(token)
            .bind(except.unwrap_or(-1))
            .bind(heard_since)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// One transaction.
    pub async fn transaction(&self, id: i64) -> Result<Option<Transaction>, StoreError> {
        let sql = format!("{SELECT} WHERE t.id = $1");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Transaction>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A page of transactions, newest first, with ids below `before`.
    pub async fn transactions(
        &self,
        filter: &TransactionFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE t.id < $1 AND ($2 = '' OR t.station_id = $2) AND ($3 = '' OR t.status = $3) \
             AND ($4 = '' OR t.id_token = $4) ORDER BY t.id DESC LIMIT $5"
        );
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Transaction>(&sql)
                .bind(before.unwrap_or(i64::MAX))
                .bind(filter.station_id.as_deref().unwrap_or(""))
                .bind(filter.status.as_deref().unwrap_or(""))
                .bind(filter.id_token.as_deref().unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }
}

/// The columns [`Closed`] reads from a `RETURNING` clause.
const CLOSED: &str = "id, station_id, id_token, evse_id, connector_id, meter_stop_wh";

/// A transaction a statement just ended, as its `transactionEnded` needs it.
#[derive(Debug, sqlx::FromRow)]
struct Closed {
    id: i64,
    station_id: String,
    id_token: Option<String>,
    evse_id: i64,
    connector_id: i64,
    meter_stop_wh: Option<i64>,
}

/// `transactionEnded` for each transaction in `closed`.
async fn ended_events(
    tx: &mut Tx,
    closed: &[Closed],
    stop_reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut events = Vec::with_capacity(closed.len());
    for c in closed {
        let version = station_version(tx, &c.station_id).await?;
        let location = Location {
            evse_id: u32::try_from(c.evse_id).unwrap_or(0),
            connector_id: u32::try_from(c.connector_id).unwrap_or(0),
        };
        events.extend(outbox::envelope(
            &c.station_id,
            at,
            Event::TransactionEnded {
                transaction_id: c.id.to_string(),
                id_token: c.id_token.clone(),
                location: outbox::bus_location(version, location),
                meter_stop_wh: c.meter_stop_wh,
                stop_reason: Some(stop_reason.to_owned()),
            },
        ));
    }
    Ok(events)
}

/// The OCPP version a station last connected with (locations on the bus depend on it).
async fn station_version(tx: &mut Tx, station_id: &str) -> Result<Version, StoreError> {
    let label = on_tx!(tx, |conn| {
        sqlx::query_scalar::<_, Option<String>>("SELECT ocpp_version FROM stations WHERE id = $1")
            .bind(station_id)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(label
        .flatten()
        .as_deref()
        .and_then(Version::from_label)
        .unwrap_or(Version::V16))
}

/// The CSMS id of a charger's transaction, inside a database transaction.
async fn tx_transaction_id(tx: &mut Tx, station_id: &str, station_tx_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar::<_, i64>("SELECT id FROM transactions WHERE station_id = $1 AND station_tx_id = $2")
            .bind(station_id)
            .bind(station_tx_id)
            .fetch_optional(&mut *conn)
            .await?
    }))
}

/// Applies a 2.0.1 Updated event to row `id`; returns its events (`meterSummary` for
/// `summary`, then `transactionUpdated`).
async fn apply_update(
    tx: &mut Tx,
    station_id: &str,
    id: i64,
    update: &TransactionUpdated,
    summary: Option<&MeterSnapshot>,
    now: Ts,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let loc = update
        .location
        .map_or((0, 0), |l| (i64::from(l.evse_id), i64::from(l.connector_id)));
    // Only a newer seqNo may change the charging state, so replays of old events are inert.
    let row = on_tx!(tx, |conn| {
        sqlx::query_as::<_, (i64, i64)>(
            "UPDATE transactions SET \
               charging_state = CASE WHEN last_seq_no IS NULL OR last_seq_no < $2 THEN COALESCE($3, charging_state) ELSE charging_state END, \
               last_seq_no = CASE WHEN last_seq_no IS NULL OR last_seq_no < $2 THEN $2 ELSE last_seq_no END, \
               id_token = COALESCE(id_token, $4), \
               evse_id = CASE WHEN evse_id = 0 THEN $5 ELSE evse_id END, \
               connector_id = CASE WHEN connector_id = 0 THEN $6 ELSE connector_id END, \
               updated_at = $7 \
             WHERE id = $1 RETURNING evse_id, connector_id",
        )
        .bind(id)
        .bind(i64::from(update.seq_no))
        .bind(&update.charging_state)
        .bind(update.id_token.as_ref().map(|t| t.value.as_str()))
        .bind(loc.0)
        .bind(loc.1)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
    });
    let mut events = Vec::new();
    if let Some(snapshot) = summary {
        events.extend(outbox::envelope(station_id, snapshot.at, snapshot.event(id)));
    }
    if let Some((evse_id, connector_id)) = row {
        let location = Location {
            evse_id: u32::try_from(evse_id).unwrap_or(0),
            connector_id: u32::try_from(connector_id).unwrap_or(0),
        };
        events.extend(outbox::envelope(
            station_id,
            update.timestamp,
            Event::TransactionUpdated {
                transaction_id: id.to_string(),
                location: outbox::bus_location(Version::V201, location),
                trigger: Some(update.trigger_reason.clone()),
            },
        ));
    }
    Ok(events)
}

/// [`Store::record_seq_nos`] on the caller's open transaction (the batch writer's commit).
pub(crate) async fn record_seq_nos_in(tx: &mut Tx, seen: &[SeqNoSeen]) -> Result<(), StoreError> {
    for s in seen {
        on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE transactions SET last_seq_no = $2, updated_at = $3 \
                 WHERE id = $1 AND (last_seq_no IS NULL OR last_seq_no < $2)",
            )
            .bind(s.transaction_id)
            .bind(s.seq_no)
            .bind(s.at)
            .execute(&mut *conn)
            .await?;
        });
    }
    Ok(())
}

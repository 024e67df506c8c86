//! The event outbox: bus events written in the same database transaction as the state change
//! they report (see `migrations/central-system/*/0006_outbox.sql` and docs/architecture.md).
//!
//! Store methods that change something the bus contract has an event for open one database
//! transaction, make the change, [`append`] the envelopes and commit; then they wake the
//! publisher ([`Store::outbox_wake`]). A change that rolls back takes its events with it. The
//! publisher (`crate::outbox`) reads [`Store::unsent_events`] in order and marks what the bus
//! acknowledged with [`Store::mark_events_sent`].

use super::types::Ts;
use super::{on_db, Store, StoreError};
use chrono::{DateTime, Utc};
use evcs_bus::{Event, EventEnvelope, StationId};
use ocpp::model::Location;
use ocpp::Version;
use service_kit::db::{on_tx, Tx};

/// Builds an envelope for `station_id`. The central system's station-id rule is the bus
/// contract's, so `None` (logged) means a station that could not have connected.
pub fn envelope(station_id: &str, at: DateTime<Utc>, event: Event) -> Option<EventEnvelope> {
    match StationId::parse(station_id) {
        Ok(station) => Some(EventEnvelope::new(station, at, event)),
        Err(e) => {
            tracing::warn!(station = %station_id, error = %e, kind = event.kind(), "no bus event for a station id the bus refuses");
            None
        }
    }
}

/// Where on the station, as the bus contract writes it: a 1.6 station has connectors only (our
/// EVSE id is the 1.6 connector id), a 2.0.1 station EVSEs and their connectors. Zero (the
/// station itself, or not known yet) is left out.
pub fn bus_location(version: Version, location: Location) -> evcs_bus::Location {
    let some = |n: u32| (n != 0).then_some(n);
    match version {
        Version::V16 => evcs_bus::Location {
            evse_id: None,
            connector_id: some(location.evse_id),
        },
        Version::V201 => evcs_bus::Location {
            evse_id: some(location.evse_id),
            connector_id: some(location.connector_id).filter(|_| location.evse_id != 0),
        },
    }
}

/// Writes `events` into the outbox on the caller's open transaction.
pub async fn append(tx: &mut Tx, events: &[EventEnvelope], now: Ts) -> Result<(), StoreError> {
    for event in events {
        // Serialising plain data cannot fail; if it ever did, the change must not commit
        // without its event.
        let json = serde_json::to_string(event).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO outbox (event_id, station_id, kind, envelope, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&event.event_id)
            .bind(event.station_id.as_str())
            .bind(event.event.kind())
            .bind(&json)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
    }
    Ok(())
}

/// An outbox row not yet acknowledged by the bus.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingEvent {
    /// Outbox sequence id.
    pub id: i64,
    /// The envelope JSON as written.
    pub envelope: String,
}

/// An outbox row, as tests and operators read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Outbox sequence id.
    pub id: i64,
    /// The envelope's event id.
    pub event_id: String,
    /// Station.
    pub station_id: String,
    /// `Event::kind()`.
    pub kind: String,
    /// When the bus acknowledged it.
    pub sent_at: Option<Ts>,
}

/// The right to publish the outbox, held by one node at a time.
///
/// Several central-system nodes share one PostgreSQL database; if each published every unsent
/// row, every event would go out once per node. On PostgreSQL the lease is a session-level
/// advisory lock held on a connection of its own, taken out of the pool (the server releases it
/// when that connection closes, so a node that stops or crashes hands over); on SQLite, one process owns the file.
#[derive(Debug)]
pub enum PublishLease {
    /// SQLite: nobody else to share with.
    Sole,
    /// PostgreSQL: the connection holding the advisory lock.
    Locked(sqlx::PgConnection),
}

/// The advisory-lock key of the outbox publisher (any constant no other code uses).
const PUBLISH_LOCK_KEY: i64 = 0x6576_6373_6f75_7462; // "evcsoutb"

impl PublishLease {
    /// Whether the lease still holds (its connection is alive and the lock is ours).
    pub async fn holds(&mut self) -> bool {
        match self {
            PublishLease::Sole => true,
            // Re-taking a session lock we hold succeeds at once; a dead connection fails.
            PublishLease::Locked(conn) => sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(PUBLISH_LOCK_KEY)
                .fetch_one(&mut *conn)
                .await
                .unwrap_or(false),
        }
    }
}

impl Store {
    /// Takes the publishing lease if no other node holds it.
    pub async fn try_lease_publishing(&self) -> Result<Option<PublishLease>, StoreError> {
        match self.db() {
            service_kit::db::Db::Sqlite(_) => Ok(Some(PublishLease::Sole)),
            service_kit::db::Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(PUBLISH_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                // The lease's connection leaves the pool (which may open another in its place);
                // without the lock it goes back, holding nothing.
                Ok(locked.then(|| PublishLease::Locked(conn.detach())))
            }
        }
    }

    /// Commits `tx` and wakes the publisher when it carried events.
    pub(crate) async fn commit_with_events(&self, tx: Tx, had_events: bool) -> Result<(), StoreError> {
        tx.commit().await?;
        if had_events {
            self.outbox_wake().notify_one();
        }
        Ok(())
    }

    /// Up to `limit` unsent events, oldest first.
    pub async fn unsent_events(&self, limit: i64) -> Result<Vec<PendingEvent>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, PendingEvent>(
                "SELECT id, envelope FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Marks events the bus acknowledged.
    pub async fn mark_events_sent(&self, ids: &[i64], now: Ts) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        on_db!(self.db(), |pool| {
            let mut qb = sqlx::QueryBuilder::new("UPDATE outbox SET sent_at = ");
            qb.push_bind(now).push(" WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes events sent before `cutoff`; returns how many.
    pub async fn prune_sent_events(&self, cutoff: Ts) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// The outbox in order, sent or not (tests, diagnostics).
    pub async fn outbox_rows(&self) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, OutboxRow>("SELECT id, event_id, station_id, kind, sent_at FROM outbox ORDER BY id")
                .fetch_all(pool)
                .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_contract_per_version() {
        let loc = Location {
            evse_id: 2,
            connector_id: 1,
        };
        assert_eq!(
            bus_location(Version::V16, loc),
            evcs_bus::Location {
                evse_id: None,
                connector_id: Some(2)
            }
        );
        assert_eq!(
            bus_location(Version::V201, loc),
            evcs_bus::Location {
                evse_id: Some(2),
                connector_id: Some(1)
            }
        );
        assert_eq!(
            bus_location(Version::V201, Location::STATION),
            evcs_bus::Location::default()
        );
    }

    #[test]
    fn a_meter_summary_survives_its_stored_json() {
        // The workspace builds serde_json with `arbitrary_precision`: floats in a tagged enum
        // must still read back, or the publisher could never send a summary.
        let summary = Event::MeterSummary {
            transaction_id: "7".into(),
            location: evcs_bus::Location::default(),
            energy_wh: Some(11_150),
            power_w: Some(7200.5),
            soc_percent: None,
            current_a: Some(16.0),
            at: Utc::now(),
        };
        let envelope = envelope("CP-1", Utc::now(), summary).expect("valid id");
        let json = serde_json::to_string(&envelope).expect("serializes");
        let back: EventEnvelope = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, envelope);
    }

    #[test]
    fn a_station_id_the_bus_refuses_gets_no_envelope() {
        assert!(envelope("a/b", Utc::now(), Event::StationOffline { reason: None }).is_none());
        let ok = envelope("CP-1", Utc::now(), Event::StationOffline { reason: None }).expect("valid id");
        assert_eq!(ok.event_id.len(), 36);
    }
}

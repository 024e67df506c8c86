//! Messages stored as received (security events, notifications), the 2.0.1 device model and
//! reservations.

use super::outbox;
use super::types::Ts;
use super::{on_db, Store, StoreError};
use evcs_bus::{Event, EventEnvelope};
use serde::Serialize;
use service_kit::db::on_tx;
use utoipa::ToSchema;

/// A stored charger message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationMessage {
    /// Row id (cursor).
    pub id: i64,
    /// When it was received.
    pub received_at: Ts,
    /// OCPP action.
    pub action: String,
    /// Payload JSON text as received (its beginning only, and then not valid JSON, when
    /// `truncated`).
    pub payload: String,
    /// Whether the payload was longer than the stored text (cut to `--message-max-bytes`).
    pub truncated: bool,
    /// The payload's size in bytes as received.
    pub original_size: i64,
}

#[derive(sqlx::FromRow)]
struct MessageRecord {
    id: i64,
    received_at: Ts,
    action: String,
    payload: String,
    original_size: Option<i64>,
}

impl From<MessageRecord> for StationMessage {
    fn from(r: MessageRecord) -> StationMessage {
        StationMessage {
            id: r.id,
            received_at: r.received_at,
            action: r.action,
            truncated: r.original_size.is_some(),
            original_size: r.original_size.unwrap_or(r.payload.len() as i64),
            payload: r.payload,
        }
    }
}

/// A payload cut to at most `max_bytes` (at a character boundary) and its original size when
/// it was cut.
pub fn truncate_payload(payload: &str, max_bytes: usize) -> (&str, Option<i64>) {
    super::frames::truncate(payload, max_bytes)
}

/// One attribute of a 2.0.1 device-model variable.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceVariable {
    /// Component name.
    pub component: String,
    /// Component instance ('' when none).
    pub component_instance: String,
    /// EVSE id of the component (0 when none).
    pub evse_id: i64,
    /// Connector id of the component (0 when none).
    pub connector_id: i64,
    /// Variable name.
    pub variable: String,
    /// Variable instance ('' when none).
    pub variable_instance: String,
    /// `Actual`, `Target`, `MinSet`, `MaxSet`.
    pub attribute_type: String,
    /// Value, if reported.
    pub value: Option<String>,
    /// `ReadOnly`, `WriteOnly`, `ReadWrite`.
    pub mutability: Option<String>,
    /// Data type from the variable characteristics.
    pub data_type: Option<String>,
    /// Unit from the variable characteristics.
    pub unit: Option<String>,
    /// Last report.
    pub updated_at: Ts,
}

/// A reservation the CSMS made.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// Reservation id.
    pub reservation_id: i64,
    /// EVSE (1.6: connector) id; 0 means any.
    pub evse_id: i64,
    /// Token it is held for.
    pub id_token: String,
    /// Expiry.
    pub expires_at: Ts,
    /// `Requested`, `Accepted`, `Rejected`, `Cancelled`, `Expired`, `Removed`, `Used`...
    pub status: String,
    /// Last change.
    pub updated_at: Ts,
}

impl Store {
    /// Stores a message; `original_size` is set when `payload` is only the beginning of it.
    /// Budgets apply through [`super::retention::MessageRetention::keep`], the handlers' path.
    /// `events` (e.g. a `securityEvent`) go into the outbox in the same database transaction.
    pub async fn insert_station_message(
        &self,
        station_id: &str,
        action: &str,
        payload: &str,
        original_size: Option<i64>,
        events: &[EventEnvelope],
        now: Ts,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        on_tx!(&mut tx, |conn| {
            sqlx::query(
                "INSERT INTO station_messages (station_id, received_at, action, payload, size, original_size) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(station_id)
            .bind(now)
            .bind(action)
            .bind(payload)
            .bind(payload.len() as i64)
            .bind(original_size)
            .execute(&mut *conn)
            .await?;
        });
        outbox::append(&mut tx, events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// A page of a station's stored messages, newest first, optionally of one action.
    pub async fn station_messages(
        &self,
        station_id: &str,
        action: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StationMessage>, StoreError> {
        let rows = on_db!(self.db(), |pool| {
            sqlx::query_as::<_, MessageRecord>(
                "SELECT id, received_at, action, payload, original_size FROM station_messages WHERE station_id = $1 \
                 AND ($2 = '' OR action = $2) AND id < $3 ORDER BY id DESC LIMIT $4",
            )
            .bind(station_id)
            .bind(action.unwrap_or(""))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(StationMessage::from).collect())
    }

    /// Inserts or replaces device-model attributes (from NotifyReport).
    pub async fn upsert_device_variables(&self, station_id: &str, vars: &[DeviceVariable]) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for v in vars {
                sqlx::query(
                    "INSERT INTO device_variables (station_id, component, component_instance, evse_id, connector_id, \
                       variable, variable_instance, attribute_type, value, mutability, data_type, unit, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (station_id, component, component_instance, evse_id, connector_id, variable, variable_instance, attribute_type) \
                     DO UPDATE SET value = excluded.value, mutability = excluded.mutability, \
                       data_type = excluded.data_type, unit = excluded.unit, updated_at = excluded.updated_at",
                )
                .bind(station_id)
                .bind(&v.component)
                .bind(&v.component_instance)
                .bind(v.evse_id)
                .bind(v.connector_id)
                .bind(&v.variable)
                .bind(&v.variable_instance)
                .bind(&v.attribute_type)
                .bind(&v.value)
                .bind(&v.mutability)
                .bind(&v.data_type)
                .bind(&v.unit)
                .bind(v.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A station's device model.
    pub async fn device_variables(&self, station_id: &str) -> Result<Vec<DeviceVariable>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, DeviceVariable>(
                "SELECT component, component_instance, evse_id, connector_id, variable, variable_instance, \
                 attribute_type, value, mutability, data_type, unit, updated_at FROM device_variables \
                 WHERE station_id = $1 ORDER BY component, component_instance, evse_id, connector_id, variable, \
                 variable_instance, attribute_type",
            )
            .bind(station_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Records a reservation or changes its status.
    pub async fn upsert_reservation(&self, station_id: &str, r: &Reservation) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO reservations (station_id, reservation_id, evse_id, id_token, expires_at, status, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (station_id, reservation_id) DO UPDATE SET \
                 evse_id = excluded.evse_id, id_token = excluded.id_token, expires_at = excluded.expires_at, \
                 status = excluded.status, updated_at = excluded.updated_at",
            )
            .bind(station_id)
            .bind(r.reservation_id)
            .bind(r.evse_id)
            .bind(&r.id_token)
            .bind(r.expires_at)
            .bind(&r.status)
            .bind(r.updated_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Changes a reservation's status; false if unknown. Writes `reservationStatus` either
    /// way: a reservation made over the bus may not be recorded here, and its owner must learn
    /// what the charger reported.
    pub async fn set_reservation_status(
        &self,
        station_id: &str,
        reservation_id: i64,
        status: &str,
        now: Ts,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db().begin().await?;
        let changed = on_tx!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE reservations SET status = $3, updated_at = $4 WHERE station_id = $1 AND reservation_id = $2",
            )
            .bind(station_id)
            .bind(reservation_id)
            .bind(status)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        let event = Event::ReservationStatus {
            reservation_id,
            status: status.to_owned(),
        };
        let events: Vec<_> = outbox::envelope(station_id, now.to_datetime(), event)
            .into_iter()
            .collect();
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await?;
        Ok(changed > 0)
    }

    /// A station's reservations, newest first.
    pub async fn reservations(&self, station_id: &str) -> Result<Vec<Reservation>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Reservation>(
                "SELECT reservation_id, evse_id, id_token, expires_at, status, updated_at FROM reservations \
                 WHERE station_id = $1 ORDER BY updated_at DESC",
            )
            .bind(station_id)
            .fetch_all(pool)
            .await?
        }))
    }
}

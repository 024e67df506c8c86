//! Stations: registration, connection state, boot info and live connector status.

use super::outbox;
use super::types::{Flag, Ts};
use super::{on_db, Store, StoreError};
use evcs_bus::Event;
use ocpp::model::{BootInfo, StatusChange};
use ocpp::Version;
use serde::Serialize;
use service_kit::db::on_tx;
use utoipa::ToSchema;

/// A registered station as the operator sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Station {
    /// The station id (the last path segment of its OCPP URL).
    pub id: String,
    /// Operator's description.
    pub description: Option<String>,
    /// `Accepted`, `Pending` or `Rejected`: answers the station's BootNotification.
    pub registration_status: String,
    /// Whether a Basic-auth password is set (the hash itself is never shown).
    #[sqlx(rename = "has_password")]
    pub has_password: Flag,
    /// OCPP version of the last connection (`1.6`, `2.0.1`).
    pub ocpp_version: Option<String>,
    /// Vendor from the last boot.
    pub vendor: Option<String>,
    /// Model from the last boot.
    pub model: Option<String>,
    /// Serial number from the last boot.
    pub serial_number: Option<String>,
    /// Firmware version from the last boot.
    pub firmware_version: Option<String>,
    /// Modem ICCID.
    pub iccid: Option<String>,
    /// Modem IMSI.
    pub imsi: Option<String>,
    /// 1.6 meter type.
    pub meter_type: Option<String>,
    /// 1.6 meter serial number.
    pub meter_serial_number: Option<String>,
    /// Whether a WebSocket is connected now.
    pub online: Flag,
    /// Last BootNotification.
    pub last_boot_at: Option<Ts>,
    /// Last message of any kind.
    pub last_seen_at: Option<Ts>,
    /// When the current (or last) connection opened.
    pub connected_at: Option<Ts>,
    /// Security-profile floor: the highest profile the station has connected at (or an admin
    /// set); connections below it are refused. 0 = none yet.
    pub security_profile: i64,
    /// Profile of the last accepted connection (0 none, 1 ws + Basic, 2 wss + Basic, 3 wss +
    /// client certificate).
    pub connected_security_profile: Option<i64>,
    /// Whether a rotated password awaits the station's first connection with it.
    #[sqlx(rename = "password_rotation_pending")]
    pub password_rotation_pending: Flag,
    /// Registration time.
    pub created_at: Ts,
    /// Last change of the registration.
    pub updated_at: Ts,
}

const STATION_COLUMNS: &str = "id, description, registration_status, \
    CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password, ocpp_version, vendor, model, \
    serial_number, firmware_version, iccid, imsi, meter_type, meter_serial_number, online, \
    last_boot_at, last_seen_at, connected_at, security_profile_floor AS security_profile, \
    security_profile AS connected_security_profile, \
    CAST(CASE WHEN pending_password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS password_rotation_pending, \
    created_at, updated_at";

/// Live status of one connector.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    /// EVSE id (1.6: the connector id; 0 is the station itself).
    pub evse_id: i64,
    /// Connector id on the EVSE.
    pub connector_id: i64,
    /// Last reported status.
    pub status: String,
    /// 1.6 error code (`NoError` when fine).
    pub error_code: Option<String>,
    /// Extra info from the station.
    pub info: Option<String>,
    /// When the status was reported.
    pub status_at: Ts,
}

/// What the upgrade handler needs to authenticate a station.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StationAuth {
    /// argon2id PHC string, if a password is set.
    pub password_hash: Option<String>,
    /// Registration status.
    pub registration_status: String,
    /// argon2id hash of a rotated password not yet used by the station.
    pub pending_password_hash: Option<String>,
    /// Lowest security profile a connection may have.
    pub security_profile_floor: i64,
}

/// Fields of a new registration.
#[derive(Debug, Clone)]
pub struct NewStation {
    /// Station id.
    pub id: String,
    /// Description.
    pub description: Option<String>,
    /// argon2id hash of the Basic-auth password.
    pub password_hash: Option<String>,
    /// `Accepted`, `Pending` or `Rejected`.
    pub registration_status: String,
}

/// A partial update; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct StationPatch {
    /// New description.
    pub description: Option<Option<String>>,
    /// New password hash.
    pub password_hash: Option<Option<String>>,
    /// New registration status.
    pub registration_status: Option<String>,
    /// New security-profile floor (an admin may lower it). Without one, removing the password
    /// lowers a Basic-auth floor (1, 2) to 0: the admin has chosen to let the station in
    /// without credentials; a certificate floor (3) stays.
    pub security_profile_floor: Option<i64>,
}

impl Store {
    /// One station.
    pub async fn station(&self, id: &str) -> Result<Option<Station>, StoreError> {
        let sql = format!("SELECT {STATION_COLUMNS} FROM stations WHERE id = $1");
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Station>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// A page of stations ordered by id, starting after `after`.
    pub async fn stations(
        &self,
        after: Option<&str>,
        online: Option<bool>,
        limit: i64,
    ) -> Result<Vec<Station>, StoreError> {
        let sql = format!(
            "SELECT {STATION_COLUMNS} FROM stations WHERE id > $1 AND ($2 < 0 OR online = $2) \
             ORDER BY id LIMIT $3"
        );
        let online = online.map_or(-1i64, i64::from);
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Station>(&sql)
                .bind(after.unwrap_or(""))
                .bind(online)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Registers a station; [`StoreError::Conflict`] if the id exists.
    pub async fn create_station(&self, new: NewStation, now: Ts) -> Result<Station, StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO stations (id, description, password_hash, registration_status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&new.id)
            .bind(&new.description)
            .bind(&new.password_hash)
            .bind(&new.registration_status)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        self.station(&new.id).await?.ok_or(StoreError::NotFound)
    }

    /// Registers an unknown station that connected, unless it exists already.
    pub async fn auto_register(&self, id: &str, status: &str, now: Ts) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO stations (id, description, registration_status, created_at, updated_at) \
                 VALUES ($1, 'registered automatically on first connection', $2, $3, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// How many stations have registration status `status`.
    pub async fn count_stations_with_status(&self, status: &str) -> Result<i64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM stations WHERE registration_status = $1")
                .bind(status)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Applies a partial update.
    pub async fn update_station(&self, id: &str, patch: StationPatch, now: Ts) -> Result<Station, StoreError> {
        let result = on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE stations SET \
                   description = CASE WHEN $2 = 1 THEN $3 ELSE description END, \
                   password_hash = CASE WHEN $4 = 1 THEN $5 ELSE password_hash END, \
                   registration_status = COALESCE($6, registration_status), \
                   security_profile_floor = CASE WHEN $8 IS NOT NULL THEN $8 \
                     WHEN $4 = 1 AND $5 IS NULL AND security_profile_floor < 3 THEN 0 \
                     ELSE security_profile_floor END, \
                   pending_password_hash = CASE WHEN $4 = 1 THEN NULL ELSE pending_password_hash END, \
                   updated_at = $7 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(i64::from(patch.description.is_some()))
            .bind(patch.description.flatten())
            .bind(i64::from(patch.password_hash.is_some()))
            .bind(patch.password_hash.flatten())
            .bind(patch.registration_status)
            .bind(now)
            .bind(patch.security_profile_floor)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if result == 0 {
            return Err(StoreError::NotFound);
        }
        self.station(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a registration and its live state; false if it did not exist.
    pub async fn delete_station(&self, id: &str) -> Result<bool, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM stations WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        }) > 0)
    }

    /// Credentials and registration state for the upgrade handler.
    pub async fn station_auth(&self, id: &str) -> Result<Option<StationAuth>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, StationAuth>(
                "SELECT password_hash, registration_status, pending_password_hash, security_profile_floor \
                 FROM stations WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores the hash of a password the station accepted; the current one stays valid until
    /// the station connects with the new one ([`Store::promote_pending_password`]).
    pub async fn set_pending_password(&self, id: &str, hash: &str, now: Ts) -> Result<(), StoreError> {
        let rows = on_db!(self.db(), |pool| {
            sqlx::query("UPDATE stations SET pending_password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(hash)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if rows == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The station connected with its pending password: it becomes the only valid one. Only
    /// the hash that was verified is promoted, so a rotation racing with this cannot be lost.
    pub async fn promote_pending_password(&self, id: &str, hash: &str, now: Ts) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE stations SET password_hash = pending_password_hash, pending_password_hash = NULL, \
                 updated_at = $3 WHERE id = $1 AND pending_password_hash = $2",
            )
            .bind(id)
            .bind(hash)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records the profile of an accepted connection and raises the floor to it; the floor is
    /// never lowered here (only an admin's PATCH does that).
    pub async fn record_security_profile(&self, id: &str, profile: i64) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "UPDATE stations SET security_profile = $2, \
                 security_profile_floor = CASE WHEN security_profile_floor < $2 THEN $2 ELSE security_profile_floor END \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(profile)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a station connected with `version` to `node` (and writes `stationOnline`).
    pub async fn set_connected(&self, id: &str, version: Version, now: Ts, node: &str) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let changed = on_tx!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE stations SET online = 1, ocpp_version = $2, connected_at = $3, last_seen_at = $3, connected_node = $4 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(version.label())
            .bind(now)
            .bind(node)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        let events: Vec<_> = (changed > 0)
            .then(|| {
                outbox::envelope(
                    id,
                    now.to_datetime(),
                    Event::StationOnline {
                        ocpp_version: version.label().to_owned(),
                    },
                )
            })
            .flatten()
            .into_iter()
            .collect();
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// Marks a station disconnected from `node` (and writes `stationOffline`); nothing when it
    /// is connected to another node by now.
    pub async fn set_disconnected(&self, id: &str, now: Ts, node: &str) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let changed = on_tx!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE stations SET online = 0, last_seen_at = $2 WHERE id = $1 AND online <> 0 \
                 AND (connected_node = $3 OR connected_node IS NULL)",
            )
            .bind(id)
            .bind(now)
            .bind(node)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        let events: Vec<_> = (changed > 0)
            .then(|| outbox::envelope(id, now.to_datetime(), Event::StationOffline { reason: None }))
            .flatten()
            .into_iter()
            .collect();
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// After a restart no station is connected to this node: the ones still marked online on
    /// `node` lost their connection when the previous process stopped (`stationOffline` for
    /// each). Stations on other nodes of the cluster stay as they are.
    pub async fn mark_all_offline(&self, node: &str) -> Result<(), StoreError> {
        let now = Ts::now();
        let mut tx = self.db().begin().await?;
        let ids = on_tx!(&mut tx, |conn| {
            sqlx::query_scalar::<_, String>(
                "UPDATE stations SET online = 0 WHERE online <> 0 AND (connected_node = $1 OR connected_node IS NULL) \
                 RETURNING id",
            )
            .bind(node)
            .fetch_all(&mut *conn)
            .await?
        });
        let events: Vec<_> = ids
            .iter()
            .filter_map(|id| {
                outbox::envelope(
                    id,
                    now.to_datetime(),
                    Event::StationOffline {
                        reason: Some("the central system restarted".into()),
                    },
                )
            })
            .collect();
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// Records when a station was last heard from.
    pub async fn touch_station(&self, id: &str, now: Ts) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("UPDATE stations SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores what a BootNotification reported (and writes `booted` with the registration status
    /// it was answered).
    pub async fn record_boot(&self, id: &str, boot: &BootInfo, registration: &str, now: Ts) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        on_tx!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE stations SET vendor = $2, model = $3, serial_number = $4, firmware_version = $5, \
                 iccid = $6, imsi = $7, meter_type = $8, meter_serial_number = $9, last_boot_at = $10, \
                 last_seen_at = $10 WHERE id = $1",
            )
            .bind(id)
            .bind(&boot.vendor)
            .bind(&boot.model)
            .bind(&boot.serial_number)
            .bind(&boot.firmware_version)
            .bind(&boot.iccid)
            .bind(&boot.imsi)
            .bind(&boot.meter_type)
            .bind(&boot.meter_serial_number)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        let booted = Event::Booted {
            vendor: boot.vendor.clone(),
            model: boot.model.clone(),
            firmware_version: boot.firmware_version.clone(),
            registration: Some(registration.to_string()),
        };
        let events: Vec<_> = outbox::envelope(id, now.to_datetime(), booted).into_iter().collect();
        outbox::append(&mut tx, &events, now).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// Stores a connector's new status (the latest report wins, older replays are ignored).
    /// A status that changed the stored one writes `connectorStatus`, and `fault` when it
    /// carries an error code other than `NoError`.
    pub async fn record_status(&self, id: &str, change: &StatusChange, version: Version) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let changed = on_tx!(&mut tx, |conn| {
            sqlx::query(
                "INSERT INTO connectors (station_id, evse_id, connector_id, status, error_code, info, status_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET \
                   status = excluded.status, error_code = excluded.error_code, info = excluded.info, \
                   status_at = excluded.status_at \
                 WHERE connectors.status_at <= excluded.status_at",
            )
            .bind(id)
            .bind(i64::from(change.location.evse_id))
            .bind(i64::from(change.location.connector_id))
            .bind(change.status.as_str())
            .bind(&change.error_code)
            .bind(&change.info)
            .bind(Ts::from_datetime(change.timestamp))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        let mut events = Vec::new();
        if changed > 0 {
            let location = outbox::bus_location(version, change.location);
            events.extend(outbox::envelope(
                id,
                change.timestamp,
                Event::ConnectorStatus {
                    location,
                    status: change.status.as_str().to_owned(),
                },
            ));
            if let Some(code) = change.error_code.as_deref().filter(|c| *c != "NoError") {
                events.extend(outbox::envelope(
                    id,
                    change.timestamp,
                    Event::Fault {
                        location,
                        error_code: code.to_owned(),
                        info: change.info.clone(),
                    },
                ));
            }
        }
        outbox::append(&mut tx, &events, Ts::now()).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// All connectors of a station.
    pub async fn connectors(&self, id: &str) -> Result<Vec<Connector>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, Connector>(
                "SELECT evse_id, connector_id, status, error_code, info, status_at FROM connectors \
                 WHERE station_id = $1 ORDER BY evse_id, connector_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        }))
    }
}

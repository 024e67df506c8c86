//! Issued station certificates and security events (migration 0007).

use super::types::Ts;
use super::{on_db, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// A certificate the station CA issued.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCertificateRecord {
    /// Row id (cursor).
    pub id: i64,
    /// The station it was issued to.
    pub station_id: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// `ChargingStationCertificate` (2.0.1) or `ChargePointCertificate` (1.6).
    pub certificate_type: String,
    /// `Issued`, `Installed`, `Rejected` or `Undelivered`.
    pub status: String,
    /// Start of validity.
    pub not_before: Ts,
    /// End of validity.
    pub not_after: Ts,
    /// When it was signed.
    pub issued_at: Ts,
    /// The certificate, PEM.
    pub certificate_pem: String,
}

/// A security event: detected by the central system or reported by a station.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    /// Row id (cursor).
    pub id: i64,
    /// The station concerned.
    pub station_id: String,
    /// `csms` (detected here) or `station` (SecurityEventNotification).
    pub source: String,
    /// Event type: `InvalidCsrFormat`, `InvalidCsrSignature`, `InvalidCsrCommonName`,
    /// `InvalidCsrOrganization`, or the type a station reported.
    pub event_type: String,
    /// Details (the reason, or the station's techInfo).
    pub detail: Option<String>,
    /// When it happened (for station events: the station's timestamp).
    pub occurred_at: Ts,
}

/// What a new issued-certificate row holds.
#[derive(Debug, Clone)]
pub struct NewCertificate<'a> {
    /// The station.
    pub station_id: &'a str,
    /// Serial, hex.
    pub serial: &'a str,
    /// Certificate type as named on the wire.
    pub certificate_type: &'a str,
    /// Validity start.
    pub not_before: Ts,
    /// Validity end.
    pub not_after: Ts,
    /// The certificate, PEM.
    pub certificate_pem: &'a str,
}

impl Store {
    /// Records a freshly signed certificate with status `Issued`.
    pub async fn insert_issued_certificate(&self, c: &NewCertificate<'_>, now: Ts) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO station_certificates \
                 (station_id, serial, certificate_type, status, not_before, not_after, issued_at, certificate_pem) \
                 VALUES ($1, $2, $3, 'Issued', $4, $5, $6, $7)",
            )
            .bind(c.station_id)
            .bind(c.serial)
            .bind(c.certificate_type)
            .bind(c.not_before)
            .bind(c.not_after)
            .bind(now)
            .bind(c.certificate_pem)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Sets the status of an issued certificate (after the station's CertificateSigned answer).
    pub async fn set_certificate_status(&self, serial: &str, status: &str) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query("UPDATE station_certificates SET status = $2 WHERE serial = $1")
                .bind(serial)
                .bind(status)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A page of a station's issued certificates, newest first.
    pub async fn issued_certificates(
        &self,
        station_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<IssuedCertificateRecord>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, IssuedCertificateRecord>(
                "SELECT id, station_id, serial, certificate_type, status, not_before, not_after, issued_at, \
                 certificate_pem FROM station_certificates WHERE station_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(station_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Of `stations`, those whose latest installed certificate ends before `deadline`
    /// (stations that never installed one are not renewed: they have nothing to renew).
    pub async fn certificates_expiring(&self, stations: &[String], deadline: Ts) -> Result<Vec<String>, StoreError> {
        if stations.is_empty() {
            return Ok(Vec::new());
        }
        // One query per sweep: the latest not_after per station, filtered here (portable SQL
        // without array binds, which SQLite lacks).
        let rows: Vec<(String, Ts)> = on_db!(self.db(), |pool| {
            sqlx::query_as(
                "SELECT station_id, MAX(not_after) FROM station_certificates \
                 WHERE status = 'Installed' GROUP BY station_id",
            )
            .fetch_all(pool)
            .await?
        });
        let wanted: std::collections::HashSet<&str> = stations.iter().map(String::as_str).collect();
        Ok(rows
            .into_iter()
            .filter(|(id, not_after)| not_after.0 < deadline.0 && wanted.contains(id.as_str()))
            .map(|(id, _)| id)
            .collect())
    }

    /// Stores a security event that happened at `occurred_at`, recorded now.
    pub async fn insert_security_event(
        &self,
        station_id: &str,
        source: &str,
        event_type: &str,
        detail: Option<&str>,
        occurred_at: Ts,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO security_events (station_id, source, event_type, detail, occurred_at, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(station_id)
            .bind(source)
            .bind(event_type)
            .bind(detail)
            .bind(occurred_at)
            .bind(Ts::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes security events recorded before `cutoff`; returns how many.
    pub async fn prune_security_events(&self, cutoff: Ts) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query("DELETE FROM security_events WHERE recorded_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// A page of security events, newest first, of one station or all.
    pub async fn security_events(
        &self,
        station_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        Ok(on_db!(self.db(), |pool| {
            sqlx::query_as::<_, SecurityEvent>(
                "SELECT id, station_id, source, event_type, detail, occurred_at FROM security_events \
                 WHERE ($1 = '' OR station_id = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(station_id.unwrap_or(""))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}

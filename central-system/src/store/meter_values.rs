//! Meter readings: batched inserts (the hot path) and reads for the REST API.
//!
//! Stored one row per sampled instant of an EVSE (see the migration for why); the API shows
//! them flattened, one item per sampled value.

use super::types::Ts;
use super::writer::SeqNoSeen;
use super::{on_db, Store, StoreError};
use evcs_bus::EventEnvelope;
use ocpp::model::meter::{energy_register_wh, DEFAULT_CONTEXT, DEFAULT_LOCATION};
use ocpp::model::Sample;
use serde::{Deserialize, Serialize};
use service_kit::db::on_tx;
use std::sync::Arc;
use utoipa::ToSchema;

/// One sampled instant to store.
#[derive(Debug, Clone)]
pub struct MeterRow {
    /// Station.
    pub station_id: Arc<str>,
    /// CSMS transaction id, when the readings belong to one.
    pub transaction_id: Option<i64>,
    /// EVSE id.
    pub evse_id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// The instant.
    pub sampled_at: Ts,
    /// Digest of the measurand/phase/location set (part of the replay key).
    pub sample_key: String,
    /// Energy register at the Outlet in Wh, if sampled.
    pub energy_wh: Option<i64>,
    /// The normalised sampled values as a JSON array.
    pub samples: String,
}

/// A sampled value as read back from a row's JSON. Location and context are left out when
/// they are the specification's defaults, which are most readings.
#[derive(Debug, Clone, Deserialize)]
struct StoredSample {
    #[serde(rename = "m")]
    measurand: String,
    #[serde(rename = "p", default)]
    phase: Option<String>,
    #[serde(rename = "l", default = "default_location")]
    location: String,
    #[serde(rename = "c", default = "default_context")]
    context: String,
    #[serde(rename = "u")]
    unit: String,
    #[serde(rename = "v")]
    value: f64,
}

fn default_location() -> String {
    DEFAULT_LOCATION.to_owned()
}

fn default_context() -> String {
    DEFAULT_CONTEXT.to_owned()
}

/// A sampled value as written into a row's JSON (borrowed: the hot path copies no strings).
#[derive(Serialize)]
struct StoredSampleRef<'a> {
    #[serde(rename = "m")]
    measurand: &'a str,
    #[serde(rename = "p", skip_serializing_if = "Option::is_none")]
    phase: Option<&'a str>,
    #[serde(rename = "l", skip_serializing_if = "is_default_location")]
    location: &'a str,
    #[serde(rename = "c", skip_serializing_if = "is_default_context")]
    context: &'a str,
    #[serde(rename = "u")]
    unit: &'static str,
    #[serde(rename = "v")]
    value: f64,
}

fn is_default_location(location: &&str) -> bool {
    *location == DEFAULT_LOCATION
}

fn is_default_context(context: &&str) -> bool {
    *context == DEFAULT_CONTEXT
}

impl MeterRow {
    /// Groups readings by instant into rows, keeping the charger's order.
    pub fn group(
        station_id: &Arc<str>,
        transaction_id: Option<i64>,
        evse_id: i64,
        connector_id: i64,
        samples: Vec<Sample>,
    ) -> Vec<MeterRow> {
        let row = |group: &[Sample]| MeterRow {
            station_id: station_id.clone(),
            transaction_id,
            evse_id,
            connector_id,
            sampled_at: Ts::from_datetime(group[0].timestamp),
            sample_key: sample_key(group),
            energy_wh: energy_register_wh(group),
            samples: stored_json(group),
        };
        let Some(first) = samples.first() else {
            return Vec::new();
        };
        // Nearly every message samples one instant: that needs no regrouping.
        if samples.iter().all(|s| s.timestamp == first.timestamp) {
            return vec![row(&samples)];
        }
        let mut groups: Vec<Vec<Sample>> = Vec::new();
        for s in samples {
            match groups.iter_mut().find(|g| g[0].timestamp == s.timestamp) {
                Some(g) => g.push(s),
                None => groups.push(vec![s]),
            }
        }
        groups.iter().map(|g| row(g)).collect()
    }
}

/// The JSON array stored in a row's `samples` column.
fn stored_json(group: &[Sample]) -> String {
    let stored: Vec<StoredSampleRef<'_>> = group
        .iter()
        .map(|s| StoredSampleRef {
            measurand: &s.measurand,
            phase: s.phase.as_deref(),
            location: &s.location,
            context: &s.context,
            unit: s.unit.as_str(),
            value: s.value,
        })
        .collect();
    // Serialising plain strings and finite floats cannot fail; an empty array keeps the row valid.
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

/// A stable digest (FNV-1a, 64 bit) of the sorted measurand/phase/location set of an instant.
/// Stable across releases on purpose: it is part of the stored replay key. It hashes the lines
/// `measurand|phase|location`, sorted bytewise and joined with newlines, without building them.
pub fn sample_key(samples: &[Sample]) -> String {
    fn line(s: &Sample) -> impl Iterator<Item = u8> + '_ {
        s.measurand
            .bytes()
            .chain(std::iter::once(b'|'))
            .chain(s.phase.as_deref().unwrap_or("").bytes())
            .chain(std::iter::once(b'|'))
            .chain(s.location.bytes())
    }
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_unstable_by(|a, b| line(a).cmp(line(b)));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, s) in sorted.into_iter().enumerate() {
        let separator = (i > 0).then_some(b'\n');
        for byte in separator.into_iter().chain(line(s)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// A stored reading, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterValue {
    /// Id of the sampled instant (the pagination cursor; shared by its readings).
    pub id: i64,
    /// Station.
    pub station_id: String,
    /// CSMS transaction id.
    pub transaction_id: Option<i64>,
    /// EVSE id.
    pub evse_id: i64,
    /// Connector id.
    pub connector_id: i64,
    /// Measurement instant.
    pub sampled_at: Ts,
    /// OCPP measurand.
    pub measurand: String,
    /// Phase, if any.
    pub phase: Option<String>,
    /// Location.
    pub location: String,
    /// Context.
    pub context: String,
    /// Normalised unit (`Wh`, `W`, `A`, `V`, `Percent`, ...).
    pub unit: String,
    /// Value in that unit.
    pub value: f64,
}

#[derive(sqlx::FromRow)]
struct RowRecord {
    id: i64,
    station_id: String,
    transaction_id: Option<i64>,
    evse_id: i64,
    connector_id: i64,
    sampled_at: Ts,
    samples: String,
}

/// Filters of the reading list.
#[derive(Debug, Clone, Default)]
pub struct MeterFilter {
    /// Only this station.
    pub station_id: Option<String>,
    /// Only this transaction.
    pub transaction_id: Option<i64>,
    /// Only this measurand.
    pub measurand: Option<String>,
}

/// Rows per INSERT statement: 9 binds each stays far below SQLite's 32,766-variable limit.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Inserts sampled instants in one database transaction; replayed ones are ignored.
    pub async fn insert_meter_values(&self, rows: &[MeterRow]) -> Result<(), StoreError> {
        self.commit_batch(rows, &[], &[]).await
    }

    /// The batch writer's commit: readings, the seqNos seen with them and outbox events (the
    /// batch's `meterSummary` rows) in one database transaction.
    pub async fn commit_batch(
        &self,
        rows: &[MeterRow],
        seen: &[SeqNoSeen],
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        if rows.is_empty() && seen.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut tx = self.db().begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            on_tx!(&mut tx, |conn| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO meter_values (station_id, transaction_id, evse_id, connector_id, sampled_at, \
                     sample_key, energy_wh, samples) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&*r.station_id)
                        .push_bind(r.transaction_id)
                        .push_bind(r.evse_id)
                        .push_bind(r.connector_id)
                        .push_bind(r.sampled_at)
                        .push_bind(r.sample_key.as_str())
                        .push_bind(r.energy_wh)
                        .push_bind(r.samples.as_str());
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *conn).await?;
            });
        }
        super::transactions::record_seq_nos_in(&mut tx, seen).await?;
        super::outbox::append(&mut tx, events, Ts::now()).await?;
        self.commit_with_events(tx, !events.is_empty()).await
    }

    /// A page of readings in insertion order: `limit` sampled instants after the cursor
    /// `after`, flattened into one item per sampled value.
    pub async fn meter_values(
        &self,
        filter: &MeterFilter,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MeterValue>, StoreError> {
        // The LIKE narrows rows cheaply; the exact measurand match happens below.
        let like = filter
            .measurand
            .as_deref()
            .map(|m| format!("%\"m\":{}%", serde_json::Value::from(m)));
        let rows = on_db!(self.db(), |pool| {
            sqlx::query_as::<_, RowRecord>(
                "SELECT id, station_id, transaction_id, evse_id, connector_id, sampled_at, samples FROM meter_values \
                 WHERE id > $1 AND ($2 = '' OR station_id = $2) AND ($3 < 0 OR transaction_id = $3) \
                 AND ($4 = '' OR samples LIKE $4) ORDER BY id LIMIT $5",
            )
            .bind(after.unwrap_or(0))
            .bind(filter.station_id.as_deref().unwrap_or(""))
            .bind(filter.transaction_id.unwrap_or(-1))
            .bind(like.as_deref().unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::new();
        for row in rows {
            let samples: Vec<StoredSample> = serde_json::from_str(&row.samples).unwrap_or_default();
            for s in samples {
                if filter.measurand.as_deref().is_some_and(|m| m != s.measurand) {
                    continue;
                }
                out.push(MeterValue {
                    id: row.id,
                    station_id: row.station_id.clone(),
                    transaction_id: row.transaction_id,
                    evse_id: row.evse_id,
                    connector_id: row.connector_id,
                    sampled_at: row.sampled_at,
                    measurand: s.measurand,
                    phase: s.phase,
                    location: s.location,
                    context: s.context,
                    unit: s.unit,
                    value: s.value,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use ocpp::model::Unit;

    fn sample(ts: i64, measurand: &str, phase: Option<&str>, unit: Unit, value: f64) -> Sample {
        Sample {
            timestamp: Utc.timestamp_opt(ts, 0).single().expect("ts"),
            measurand: measurand.into(),
            phase: phase.map(str::to_string),
            location: "Outlet".into(),
            context: "Sample.Periodic".into(),
            unit,
            value,
        }
    }

    #[test]
    fn groups_by_instant_with_energy_and_a_stable_key() {
        let station: Arc<str> = Arc::from("CP");
        let samples = vec![
            sample(10, "Energy.Active.Import.Register", None, Unit::Wh, 1500.4),
            sample(10, "Current.Import", Some("L1"), Unit::A, 16.0),
            sample(20, "Energy.Active.Import.Register", None, Unit::Wh, 1600.0),
        ];
        let rows = MeterRow::group(&station, Some(7), 1, 1, samples.clone());
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].sampled_at, rows[0].energy_wh), (Ts(10_000), Some(1500)));
        assert_eq!(rows[1].energy_wh, Some(1600));
        // Order-independent, and different for a different set of measurands.
        let reversed = vec![samples[1].clone(), samples[0].clone()];
        assert_eq!(sample_key(&samples[..2]), sample_key(&reversed));
        assert_ne!(sample_key(&samples[..1]), sample_key(&samples[..2]));
        // Pinned: the key is stored, so it must never change between releases.
        assert_eq!(sample_key(&samples[..1]), rows[1].sample_key);
        assert_eq!(rows[1].sample_key.len(), 16);
    }

    /// The stored replay key must never change: compare with the definition it was first
    /// written with (format each line, sort, join, hash), on sets where a byte-level and a
    /// field-level sort would disagree.
    #[test]
    fn sample_key_matches_its_original_definition() {
        fn original(samples: &[Sample]) -> String {
            let mut parts: Vec<String> = samples
                .iter()
                .map(|s| format!("{}|{}|{}", s.measurand, s.phase.as_deref().unwrap_or(""), s.location))
                .collect();
            parts.sort_unstable();
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in parts.join("\n").bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{hash:016x}")
        }
        let sets = [
            vec![sample(1, "Energy.Active.Import.Register", None, Unit::Wh, 1.0)],
            vec![
                sample(1, "Power.Active.Import", Some("L1"), Unit::W, 1.0),
                sample(1, "Power.Active.Import", None, Unit::W, 1.0),
                sample(1, "Power.Active", Some("L2"), Unit::W, 1.0),
                sample(1, "Current.Import", Some("L1-N"), Unit::A, 1.0),
                sample(1, "Current.Import", Some("L1"), Unit::A, 1.0),
            ],
            vec![
                sample(1, "SoC", None, Unit::Percent, 1.0),
                sample(1, "SoC", None, Unit::Percent, 2.0),
            ],
        ];
        for set in &sets {
            assert_eq!(sample_key(set), original(set), "{set:?}");
        }
        assert_eq!(sample_key(&sets[0]), "d562e0221b5f169c");
    }

    #[test]
    fn stored_json_leaves_out_defaults_and_reads_back_whole() {
        let mut inlet = sample(5, "Voltage", Some("L1-N"), Unit::V, 230.5);
        inlet.location = "Inlet".into();
        inlet.context = "Transaction.Begin".into();
        let group = vec![sample(5, "Energy.Active.Import.Register", None, Unit::Wh, 10.0), inlet];
        let json = stored_json(&group);
        assert_eq!(
            json,
            r#"[{"m":"Energy.Active.Import.Register","u":"Wh","v":10.0},{"m":"Voltage","p":"L1-N","l":"Inlet","c":"Transaction.Begin","u":"V","v":230.5}]"#
        );
        let back: Vec<StoredSample> = serde_json::from_str(&json).expect("readable");
        assert_eq!(
            (back[0].location.as_str(), back[0].context.as_str()),
            ("Outlet", "Sample.Periodic")
        );
        assert_eq!(
            (back[1].location.as_str(), back[1].context.as_str()),
            ("Inlet", "Transaction.Begin")
        );
        assert_eq!(back[1].phase.as_deref(), Some("L1-N"));
    }
}

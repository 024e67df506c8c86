//! Meter summaries: readings cross the bus as one `meterSummary` per transaction at a cadence
//! (`--meter-summary-secs`) and at every transaction event, never one message per sampled value.
//!
//! The latest values per transaction live here, in memory: the MeterValues hot path only
//! updates them, and when the cadence has passed since the transaction's last summary it gets
//! a [`MeterSnapshot`] back, which goes into the outbox with the readings' batch commit. A
//! transaction event takes the pending snapshot (values the bus has not seen yet) into its own
//! database transaction. After a commit the caller reports [`MeterSummaries::summarized`] or
//! [`MeterSummaries::finish`]; a commit that failed leaves the values pending, so the next
//! reading or event carries them.
//!
//! Times are the central system's receipt times (the caller's clock), so tests drive the
//! cadence without sleeping.

use chrono::{DateTime, Utc};
use evcs_bus::{Event, Location};
use ocpp::model::meter::{energy_register_wh, Unit, DEFAULT_LOCATION};
use ocpp::model::Sample;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Shards of the map: sessions of many stations update it at once.
const SHARDS: usize = 16;
/// Per shard, transactions beyond which stale ones (no reading for [`STALE`]) are forgotten:
/// a transaction whose end never arrives must not hold memory for ever.
const SWEEP_ABOVE: usize = 4096;
const STALE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The latest values of one transaction, as a `meterSummary` carries them.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSnapshot {
    /// Where the transaction runs (bus contract form).
    pub location: Location,
    /// Energy register (Wh).
    pub energy_wh: Option<i64>,
    /// Active import power (W).
    pub power_w: Option<f64>,
    /// State of charge (%).
    pub soc_percent: Option<f64>,
    /// Import current (A).
    pub current_a: Option<f64>,
    /// When the newest of these values was measured.
    pub at: DateTime<Utc>,
}

impl MeterSnapshot {
    /// The bus event for CSMS transaction `transaction_id`.
    pub fn event(&self, transaction_id: i64) -> Event {
        Event::MeterSummary {
            transaction_id: transaction_id.to_string(),
            location: self.location,
            energy_wh: self.energy_wh,
            power_w: self.power_w,
            soc_percent: self.soc_percent,
            current_a: self.current_a,
            at: self.at,
        }
    }

    /// Takes the newer values of `samples`; false if they held none of ours.
    fn merge(&mut self, samples: &[Sample]) -> bool {
        let mut changed = false;
        if let Some(wh) = energy_register_wh(samples) {
            self.energy_wh = Some(wh);
            changed = true;
        }
        // Several phases of one measurand: power adds up, the current is the highest conductor's.
        let mut merge = |value: Option<f64>, into: &mut Option<f64>| {
            if let Some(v) = value {
                *into = Some(v);
                changed = true;
            }
        };
        merge(
            measurand(samples, "Power.Active.Import", Unit::W, Phases::Sum),
            &mut self.power_w,
        );
        merge(
            measurand(samples, "Current.Import", Unit::A, Phases::Max),
            &mut self.current_a,
        );
        merge(
            measurand(samples, "SoC", Unit::Percent, Phases::Max),
            &mut self.soc_percent,
        );
        if let Some(newest) = samples.iter().map(|s| s.timestamp).max() {
            if newest > self.at {
                self.at = newest;
            }
        }
        changed
    }
}

/// How the per-phase values of one instant combine when no total was sampled.
#[derive(Clone, Copy)]
enum Phases {
    /// Power: the phases add up.
    Sum,
    /// Current, SoC: the highest conductor's (or the only) value.
    Max,
}

/// The newest value of a measurand in `unit`: the total (no phase) when sampled, else the
/// per-phase values of the newest instant combined. Outlet readings win over others. Runs on
/// the MeterValues hot path, so it scans instead of collecting.
fn measurand(samples: &[Sample], name: &str, unit: Unit, phases: Phases) -> Option<f64> {
    let matching = |s: &Sample| s.measurand == name && s.unit == unit;
    let outlet = samples.iter().any(|s| matching(s) && s.location == DEFAULT_LOCATION);
    let chosen = |s: &Sample| matching(s) && (!outlet || s.location == DEFAULT_LOCATION);
    let newest = samples.iter().filter(|s| chosen(s)).map(|s| s.timestamp).max()?;
    let at_newest = || samples.iter().filter(move |s| chosen(s) && s.timestamp == newest);
    if let Some(total) = at_newest().rfind(|s| s.phase.is_none()) {
        return Some(total.value);
    }
    let values = at_newest().map(|s| s.value);
    Some(match phases {
        Phases::Sum => values.sum(),
        Phases::Max => values.fold(f64::MIN, f64::max),
    })
}

#[derive(Debug)]
struct Track {
    snapshot: MeterSnapshot,
    /// Values the bus has not seen in a summary yet.
    pending: bool,
    /// When the last summary was committed, or when the transaction was first seen here.
    last_summary: DateTime<Utc>,
    last_update: DateTime<Utc>,
}

/// The latest meter values per CSMS transaction, and when each last crossed the bus.
#[derive(Debug)]
pub struct MeterSummaries {
    cadence: chrono::TimeDelta,
    shards: Vec<Mutex<HashMap<i64, Track>>>,
}

impl MeterSummaries {
    /// Summaries at most every `cadence` per transaction (plus one at each transaction event).
    pub fn new(cadence: Duration) -> MeterSummaries {
        MeterSummaries {
            cadence: chrono::TimeDelta::from_std(cadence).unwrap_or(chrono::TimeDelta::MAX),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, transaction_id: i64) -> MutexGuard<'_, HashMap<i64, Track>> {
        let i = transaction_id.rem_euclid(SHARDS as i64) as usize;
        // A map of plain values stays consistent even if a holder panicked.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a transaction's readings received at `now`. Returns the snapshot to write with
    /// the readings when the cadence has passed since the transaction's last summary (the
    /// cadence counts from the first reading seen, so a short transaction's summary comes with
    /// its end).
    pub fn observe(
        &self,
        transaction_id: i64,
        location: Location,
        samples: &[Sample],
        now: DateTime<Utc>,
    ) -> Option<MeterSnapshot> {
        let mut shard = self.shard(transaction_id);
        if shard.len() > SWEEP_ABOVE {
            shard.retain(|_, t| now - t.last_update < STALE);
        }
        let track = shard.entry(transaction_id).or_insert_with(|| Track {
            snapshot: MeterSnapshot {
                location,
                energy_wh: None,
                power_w: None,
                soc_percent: None,
                current_a: None,
                at: DateTime::<Utc>::MIN_UTC,
            },
            pending: false,
            last_summary: now,
            last_update: now,
        });
        if location != Location::default() {
            track.snapshot.location = location;
        }
        if !track.snapshot.merge(samples) {
            return None;
        }
        track.pending = true;
        track.last_update = now;
        (now - track.last_summary >= self.cadence).then(|| track.snapshot.clone())
    }

    /// The final energy register a transaction's end reports (1.6 meterStop), as a reading.
    pub fn observe_register(&self, transaction_id: i64, location: Location, wh: i64, at: DateTime<Utc>) {
        let mut shard = self.shard(transaction_id);
        let track = shard.entry(transaction_id).or_insert_with(|| Track {
            snapshot: MeterSnapshot {
                location,
                energy_wh: None,
                power_w: None,
                soc_percent: None,
                current_a: None,
                at,
            },
            pending: false,
            last_summary: at,
            last_update: at,
        });
        // A meterStop equal to the last reading tells the bus nothing new.
        if track.snapshot.energy_wh != Some(wh) {
            track.snapshot.energy_wh = Some(wh);
            track.snapshot.at = track.snapshot.at.max(at);
            track.pending = true;
        }
    }

    /// Values of the transaction the bus has not seen yet, for a transaction event to carry.
    pub fn pending(&self, transaction_id: i64) -> Option<MeterSnapshot> {
        let shard = self.shard(transaction_id);
        shard
            .get(&transaction_id)
            .filter(|t| t.pending)
            .map(|t| t.snapshot.clone())
    }

    /// A summary of the transaction was committed at `now`.
    pub fn summarized(&self, transaction_id: i64, now: DateTime<Utc>) {
        if let Some(track) = self.shard(transaction_id).get_mut(&transaction_id) {
            track.pending = false;
            track.last_summary = now;
        }
    }

    /// The transaction ended (and its last summary was committed): forget it.
    pub fn finish(&self, transaction_id: i64) {
        self.shard(transaction_id).remove(&transaction_id);
    }

    /// Transactions tracked (metrics, tests).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap_or_default()
    }

    fn sample(secs: i64, measurand: &str, unit: Unit, phase: Option<&str>, value: f64) -> Sample {
        Sample {
            timestamp: at(secs),
            measurand: measurand.into(),
            phase: phase.map(Into::into),
            location: DEFAULT_LOCATION.into(),
            context: "Sample.Periodic".into(),
            unit,
            value,
        }
    }

    fn reading(secs: i64, wh: f64) -> Vec<Sample> {
        vec![
            sample(secs, "Energy.Active.Import.Register", Unit::Wh, None, wh),
            sample(secs, "Power.Active.Import", Unit::W, Some("L1"), 2000.0),
            sample(secs, "Power.Active.Import", Unit::W, Some("L2"), 2100.0),
            sample(secs, "Current.Import", Unit::A, Some("L1"), 9.0),
            sample(secs, "Current.Import", Unit::A, Some("L2"), 9.5),
            sample(secs, "SoC", Unit::Percent, None, 40.0),
        ]
    }

    const LOC: Location = Location {
        evse_id: Some(1),
        connector_id: Some(1),
    };

    #[test]
    fn a_summary_is_due_once_per_cadence_and_carries_the_latest_values() {
        let summaries = MeterSummaries::new(Duration::from_secs(60));
        // First reading at t=0 starts the clock; nothing is due yet.
        assert_eq!(summaries.observe(7, LOC, &reading(0, 1000.0), at(0)), None);
        assert_eq!(summaries.observe(7, LOC, &reading(30, 1100.0), at(30)), None);
        let due = summaries
            .observe(7, LOC, &reading(60, 1200.0), at(60))
            .expect("due at 60 s");
        assert_eq!(
            (due.energy_wh, due.power_w, due.current_a, due.soc_percent, due.at),
            (Some(1200), Some(4100.0), Some(9.5), Some(40.0), at(60))
        );
        summaries.summarized(7, at(60));
        assert_eq!(summaries.pending(7), None);
        assert_eq!(summaries.observe(7, LOC, &reading(90, 1300.0), at(90)), None);
        assert_eq!(summaries.pending(7).and_then(|s| s.energy_wh), Some(1300));
        assert!(summaries.observe(7, LOC, &reading(120, 1400.0), at(120)).is_some());
    }

    #[test]
    fn an_uncommitted_summary_stays_pending() {
        let summaries = MeterSummaries::new(Duration::ZERO);
        assert!(summaries.observe(1, LOC, &reading(0, 5.0), at(0)).is_some());
        // The batch failed: no `summarized`, so the values are still owed to the bus.
        assert_eq!(summaries.pending(1).and_then(|s| s.energy_wh), Some(5));
    }

    #[test]
    fn readings_without_our_measurands_change_nothing() {
        let summaries = MeterSummaries::new(Duration::ZERO);
        let voltage = vec![sample(0, "Voltage", Unit::V, None, 230.0)];
        assert_eq!(summaries.observe(1, LOC, &voltage, at(0)), None);
        assert_eq!(summaries.pending(1), None);
    }

    #[test]
    fn the_stop_register_and_finish() {
        let summaries = MeterSummaries::new(Duration::from_secs(60));
        summaries.observe(3, LOC, &reading(0, 100.0), at(0));
        summaries.summarized(3, at(1));
        summaries.observe_register(3, LOC, 250, at(5));
        let pending = summaries.pending(3).expect("stop register pending");
        assert_eq!((pending.energy_wh, pending.at), (Some(250), at(5)));
        summaries.summarized(3, at(6));
        summaries.observe_register(3, LOC, 250, at(7));
        assert_eq!(summaries.pending(3), None, "the same register again is nothing new");
        summaries.finish(3);
        assert!(summaries.is_empty());
    }

    #[test]
    fn a_total_wins_over_phases() {
        let mut samples = reading(0, 1.0);
        samples.push(sample(0, "Power.Active.Import", Unit::W, None, 7000.0));
        let summaries = MeterSummaries::new(Duration::ZERO);
        let s = summaries.observe(1, LOC, &samples, at(0)).expect("due");
        assert_eq!(s.power_w, Some(7000.0));
    }
}

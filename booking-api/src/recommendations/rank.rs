//! Ranking of candidate slots: predicted availability from the station's own history at that
//! local weekday and hour, and distance, each recommendation with the reason in words. Pure
//! functions.

use serde::Serialize;
use utoipa::ToSchema;

/// Weight of the predicted availability in the score; the rest is nearness.
pub const AVAILABILITY_WEIGHT: f64 = 0.7;
/// At most this many recommendations per station, so one big station does not fill the list.
pub const PER_STATION: usize = 3;

/// What a prediction rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Basis {
    /// Past slots of the station at the same local weekday and hour (0: none yet).
    pub past_slots: i64,
    /// Their booked share of capacity (None without past slots).
    pub reserved_share: Option<f64>,
}

/// A free slot at a station that fits the vehicle.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub station_id: i64,
    pub station_name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// "Mondays at 10:00", the slot's local weekday and time, for the reason.
    pub local_label: String,
    pub distance_km: f64,
    pub free_units: i64,
    pub capacity: i64,
    pub basis: Basis,
}

/// A ranked recommendation.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub candidate: Candidate,
    pub predicted_availability: f64,
    pub score: f64,
    pub reason: String,
}

/// The chance the slot stays bookable: one minus the booked share at that weekday and hour in
/// the past; without a past, the share free now.
pub fn predicted(c: &Candidate) -> f64 {
    let p = match c.basis.reserved_share {
        Some(share) if c.basis.past_slots > 0 => 1.0 - share,
        _ if c.capacity > 0 => c.free_units as f64 / c.capacity as f64,
        _ => 0.0,
    };
    round(p.clamp(0.0, 1.0), 4)
}

/// Availability weighted with nearness (1 at the origin, 0 at the radius).
pub fn score(availability: f64, distance_km: f64, radius_km: f64) -> f64 {
    let near = if radius_km > 0.0 {
        (1.0 - distance_km / radius_km).clamp(0.0, 1.0)
    } else {
        0.0
    };
    round(
        AVAILABILITY_WEIGHT * availability + (1.0 - AVAILABILITY_WEIGHT) * near,
        4,
    )
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn percent(x: f64) -> String {
    format!("{}%", (x * 100.0).round())
}

/// Why a candidate ranks where it does, in words.
pub fn reason(c: &Candidate, availability: f64) -> String {
    let history = match c.basis.reserved_share {
        Some(share) if c.basis.past_slots > 0 => format!(
            "on {} the last {} slots were {} booked on average, so {} is predicted free",
            c.local_label,
            c.basis.past_slots,
            percent(share),
            percent(availability)
        ),
        _ => format!(
            "no history for {} yet, so the prediction is what is free now ({})",
            c.local_label,
            percent(availability)
        ),
    };
    format!(
        "{history}; {} of {} connectors free now; {:.1} km away",
        c.free_units, c.capacity, c.distance_km
    )
}

/// Ranks `candidates` best first (score, then earlier start, then nearer), at most
/// [`PER_STATION`] per station and `limit` in all.
pub fn rank(candidates: Vec<Candidate>, radius_km: f64, limit: usize) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates
        .into_iter()
        .map(|c| {
            let a = predicted(&c);
            Ranked {
                score: score(a, c.distance_km, radius_km),
                reason: reason(&c, a),
                predicted_availability: a,
                candidate: c,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.candidate.starts_at.cmp(&b.candidate.starts_at))
            .then(a.candidate.distance_km.total_cmp(&b.candidate.distance_km))
            .then(a.candidate.station_id.cmp(&b.candidate.station_id))
    });
    let mut per_station: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    ranked
        .into_iter()
        .filter(|r| {
            let n = per_station.entry(r.candidate.station_id).or_default();
            *n += 1;
            *n <= PER_STATION
        })
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(station: i64, start: i64, distance: f64, past: i64, share: Option<f64>) -> Candidate {
        Candidate {
            station_id: station,
            station_name: format!("S{station}"),
            starts_at: start,
            ends_at: start + 1,
            local_label: "Mondays at 10:00".into(),
            distance_km: distance,
            free_units: 1,
            capacity: 2,
            basis: Basis {
                past_slots: past,
                reserved_share: share,
            },
        }
    }

    #[test]
    fn history_predicts_and_its_absence_falls_back_to_now() {
        assert_eq!(predicted(&candidate(1, 0, 1.0, 4, Some(0.25))), 0.75);
        assert_eq!(predicted(&candidate(1, 0, 1.0, 0, None)), 0.5);
        let r = reason(&candidate(1, 0, 2.04, 4, Some(0.25)), 0.75);
        assert_eq!(
            r,
            "on Mondays at 10:00 the last 4 slots were 25% booked on average, so 75% is predicted free; \
             1 of 2 connectors free now; 2.0 km away"
        );
        assert!(reason(&candidate(1, 0, 1.0, 0, None), 0.5).starts_with("no history"));
    }

    #[test]
    fn a_busy_station_ranks_below_a_quiet_one_slightly_further() {
        let busy = candidate(1, 0, 1.0, 8, Some(1.0));
        let quiet = candidate(2, 0, 3.0, 8, Some(0.0));
        let out = rank(vec![busy, quiet], 10.0, 10);
        assert_eq!(out[0].candidate.station_id, 2);
        // 0.7 * 1 + 0.3 * 0.7 against 0.7 * 0 + 0.3 * 0.9.
        assert_eq!((out[0].score, out[1].score), (0.91, 0.27));
    }

    #[test]
    fn ties_go_to_the_earlier_slot_and_each_station_is_capped() {
        let many: Vec<Candidate> = (0..5).map(|i| candidate(1, 10 - i, 1.0, 0, None)).collect();
        let mut all = many.clone();
        all.push(candidate(2, 100, 1.0, 0, None));
        let out = rank(all, 10.0, 10);
        let starts: Vec<(i64, i64)> = out
            .iter()
            .map(|r| (r.candidate.station_id, r.candidate.starts_at))
            .collect();
        assert_eq!(starts, vec![(1, 6), (1, 7), (1, 8), (2, 100)]);
        assert_eq!(rank(many, 10.0, 2).len(), 2);
    }

    #[test]
    fn scores_stay_within_bounds() {
        assert_eq!(score(1.0, 0.0, 10.0), 1.0);
        assert_eq!(score(0.0, 50.0, 10.0), 0.0);
        assert_eq!(score(0.5, 5.0, 0.0), 0.35);
    }
}

//! A station's connector time per local day (observed, available, occupied), the figures behind
//! availability and occupancy. A complete day is computed from the status history once and kept
//! in `status_days`; later reports read it back. The projection deletes a day, and every day
//! after it, when a status change for it arrives late ([`invalidate`]), so a kept day always
//! equals what the history says.

use super::{store, timeline, timelines};
use crate::app::AppState;
use crate::stations::store::StationRow;
use chrono::NaiveDate;
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::problem::Problem;
use std::collections::BTreeMap;

/// Connector time of one station on one local day, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// Bookable connectors × the part of the day that has passed.
    pub observed: i64,
    pub available: i64,
    pub occupied: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct KeptDay {
    day: String,
    observed_ms: i64,
    available_ms: i64,
    occupied_ms: i64,
}

/// The figures of every date of `from..=to` at `station` up to `now`.
pub async fn station_days(
    state: &AppState,
    station: &StationRow,
    from: NaiveDate,
    to: NaiveDate,
    now: i64,
) -> Result<BTreeMap<NaiveDate, DayFigures>, Problem> {
    let tz = station.tz();
    let connectors = store::bookable_connectors(&state.db, station.id).await?;
    let signature = connectors.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut out = kept(&state.db, station, &signature, from, to).await?;
    let missing: Vec<NaiveDate> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| !out.contains_key(d))
        .collect();
    let (Some(first), Some(last)) = (missing.first(), missing.last()) else {
        return Ok(out);
    };
    let (Some((lo, _)), Some((_, hi))) = (crate::inbox::local_day(tz, *first), crate::inbox::local_day(tz, *last))
    else {
        return Ok(out);
    };
    let (lo, hi) = (lo.timestamp_millis(), hi.timestamp_millis().min(now));
    let history = if hi > lo {
        store::status_history(&state.db, &station.central_station_id, station.id, lo, hi).await?
    } else {
        Vec::new()
    };
    let lines = timelines(&history, &connectors);
    // Every day from the first missing to the last, consecutive, so each connector's timeline
    // is walked once; only the missing ones are used.
    let span: Vec<(NaiveDate, i64, i64)> = first
        .iter_days()
        .take_while(|d| d <= last)
        .filter_map(|d| {
            let (start, end) = crate::inbox::local_day(tz, d)?;
            Some((d, start.timestamp_millis(), end.timestamp_millis()))
        })
        .collect();
    let mut bounds: Vec<i64> = span.iter().map(|(_, start, _)| (*start).min(now)).collect();
    if let Some((_, _, end)) = span.last() {
        bounds.push((*end).min(now));
    }
    let mut sums = vec![(0i64, 0i64); span.len()];
    for (_, changes) in &lines {
        for (k, (a, o)) in timeline::durations_between(changes, &bounds).into_iter().enumerate() {
            if let Some(s) = sums.get_mut(k) {
                s.0 += a;
                s.1 += o;
            }
        }
    }
    let mut complete = Vec::new();
    for ((date, start, day_end), (available, occupied)) in span.into_iter().zip(sums) {
        if out.contains_key(&date) {
            continue;
        }
        let figures = DayFigures {
            observed: (day_end.min(now) - start).max(0) * connectors.len() as i64,
            available,
            occupied,
        };
        if day_end <= now {
            complete.push((date, figures));
        }
        out.insert(date, figures);
    }
    keep(&state.db, station, &signature, &complete).await?;
    Ok(out)
}

async fn kept(
    db: &Db,
    station: &StationRow,
    signature: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, DayFigures>, StoreError> {
    let rows: Vec<KeptDay> = on_db!(db, |pool| sqlx::query_as(
        "SELECT day, observed_ms, available_ms, occupied_ms FROM status_days \
         WHERE station_id = $1 AND time_zone = $2 AND connectors = $3 AND day >= $4 AND day <= $5"
    )
    .bind(station.id)
    .bind(&station.time_zone)
    .bind(signature)
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let day = r.day.parse::<NaiveDate>().ok()?;
            Some((
                day,
                DayFigures {
                    observed: r.observed_ms,
                    available: r.available_ms,
                    occupied: r.occupied_ms,
                },
            ))
        })
        .collect())
}

/// Keeps complete days, a few hundred rows per statement.
async fn keep(
    db: &Db,
    station: &StationRow,
    signature: &str,
    days: &[(NaiveDate, DayFigures)],
) -> Result<(), StoreError> {
    for chunk in days.chunks(400) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|k| {
                let b = k * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO status_days (station_id, day, time_zone, connectors, observed_ms, available_ms, occupied_ms) \
             VALUES {} ON CONFLICT (station_id, day) DO UPDATE SET time_zone = excluded.time_zone, \
             connectors = excluded.connectors, observed_ms = excluded.observed_ms, \
             available_ms = excluded.available_ms, occupied_ms = excluded.occupied_ms",
            rows.join(", ")
        );
        on_db!(db, |pool| {
            let mut q = sqlx::query(&sql);
            for (day, f) in chunk {
                q = q
                    .bind(station.id)
                    .bind(day.to_string())
                    .bind(&station.time_zone)
                    .bind(signature)
                    .bind(f.observed)
                    .bind(f.available)
                    .bind(f.occupied);
            }
            q.execute(pool).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Inside the transaction that records a status change of `central_station_id` at `at`: the
/// kept days of its station from that local date on no longer hold. Only complete days are
/// kept, so a change whose day has not ended by `now` (every change that arrives in time)
/// deletes nothing and is not asked to.
pub async fn invalidate(tx: &mut Tx, central_station_id: &str, at: i64, now: i64) -> Result<(), sqlx::Error> {
    let stations: Vec<(i64, String)> = on_tx!(tx, |conn| sqlx::query_as(
        "SELECT id, time_zone FROM stations WHERE central_station_id = $1"
    )
    .bind(central_station_id)
    .fetch_all(conn)
    .await)?;
    for (id, zone) in stations {
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        let Some(local) = super::figures::local(at, tz) else {
            continue;
        };
        let day_over =
            crate::inbox::local_day(tz, local.date_naive()).is_some_and(|(_, end)| end.timestamp_millis() <= now);
        if !day_over {
            continue;
        }
        on_tx!(tx, |conn| sqlx::query(
            "DELETE FROM status_days WHERE station_id = $1 AND day >= $2"
        )
        .bind(id)
        .bind(local.date_naive().to_string())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

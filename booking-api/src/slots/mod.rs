//! Slot inventory: a rolling horizon of slots per station, generated from the schedule; a slot's
//! capacity is the station's bookable connectors.
//!
//! Reservation is one conditional UPDATE (`booked = booked + 1 WHERE booked < capacity`), so the
//! database decides between concurrent bookings, and a CHECK constraint refuses any over-booked
//! row whatever the code does.

use crate::api::auth::Caller;
use crate::app::AppState;
use crate::stations::schedule::{intervals_on, Schedule};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use service_kit::db::{on_db, on_tx, Db, StoreError, Tx};
use service_kit::extract::ApiPath;
use service_kit::extract::ApiQuery;
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use std::collections::HashSet;
use utoipa::ToSchema;

/// Slot start and end instants (ms) of one local date.
pub fn slots_on(schedule: &Schedule, tz: Tz, slot_minutes: i64, date: NaiveDate) -> Vec<(i64, i64)> {
    let step = slot_minutes.max(1) as u32;
    let mut out = Vec::new();
    for (open, close) in intervals_on(schedule, date) {
        let mut start = open;
        while start + step <= close {
            let naive = date
                .and_hms_opt(0, 0, 0)
                .map(|midnight| midnight + Duration::minutes(i64::from(start)));
            // A local time that a DST change skips has no slot; a repeated one takes the earlier.
            if let Some(utc) = naive.and_then(|n| tz.from_local_datetime(&n).earliest()) {
                let begin = utc.with_timezone(&Utc).timestamp_millis();
                out.push((begin, begin + slot_minutes * 60_000));
            }
            start += step;
        }
    }
    out
}

/// Every slot from `now` over `days` local days.
pub fn horizon(schedule: &Schedule, tz: Tz, slot_minutes: i64, now: DateTime<Utc>, days: i64) -> Vec<(i64, i64)> {
    let today = now.with_timezone(&tz).date_naive();
    let now_ms = now.timestamp_millis();
    (0..=days.max(0))
        .filter_map(|d| today.checked_add_signed(Duration::days(d)))
        .flat_map(|date| slots_on(schedule, tz, slot_minutes, date))
        .filter(|(start, _)| *start >= now_ms)
        .collect()
}

/// A station's inventory parameters.
#[derive(Debug, Clone)]
pub struct StationInventory {
    /// Station id.
    pub station_id: i64,
    /// Opening hours.
    pub schedule: Schedule,
    /// IANA zone.
    pub tz: Tz,
    /// Slot length.
    pub slot_minutes: i64,
    /// Bookable connectors.
    pub capacity: i64,
}

/// Brings one station's future inventory in line with its schedule inside `tx`: adds missing
/// slots, removes unbooked slots the schedule no longer has (booked ones stay, their bookings
/// are honoured) and sets the capacity of future slots booked within it: the bookable
/// connectors less those maintenance windows block.
pub async fn sync_station(
    tx: &mut Tx,
    inv: &StationInventory,
    now: DateTime<Utc>,
    days: i64,
) -> Result<usize, sqlx::Error> {
    let wanted = horizon(&inv.schedule, inv.tz, inv.slot_minutes, now, days);
    let wanted_starts: HashSet<i64> = wanted.iter().map(|(s, _)| *s).collect();
    let now_ms = now.timestamp_millis();
    let existing: Vec<(i64, i64, i64)> = on_tx!(tx, |conn| {
        sqlx::query_as("SELECT id, starts_at, ends_at FROM slots WHERE station_id = $1 AND starts_at >= $2")
            .bind(inv.station_id)
            .bind(now_ms)
            .fetch_all(conn)
            .await
    })?;
    let mut have: HashSet<i64> = HashSet::new();
    for (id, start, end) in existing {
        let fits = wanted_starts.contains(&start) && end - start == inv.slot_minutes * 60_000;
        if fits {
            have.insert(start);
        } else {
            on_tx!(tx, |conn| {
                sqlx::query("DELETE FROM slots WHERE id = $1 AND booked = 0")
                    .bind(id)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
    }
    let mut added = 0;
    for (start, end) in wanted.into_iter().filter(|(s, _)| !have.contains(s)) {
        let r = on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO slots (station_id, starts_at, ends_at, capacity, booked) VALUES ($1, $2, $3, $4, 0) \
                 ON CONFLICT (station_id, starts_at) DO NOTHING",
            )
            .bind(inv.station_id)
            .bind(start)
            .bind(end)
            .bind(inv.capacity)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        added += r as usize;
    }
    // Capacities last, so new slots get theirs too: the bookable connectors less what
    // maintenance windows block (maintenance::store::blocked_units).
    let sql = format!(
        "UPDATE slots SET capacity = $1 - {blocked} WHERE station_id = $2 AND starts_at >= $3 AND booked <= $1 - {blocked}",
        blocked = crate::maintenance::store::blocked_units("slots")
    );
    on_tx!(tx, |conn| {
        sqlx::query(&sql)
            .bind(inv.capacity)
            .bind(inv.station_id)
            .bind(now_ms)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(added)
}

/// Takes one unit of a slot; false when it is full (or gone). Atomic in the database.
pub async fn reserve(tx: &mut Tx, slot_id: i64) -> Result<bool, sqlx::Error> {
    let r = on_tx!(tx, |conn| {
        sqlx::query("UPDATE slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity")
            .bind(slot_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Gives one unit of a slot back.
pub async fn release(tx: &mut Tx, slot_id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE slots SET booked = booked - 1 WHERE id = $1 AND booked > 0")
            .bind(slot_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A slot.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Id.
    pub id: i64,
    /// Station.
    pub station_id: i64,
    /// Start (UTC).
    pub starts_at: Ts,
    /// End (UTC).
    pub ends_at: Ts,
    /// Bookable connectors.
    pub capacity: i64,
    /// Units booked.
    pub booked: i64,
}

const COLUMNS: &str = "id, station_id, starts_at, ends_at, capacity, booked";

/// The slot of a station starting at `starts_at`.
pub async fn at(db: &Db, station_id: i64, starts_at: i64) -> Result<Option<Slot>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM slots WHERE station_id = $1 AND starts_at = $2");
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(station_id)
        .bind(starts_at)
        .fetch_optional(pool)
        .await)?)
}

/// Slots of a station starting in `[from, to)`.
pub async fn between(db: &Db, station_id: i64, from: i64, to: i64) -> Result<Vec<Slot>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM slots WHERE station_id = $1 AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at"
    );
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(station_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}

/// Query of `GET /stations/{id}/slots`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotQuery {
    /// Start of the window (default now).
    from: Option<DateTime<Utc>>,
    /// Days (1-14, default 1).
    days: Option<i64>,
    /// Only slots with room.
    available: Option<bool>,
}

/// Slot routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/stations/{id}/slots", get(list))
}

/// `GET /stations/{id}/slots` (every role that may see the station).
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SlotQuery>,
) -> Result<Json<Vec<Slot>>, Problem> {
    crate::stations::visible(&state, &caller, id).await?;
    let days = q.days.unwrap_or(1);
    if !(1..=14).contains(&days) {
        return Err(Problem::invalid_field("days", "out_of_range", "days is 1 to 14"));
    }
    let from = q.from.unwrap_or_else(|| state.clock.now()).timestamp_millis();
    let mut slots = between(&state.db, id, from, from + days * 86_400_000).await?;
    if q.available == Some(true) {
        slots.retain(|s| s.booked < s.capacity);
    }
    Ok(Json(slots))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::stations::schedule::{ScheduleException, WeeklyHours};

    fn weekdays(open: &str, close: &str) -> Schedule {
        Schedule {
            weekly: ["mon", "tue", "wed", "thu", "fri"]
                .iter()
                .map(|d| WeeklyHours {
                    day: d.to_string(),
                    open: open.into(),
                    close: close.into(),
                })
                .collect(),
            exceptions: vec![],
        }
    }

    #[test]
    fn slots_follow_the_local_schedule() {
        let tz: Tz = "Asia/Colombo".parse().unwrap();
        let monday = NaiveDate::from_ymd_opt(2030, 1, 7).unwrap();
        let slots = slots_on(&weekdays("08:00", "10:00"), tz, 30, monday);
        assert_eq!(slots.len(), 4);
        // 08:00 in Colombo is 02:30 UTC.
        assert_eq!(
            slots[0].0,
            Utc.with_ymd_and_hms(2030, 1, 7, 2, 30, 0).unwrap().timestamp_millis()
        );
        assert_eq!(slots[0].1 - slots[0].0, 30 * 60_000);
        // A slot that would overrun the closing time is not made.
        assert_eq!(slots_on(&weekdays("08:00", "09:50"), tz, 30, monday).len(), 3);
        assert!(slots_on(
            &weekdays("08:00", "10:00"),
            tz,
            30,
            NaiveDate::from_ymd_opt(2030, 1, 12).unwrap()
        )
        .is_empty());
    }

    #[test]
    fn dst_gap_has_no_slot() {
        // Europe/Berlin skips 02:00-03:00 on 2030-03-31 (a Sunday).
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule {
            weekly: vec![WeeklyHours {
                day: "sun".into(),
                open: "01:00".into(),
                close: "04:00".into(),
            }],
            exceptions: vec![],
        };
        let slots = slots_on(&s, tz, 60, NaiveDate::from_ymd_opt(2030, 3, 31).unwrap());
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn horizon_starts_now_and_honours_exceptions() {
        let tz: Tz = "UTC".parse().unwrap();
        let mut s = weekdays("08:00", "10:00");
        s.exceptions.push(ScheduleException {
            date: NaiveDate::from_ymd_opt(2030, 1, 8).unwrap(),
            intervals: vec![],
        });
        let now = Utc.with_ymd_and_hms(2030, 1, 7, 9, 0, 0).unwrap();
        let slots = horizon(&s, tz, 60, now, 2);
        // Monday 09:00 (now) and Wednesday 08:00, 09:00; Tuesday is an exception.
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0].0, now.timestamp_millis());
    }
}

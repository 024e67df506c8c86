//! The operator's day: `GET /inbox`, the approved and checked-in bookings of one local day at
//! every station the caller handles (each station's own day, in its own time zone), with the
//! station's unresolved alerts counted. What an operator opens in the morning, and what the QR
//! scan and the exception endpoints act on.

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::bookings::store::Booking;
use crate::stations::store::StationRow;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiQuery;
use service_kit::problem::Problem;
use service_kit::sql_types::Ts;
use utoipa::ToSchema;

/// Inbox routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/inbox", get(inbox))
}

/// The most stations one inbox lists; a caller with more narrows by `stationId`.
pub const MAX_STATIONS: usize = 100;

/// Query of `GET /inbox`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboxQuery {
    /// The local date (`YYYY-MM-DD`); each station's today when absent.
    date: Option<NaiveDate>,
    /// Only this station.
    station_id: Option<i64>,
}

/// One station's day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationDay {
    pub station_id: i64,
    pub name: String,
    pub time_zone: String,
    /// The local date shown.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// The local day's first instant (UTC).
    pub from: Ts,
    /// The next local day's first instant (UTC): 23 or 25 hours after `from` on a
    /// daylight-saving change.
    pub to: Ts,
    /// Unresolved (Open or Acknowledged) alerts of the station, whatever their day.
    pub open_alerts: i64,
    /// Approved bookings still to arrive.
    pub approved: i64,
    /// Bookings checked in.
    pub checked_in: i64,
    /// Approved and CheckedIn bookings starting that day, by start time.
    pub bookings: Vec<Booking>,
}

/// `GET /inbox` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inbox {
    pub stations: Vec<StationDay>,
    /// True when the caller handles more than [`MAX_STATIONS`] stations and only the first
    /// were listed (ask by `stationId`).
    pub truncated: bool,
}

/// The first instant of `date` in `tz`. A zone whose clocks skip midnight (a spring-forward at
/// 00:00) starts its day at the first local time that exists.
pub fn day_start(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    (0..=3)
        .find_map(|h| tz.from_local_datetime(&(midnight + Duration::hours(h))).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// The UTC bounds `[from, to)` of the local day `date` in `tz`.
pub fn local_day(tz: Tz, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((day_start(tz, date)?, day_start(tz, date.succ_opt()?)?))
}

/// Stations the caller handles (one more than the cap, to tell truncation).
async fn stations_in_scope(
    state: &AppState,
    caller: &Caller,
    station_id: Option<i64>,
) -> Result<Vec<StationRow>, Problem> {
    if let Some(id) = station_id {
        let row = crate::stations::store::get(&state.db, id)
            .await?
            .ok_or_else(|| Problem::not_found("station"))?;
        if !crate::stations::handles(&state.db, caller, id).await? {
            return Err(Problem::forbidden("this station is outside your scope"));
        }
        return Ok(vec![row]);
    }
    let (backoffice, operator) = match caller.role {
        Role::Admin => (None, None),
        Role::BackOffice => (Some(caller.id), None),
        Role::Operator => (None, Some(caller.id)),
        Role::Owner => return Err(Problem::forbidden("the inbox is for station staff")),
    };
    Ok(crate::stations::store::list(
        &state.db,
        backoffice,
        operator,
        false,
        None,
        None,
        MAX_STATIONS as i64 + 1,
    )
    .await?)
}

/// `GET /inbox?date=YYYY-MM-DD&stationId=` (admin: every station; BackOffice: its stations;
/// operator: assigned stations; owners 403).
async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Inbox>, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice, Role::Operator])?;
    let mut stations = stations_in_scope(&state, &caller, q.station_id).await?;
    let truncated = stations.len() > MAX_STATIONS;
    stations.truncate(MAX_STATIONS);
    let now = state.clock.now();
    let mut days = Vec::with_capacity(stations.len());
    for station in stations {
        let tz = station.tz();
        let date = q.date.unwrap_or_else(|| now.with_timezone(&tz).date_naive());
        let (from, to) = local_day(tz, date).ok_or_else(|| {
            Problem::invalid_field("date", "invalid_date", "a date that exists in the station's calendar")
        })?;
        let bookings =
            crate::bookings::store::day_list(&state.db, station.id, from.timestamp_millis(), to.timestamp_millis())
                .await?;
        let open_alerts = crate::alerts::unresolved_count(&state.db, station.id).await?;
        let count = |s: &str| bookings.iter().filter(|b| b.status == s).count() as i64;
        days.push(StationDay {
            station_id: station.id,
            approved: count("Approved"),
            checked_in: count("CheckedIn"),
            name: station.name,
            time_zone: station.time_zone,
            date,
            from: Ts(from.timestamp_millis()),
            to: Ts(to.timestamp_millis()),
            open_alerts,
            bookings,
        });
    }
    Ok(Json(Inbox {
        stations: days,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_day_spans_local_midnight_to_midnight() {
        let tz: Tz = "Asia/Colombo".parse().unwrap();
        let (from, to) = local_day(tz, date(2030, 1, 7)).unwrap();
        assert_eq!(from, Utc.with_ymd_and_hms(2030, 1, 6, 18, 30, 0).unwrap());
        assert_eq!(to - from, Duration::hours(24));
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours_long() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (from, to) = local_day(tz, date(2030, 3, 31)).unwrap();
        assert_eq!(from, Utc.with_ymd_and_hms(2030, 3, 30, 23, 0, 0).unwrap());
        assert_eq!(to - from, Duration::hours(23));
        let (from, to) = local_day(tz, date(2030, 10, 27)).unwrap();
        assert_eq!(from, Utc.with_ymd_and_hms(2030, 10, 26, 22, 0, 0).unwrap());
        assert_eq!(to - from, Duration::hours(25));
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_first_local_time() {
        // Santiago springs forward at 00:00 (to 01:00) on the first Sunday of September 2030.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let (from, to) = local_day(tz, date(2030, 9, 8)).unwrap();
        assert_eq!(from.with_timezone(&tz).format("%H:%M").to_string(), "01:00");
        assert_eq!(to - from, Duration::hours(23));
    }
}

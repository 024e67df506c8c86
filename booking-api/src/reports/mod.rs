//! Reports for admins, BackOffices and operators, each scoped to the stations the caller
//! handles (admins all, a BackOffice its stations, an operator the assigned ones; owners 403),
//! over an inclusive range of local dates (`?from=&to=`, default the last 30 days, at most
//! 366), every figure counted in its station's own time zone:
//! - `GET /reports/summary`: KPIs: bookings by status, approvals, check-in, completion and
//!   no-show rates, revenue per currency, energy, sessions and their average length, charger
//!   availability from the status history;
//! - `GET /reports/timeseries?metric=bookings|revenue|energy&interval=day|week|month`: one
//!   point per period, empty periods included;
//! - `GET /reports/utilization`: per station and day, reserved units against capacity, and
//!   actual occupancy from connector statuses;
//! - `GET /reports/occupancy-heatmap`: reserved share of capacity by local weekday and hour.
//!
//! Every report also comes as CSV (`?format=csv`), the time series and the heatmap also as chart
//! images (`?format=svg|png`, [`charts`]). The arithmetic is in [`figures`] and
//! [`timeline`], pure and unit-tested; [`store`] reads the rows.

pub mod charts;
pub mod csv;
pub mod figures;
pub mod store;
pub mod timeline;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::billing::money::{Currency, Money};
use crate::sessions::reconcile;
use crate::stations::store::StationRow;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use chrono_tz::Tz;
use figures::{Heatmap, Interval, Range, RangeError, StatusCounts};
use serde::{Deserialize, Serialize};
use service_kit::extract::ApiQuery;
use service_kit::problem::Problem;
use std::collections::{BTreeMap, HashMap};
use store::Scope;
use utoipa::ToSchema;

/// Report routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/summary", get(summary))
        .route("/reports/timeseries", get(timeseries))
        .route("/reports/utilization", get(utilization))
        .route("/reports/occupancy-heatmap", get(heatmap))
}

/// JSON (the default), CSV, or a chart (SVG, PNG: the time series and the heatmap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
    Svg,
    Png,
}

fn no_chart() -> Problem {
    Problem::invalid_field(
        "format",
        "no_chart",
        "this report comes as json or csv; charts are of the time series and the heatmap",
    )
}

/// A chart as the response.
fn image(bytes: Result<Vec<u8>, charts::ChartError>, format: charts::Image) -> Result<Response, Problem> {
    let bytes = bytes.map_err(|e| Problem::internal(e.to_string()))?;
    let kind = match format {
        charts::Image::Svg => "image/svg+xml",
        charts::Image::Png => "image/png",
    };
    Ok(([(axum::http::header::CONTENT_TYPE, kind)], bytes).into_response())
}

/// Query of the summary, utilization and heatmap reports.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    station_id: Option<i64>,
    #[serde(default)]
    format: Format,
}

/// What a time series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Bookings by the local date of their slot.
    Bookings,
    /// Invoices less credit notes, by the local date of issue, in minor units per currency.
    Revenue,
    /// Energy (Wh) of sessions, by the local date of their start.
    Energy,
}

/// Query of `GET /reports/timeseries`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesQuery {
    metric: Metric,
    #[serde(default = "day")]
    interval: Interval,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    station_id: Option<i64>,
    #[serde(default)]
    format: Format,
}

fn day() -> Interval {
    Interval::Day
}

const STAFF: &[Role] = &[Role::Admin, Role::BackOffice, Role::Operator];

/// The caller's range and stations (403 for owners and for a station outside the scope, 404
/// for an unknown one, 400 for a bad range).
async fn prepare(
    state: &AppState,
    caller: &Caller,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    station_id: Option<i64>,
) -> Result<(Range, Vec<StationRow>), Problem> {
    caller.require(STAFF)?;
    let today = state.clock.now().date_naive();
    let range = Range::new(from, to, today).map_err(|e| match e {
        RangeError::Inverted => Problem::invalid_field("from", "after_to", "from must not be after to"),
        RangeError::TooLong => Problem::invalid_field("to", "range_too_long", "a report covers at most 366 days"),
    })?;
    if let Some(id) = station_id {
        if crate::stations::store::get(&state.db, id).await?.is_none() {
            return Err(Problem::not_found("station"));
        }
        if !crate::alerts::in_scope(&state.db, caller, id).await? {
            return Err(Problem::forbidden("this station is outside your scope"));
        }
    }
    let stations = store::stations(&state.db, Scope { caller, station_id }).await?;
    Ok((range, stations))
}

fn zones(stations: &[StationRow]) -> HashMap<i64, Tz> {
    stations.iter().map(|s| (s.id, s.tz())).collect()
}

/// An amount per currency.
fn money(currency: &str, minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::parse(currency).unwrap_or(Currency::NONE),
    }
}

/// `GET /reports/summary` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Stations counted.
    pub stations: i64,
    /// Bookings whose slot starts in the range, by status.
    pub bookings: StatusCounts,
    /// Bookings approved and not cancelled before the day (still approved, arrived, no-show).
    pub approvals: i64,
    /// Arrived ÷ (arrived + no-shows); null without either.
    pub check_in_rate: Option<f64>,
    /// Completed ÷ arrived.
    pub completion_rate: Option<f64>,
    /// No-shows ÷ (arrived + no-shows).
    pub no_show_rate: Option<f64>,
    /// Invoices less credit notes issued in the range, per currency.
    #[schema(value_type = Vec<Object>)]
    pub revenue: Vec<Money>,
    /// Sessions that started in the range.
    pub sessions: i64,
    /// Their metered energy (Wh).
    pub energy_wh: i64,
    /// Average length of those that ended, in seconds.
    pub average_session_seconds: Option<i64>,
    /// Share of bookable connector time the charger was online and the connector in order,
    /// from the status history up to now; null when nothing of the range has passed.
    pub availability: Option<f64>,
}

/// `GET /reports/summary?from&to&stationId&format`.
async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, Problem> {
    let (range, stations) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let scope = Scope {
        caller: &caller,
        station_id: q.station_id,
    };
    let tz = zones(&stations);
    let (lo, hi) = range.utc_window();
    let mut counts = StatusCounts::default();
    for b in store::bookings(&state.db, scope, lo, hi).await? {
        if tz
            .get(&b.station_id)
            .and_then(|z| range.local_date(b.starts_at, *z))
            .is_some()
        {
            counts.add(&b.status, b.exception.as_deref());
        }
    }
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    for r in store::revenue(&state.db, scope, lo, hi).await? {
        if tz
            .get(&r.station_id)
            .and_then(|z| range.local_date(r.issued_at, *z))
            .is_some()
        {
            *revenue.entry(r.currency).or_default() += r.total_incl_vat;
        }
    }
    let (mut sessions, mut energy, mut ended, mut seconds) = (0i64, 0i64, 0i64, 0i64);
    for s in store::sessions(&state.db, scope, lo, hi).await? {
        let inside = s
            .station_id
            .and_then(|id| tz.get(&id))
            .zip(s.started_at)
            .and_then(|(z, at)| range.local_date(at, *z))
            .is_some();
        if !inside {
            continue;
        }
        let facts = s.facts();
        sessions += 1;
        energy += reconcile::energy(&facts).map(|(wh, _)| wh).unwrap_or(0);
        if facts.ended_at.is_some() {
            if let Some(secs) = reconcile::duration_secs(&facts, 0) {
                ended += 1;
                seconds += secs;
            }
        }
    }
    let now = state.clock.now_ms();
    let (mut available, mut observed) = (0i64, 0i64);
    for station in &stations {
        let (a, o) = availability(&state, station, &range, now).await?;
        available += a;
        observed += o;
    }
    let report = Summary {
        from: range.from,
        to: range.to,
        stations: stations.len() as i64,
        approvals: counts.approvals(),
        check_in_rate: counts.check_in_rate(),
        completion_rate: counts.completion_rate(),
        no_show_rate: counts.no_show_rate(),
        bookings: counts,
        revenue: revenue.iter().map(|(c, m)| money(c, *m)).collect(),
        sessions,
        energy_wh: energy,
        average_session_seconds: (ended > 0).then(|| seconds / ended),
        availability: figures::ratio(available, observed),
    };
    Ok(match q.format {
        Format::Json => Json(report).into_response(),
        Format::Csv => csv::summary(&report),
        Format::Svg | Format::Png => return Err(no_chart()),
    })
}

/// Milliseconds available and observed (bookable connectors × the part of the range that has
/// passed) at one station.
async fn availability(state: &AppState, station: &StationRow, range: &Range, now: i64) -> Result<(i64, i64), Problem> {
    let tz = station.tz();
    let (Some(start), Some(end)) = (
        crate::inbox::day_start(tz, range.from),
        range.to.succ_opt().and_then(|d| crate::inbox::day_start(tz, d)),
    ) else {
        return Ok((0, 0));
    };
    let (start, end) = (start.timestamp_millis(), end.timestamp_millis().min(now));
    if end <= start {
        return Ok((0, 0));
    }
    let connectors = store::bookable_connectors(&state.db, station.id).await?;
    let history = store::status_history(&state.db, &station.central_station_id, start, end).await?;
    let timelines = timelines(&history, &connectors);
    let available: i64 = timelines
        .iter()
        .map(|(_, changes)| timeline::durations(changes, start, end).0)
        .sum();
    Ok((available, (end - start) * connectors.len() as i64))
}

/// Each connector's merged timeline (its statuses with the charger's online changes).
fn timelines(history: &[store::StatusRow], connectors: &[i64]) -> Vec<(i64, Vec<(i64, timeline::Change)>)> {
    let charger: Vec<(i64, bool)> = history
        .iter()
        .filter(|r| r.connector_key == 0)
        .map(|r| (r.at, r.status == "Online"))
        .collect();
    connectors
        .iter()
        .map(|c| {
            let statuses: Vec<(i64, String)> = history
                .iter()
                .filter(|r| r.connector_key == *c)
                .map(|r| (r.at, r.status.clone()))
                .collect();
            (*c, timeline::merge(&charger, &statuses))
        })
        .collect()
}

/// One period of a series.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// The period's first date.
    #[schema(value_type = String, format = Date)]
    pub period: NaiveDate,
    /// Bookings, Wh, or minor units of the series' currency.
    pub value: i64,
    /// Revenue as a decimal string in the currency.
    pub amount: Option<String>,
}

/// A series (one per currency for revenue).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub currency: Option<String>,
    pub points: Vec<Point>,
}

/// `GET /reports/timeseries` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeSeries {
    pub metric: Metric,
    pub interval: Interval,
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// `bookings`, `Wh` or `minor units`.
    pub unit: String,
    pub series: Vec<Series>,
}

/// `GET /reports/timeseries?metric&interval&from&to&stationId&format`.
async fn timeseries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Response, Problem> {
    let (range, stations) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let scope = Scope {
        caller: &caller,
        station_id: q.station_id,
    };
    let tz = zones(&stations);
    let (lo, hi) = range.utc_window();
    // (currency, period) -> value; currency None except for revenue.
    let mut sums: BTreeMap<(Option<String>, NaiveDate), i64> = BTreeMap::new();
    let mut add = |currency: Option<String>, date: Option<NaiveDate>, v: i64| {
        if let Some(d) = date {
            *sums.entry((currency, q.interval.period_of(d))).or_default() += v;
        }
    };
    let local = |station: Option<i64>, at: Option<i64>| {
        let z = station.and_then(|id| tz.get(&id))?;
        range.local_date(at?, *z)
    };
    match q.metric {
        Metric::Bookings => {
            for b in store::bookings(&state.db, scope, lo, hi).await? {
                add(None, local(Some(b.station_id), Some(b.starts_at)), 1);
            }
        }
        Metric::Energy => {
            for s in store::sessions(&state.db, scope, lo, hi).await? {
                let wh = reconcile::energy(&s.facts()).map(|(wh, _)| wh).unwrap_or(0);
                add(None, local(s.station_id, s.started_at), wh);
            }
        }
        Metric::Revenue => {
            for r in store::revenue(&state.db, scope, lo, hi).await? {
                add(
                    Some(r.currency),
                    local(Some(r.station_id), Some(r.issued_at)),
                    r.total_incl_vat,
                );
            }
        }
    }
    let mut currencies: Vec<Option<String>> = sums.keys().map(|(c, _)| c.clone()).collect();
    currencies.dedup();
    if currencies.is_empty() {
        currencies.push(None);
    }
    let periods = q.interval.periods(&range);
    let series = currencies
        .into_iter()
        .map(|currency| Series {
            points: periods
                .iter()
                .map(|p| {
                    let value = sums.get(&(currency.clone(), *p)).copied().unwrap_or(0);
                    Point {
                        period: *p,
                        value,
                        amount: currency.as_deref().map(|c| money(c, value).amount().to_string()),
                    }
                })
                .collect(),
            currency,
        })
        .collect();
    let report = TimeSeries {
        metric: q.metric,
        interval: q.interval,
        from: range.from,
        to: range.to,
        unit: match q.metric {
            Metric::Bookings => "bookings",
            Metric::Energy => "Wh",
            Metric::Revenue => "minor units",
        }
        .into(),
        series,
    };
    Ok(match q.format {
        Format::Json => Json(report).into_response(),
        Format::Csv => csv::series(&report),
        Format::Svg => image(charts::series(&report, charts::Image::Svg), charts::Image::Svg)?,
        Format::Png => image(charts::series(&report, charts::Image::Png), charts::Image::Png)?,
    })
}

/// One station's day in the utilization report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UtilizationDay {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// Slots offered that day.
    pub slots: i64,
    /// Bookable units offered (slots × connectors).
    pub capacity: i64,
    /// Units booked.
    pub reserved: i64,
    /// reserved ÷ capacity.
    pub reserved_ratio: Option<f64>,
    /// Connector hours of the day that have passed (bookable connectors).
    pub observed_hours: f64,
    /// Of those, hours with a vehicle plugged in (connector status).
    pub occupied_hours: f64,
    /// occupied ÷ observed.
    pub occupied_ratio: Option<f64>,
}

/// One station in the utilization report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationUtilization {
    pub station_id: i64,
    pub name: String,
    pub time_zone: String,
    pub days: Vec<UtilizationDay>,
}

/// `GET /reports/utilization` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Utilization {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub stations: Vec<StationUtilization>,
}

fn hours(ms: i64) -> f64 {
    (ms as f64 / 3_600_000.0 * 100.0).round() / 100.0
}

/// `GET /reports/utilization?from&to&stationId&format`.
async fn utilization(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, Problem> {
    let (range, stations) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let scope = Scope {
        caller: &caller,
        station_id: q.station_id,
    };
    let (lo, hi) = range.utc_window();
    let mut by_day: HashMap<(i64, NaiveDate), (i64, i64, i64)> = HashMap::new();
    let tz = zones(&stations);
    for s in store::slots(&state.db, scope, lo, hi).await? {
        if let Some(d) = tz.get(&s.station_id).and_then(|z| range.local_date(s.starts_at, *z)) {
            let e = by_day.entry((s.station_id, d)).or_default();
            e.0 += 1;
            e.1 += s.capacity;
            e.2 += s.booked;
        }
    }
    let now = state.clock.now_ms();
    let mut out = Vec::with_capacity(stations.len());
    for station in stations {
        let zone = station.tz();
        let connectors = store::bookable_connectors(&state.db, station.id).await?;
        let history = store::status_history(&state.db, &station.central_station_id, lo, hi).await?;
        let timelines = timelines(&history, &connectors);
        let mut days = Vec::new();
        for date in range.dates() {
            let (slots, capacity, reserved) = by_day.get(&(station.id, date)).copied().unwrap_or_default();
            let (observed, occupied) = match crate::inbox::local_day(zone, date) {
                Some((start, end)) => {
                    let (start, end) = (start.timestamp_millis(), end.timestamp_millis().min(now));
                    let occupied: i64 = timelines
                        .iter()
                        .map(|(_, changes)| timeline::durations(changes, start, end).1)
                        .sum();
                    ((end - start).max(0) * connectors.len() as i64, occupied)
                }
                None => (0, 0),
            };
            days.push(UtilizationDay {
                date,
                slots,
                capacity,
                reserved,
                reserved_ratio: figures::ratio(reserved, capacity),
                observed_hours: hours(observed),
                occupied_hours: hours(occupied),
                occupied_ratio: figures::ratio(occupied, observed),
            });
        }
        out.push(StationUtilization {
            station_id: station.id,
            name: station.name,
            time_zone: station.time_zone,
            days,
        });
    }
    let report = Utilization {
        from: range.from,
        to: range.to,
        stations: out,
    };
    Ok(match q.format {
        Format::Json => Json(report).into_response(),
        Format::Csv => csv::utilization(&report),
        Format::Svg | Format::Png => return Err(no_chart()),
    })
}

/// `GET /reports/occupancy-heatmap` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OccupancyHeatmap {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// 168 cells, Monday 00:00 first, each slot counted at its station's local weekday and hour.
    pub cells: Vec<figures::Cell>,
}

/// `GET /reports/occupancy-heatmap?from&to&stationId&format`.
async fn heatmap(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, Problem> {
    let (range, stations) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let scope = Scope {
        caller: &caller,
        station_id: q.station_id,
    };
    let tz = zones(&stations);
    let (lo, hi) = range.utc_window();
    let mut map = Heatmap::default();
    for s in store::slots(&state.db, scope, lo, hi).await? {
        let Some(z) = tz.get(&s.station_id) else { continue };
        if range.local_date(s.starts_at, *z).is_some() {
            if let Some(start) = figures::local(s.starts_at, *z) {
                map.add(start, s.booked, s.capacity);
            }
        }
    }
    let report = OccupancyHeatmap {
        from: range.from,
        to: range.to,
        cells: map.cells(),
    };
    Ok(match q.format {
        Format::Json => Json(report).into_response(),
        Format::Csv => csv::heatmap(&report),
        Format::Svg => image(charts::heatmap(&report, charts::Image::Svg), charts::Image::Svg)?,
        Format::Png => image(charts::heatmap(&report, charts::Image::Png), charts::Image::Png)?,
    })
}

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
pub mod days;
pub mod figures;
pub mod store;
pub mod timeline;

use crate::api::auth::{Caller, Role};
use crate::app::AppState;
use crate::billing::money::{Currency, Money};
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
async fn prepare<'a>(
    state: &AppState,
    caller: &'a Caller,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    station_id: Option<i64>,
) -> Result<(Range, Vec<StationRow>, Scope<'a>), Problem> {
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
        if !crate::stations::handles(&state.db, caller, id).await? {
            return Err(Problem::forbidden("this station is outside your scope"));
        }
    }
    let scope = Scope { caller, station_id };
    let stations = store::stations(&state.db, scope).await?;
    Ok((range, stations, scope))
}

/// One time zone of the scope: its name as stored, the zone, and the UTC bounds of the range's
/// local dates there.
struct Zone {
    name: String,
    tz: Tz,
    lo: i64,
    hi: i64,
}

/// The scope's time zones (stations of one zone share the range's UTC bounds, so each report
/// runs one aggregate query per zone rather than per station).
fn zones(stations: &[StationRow], range: &Range) -> Vec<Zone> {
    let names: std::collections::BTreeSet<&str> = stations.iter().map(|s| s.time_zone.as_str()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let tz: Tz = name.parse().unwrap_or(chrono_tz::UTC);
            let lo = crate::inbox::day_start(tz, range.from)?;
            let hi = crate::inbox::day_start(tz, range.to.succ_opt()?)?;
            Some(Zone {
                name: name.to_string(),
                tz,
                lo: lo.timestamp_millis(),
                hi: hi.timestamp_millis(),
            })
        })
        .collect()
}

/// The local date and time a bucket starts at.
fn bucket_local(bucket: i64, tz: Tz) -> Option<chrono::DateTime<Tz>> {
    figures::local(bucket * store::BUCKET_MS, tz)
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
    let (range, stations, scope) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let mut counts = StatusCounts::default();
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    let mut sums = store::SessionSum::default();
    for z in zones(&stations, &range) {
        for b in store::booking_counts(&state.db, scope, store::Per::Range, &z.name, z.lo, z.hi).await? {
            counts.add_n(&b.status, b.exception.as_deref(), b.n);
        }
        for r in store::revenue_sums(&state.db, scope, store::Per::Range, &z.name, z.lo, z.hi).await? {
            *revenue.entry(r.currency).or_default() += r.total;
        }
        for x in store::session_sums(&state.db, scope, store::Per::Range, &z.name, z.lo, z.hi).await? {
            sums.sessions += x.sessions;
            sums.energy_wh += x.energy_wh;
            sums.ended += x.ended;
            sums.seconds += x.seconds;
        }
    }
    let now = state.clock.now_ms();
    let (mut available, mut observed) = (0i64, 0i64);
    for station in &stations {
        for day in days::station_days(&state, station, range.from, range.to, now)
            .await?
            .values()
        {
            available += day.available;
            observed += day.observed;
        }
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
        sessions: sums.sessions,
        energy_wh: sums.energy_wh,
        average_session_seconds: (sums.ended > 0).then(|| sums.seconds / sums.ended),
        availability: figures::ratio(available, observed),
    };
    Ok(match q.format {
        Format::Json => Json(report).into_response(),
        Format::Csv => csv::summary(&report),
        Format::Svg | Format::Png => return Err(no_chart()),
    })
}

/// Each connector's merged timeline (its statuses with the charger's online changes).
pub(crate) fn timelines(history: &[store::StatusRow], connectors: &[i64]) -> Vec<(i64, Vec<(i64, timeline::Change)>)> {
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
    let (range, stations, scope) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    // (currency, period) -> value; currency None except for revenue.
    let mut sums: BTreeMap<(Option<String>, NaiveDate), i64> = BTreeMap::new();
    for z in zones(&stations, &range) {
        let mut add = |currency: Option<String>, bucket: i64, v: i64| {
            if let Some(local) = bucket_local(bucket, z.tz) {
                *sums
                    .entry((currency, q.interval.period_of(local.date_naive())))
                    .or_default() += v;
            }
        };
        match q.metric {
            Metric::Bookings => {
                for b in store::booking_counts(&state.db, scope, store::Per::Bucket, &z.name, z.lo, z.hi).await? {
                    add(None, b.bucket, b.n);
                }
            }
            Metric::Energy => {
                for x in store::session_sums(&state.db, scope, store::Per::Bucket, &z.name, z.lo, z.hi).await? {
                    add(None, x.bucket, x.energy_wh);
                }
            }
            Metric::Revenue => {
                for r in store::revenue_sums(&state.db, scope, store::Per::Bucket, &z.name, z.lo, z.hi).await? {
                    add(Some(r.currency), r.bucket, r.total);
                }
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
    let (range, stations, scope) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let mut by_day: HashMap<(i64, NaiveDate), (i64, i64, i64)> = HashMap::new();
    for z in zones(&stations, &range) {
        for s in store::slot_sums(&state.db, scope, &z.name, z.lo, z.hi).await? {
            if let Some(local) = bucket_local(s.bucket, z.tz) {
                let e = by_day.entry((s.station_id, local.date_naive())).or_default();
                e.0 += s.slots;
                e.1 += s.capacity;
                e.2 += s.booked;
            }
        }
    }
    let now = state.clock.now_ms();
    let mut out = Vec::with_capacity(stations.len());
    for station in stations {
        let figures = days::station_days(&state, &station, range.from, range.to, now).await?;
        let mut days = Vec::new();
        for date in range.dates() {
            let (slots, capacity, reserved) = by_day.get(&(station.id, date)).copied().unwrap_or_default();
            let f = figures.get(&date).copied().unwrap_or_default();
            let (observed, occupied) = (f.observed, f.occupied);
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
    let (range, stations, scope) = prepare(&state, &caller, q.from, q.to, q.station_id).await?;
    let mut map = Heatmap::default();
    for z in zones(&stations, &range) {
        for s in store::slot_sums(&state.db, scope, &z.name, z.lo, z.hi).await? {
            if let Some(start) = bucket_local(s.bucket, z.tz) {
                map.add_n(start, s.slots, s.booked, s.capacity);
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

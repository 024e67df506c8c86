//! CSV exports of the reports (RFC 4180, UTF-8, CRLF). Text cells that a spreadsheet would run
//! as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'`: station
//! names are typed by BackOffices and read by others.

use super::{OccupancyHeatmap, Summary, TimeSeries, Utilization};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// One text cell, quoted when needed and defused.
pub fn text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn document(name: &str, rows: Vec<Vec<String>>) -> Response {
    let mut body = String::new();
    for row in rows {
        body.push_str(&row.join(","));
        body.push_str("\r\n");
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

fn row(cells: &[&dyn ToString]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The summary as `metric,value` rows.
pub fn summary(r: &Summary) -> Response {
    let b = &r.bookings;
    let mut rows = vec![row(&[&"metric", &"value"])];
    let mut put = |k: &str, v: String| rows.push(vec![k.to_string(), v]);
    put("from", r.from.to_string());
    put("to", r.to.to_string());
    put("stations", r.stations.to_string());
    for (k, v) in [
        ("bookings", b.total),
        ("pending", b.pending),
        ("approved", b.approved),
        ("checkedIn", b.checked_in),
        ("completed", b.completed),
        ("cancelled", b.cancelled),
        ("cancelledOnSite", b.cancelled_on_site),
        ("rejected", b.rejected),
        ("noShow", b.no_show),
        ("aborted", b.aborted),
        ("approvals", r.approvals),
        ("sessions", r.sessions),
        ("energyWh", r.energy_wh),
    ] {
        put(k, v.to_string());
    }
    put("checkInRate", opt(r.check_in_rate));
    put("completionRate", opt(r.completion_rate));
    put("noShowRate", opt(r.no_show_rate));
    put("averageSessionSeconds", opt(r.average_session_seconds));
    put("availability", opt(r.availability));
    for m in &r.revenue {
        put(&format!("revenue{}", m.currency), m.amount().to_string());
    }
    document("summary", rows)
}

/// A series as `period,currency,value,amount` rows.
pub fn series(r: &TimeSeries) -> Response {
    let mut rows = vec![row(&[&"period", &"currency", &"value", &"amount"])];
    for s in &r.series {
        for p in &s.points {
            rows.push(vec![
                p.period.to_string(),
                opt(s.currency.as_deref()),
                p.value.to_string(),
                opt(p.amount.as_deref()),
            ]);
        }
    }
    document("timeseries", rows)
}

/// Utilization as one row per station and day.
pub fn utilization(r: &Utilization) -> Response {
    let mut rows = vec![row(&[
        &"stationId",
        &"station",
        &"date",
        &"slots",
        &"capacity",
        &"reserved",
        &"reservedRatio",
        &"observedHours",
        &"occupiedHours",
        &"occupiedRatio",
    ])];
    for s in &r.stations {
        for d in &s.days {
            rows.push(vec![
                s.station_id.to_string(),
                text(&s.name),
                d.date.to_string(),
                d.slots.to_string(),
                d.capacity.to_string(),
                d.reserved.to_string(),
                opt(d.reserved_ratio),
                d.observed_hours.to_string(),
                d.occupied_hours.to_string(),
                opt(d.occupied_ratio),
            ]);
        }
    }
    document("utilization", rows)
}

/// The heatmap as one row per weekday and hour.
pub fn heatmap(r: &OccupancyHeatmap) -> Response {
    let mut rows = vec![row(&[&"dayOfWeek", &"hour", &"slots", &"reservedPercent"])];
    for c in &r.cells {
        rows.push(vec![
            c.day_of_week.to_string(),
            c.hour.to_string(),
            c.slots.to_string(),
            opt(c.reserved_percent),
        ]);
    }
    document("occupancy-heatmap", rows)
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(text("Station 1"), "Station 1");
        assert_eq!(text("Galle Rd, Colombo"), "\"Galle Rd, Colombo\"");
        assert_eq!(text("the \"best\""), "\"the \"\"best\"\"\"");
        assert_eq!(text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("@cmd"), "'@cmd");
    }
}

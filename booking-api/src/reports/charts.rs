//! Chart images of the reports, drawn server-side with `plotters`: the time series as bars (one
//! series) or lines (revenue in several currencies), the heatmap as a weekday × hour grid. SVG
//! as text; PNG drawn into an RGB buffer and encoded with `png`. Text uses the bundled DejaVu
//! Sans (`assets/fonts`), registered once, so the images are the same on every machine.

use super::{OccupancyHeatmap, TimeSeries};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::sync::Once;

/// The bundled font (DejaVu Sans, its licence beside it).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Chart size in pixels.
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 480;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("encoding the PNG failed: {0}")]
    Png(#[from] png::EncodingError),
}

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::error!("the bundled chart font could not be read");
        }
    });
}

/// An image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    Svg,
    Png,
}

/// Something drawn the same way on every backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

struct SeriesChart<'a>(&'a TimeSeries);
struct HeatmapChart<'a>(&'a OccupancyHeatmap);

impl Chart for SeriesChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        series_on(root, self.0)
    }
}

impl Chart for HeatmapChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        heatmap_on(root, self.0)
    }
}

/// Draws `chart` on a backend of `image`'s kind; returns the file's bytes.
fn render(image: Image, chart: &impl Chart) -> Result<Vec<u8>, ChartError> {
    fonts();
    match image {
        Image::Svg => {
            let mut out = String::new();
            {
                let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
                chart.draw(&root)?;
                root.present().map_err(|e| ChartError::Draw(e.to_string()))?;
            }
            Ok(out.into_bytes())
        }
        Image::Png => {
            let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
                chart.draw(&root)?;
                root.present().map_err(|e| ChartError::Draw(e.to_string()))?;
            }
            let mut out = Vec::new();
            {
                let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
                encoder.set_color(png::ColorType::Rgb);
                encoder.set_depth(png::BitDepth::Eight);
                let mut writer = encoder.write_header()?;
                writer.write_image_data(&rgb)?;
            }
            Ok(out)
        }
    }
}

impl From<String> for ChartError {
    fn from(e: String) -> ChartError {
        ChartError::Draw(e)
    }
}

const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// The values to draw: per series, per point (revenue in major units).
fn plotted(report: &TimeSeries) -> Vec<(String, Vec<f64>)> {
    report
        .series
        .iter()
        .map(|s| {
            let values = s
                .points
                .iter()
                .map(|p| match &p.amount {
                    Some(a) => a.parse::<f64>().unwrap_or(0.0),
                    None => p.value as f64,
                })
                .collect();
            (s.currency.clone().unwrap_or_default(), values)
        })
        .collect()
}

fn series_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &TimeSeries) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let data = plotted(report);
    let labels: Vec<String> = report
        .series
        .first()
        .map(|s| s.points.iter().map(|p| p.period.to_string()).collect())
        .unwrap_or_default();
    let n = labels.len().max(1);
    let top = data
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let (what, unit) = match report.metric {
        super::Metric::Bookings => ("Bookings", "bookings".to_string()),
        super::Metric::Energy => ("Energy", "Wh".to_string()),
        super::Metric::Revenue => (
            "Revenue",
            data.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", "),
        ),
    };
    let interval = match report.interval {
        super::figures::Interval::Day => "day",
        super::figures::Interval::Week => "week",
        super::figures::Interval::Month => "month",
    };
    let caption = format!("{what} per {interval}, {} to {}", report.from, report.to);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((0i32..n as i32 - 1).into_segmented(), 0f64..top)
        .map_err(e)?;
    let label_at = |x: &SegmentValue<i32>| match x {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(12))
        .x_label_formatter(&label_at)
        .y_desc(unit)
        .label_style((FAMILY, 13))
        .draw()
        .map_err(e)?;
    if data.len() == 1 {
        let color = PALETTE[0];
        chart
            .draw_series(data[0].1.iter().enumerate().map(|(i, v)| {
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)],
                    color.filled(),
                );
                bar.set_margin(0, 0, 4, 4);
                bar
            }))
            .map_err(e)?;
    } else {
        for (k, (name, values)) in data.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (SegmentValue::CenterOf(i as i32), *v)),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FAMILY, 13))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// The time series as a chart.
pub fn series(report: &TimeSeries, image: Image) -> Result<Vec<u8>, ChartError> {
    render(image, &SeriesChart(report))
}

/// White (0 %) to deep red (100 %); light grey without slots.
fn heat(percent: Option<f64>) -> RGBColor {
    match percent {
        None => RGBColor(235, 235, 235),
        Some(p) => {
            let t = (p / 100.0).clamp(0.0, 1.0);
            RGBColor(255 - (55.0 * t) as u8, 255 - (225.0 * t) as u8, 255 - (225.0 * t) as u8)
        }
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn heatmap_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &OccupancyHeatmap) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let caption = format!(
        "Reserved share of capacity by local hour, {} to {}",
        report.from, report.to
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // A segmented `0..k` has k + 1 segments.
        .build_cartesian_2d((0i32..23).into_segmented(), (0i32..6).into_segmented())
        .map_err(e)?;
    // Monday on top: row 6 is Monday, row 0 Sunday.
    let day_label = |y: &SegmentValue<i32>| match y {
        SegmentValue::CenterOf(r) => DAYS
            .get((6 - *r).clamp(0, 6) as usize)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let hour_label = |x: &SegmentValue<i32>| match x {
        SegmentValue::CenterOf(h) => h.to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(24)
        .y_labels(7)
        .x_label_formatter(&hour_label)
        .y_label_formatter(&day_label)
        .x_desc("local hour")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(report.cells.iter().map(|c| {
            let row = 7 - c.day_of_week as i32;
            let x = c.hour as i32;
            let mut cell = Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(row)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(row + 1)),
                ],
                heat(c.reserved_percent).filled(),
            );
            cell.set_margin(1, 1, 1, 1);
            cell
        }))
        .map_err(e)?;
    Ok(())
}

/// The heatmap as a chart.
pub fn heatmap(report: &OccupancyHeatmap, image: Image) -> Result<Vec<u8>, ChartError> {
    render(image, &HeatmapChart(report))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::figures::{Cell, Interval};
    use super::super::{Metric, Point, Series};
    use super::*;
    use chrono::NaiveDate;

    fn report(series: Vec<Series>) -> TimeSeries {
        TimeSeries {
            metric: Metric::Revenue,
            interval: Interval::Day,
            from: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2030, 1, 2).unwrap(),
            unit: "minor units".into(),
            series,
        }
    }

    fn points(values: &[i64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                period: NaiveDate::from_ymd_opt(2030, 1, 1 + i as u32).unwrap(),
                value: *v,
                amount: Some(format!("{}.{:02}", v / 100, v % 100)),
            })
            .collect()
    }

    #[test]
    fn svg_and_png_of_a_series_and_the_heatmap() {
        let one = report(vec![Series {
            currency: Some("EUR".into()),
            points: points(&[360, 0]),
        }]);
        let svg = String::from_utf8(series(&one, Image::Svg).unwrap()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("Revenue per day, 2030-01-01 to 2030-01-02"));
        assert!(svg.contains("2030-01-02"));
        let two = report(vec![
            Series {
                currency: Some("EUR".into()),
                points: points(&[360, 0]),
            },
            Series {
                currency: Some("LKR".into()),
                points: points(&[7000, 100]),
            },
        ]);
        let png = series(&two, Image::Png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));

        let cells: Vec<Cell> = (0..168)
            .map(|i| Cell {
                day_of_week: i / 24 + 1,
                hour: i % 24,
                slots: 1,
                reserved_percent: if i == 10 { Some(100.0) } else { None },
            })
            .collect();
        let map = OccupancyHeatmap {
            from: one.from,
            to: one.to,
            cells,
        };
        let svg = String::from_utf8(heatmap(&map, Image::Svg).unwrap()).unwrap();
        // The full cell (Monday 10:00) in deep red, the empty ones grey.
        assert!(svg.contains("#C81E1E"), "no full cell drawn");
        assert!(svg.contains("#EBEBEB"));
        assert!(svg.contains("\nMon\n"));
        let png = heatmap(&map, Image::Png).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }

    #[test]
    fn heat_runs_from_white_to_red() {
        assert_eq!(heat(Some(0.0)), RGBColor(255, 255, 255));
        assert_eq!(heat(Some(100.0)), RGBColor(200, 30, 30));
        assert_eq!(heat(Some(250.0)), RGBColor(200, 30, 30));
        assert_eq!(heat(None), RGBColor(235, 235, 235));
    }
}

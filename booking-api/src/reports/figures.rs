//! The reports' arithmetic, as pure functions over rows already read: which local date an
//! instant falls on at its station, the periods of a series, the KPI rates, the heatmap cells.
//! Every figure is counted in the station's own time zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest range a report covers, in days.
pub const MAX_DAYS: i64 = 366;

/// An inclusive range of local dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Why a range is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("from is after to")]
    Inverted,
    #[error("a report covers at most 366 days")]
    TooLong,
}

impl Range {
    /// `from`..=`to`; without them the 30 days up to `today`.
    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>, today: NaiveDate) -> Result<Range, RangeError> {
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(29));
        if from > to {
            return Err(RangeError::Inverted);
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(RangeError::TooLong);
        }
        Ok(Range { from, to })
    }

    /// The local date of `at_ms` in `tz`, if it falls inside the range.
    pub fn local_date(&self, at_ms: i64, tz: Tz) -> Option<NaiveDate> {
        let date = local(at_ms, tz)?.date_naive();
        (self.from..=self.to).contains(&date).then_some(date)
    }

    /// Every date of the range.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }
}

/// `at_ms` in `tz`.
pub fn local(at_ms: i64, tz: Tz) -> Option<DateTime<Tz>> {
    DateTime::<Utc>::from_timestamp_millis(at_ms).map(|t| t.with_timezone(&tz))
}

/// The width of a series' periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    /// ISO weeks, Monday first.
    Week,
    Month,
}

impl Interval {
    /// The first date of the period holding `date`.
    pub fn period_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Interval::Day => date,
            Interval::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Interval::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The first dates of the periods covering `range`, in order (the first and last may be
    /// partly outside the range).
    pub fn periods(self, range: &Range) -> Vec<NaiveDate> {
        let mut out: Vec<NaiveDate> = Vec::new();
        for date in range.dates() {
            let p = self.period_of(date);
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// Booking counts by status (CancelOnSite counted apart from other cancellations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    pub total: i64,
    pub pending: i64,
    pub approved: i64,
    pub checked_in: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub cancelled_on_site: i64,
    pub rejected: i64,
    pub no_show: i64,
    pub aborted: i64,
}

impl StatusCounts {
    /// Counts one booking.
    pub fn add(&mut self, status: &str, exception: Option<&str>) {
        self.add_n(status, exception, 1);
    }

    /// Counts `n` bookings of one status.
    pub fn add_n(&mut self, status: &str, exception: Option<&str>, n: i64) {
        self.total += n;
        let field = match (status, exception) {
            ("Pending", _) => &mut self.pending,
            ("Approved", _) => &mut self.approved,
            ("CheckedIn", _) => &mut self.checked_in,
            ("Completed", _) => &mut self.completed,
            ("Cancelled", Some("CancelOnSite")) => &mut self.cancelled_on_site,
            ("Cancelled", _) => &mut self.cancelled,
            ("Rejected", _) => &mut self.rejected,
            ("NoShow", _) => &mut self.no_show,
            ("Aborted", _) => &mut self.aborted,
            _ => return,
        };
        *field += n;
    }

    /// Bookings that were approved at some point and not cancelled before the day: still
    /// approved, arrived, or did not come.
    pub fn approvals(&self) -> i64 {
        self.approved + self.arrived() + self.no_show
    }

    /// Drivers who came: checked in (then completed, aborted, or still charging) or cancelled
    /// on site.
    pub fn arrived(&self) -> i64 {
        self.checked_in + self.completed + self.aborted + self.cancelled_on_site
    }

    /// Arrived ÷ (arrived + no-shows): of the bookings whose outcome is known.
    pub fn check_in_rate(&self) -> Option<f64> {
        ratio(self.arrived(), self.arrived() + self.no_show)
    }

    /// No-shows ÷ (arrived + no-shows).
    pub fn no_show_rate(&self) -> Option<f64> {
        ratio(self.no_show, self.arrived() + self.no_show)
    }

    /// Completed ÷ arrived.
    pub fn completion_rate(&self) -> Option<f64> {
        ratio(self.completed, self.arrived())
    }
}

/// `n ÷ d` rounded to 4 decimals; None when `d` is 0 (no basis, not a rate of 0).
pub fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0)
}

/// The heatmap: reserved share of capacity per local weekday (0 = Monday) and hour.
#[derive(Debug, Clone, Default)]
pub struct Heatmap {
    booked: [[i64; 24]; 7],
    capacity: [[i64; 24]; 7],
    slots: [[i64; 24]; 7],
}

/// One heatmap cell.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    /// ISO weekday: 1 Monday to 7 Sunday.
    pub day_of_week: u32,
    /// Local hour 0-23 of the slots' start.
    pub hour: u32,
    /// Slots counted in the cell.
    pub slots: i64,
    /// Booked units ÷ capacity over those slots, in percent (None without slots).
    pub reserved_percent: Option<f64>,
}

impl Heatmap {
    /// Counts a slot starting at `start` (local).
    pub fn add(&mut self, start: DateTime<Tz>, booked: i64, capacity: i64) {
        self.add_n(start, 1, booked, capacity);
    }

    /// Counts `slots` slots starting at `start` (local) with their booked units and capacity.
    pub fn add_n(&mut self, start: DateTime<Tz>, slots: i64, booked: i64, capacity: i64) {
        let d = start.weekday().num_days_from_monday() as usize;
        let h = start.hour() as usize;
        if let (Some(row_b), Some(row_c), Some(row_s)) =
            (self.booked.get_mut(d), self.capacity.get_mut(d), self.slots.get_mut(d))
        {
            if let (Some(b), Some(c), Some(s)) = (row_b.get_mut(h), row_c.get_mut(h), row_s.get_mut(h)) {
                *b += booked;
                *c += capacity;
                *s += slots;
            }
        }
    }

    /// Slots, booked units and capacity counted in the cell of `start`'s local weekday and hour.
    pub fn at(&self, start: DateTime<Tz>) -> (i64, i64, i64) {
        let d = start.weekday().num_days_from_monday() as usize;
        let h = start.hour() as usize;
        let get = |m: &[[i64; 24]; 7]| m.get(d).and_then(|r| r.get(h)).copied().unwrap_or(0);
        (get(&self.slots), get(&self.booked), get(&self.capacity))
    }

    /// The 168 cells, Monday 00 first.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::with_capacity(168);
        for d in 0..7 {
            for h in 0..24 {
                out.push(Cell {
                    day_of_week: d as u32 + 1,
                    hour: h as u32,
                    slots: self.slots[d][h],
                    reserved_percent: ratio(self.booked[d][h] * 100, self.capacity[d][h])
                        .map(|p| (p * 100.0).round() / 100.0),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn ranges_default_to_thirty_days_and_are_bounded() {
        let today = date(2030, 1, 31);
        let r = Range::new(None, None, today).unwrap();
        assert_eq!((r.from, r.to), (date(2030, 1, 2), today));
        assert_eq!(r.dates().count(), 30);
        assert_eq!(
            Range::new(Some(date(2030, 2, 1)), Some(date(2030, 1, 1)), today),
            Err(RangeError::Inverted)
        );
        assert!(Range::new(Some(date(2029, 1, 1)), Some(date(2029, 12, 31)), today).is_ok());
        assert_eq!(
            Range::new(Some(date(2029, 1, 1)), Some(date(2030, 1, 2)), today),
            Err(RangeError::TooLong)
        );
    }

    #[test]
    fn local_dates_follow_the_station_zone() {
        let r = Range::new(Some(date(2030, 1, 7)), Some(date(2030, 1, 7)), date(2030, 1, 7)).unwrap();
        let colombo: Tz = "Asia/Colombo".parse().unwrap();
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        // 2030-01-07 20:00 UTC: the 8th in Colombo, the 7th in Los Angeles.
        let at = Utc.with_ymd_and_hms(2030, 1, 7, 20, 0, 0).unwrap().timestamp_millis();
        assert_eq!(r.local_date(at, colombo), None);
        assert_eq!(r.local_date(at, la), Some(date(2030, 1, 7)));
    }

    #[test]
    fn periods_cover_the_range() {
        let r = Range::new(Some(date(2030, 1, 30)), Some(date(2030, 2, 12)), date(2030, 3, 1)).unwrap();
        assert_eq!(Interval::Day.periods(&r).len(), 14);
        // 2030-01-28 is a Monday.
        assert_eq!(
            Interval::Week.periods(&r),
            vec![date(2030, 1, 28), date(2030, 2, 4), date(2030, 2, 11)]
        );
        assert_eq!(Interval::Month.periods(&r), vec![date(2030, 1, 1), date(2030, 2, 1)]);
    }

    #[test]
    fn rates_have_no_value_without_a_basis() {
        let mut c = StatusCounts::default();
        assert_eq!(
            (c.check_in_rate(), c.no_show_rate(), c.completion_rate()),
            (None, None, None)
        );
        for (s, e) in [
            ("Completed", None),
            ("Completed", None),
            ("Aborted", None),
            ("NoShow", None),
            ("Cancelled", Some("CancelOnSite")),
            ("Cancelled", None),
            ("Approved", None),
            ("Pending", None),
        ] {
            c.add(s, e);
        }
        assert_eq!((c.total, c.arrived(), c.approvals()), (8, 4, 6));
        assert_eq!(c.check_in_rate(), Some(0.8));
        assert_eq!(c.no_show_rate(), Some(0.2));
        assert_eq!(c.completion_rate(), Some(0.5));
    }

    #[test]
    fn the_heatmap_averages_reserved_share_per_local_hour() {
        let tz: Tz = "Asia/Colombo".parse().unwrap();
        let mut h = Heatmap::default();
        // Monday 10:00 local twice (1 of 2, 2 of 2), Tuesday 23:00 once (0 of 1).
        h.add(tz.with_ymd_and_hms(2030, 1, 7, 10, 0, 0).unwrap(), 1, 2);
        h.add(tz.with_ymd_and_hms(2030, 1, 14, 10, 0, 0).unwrap(), 2, 2);
        h.add(tz.with_ymd_and_hms(2030, 1, 8, 23, 0, 0).unwrap(), 0, 1);
        let cells = h.cells();
        assert_eq!(cells.len(), 168);
        assert_eq!(cells[10].reserved_percent, Some(75.0));
        assert_eq!(cells[10].slots, 2);
        assert_eq!(cells[24 + 23].reserved_percent, Some(0.0));
        assert_eq!(cells[11].reserved_percent, None);
    }
}

//! Weekly opening schedules with dated exceptions, in the station's local time: validation and
//! the plain functions the slot inventory and "open now" use.

use crate::validate::Fields;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A station's opening hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// Regular hours; a day without entries is closed. Several entries per day are allowed.
    pub weekly: Vec<WeeklyHours>,
    /// Dated overrides: the day's hours are replaced by `intervals` (empty: closed all day).
    #[serde(default)]
    pub exceptions: Vec<ScheduleException>,
}

/// Opening hours on a weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeeklyHours {
    /// `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`.
    pub day: String,
    /// Local opening time `HH:MM`.
    pub open: String,
    /// Local closing time `HH:MM` (`24:00` for midnight), after `open`.
    pub close: String,
}

/// Hours on one date, replacing the weekly ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleException {
    /// Local date `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// Opening intervals that day; empty or absent means closed.
    #[serde(default)]
    pub intervals: Vec<Interval>,
}

/// An opening interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interval {
    /// `HH:MM`.
    pub open: String,
    /// `HH:MM` or `24:00`.
    pub close: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes since local midnight of `HH:MM` (`24:00` allowed as 1440).
pub fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn check_intervals<'a>(
    fields: &mut Fields,
    items: impl Iterator<Item = (String, &'a str, &'a str)>,
) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for (path, open, close) in items {
        let o = minutes(open);
        let c = minutes(close);
        if o.is_none() || o == Some(1440) {
            fields.push(
                &format!("{path}.open"),
                "invalid_format",
                "a time is HH:MM between 00:00 and 23:59",
            );
        }
        if c.is_none() {
            fields.push(
                &format!("{path}.close"),
                "invalid_format",
                "a time is HH:MM between 00:00 and 24:00",
            );
        }
        if let (Some(o), Some(c)) = (o, c) {
            if c <= o {
                fields.push(&format!("{path}.close"), "out_of_range", "close must be after open");
            } else {
                out.push((o, c));
            }
        }
    }
    out
}

fn check_overlap(fields: &mut Fields, path: &str, mut intervals: Vec<(u32, u32)>) {
    intervals.sort_unstable();
    if intervals.windows(2).any(|w| w[1].0 < w[0].1) {
        fields.push(path, "overlapping", "opening intervals of one day overlap");
    }
}

/// Records every invalid part of `schedule` under `prefix` (e.g. `schedule`).
pub fn validate(schedule: &Schedule, prefix: &str, fields: &mut Fields) {
    for (i, w) in schedule.weekly.iter().enumerate() {
        if !DAYS.contains(&w.day.as_str()) {
            fields.push(
                &format!("{prefix}.weekly[{i}].day"),
                "unknown_value",
                "day is one of mon, tue, wed, thu, fri, sat, sun",
            );
        }
    }
    for day in DAYS {
        let items = schedule
            .weekly
            .iter()
            .enumerate()
            .filter(|(_, w)| w.day == day)
            .map(|(i, w)| (format!("{prefix}.weekly[{i}]"), w.open.as_str(), w.close.as_str()));
        let intervals = check_intervals(fields, items);
        check_overlap(fields, &format!("{prefix}.weekly"), intervals);
    }
    let mut dates: Vec<NaiveDate> = Vec::new();
    for (i, e) in schedule.exceptions.iter().enumerate() {
        let path = format!("{prefix}.exceptions[{i}]");
        if dates.contains(&e.date) {
            fields.push(&format!("{path}.date"), "duplicate", "one exception per date");
        }
        dates.push(e.date);
        let items = e
            .intervals
            .iter()
            .enumerate()
            .map(|(j, iv)| (format!("{path}.intervals[{j}]"), iv.open.as_str(), iv.close.as_str()));
        let intervals = check_intervals(fields, items);
        check_overlap(fields, &format!("{path}.intervals"), intervals);
    }
}

fn day_name(weekday: Weekday) -> &'static str {
    DAYS[weekday.num_days_from_monday() as usize]
}

/// Opening intervals (minutes since local midnight) on a local date, exceptions first.
/// Assumes a validated schedule; unparsable entries are skipped.
pub fn intervals_on(schedule: &Schedule, date: NaiveDate) -> Vec<(u32, u32)> {
    let pairs: Vec<(&str, &str)> = match schedule.exceptions.iter().find(|e| e.date == date) {
        Some(e) => e
            .intervals
            .iter()
            .map(|iv| (iv.open.as_str(), iv.close.as_str()))
            .collect(),
        None => schedule
            .weekly
            .iter()
            .filter(|w| w.day == day_name(date.weekday()))
            .map(|w| (w.open.as_str(), w.close.as_str()))
            .collect(),
    };
    let mut out: Vec<(u32, u32)> = pairs
        .into_iter()
        .filter_map(|(o, c)| Some((minutes(o)?, minutes(c)?)))
        .filter(|(o, c)| o < c)
        .collect();
    out.sort_unstable();
    out
}

/// Whether the station is open at `at`.
pub fn open_at(schedule: &Schedule, tz: Tz, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&tz);
    let minute = local.hour() * 60 + local.minute();
    intervals_on(schedule, local.date_naive())
        .iter()
        .any(|(o, c)| *o <= minute && minute < *c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hours(day: &str, open: &str, close: &str) -> WeeklyHours {
        WeeklyHours {
            day: day.into(),
            open: open.into(),
            close: close.into(),
        }
    }

    #[test]
    fn times() {
        assert_eq!(minutes("00:00"), Some(0));
        assert_eq!(minutes("08:30"), Some(510));
        assert_eq!(minutes("24:00"), Some(1440));
        for bad in ["24:01", "8:00", "08:60", "0800", "ab:cd", ""] {
            assert_eq!(minutes(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation_names_each_bad_field() {
        let s = Schedule {
            weekly: vec![
                hours("mon", "08:00", "12:00"),
                hours("mon", "11:00", "18:00"),
                hours("fun", "08:00", "09:00"),
                hours("tue", "10:00", "09:00"),
                hours("wed", "25:00", "26:00"),
            ],
            exceptions: vec![
                ScheduleException {
                    date: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
                    intervals: vec![],
                },
                ScheduleException {
                    date: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
                    intervals: vec![],
                },
            ],
        };
        let mut fields = Fields::new();
        validate(&s, "schedule", &mut fields);
        let p = fields.finish().unwrap_err();
        let names: Vec<String> = p
            .errors
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        for expected in [
            "schedule.weekly[2].day",
            "schedule.weekly",
            "schedule.weekly[3].close",
            "schedule.weekly[4].open",
            "schedule.weekly[4].close",
            "schedule.exceptions[1].date",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        let mut ok = Fields::new();
        validate(
            &Schedule {
                weekly: vec![hours("mon", "00:00", "24:00")],
                exceptions: vec![],
            },
            "s",
            &mut ok,
        );
        assert!(ok.is_empty());
    }

    #[test]
    fn exceptions_replace_weekly_hours_and_open_now_uses_local_time() {
        let s = Schedule {
            weekly: vec![hours("mon", "08:00", "12:00"), hours("mon", "13:00", "17:00")],
            exceptions: vec![ScheduleException {
                date: NaiveDate::from_ymd_opt(2030, 1, 14).unwrap(),
                intervals: vec![],
            }],
        };
        // 2030-01-07 is a Monday.
        assert_eq!(
            intervals_on(&s, NaiveDate::from_ymd_opt(2030, 1, 7).unwrap()),
            vec![(480, 720), (780, 1020)]
        );
        assert!(intervals_on(&s, NaiveDate::from_ymd_opt(2030, 1, 8).unwrap()).is_empty());
        assert!(intervals_on(&s, NaiveDate::from_ymd_opt(2030, 1, 14).unwrap()).is_empty());
        let tz: Tz = "Asia/Colombo".parse().unwrap();
        // 09:00 in Colombo (UTC+5:30) is 03:30 UTC.
        assert!(open_at(&s, tz, Utc.with_ymd_and_hms(2030, 1, 7, 3, 30, 0).unwrap()));
        assert!(!open_at(&s, tz, Utc.with_ymd_and_hms(2030, 1, 7, 7, 0, 0).unwrap()));
        assert!(!open_at(&s, tz, Utc.with_ymd_and_hms(2030, 1, 14, 3, 30, 0).unwrap()));
    }
}

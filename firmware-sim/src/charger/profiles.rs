//! Smart charging: the charging profiles the central system installed, the power limit they
//! impose at an instant, and the composite schedule over a window. Both versions' profile JSON
//! is read into one [`Profile`] form.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// What a profile limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The whole station (1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile).
    StationMax,
    /// Default for transactions (TxDefaultProfile).
    TxDefault,
    /// One transaction (TxProfile).
    Tx,
}

impl Purpose {
    /// Reads a purpose in either version's spelling.
    pub fn from_name(name: &str) -> Option<Purpose> {
        match name {
            "ChargePointMaxProfile" | "ChargingStationMaxProfile" => Some(Purpose::StationMax),
            "TxDefaultProfile" => Some(Purpose::TxDefault),
            "TxProfile" => Some(Purpose::Tx),
            _ => None,
        }
    }
}

/// How the schedule's start is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// At `startSchedule`.
    Absolute,
    /// At the start of the transaction.
    Relative,
    /// Repeats every day or week from `startSchedule`.
    Recurring(i64),
}

/// An installed charging profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile id.
    pub id: i64,
    /// Connector/EVSE it applies to; 0 is the whole station.
    pub connector: u32,
    /// Stack level: the higher wins within a purpose.
    pub stack_level: i64,
    /// Purpose.
    pub purpose: Purpose,
    /// Kind.
    pub kind: Kind,
    /// Valid from, if bounded.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid to, if bounded.
    pub valid_to: Option<DateTime<Utc>>,
    /// Schedule start (Absolute, Recurring).
    pub start: Option<DateTime<Utc>>,
    /// Schedule duration in seconds, if bounded.
    pub duration: Option<i64>,
    /// Limits in amperes (per phase) rather than watts.
    pub amps: bool,
    /// Periods: (start offset in seconds, limit, number of phases).
    pub periods: Vec<(i64, f64, Option<u8>)>,
    /// The transaction a TxProfile belongs to, as the central system names it.
    pub transaction_id: Option<String>,
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Profile {
    /// Reads a 1.6 `csChargingProfiles` or a 2.0.1 `chargingProfile` for `connector`.
    pub fn from_json(p: &Value, connector: u32) -> Result<Profile, String> {
        let purpose = match p["chargingProfilePurpose"].as_str() {
            Some(name) => Purpose::from_name(name).ok_or_else(|| format!("unsupported purpose {name}"))?,
            None => return Err("no chargingProfilePurpose".into()),
        };
        // 1.6 has one schedule object; 2.0.1 a list of one to three, of which we honour the first.
        let schedule = if p["chargingSchedule"].is_array() {
            &p["chargingSchedule"][0]
        } else {
            &p["chargingSchedule"]
        };
        let kind = match p["chargingProfileKind"].as_str() {
            Some("Absolute") => Kind::Absolute,
            Some("Relative") => Kind::Relative,
            Some("Recurring") => match p["recurrencyKind"].as_str() {
                Some("Weekly") => Kind::Recurring(7 * 86_400),
                _ => Kind::Recurring(86_400),
            },
            other => return Err(format!("unsupported kind {other:?}")),
        };
        let periods: Vec<(i64, f64, Option<u8>)> = schedule["chargingSchedulePeriod"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|period| {
                        (
                            period["startPeriod"].as_i64().unwrap_or(0),
                            period["limit"].as_f64().unwrap_or(0.0),
                            period["numberPhases"].as_u64().and_then(|n| u8::try_from(n).ok()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if periods.is_empty() {
            return Err("no chargingSchedulePeriod".into());
        }
        let transaction_id = match &p["transactionId"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        Ok(Profile {
            id: p["chargingProfileId"]
                .as_i64()
                .or_else(|| p["id"].as_i64())
                .unwrap_or(0),
            connector,
            stack_level: p["stackLevel"].as_i64().unwrap_or(0),
            purpose,
            kind,
            valid_from: time(&p["validFrom"]),
            valid_to: time(&p["validTo"]),
            start: time(&schedule["startSchedule"]),
            duration: schedule["duration"].as_i64(),
            amps: schedule["chargingRateUnit"].as_str() == Some("A"),
            periods,
            transaction_id,
        })
    }

    /// The limit in W this profile imposes at `now`, `None` when it is not in force.
    fn limit_at(&self, now: DateTime<Utc>, tx_start: Option<DateTime<Utc>>, phases: u8) -> Option<f64> {
        if self.valid_from.is_some_and(|t| now < t) || self.valid_to.is_some_and(|t| now >= t) {
            return None;
        }
        let start = match self.kind {
            Kind::Absolute => self.start.or(self.valid_from)?,
            Kind::Relative => tx_start?,
            Kind::Recurring(every) => {
                let first = self.start?;
                let elapsed = (now - first).num_seconds();
                if elapsed < 0 {
                    return None;
                }
                first + Duration::seconds(elapsed - elapsed % every)
            }
        };
        let offset = (now - start).num_seconds();
        if offset < 0 || self.duration.is_some_and(|d| offset >= d) {
            return None;
        }
        let (_, limit, n) = self.periods.iter().rev().find(|(s, _, _)| *s <= offset)?;
        Some(if self.amps {
            limit * super::ev::NOMINAL_VOLTAGE * f64::from(n.unwrap_or(phases).max(1))
        } else {
            *limit
        })
    }

    /// Instants within `[from, to)` where this profile's limit may change.
    fn boundaries(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tx_start: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = self.valid_from.into_iter().chain(self.valid_to).collect();
        let starts: Vec<DateTime<Utc>> = match self.kind {
            Kind::Absolute => self.start.or(self.valid_from).into_iter().collect(),
            Kind::Relative => tx_start.into_iter().collect(),
            Kind::Recurring(every) => match self.start {
                Some(first) => {
                    let elapsed = (from - first).num_seconds().max(0);
                    let mut s = first + Duration::seconds(elapsed - elapsed % every);
                    let mut v = Vec::new();
                    while s < to {
                        v.push(s);
                        s += Duration::seconds(every);
                    }
                    v
                }
                None => Vec::new(),
            },
        };
        for s in starts {
            out.extend(self.periods.iter().map(|(p, _, _)| s + Duration::seconds(*p)));
            if let Some(d) = self.duration {
                out.push(s + Duration::seconds(d));
            }
        }
        out.retain(|t| *t > from && *t < to);
        out
    }
}

/// The profiles installed in a station.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    /// All installed profiles.
    pub installed: Vec<Profile>,
}

impl Profiles {
    /// Installs `p`, replacing one with the same id, or with the same connector, purpose and
    /// stack level (as both specifications require).
    pub fn install(&mut self, p: Profile) {
        self.installed.retain(|q| {
            q.id != p.id && !(q.connector == p.connector && q.purpose == p.purpose && q.stack_level == p.stack_level)
        });
        self.installed.push(p);
    }

    /// Removes the profiles matching every given criterion; returns how many went.
    pub fn clear(
        &mut self,
        id: Option<i64>,
        connector: Option<u32>,
        purpose: Option<Purpose>,
        stack: Option<i64>,
    ) -> usize {
        let before = self.installed.len();
        self.installed.retain(|p| {
            !(id.is_none_or(|i| p.id == i)
                && connector.is_none_or(|c| p.connector == c)
                && purpose.is_none_or(|u| p.purpose == u)
                && stack.is_none_or(|s| p.stack_level == s))
        });
        before - self.installed.len()
    }

    /// Drops the TxProfiles of a transaction that ended.
    pub fn end_transaction(&mut self, connector: u32) {
        self.installed
            .retain(|p| !(p.purpose == Purpose::Tx && p.connector == connector));
    }

    /// The power limit on `connector` at `now` (None: unlimited by profiles).
    pub fn limit_w(
        &self,
        connector: u32,
        now: DateTime<Utc>,
        tx_start: Option<DateTime<Utc>>,
        phases: u8,
    ) -> Option<f64> {
        let best = |purpose: Purpose, scope: &dyn Fn(&Profile) -> bool| -> Option<f64> {
            self.installed
                .iter()
                .filter(|p| p.purpose == purpose && scope(p))
                .filter_map(|p| p.limit_at(now, tx_start, phases).map(|l| (p.stack_level, l)))
                .max_by_key(|(s, _)| *s)
                .map(|(_, l)| l)
        };
        let station = best(Purpose::StationMax, &|_| true);
        let tx = if tx_start.is_some() {
            best(Purpose::Tx, &|p| p.connector == connector)
                .or_else(|| best(Purpose::TxDefault, &|p| p.connector == connector))
                .or_else(|| best(Purpose::TxDefault, &|p| p.connector == 0))
        } else {
            None
        };
        match (station, tx) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The composite schedule for `connector` over `secs` seconds from `from`, as periods of
    /// (offset, limit in W); a stretch with no limit is reported as `connector_max_w`.
    pub fn composite(
        &self,
        connector: u32,
        from: DateTime<Utc>,
        secs: i64,
        tx_start: Option<DateTime<Utc>>,
        phases: u8,
        connector_max_w: f64,
    ) -> Vec<(i64, f64)> {
        let to = from + Duration::seconds(secs);
        let mut instants = vec![from];
        for p in &self.installed {
            instants.extend(p.boundaries(from, to, tx_start));
        }
        instants.sort();
        instants.dedup();
        let mut periods: Vec<(i64, f64)> = Vec::new();
        for t in instants {
            let limit = self
                .limit_w(connector, t, tx_start, phases)
                .unwrap_or(connector_max_w)
                .min(connector_max_w);
            if periods.last().is_none_or(|(_, l)| (*l - limit).abs() > f64::EPSILON) {
                periods.push(((t - from).num_seconds(), limit));
            }
        }
        periods
    }
}

/// Writes composite periods as `chargingSchedulePeriod` items in the requested unit.
pub fn periods_json(periods: &[(i64, f64)], amps: bool, phases: u8) -> Vec<Value> {
    periods
        .iter()
        .map(|(start, w)| {
            let limit = if amps { super::ev::current_a(*w, phases) } else { *w };
            json!({"startPeriod": start, "limit": (limit * 10.0).round() / 10.0})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn v16(id: i64, purpose: &str, stack: i64, kind: &str, periods: Value, unit: &str) -> Profile {
        Profile::from_json(
            &json!({"chargingProfileId": id, "stackLevel": stack, "chargingProfilePurpose": purpose,
                "chargingProfileKind": kind, "recurrencyKind": "Daily",
                "chargingSchedule": {"chargingRateUnit": unit, "startSchedule": "2026-01-01T00:00:00Z",
                    "chargingSchedulePeriod": periods}}),
            1,
        )
        .unwrap()
    }

    #[test]
    fn tx_default_in_amps_and_station_max_combine() {
        let mut profiles = Profiles::default();
        profiles.install(v16(
            1,
            "TxDefaultProfile",
            0,
            "Relative",
            json!([{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 600, "limit": 8.0}]),
            "A",
        ));
        let start = t("2026-03-01T10:00:00Z");
        assert_eq!(
            profiles.limit_w(1, start, None, 3),
            None,
            "no transaction, no tx profile"
        );
        assert_eq!(profiles.limit_w(1, start, Some(start), 3), Some(16.0 * 230.0 * 3.0));
        let later = start + Duration::seconds(700);
        assert_eq!(profiles.limit_w(1, later, Some(start), 3), Some(8.0 * 230.0 * 3.0));
        profiles.install(v16(
            2,
            "ChargePointMaxProfile",
            0,
            "Absolute",
            json!([{"startPeriod": 0, "limit": 5000.0}]),
            "W",
        ));
        assert_eq!(profiles.limit_w(1, later, Some(start), 3), Some(5000.0));
        assert_eq!(profiles.limit_w(1, later, None, 3), Some(5000.0));
    }

    #[test]
    fn tx_profile_wins_over_default_and_higher_stack_wins() {
        let mut profiles = Profiles::default();
        let start = t("2026-03-01T10:00:00Z");
        profiles.install(v16(
            1,
            "TxDefaultProfile",
            0,
            "Relative",
            json!([{"startPeriod": 0, "limit": 7000.0}]),
            "W",
        ));
        profiles.install(v16(
            2,
            "TxDefaultProfile",
            1,
            "Relative",
            json!([{"startPeriod": 0, "limit": 6000.0}]),
            "W",
        ));
        assert_eq!(profiles.limit_w(1, start, Some(start), 3), Some(6000.0));
        profiles.install(v16(
            3,
            "TxProfile",
            0,
            "Relative",
            json!([{"startPeriod": 0, "limit": 9000.0}]),
            "W",
        ));
        assert_eq!(profiles.limit_w(1, start, Some(start), 3), Some(9000.0));
        profiles.end_transaction(1);
        assert_eq!(profiles.limit_w(1, start, Some(start), 3), Some(6000.0));
        assert_eq!(profiles.clear(None, None, Some(Purpose::TxDefault), None), 2);
        assert_eq!(profiles.limit_w(1, start, Some(start), 3), None);
    }

    #[test]
    fn recurring_daily_profile_repeats() {
        let mut profiles = Profiles::default();
        profiles.install(v16(
            1,
            "ChargePointMaxProfile",
            0,
            "Recurring",
            json!([{"startPeriod": 0, "limit": 3000.0}, {"startPeriod": 43200, "limit": 11000.0}]),
            "W",
        ));
        assert_eq!(profiles.limit_w(1, t("2026-05-07T06:00:00Z"), None, 3), Some(3000.0));
        assert_eq!(profiles.limit_w(1, t("2026-05-07T18:00:00Z"), None, 3), Some(11000.0));
    }

    #[test]
    fn composite_schedule_merges_equal_limits_and_caps_at_connector() {
        let mut profiles = Profiles::default();
        let start = t("2026-03-01T10:00:00Z");
        profiles.install(v16(1, "TxDefaultProfile", 0, "Relative",
            json!([{"startPeriod": 0, "limit": 30000.0}, {"startPeriod": 600, "limit": 4000.0}, {"startPeriod": 900, "limit": 4000.0}]), "W"));
        let c = profiles.composite(1, start, 3600, Some(start), 3, 22_000.0);
        assert_eq!(c, vec![(0, 22_000.0), (600, 4000.0)]);
        let json = periods_json(&c, true, 3);
        assert_eq!(json[1]["limit"], 5.8);
    }

    #[test]
    fn profile_json_of_2_0_1_and_bad_profiles() {
        let p = Profile::from_json(
            &json!({"id": 7, "stackLevel": 2, "chargingProfilePurpose": "ChargingStationMaxProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                "startSchedule": "2026-01-01T00:00:00Z", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1.0}]}]}),
            0,
        )
        .unwrap();
        assert_eq!((p.id, p.stack_level, p.purpose), (7, 2, Purpose::StationMax));
        assert!(Profile::from_json(&json!({"chargingProfilePurpose": "Nope"}), 0).is_err());
        assert!(Profile::from_json(
            &json!({"chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute", "chargingSchedule": {}}),
            0
        )
        .is_err());
    }
}

//! Reconciling a session from its charger's events, whatever their order: plain functions over
//! [`Facts`], tested without a database.
//!
//! A charger that was offline delivers its queued messages late, a bus redelivers, and the
//! central system publishes a transaction's start, summaries and end as they reach it. So:
//! - a start fills in what only the start knows (start time, meter start, token) and never
//!   reopens a completed session;
//! - a meter summary older than the one applied does not win (it still lowers the first
//!   register seen, the baseline when the start carried no meter value);
//! - the charger's end completes the session even before its start arrived, and corrects an
//!   operator's finalize (the charger's meter is the better witness);
//! - applying the same fact twice changes nothing.

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The charger's transactionEnded.
    Charger,
    /// An operator's finalize, for a charger that never reported the end.
    Operator,
}

impl EndedBy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Charger => "charger",
            EndedBy::Operator => "operator",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<EndedBy> {
        match s {
            "charger" => Some(EndedBy::Charger),
            "operator" => Some(EndedBy::Operator),
            _ => None,
        }
    }
}

/// What is known of one charger transaction (times in epoch milliseconds, energy in Wh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub connector_id: Option<i64>,
    pub id_token: Option<String>,
    pub remote_start_id: Option<i64>,
    pub completed: bool,
    pub started_at: Option<i64>,
    pub meter_start_wh: Option<i64>,
    /// The lowest energy register any summary reported.
    pub first_register_wh: Option<i64>,
    /// The energy register of the newest summary applied.
    pub register_wh: Option<i64>,
    /// Measurement time of the newest summary applied.
    pub summary_at: Option<i64>,
    pub power_w: Option<f64>,
    pub soc_percent: Option<f64>,
    pub current_a: Option<f64>,
    pub ended_at: Option<i64>,
    pub meter_stop_wh: Option<i64>,
    pub stop_reason: Option<String>,
    pub ended_by: Option<EndedBy>,
}

/// One thing the charger (or an operator) said about the transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Started {
        at: i64,
        connector_id: Option<i64>,
        id_token: Option<String>,
        meter_start_wh: Option<i64>,
        remote_start_id: Option<i64>,
    },
    Summary {
        at: i64,
        connector_id: Option<i64>,
        /// The energy register (Wh): the meter's reading, not the energy since the start.
        register_wh: Option<i64>,
        power_w: Option<f64>,
        soc_percent: Option<f64>,
        current_a: Option<f64>,
    },
    Ended {
        at: i64,
        connector_id: Option<i64>,
        id_token: Option<String>,
        meter_stop_wh: Option<i64>,
        stop_reason: Option<String>,
    },
    /// An operator closes a session whose charger never reported the end.
    Finalized { at: i64 },
}

fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// Applies `fact` to `facts`; returns whether anything changed.
pub fn apply(facts: &mut Facts, fact: &Fact) -> bool {
    let before = facts.clone();
    match fact {
        Fact::Started {
            at,
            connector_id,
            id_token,
            meter_start_wh,
            remote_start_id,
        } => {
            facts.started_at = Some(facts.started_at.map_or(*at, |s| s.min(*at)));
            fill(&mut facts.connector_id, connector_id);
            fill(&mut facts.id_token, id_token);
            fill(&mut facts.meter_start_wh, meter_start_wh);
            fill(&mut facts.remote_start_id, remote_start_id);
        }
        Fact::Summary {
            at,
            connector_id,
            register_wh,
            power_w,
            soc_percent,
            current_a,
        } => {
            fill(&mut facts.connector_id, connector_id);
            if let Some(wh) = register_wh {
                facts.first_register_wh = Some(facts.first_register_wh.map_or(*wh, |f| f.min(*wh)));
            }
            if facts.summary_at.is_none_or(|applied| *at > applied) {
                facts.summary_at = Some(*at);
                // A summary carries the latest value of each measurand; one it lacks keeps the
                // value an earlier summary brought.
                if register_wh.is_some() {
                    facts.register_wh = *register_wh;
                }
                if soc_percent.is_some() {
                    facts.soc_percent = *soc_percent;
                }
                // Power and current are live values: a summary that arrives after the end
                // (queued while the charger was offline) does not bring them back.
                if !facts.completed {
                    if power_w.is_some() {
                        facts.power_w = *power_w;
                    }
                    if current_a.is_some() {
                        facts.current_a = *current_a;
                    }
                }
            }
        }
        Fact::Ended {
            at,
            connector_id,
            id_token,
            meter_stop_wh,
            stop_reason,
        } => {
            fill(&mut facts.connector_id, connector_id);
            fill(&mut facts.id_token, id_token);
            if facts.ended_by == Some(EndedBy::Charger) {
                // The first end the charger reported stands; a second one only fills gaps.
                fill(&mut facts.meter_stop_wh, meter_stop_wh);
                fill(&mut facts.stop_reason, stop_reason);
            } else {
                facts.ended_at = Some(*at);
                facts.meter_stop_wh = meter_stop_wh.or(facts.meter_stop_wh);
                facts.stop_reason.clone_from(stop_reason);
                facts.ended_by = Some(EndedBy::Charger);
                facts.completed = true;
            }
            // Charging stopped: power and current are no longer live values.
            facts.power_w = None;
            facts.current_a = None;
        }
        Fact::Finalized { at } => {
            if !facts.completed {
                facts.completed = true;
                facts.ended_at = Some(*at);
                facts.ended_by = Some(EndedBy::Operator);
                facts.stop_reason = Some("FinalizedByOperator".into());
                facts.power_w = None;
                facts.current_a = None;
            }
        }
    }
    *facts != before
}

/// Where a session's energy figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergySource {
    /// Meter stop minus meter start, as the charger reported them with the transaction.
    Meter,
    /// The newest meter summary's register minus the start (or the first register seen).
    Summary,
}

impl EnergySource {
    /// The served name.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySource::Meter => "meter",
            EnergySource::Summary => "summary",
        }
    }
}

/// The energy delivered so far (Wh) and where it comes from: meter stop minus meter start when
/// the charger reported both; else the newest register minus the start (or, for a 2.0.1
/// charger that sent no `Transaction.Begin` reading, the first register seen). None without
/// two readings, or when the register went backwards (a meter replaced or reset mid-session:
/// no figure beats a wrong one).
pub fn energy(facts: &Facts) -> Option<(i64, EnergySource)> {
    let (wh, source) = match (facts.meter_start_wh, facts.meter_stop_wh) {
        (Some(start), Some(stop)) => (stop - start, EnergySource::Meter),
        _ => {
            let baseline = facts.meter_start_wh.or(facts.first_register_wh)?;
            match facts.meter_stop_wh {
                Some(stop) => (stop - baseline, EnergySource::Meter),
                None => (facts.register_wh? - baseline, EnergySource::Summary),
            }
        }
    };
    (wh >= 0).then_some((wh, source))
}

/// Seconds from the start to the end (or to `now_ms` while active); None before the start is
/// known.
pub fn duration_secs(facts: &Facts, now_ms: i64) -> Option<i64> {
    let start = facts.started_at?;
    let end = facts.ended_at.unwrap_or(now_ms);
    Some((end - start).max(0) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(at: i64, meter: Option<i64>) -> Fact {
        Fact::Started {
            at,
            connector_id: Some(1),
            id_token: Some("BK1".into()),
            meter_start_wh: meter,
            remote_start_id: Some(7),
        }
    }

    fn summary(at: i64, wh: i64, power: f64) -> Fact {
        Fact::Summary {
            at,
            connector_id: Some(1),
            register_wh: Some(wh),
            power_w: Some(power),
            soc_percent: None,
            current_a: Some(16.0),
        }
    }

    fn ended(at: i64, meter: Option<i64>) -> Fact {
        Fact::Ended {
            at,
            connector_id: Some(1),
            id_token: Some("BK1".into()),
            meter_stop_wh: meter,
            stop_reason: Some("EVDisconnected".into()),
        }
    }

    fn run(facts: &[Fact]) -> Facts {
        let mut f = Facts::default();
        for fact in facts {
            apply(&mut f, fact);
        }
        f
    }

    #[test]
    fn in_order_session_reads_energy_from_the_meter() {
        let f = run(&[
            started(0, Some(1000)),
            summary(60_000, 1500, 7000.0),
            summary(120_000, 2100, 7100.0),
            ended(180_000, Some(2500)),
        ]);
        assert!(f.completed);
        assert_eq!((f.started_at, f.ended_at), (Some(0), Some(180_000)));
        assert_eq!(energy(&f), Some((1500, EnergySource::Meter)));
        assert_eq!(duration_secs(&f, 999_999), Some(180));
        assert_eq!(f.power_w, None, "no live power once ended");
        assert_eq!(f.ended_by, Some(EndedBy::Charger));
    }

    #[test]
    fn an_older_summary_does_not_overwrite_a_newer_one() {
        let f = run(&[
            started(0, Some(1000)),
            summary(120_000, 2100, 7100.0),
            summary(60_000, 1500, 7000.0),
        ]);
        assert_eq!(
            (f.register_wh, f.summary_at, f.power_w),
            (Some(2100), Some(120_000), Some(7100.0))
        );
        assert_eq!(energy(&f), Some((1100, EnergySource::Summary)));
    }

    #[test]
    fn a_late_summary_still_lowers_the_baseline_when_the_start_had_no_meter_value() {
        // A 2.0.1 charger without a Transaction.Begin reading: the first register is the start.
        let f = run(&[
            started(0, None),
            summary(120_000, 2100, 7100.0),
            summary(60_000, 1500, 7000.0),
        ]);
        assert_eq!(f.first_register_wh, Some(1500));
        assert_eq!(energy(&f), Some((600, EnergySource::Summary)));
    }

    #[test]
    fn ended_before_started_yields_the_same_session() {
        let in_order = run(&[
            started(0, Some(1000)),
            summary(60_000, 1500, 7000.0),
            ended(180_000, Some(2500)),
        ]);
        let reversed = run(&[
            ended(180_000, Some(2500)),
            summary(60_000, 1500, 7000.0),
            started(0, Some(1000)),
        ]);
        assert_eq!(in_order, reversed);
        assert!(reversed.completed);
        assert_eq!(energy(&reversed), Some((1500, EnergySource::Meter)));
    }

    #[test]
    fn every_order_of_the_same_facts_agrees() {
        let facts = [
            started(0, Some(1000)),
            summary(60_000, 1500, 7000.0),
            summary(120_000, 2100, 7100.0),
            ended(180_000, Some(2500)),
        ];
        let reference = run(&facts);
        // All 24 permutations.
        let mut idx = [0usize, 1, 2, 3];
        let mut seen = 0;
        permute(&mut idx, 0, &mut |order| {
            let shuffled: Vec<Fact> = order.iter().map(|&i| facts[i].clone()).collect();
            assert_eq!(run(&shuffled), reference, "order {order:?}");
            seen += 1;
        });
        assert_eq!(seen, 24);
    }

    fn permute(v: &mut [usize; 4], k: usize, f: &mut impl FnMut(&[usize; 4])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }

    #[test]
    fn replays_change_nothing() {
        let facts = [
            started(0, Some(1000)),
            summary(60_000, 1500, 7000.0),
            ended(180_000, Some(2500)),
        ];
        let mut f = run(&facts);
        for fact in &facts {
            assert!(!apply(&mut f, fact), "{fact:?} applied twice changed the session");
        }
    }

    #[test]
    fn a_second_end_does_not_move_the_first() {
        let mut f = run(&[started(0, Some(1000)), ended(180_000, Some(2500))]);
        apply(&mut f, &ended(240_000, Some(2600)));
        assert_eq!((f.ended_at, f.meter_stop_wh), (Some(180_000), Some(2500)));
    }

    #[test]
    fn an_operator_finalize_uses_the_last_summary_and_the_charger_corrects_it() {
        let mut f = run(&[started(0, Some(1000)), summary(60_000, 1500, 7000.0)]);
        assert!(apply(&mut f, &Fact::Finalized { at: 600_000 }));
        assert!(f.completed);
        assert_eq!(f.ended_by, Some(EndedBy::Operator));
        assert_eq!(energy(&f), Some((500, EnergySource::Summary)));
        assert!(!apply(&mut f, &Fact::Finalized { at: 700_000 }), "finalize is once");
        // The charger's own end arrives later: its meter wins.
        apply(&mut f, &ended(300_000, Some(1800)));
        assert_eq!((f.ended_at, f.ended_by), (Some(300_000), Some(EndedBy::Charger)));
        assert_eq!(energy(&f), Some((800, EnergySource::Meter)));
    }

    #[test]
    fn a_start_never_reopens_a_completed_session() {
        let mut f = run(&[ended(180_000, Some(2500))]);
        apply(&mut f, &started(0, Some(1000)));
        assert!(f.completed);
        assert_eq!(f.started_at, Some(0));
    }

    #[test]
    fn no_energy_without_two_readings_or_with_a_register_that_went_back() {
        assert_eq!(energy(&run(&[started(0, None)])), None);
        assert_eq!(energy(&run(&[started(0, Some(1000))])), None);
        assert_eq!(energy(&run(&[started(0, Some(5000)), summary(60_000, 10, 0.0)])), None);
        assert_eq!(duration_secs(&run(&[ended(5, None)]), 10), None);
    }
}

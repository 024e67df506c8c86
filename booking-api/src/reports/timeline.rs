//! A connector's state over time, from the charger's status history: how long, inside a
//! window, it was available (the charger online and the connector neither Faulted nor
//! Unavailable) and how long occupied (a vehicle plugged in). Pure functions over sorted
//! changes; the state before the first known change is unknown and counts as neither.

/// One change of a connector's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The charger connected (true) or disconnected (false).
    Online(bool),
    /// The connector reported this status (1.6 or 2.0.1 names).
    Status(String),
}

/// The state at an instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub online: Option<bool>,
    pub status: Option<String>,
}

impl State {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Online(o) => self.online = Some(*o),
            Change::Status(s) => self.status = Some(s.clone()),
        }
    }

    /// Online, and the connector not out of order. A connector that has not reported a status
    /// yet counts as available while its charger is online.
    pub fn available(&self) -> bool {
        self.online == Some(true) && !matches!(self.status.as_deref(), Some("Faulted" | "Unavailable"))
    }

    /// A vehicle is plugged in: 2.0.1 `Occupied`, 1.6 `Preparing`, `Charging`, `SuspendedEV`,
    /// `SuspendedEVSE`, `Finishing`. A charger that went offline is not known to be occupied.
    pub fn occupied(&self) -> bool {
        self.online != Some(false)
            && matches!(
                self.status.as_deref(),
                Some("Occupied" | "Preparing" | "Charging" | "SuspendedEV" | "SuspendedEVSE" | "Finishing")
            )
    }
}

/// Milliseconds available and occupied inside `[from, to)`, from `changes` sorted by time (ms).
/// Changes before `from` set the starting state; changes at or after `to` are ignored.
pub fn durations(changes: &[(i64, Change)], from: i64, to: i64) -> (i64, i64) {
    durations_between(changes, &[from, to])
        .first()
        .copied()
        .unwrap_or((0, 0))
}

/// [`durations`] of the consecutive windows `[b0, b1)`, `[b1, b2)`, ... in one pass over the
/// changes (a year of days costs one walk, not one walk per day). A bound below the one before
/// gives an empty window.
pub fn durations_between(changes: &[(i64, Change)], bounds: &[i64]) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    let Some(&first) = bounds.first() else {
        return out;
    };
    let mut state = State::default();
    let mut i = 0;
    while i < changes.len() && changes[i].0 <= first {
        state.apply(&changes[i].1);
        i += 1;
    }
    let mut since = first;
    for &to in bounds.iter().skip(1) {
        let (mut available, mut occupied) = (0, 0);
        if to > since {
            let mut add = |state: &State, from: i64, until: i64| {
                if state.available() {
                    available += until - from;
                }
                if state.occupied() {
                    occupied += until - from;
                }
            };
            while i < changes.len() && changes[i].0 < to {
                let at = changes[i].0.max(since);
                add(&state, since, at);
                since = at;
                state.apply(&changes[i].1);
                i += 1;
            }
            add(&state, since, to);
            since = to;
        }
        out.push((available, occupied));
    }
    out
}

/// Merges a charger's online changes with one connector's status changes, in time order (at
/// one instant, the charger's change first: a charger that comes back reports its connectors
/// after).
pub fn merge(charger: &[(i64, bool)], connector: &[(i64, String)]) -> Vec<(i64, Change)> {
    let mut out: Vec<(i64, u8, Change)> = charger
        .iter()
        .map(|(at, o)| (*at, 0, Change::Online(*o)))
        .chain(connector.iter().map(|(at, s)| (*at, 1, Change::Status(s.clone()))))
        .collect();
    out.sort_by_key(|(at, order, _)| (*at, *order));
    out.into_iter().map(|(at, _, c)| (at, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str) -> Change {
        Change::Status(s.into())
    }

    #[test]
    fn unknown_before_the_first_change_counts_as_neither() {
        let changes = vec![(100, Change::Online(true)), (100, status("Available"))];
        assert_eq!(durations(&changes, 0, 200), (100, 0));
    }

    #[test]
    fn state_before_the_window_carries_in_and_later_changes_are_ignored() {
        let changes = vec![
            (0, Change::Online(true)),
            (0, status("Charging")),
            (150, status("Available")),
            (300, status("Faulted")),
        ];
        // [100, 150) charging and available; [150, 200) available only.
        assert_eq!(durations(&changes, 100, 200), (100, 50));
        // [250, 300) available, [300, 400) faulted.
        assert_eq!(durations(&changes, 250, 400), (50, 0));
    }

    #[test]
    fn offline_is_neither_available_nor_occupied() {
        let changes = merge(
            &[(0, true), (50, false), (80, true)],
            &[(0, "Occupied".into()), (90, "Available".into())],
        );
        // [0, 50) occupied and available; [50, 80) offline; [80, 90) occupied; [90, 100) available.
        assert_eq!(durations(&changes, 0, 100), (70, 60));
    }

    #[test]
    fn one_pass_over_consecutive_windows_equals_one_walk_per_window() {
        // A pseudo-random history: 400 changes over 10,000 ms, both kinds.
        let mut seed: u64 = 7;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let statuses = [
            "Available",
            "Charging",
            "Faulted",
            "Occupied",
            "Unavailable",
            "Finishing",
        ];
        let mut changes: Vec<(i64, Change)> = (0..400)
            .map(|_| {
                let at = (next() % 10_000) as i64;
                let change = if next() % 5 == 0 {
                    Change::Online(next() % 2 == 0)
                } else {
                    status(statuses[(next() % statuses.len() as u64) as usize])
                };
                (at, change)
            })
            .collect();
        changes.sort_by_key(|(at, _)| *at);
        let bounds: Vec<i64> = (0..=25).map(|k| -500 + k * 450).collect();
        let one_pass = durations_between(&changes, &bounds);
        let walks: Vec<(i64, i64)> = bounds.windows(2).map(|w| durations(&changes, w[0], w[1])).collect();
        assert_eq!(one_pass, walks);
        assert!(one_pass.iter().any(|(a, o)| *a > 0 && *o > 0));
        // A bound clipped below the previous one gives empty windows.
        assert_eq!(
            durations_between(&changes, &[0, 100, 50, 50]),
            vec![durations(&changes, 0, 100), (0, 0), (0, 0)]
        );
    }

    #[test]
    fn an_empty_or_inverted_window_is_zero() {
        let changes = vec![(0, Change::Online(true))];
        assert_eq!(durations(&changes, 10, 10), (0, 0));
        assert_eq!(durations(&changes, 10, 5), (0, 0));
        assert_eq!(durations(&[], 0, 100), (0, 0));
    }

    #[test]
    fn unavailable_and_faulted_are_out_of_order() {
        for s in ["Faulted", "Unavailable"] {
            let changes = vec![(0, Change::Online(true)), (0, status(s))];
            assert_eq!(durations(&changes, 0, 10), (0, 0), "{s}");
        }
        let changes = vec![(0, Change::Online(true)), (0, status("Reserved"))];
        assert_eq!(
            durations(&changes, 0, 10),
            (10, 0),
            "reserved is available, not occupied"
        );
    }
}

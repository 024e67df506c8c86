//! Power limits over time: piecewise-constant curves in watts, relative to an instant. The
//! building block of profile computation and schedule checking.

/// A limit from `start` seconds (relative) on, until the next segment's start; the last one
/// lasts forever. `INFINITY` means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Seconds from the curve's origin.
    pub start: i64,
    /// Watts.
    pub watts: f64,
}

/// A piecewise-constant limit; the first segment starts at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve(Vec<Segment>);

impl Curve {
    /// The same limit at every instant.
    pub fn constant(watts: f64) -> Curve {
        Curve(vec![Segment { start: 0, watts }])
    }

    /// A curve from segments (sorted by start here; a missing start at 0 is no limit).
    pub fn from_segments(mut segments: Vec<Segment>) -> Curve {
        segments.sort_by_key(|s| s.start);
        segments.retain(|s| s.start >= 0);
        if segments.first().is_none_or(|s| s.start > 0) {
            segments.insert(
                0,
                Segment {
                    start: 0,
                    watts: f64::INFINITY,
                },
            );
        }
        Curve(segments).merged()
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The limit at `t` seconds.
    pub fn at(&self, t: i64) -> f64 {
        self.0
            .iter()
            .take_while(|s| s.start <= t)
            .last()
            .map_or(f64::INFINITY, |s| s.watts)
    }

    /// The lower of two curves at every instant.
    pub fn min(&self, other: &Curve) -> Curve {
        let starts = self.breakpoints(other);
        Curve(
            starts
                .into_iter()
                .map(|start| Segment {
                    start,
                    watts: self.at(start).min(other.at(start)),
                })
                .collect(),
        )
        .merged()
    }

    /// Applies `f` to every segment's limit, given its start.
    pub fn map(&self, f: impl Fn(i64, f64) -> f64) -> Curve {
        Curve(
            self.0
                .iter()
                .map(|s| Segment {
                    start: s.start,
                    watts: f(s.start, s.watts),
                })
                .collect(),
        )
        .merged()
    }

    /// Splits a segment at `t` so a later rule can treat both sides apart.
    pub fn split_at(&self, t: i64) -> Curve {
        if t <= 0 || self.0.iter().any(|s| s.start == t) {
            return self.clone();
        }
        let mut segments = self.0.clone();
        segments.push(Segment {
            start: t,
            watts: self.at(t),
        });
        segments.sort_by_key(|s| s.start);
        Curve(segments)
    }

    /// Watt-seconds deliverable over [0, until) when charging at min(curve, level).
    pub fn energy_below(&self, level: f64, until: i64) -> f64 {
        let mut total = 0.0;
        for (i, s) in self.0.iter().enumerate() {
            if s.start >= until {
                break;
            }
            let end = self.0.get(i + 1).map_or(until, |n| n.start.min(until));
            total += s.watts.min(level) * (end - s.start) as f64;
        }
        total
    }

    fn breakpoints(&self, other: &Curve) -> Vec<i64> {
        let mut starts: Vec<i64> = self.0.iter().chain(other.0.iter()).map(|s| s.start).collect();
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// Joins neighbours with the same limit.
    fn merged(mut self) -> Curve {
        self.0.dedup_by(|later, earlier| later.watts == earlier.watts);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: i64, watts: f64) -> Segment {
        Segment { start, watts }
    }

    #[test]
    fn min_takes_the_lower_limit_at_every_instant() {
        let a = Curve::from_segments(vec![seg(0, 10.0), seg(100, 2.0)]);
        let b = Curve::from_segments(vec![seg(0, 5.0), seg(200, 20.0)]);
        let m = a.min(&b);
        assert_eq!(m.segments(), &[seg(0, 5.0), seg(100, 2.0)]);
        assert_eq!(m.at(50), 5.0);
        assert_eq!(m.at(150), 2.0);
        assert_eq!(m.at(10_000), 2.0);
    }

    #[test]
    fn a_curve_starting_late_has_no_limit_before() {
        let c = Curve::from_segments(vec![seg(60, 7.0)]);
        assert!(c.at(0).is_infinite());
        assert_eq!(c.at(60), 7.0);
    }

    #[test]
    fn energy_below_a_level() {
        let c = Curve::from_segments(vec![seg(0, 10.0), seg(10, 2.0)]);
        assert_eq!(c.energy_below(5.0, 20), 5.0 * 10.0 + 2.0 * 10.0);
        assert_eq!(c.energy_below(f64::INFINITY, 10), 100.0);
    }
}

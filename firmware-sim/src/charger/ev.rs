//! The EV on a connector and the electricity it draws: a battery with a constant-power phase
//! and a taper above 80 % state of charge, like the charging curve of a real car.

/// State of charge above which the EV reduces its power.
const TAPER_START_PERCENT: f64 = 80.0;
/// Fraction of its maximum the EV still draws just below 100 %.
const TAPER_FLOOR: f64 = 0.05;
/// Nominal phase-to-neutral voltage.
pub const NOMINAL_VOLTAGE: f64 = 230.0;

/// A plugged-in EV.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    /// Usable capacity in Wh.
    pub capacity_wh: f64,
    /// State of charge in percent.
    pub soc_percent: f64,
    /// Most power it accepts, in W.
    pub max_w: f64,
}

impl Ev {
    /// The power the EV asks for at its current state of charge.
    pub fn demand_w(&self) -> f64 {
        if self.soc_percent >= 100.0 {
            return 0.0;
        }
        if self.soc_percent <= TAPER_START_PERCENT {
            return self.max_w;
        }
        let left = (100.0 - self.soc_percent) / (100.0 - TAPER_START_PERCENT);
        self.max_w * (TAPER_FLOOR + (1.0 - TAPER_FLOOR) * left)
    }

    /// Charges at `power_w` for `secs` seconds; returns the energy delivered in Wh.
    pub fn charge(&mut self, power_w: f64, secs: f64) -> f64 {
        let room_wh = self.capacity_wh * (100.0 - self.soc_percent) / 100.0;
        let wh = (power_w.max(0.0) * secs / 3600.0).min(room_wh.max(0.0));
        self.soc_percent = (self.soc_percent + wh / self.capacity_wh * 100.0).min(100.0);
        wh
    }
}

/// The power that flows: the least of what the EV asks, the connector allows and the charging
/// profiles permit (`None`: no profile applies).
pub fn delivered_w(ev: &Ev, connector_max_w: f64, profile_limit_w: Option<f64>) -> f64 {
    let mut p = ev.demand_w().min(connector_max_w);
    if let Some(limit) = profile_limit_w {
        p = p.min(limit.max(0.0));
    }
    p
}

/// Current per phase in A for a power over `phases` at nominal voltage.
pub fn current_a(power_w: f64, phases: u8) -> f64 {
    power_w / (NOMINAL_VOLTAGE * f64::from(phases.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(soc: f64) -> Ev {
        Ev {
            capacity_wh: 60_000.0,
            soc_percent: soc,
            max_w: 11_000.0,
        }
    }

    #[test]
    fn constant_power_then_taper_then_nothing() {
        assert_eq!(ev(20.0).demand_w(), 11_000.0);
        assert_eq!(ev(80.0).demand_w(), 11_000.0);
        let at_90 = ev(90.0).demand_w();
        assert!(at_90 < 11_000.0 && at_90 > 11_000.0 * TAPER_FLOOR, "{at_90}");
        assert!(ev(95.0).demand_w() < at_90);
        assert_eq!(ev(100.0).demand_w(), 0.0);
    }

    #[test]
    fn energy_follows_power_and_stops_at_full() {
        let mut e = ev(50.0);
        let wh = e.charge(11_000.0, 3600.0);
        assert!((wh - 11_000.0).abs() < 1e-6);
        assert!((e.soc_percent - (50.0 + 11.0 / 60.0 * 100.0)).abs() < 1e-9);
        let mut full = ev(99.9);
        let wh = full.charge(11_000.0, 3600.0);
        assert!((wh - 60.0).abs() < 1e-6, "{wh}");
        assert_eq!(full.soc_percent, 100.0);
    }

    #[test]
    fn delivered_power_is_the_least_limit() {
        assert_eq!(delivered_w(&ev(20.0), 22_000.0, None), 11_000.0);
        assert_eq!(delivered_w(&ev(20.0), 7_400.0, None), 7_400.0);
        assert_eq!(delivered_w(&ev(20.0), 22_000.0, Some(4_000.0)), 4_000.0);
        assert_eq!(delivered_w(&ev(20.0), 22_000.0, Some(-5.0)), 0.0);
        assert!((current_a(11_040.0, 3) - 16.0).abs() < 1e-9);
    }
}

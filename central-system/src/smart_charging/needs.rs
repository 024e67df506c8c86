//! The EV's charging needs (NotifyEVChargingNeeds, K15/K17) read into domain values, with the
//! checks the schema cannot make: evseId 0, negative amounts, a minimum above the maximum,
//! parameters for the other kind of energy transfer.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Nominal phase-to-neutral voltage of AC supply, for converting per-phase amps to watts. The
/// EV's `evMaxVoltage` is what its charger tolerates, not what the grid delivers.
pub const NOMINAL_AC_VOLTAGE: f64 = 230.0;

/// `requestedEnergyTransfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergyTransfer {
    /// DC.
    Dc,
    /// AC on one phase.
    AcSinglePhase,
    /// AC on two phases.
    AcTwoPhase,
    /// AC on three phases.
    AcThreePhase,
}

impl EnergyTransfer {
    /// Every mode, in wire order.
    pub const ALL: [EnergyTransfer; 4] = [
        EnergyTransfer::Dc,
        EnergyTransfer::AcSinglePhase,
        EnergyTransfer::AcTwoPhase,
        EnergyTransfer::AcThreePhase,
    ];

    /// Reads the wire name.
    pub fn parse(name: &str) -> Option<EnergyTransfer> {
        EnergyTransfer::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergyTransfer::Dc => "DC",
            EnergyTransfer::AcSinglePhase => "AC_single_phase",
            EnergyTransfer::AcTwoPhase => "AC_two_phase",
            EnergyTransfer::AcThreePhase => "AC_three_phase",
        }
    }

    /// Phases an AC mode uses (`None` for DC).
    pub fn phases(self) -> Option<u8> {
        match self {
            EnergyTransfer::Dc => None,
            EnergyTransfer::AcSinglePhase => Some(1),
            EnergyTransfer::AcTwoPhase => Some(2),
            EnergyTransfer::AcThreePhase => Some(3),
        }
    }
}

/// What the EV told about itself, in watts, plus the energy it wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvLimits {
    /// Energy requested in Wh (`None`: not said, nothing to level against).
    pub energy_wh: Option<i64>,
    /// The lowest power it can charge at (AC: evMinCurrent on every phase; DC: 0).
    pub min_w: f64,
    /// The most power it takes (`INFINITY` when it gave no parameters).
    pub max_w: f64,
}

/// A NotifyEVChargingNeeds, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargingNeeds {
    /// The EVSE (never 0).
    pub evse_id: u32,
    /// How the EV wants the energy.
    pub transfer: EnergyTransfer,
    /// When it leaves.
    pub departure: Option<DateTime<Utc>>,
    /// Its limits and energy.
    pub ev: EvLimits,
    /// `maxScheduleTuples`: how many periods the EV takes per schedule.
    pub max_schedule_tuples: Option<usize>,
}

/// Why the payload, though schema-valid, cannot be charging needs (a
/// PropertyConstraintViolation for the station).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeedsError {
    /// evseId 0 is the whole station; an EV is on an EVSE.
    #[error("evseId must be greater than 0")]
    EvseZero,
    /// AC parameters for a DC transfer or the other way round.
    #[error("{given} given for requestedEnergyTransfer {mode}")]
    ParametersForOtherMode {
        /// Which parameter block was given.
        given: &'static str,
        /// The mode requested.
        mode: &'static str,
    },
    /// A value outside its domain.
    #[error("{0}")]
    OutOfRange(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    evse_id: i64,
    max_schedule_tuples: Option<i64>,
    charging_needs: WireNeeds,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireNeeds {
    requested_energy_transfer: String,
    departure_time: Option<DateTime<Utc>>,
    ac_charging_parameters: Option<WireAc>,
    dc_charging_parameters: Option<WireDc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAc {
    energy_amount: i64,
    ev_min_current: i64,
    ev_max_current: i64,
    ev_max_voltage: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDc {
    ev_max_current: i64,
    ev_max_voltage: i64,
    energy_amount: Option<i64>,
    ev_max_power: Option<i64>,
    state_of_charge: Option<i64>,
    ev_energy_capacity: Option<i64>,
    #[serde(rename = "fullSoC")]
    full_soc: Option<i64>,
}

/// Reads a schema-valid NotifyEVChargingNeeds payload.
pub fn parse(payload: &Value) -> Result<ChargingNeeds, NeedsError> {
    let wire =
        Wire::deserialize(payload).map_err(|_| NeedsError::OutOfRange("payload does not fit NotifyEVChargingNeeds"))?;
    let evse_id = u32::try_from(wire.evse_id).map_err(|_| NeedsError::OutOfRange("evseId is out of range"))?;
    if evse_id == 0 {
        return Err(NeedsError::EvseZero);
    }
    let max_schedule_tuples = match wire.max_schedule_tuples {
        None => None,
        Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(_) => return Err(NeedsError::OutOfRange("maxScheduleTuples must be at least 1")),
    };
    let needs = wire.charging_needs;
    let transfer = EnergyTransfer::parse(&needs.requested_energy_transfer)
        .ok_or(NeedsError::OutOfRange("unknown requestedEnergyTransfer"))?;
    let mode = transfer.as_str();
    let ev = match (
        transfer.phases(),
        needs.ac_charging_parameters,
        needs.dc_charging_parameters,
    ) {
        (Some(_), _, Some(_)) => {
            return Err(NeedsError::ParametersForOtherMode {
                given: "dcChargingParameters",
                mode,
            })
        }
        (None, Some(_), _) => {
            return Err(NeedsError::ParametersForOtherMode {
                given: "acChargingParameters",
                mode,
            })
        }
        (Some(phases), Some(ac), None) => ac_limits(&ac, phases)?,
        (None, None, Some(dc)) => dc_limits(&dc)?,
        // The EV gave only the mode: the station's and site's limits decide (the test tool's
        // own K15 cases send exactly this).
        (_, None, None) => EvLimits {
            energy_wh: None,
            min_w: 0.0,
            max_w: f64::INFINITY,
        },
    };
    Ok(ChargingNeeds {
        evse_id,
        transfer,
        departure: needs.departure_time,
        ev,
        max_schedule_tuples,
    })
}

fn ac_limits(ac: &WireAc, phases: u8) -> Result<EvLimits, NeedsError> {
    if ac.energy_amount < 0 {
        return Err(NeedsError::OutOfRange("energyAmount must not be negative"));
    }
    if ac.ev_min_current < 0 || ac.ev_max_current <= 0 {
        return Err(NeedsError::OutOfRange("evMinCurrent must be >= 0 and evMaxCurrent > 0"));
    }
    if ac.ev_min_current > ac.ev_max_current {
        return Err(NeedsError::OutOfRange("evMinCurrent is above evMaxCurrent"));
    }
    if ac.ev_max_voltage <= 0 {
        return Err(NeedsError::OutOfRange("evMaxVoltage must be greater than 0"));
    }
    let per_amp = NOMINAL_AC_VOLTAGE * f64::from(phases);
    Ok(EvLimits {
        energy_wh: Some(ac.energy_amount),
        min_w: ac.ev_min_current as f64 * per_amp,
        max_w: ac.ev_max_current as f64 * per_amp,
    })
}

fn dc_limits(dc: &WireDc) -> Result<EvLimits, NeedsError> {
    if dc.ev_max_current <= 0 || dc.ev_max_voltage <= 0 {
        return Err(NeedsError::OutOfRange(
            "evMaxCurrent and evMaxVoltage must be greater than 0",
        ));
    }
    if dc.energy_amount.is_some_and(|e| e < 0)
        || dc.ev_max_power.is_some_and(|p| p <= 0)
        || dc.ev_energy_capacity.is_some_and(|c| c < 0)
    {
        return Err(NeedsError::OutOfRange(
            "energyAmount and evEnergyCapacity must not be negative, evMaxPower must be greater than 0",
        ));
    }
    let by_current = dc.ev_max_current as f64 * dc.ev_max_voltage as f64;
    let max_w = dc.ev_max_power.map_or(by_current, |p| (p as f64).min(by_current));
    // Without an energy amount, the battery's room up to full charge is what the EV wants.
    let energy_wh = dc
        .energy_amount
        .or_else(|| match (dc.state_of_charge, dc.ev_energy_capacity) {
            (Some(soc), Some(capacity)) => {
                let full = dc.full_soc.unwrap_or(100);
                Some(capacity * (full - soc).max(0) / 100)
            }
            _ => None,
        });
    Ok(EvLimits {
        energy_wh,
        min_w: 0.0,
        max_w,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ac(energy: i64, min: i64, max: i64) -> Value {
        json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase",
            "departureTime": "2030-01-01T18:00:00Z",
            "acChargingParameters": {"energyAmount": energy, "evMinCurrent": min, "evMaxCurrent": max, "evMaxVoltage": 400}}})
    }

    #[test]
    fn reads_ac_needs_in_watts() {
        let needs = parse(&ac(20_000, 6, 16)).unwrap();
        assert_eq!(needs.transfer, EnergyTransfer::AcThreePhase);
        assert_eq!(needs.ev.energy_wh, Some(20_000));
        assert_eq!(needs.ev.min_w, 6.0 * 230.0 * 3.0);
        assert_eq!(needs.ev.max_w, 16.0 * 230.0 * 3.0);
        assert!(needs.departure.is_some());
    }

    #[test]
    fn reads_dc_needs_and_derives_energy_from_soc() {
        let p = json!({"evseId": 2, "chargingNeeds": {"requestedEnergyTransfer": "DC",
            "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 400, "evMaxPower": 50_000,
                "stateOfCharge": 30, "evEnergyCapacity": 60_000, "fullSoC": 80}}});
        let needs = parse(&p).unwrap();
        assert_eq!(needs.ev.max_w, 50_000.0);
        assert_eq!(needs.ev.min_w, 0.0);
        assert_eq!(needs.ev.energy_wh, Some(30_000));
    }

    #[test]
    fn mode_alone_leaves_limits_to_the_site() {
        let p = json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_single_phase"}});
        let needs = parse(&p).unwrap();
        assert_eq!(needs.ev.energy_wh, None);
        assert!(needs.ev.max_w.is_infinite());
    }

    #[test]
    fn refuses_what_the_schema_lets_through() {
        let mut zero = ac(1, 6, 16);
        zero["evseId"] = json!(0);
        assert_eq!(parse(&zero), Err(NeedsError::EvseZero));
        assert!(matches!(parse(&ac(-1, 6, 16)), Err(NeedsError::OutOfRange(_))));
        assert!(matches!(parse(&ac(100, 20, 16)), Err(NeedsError::OutOfRange(_))));
        assert!(matches!(parse(&ac(100, -1, 16)), Err(NeedsError::OutOfRange(_))));
        let mut mixed = ac(100, 6, 16);
        mixed["chargingNeeds"]["requestedEnergyTransfer"] = json!("DC");
        assert!(matches!(parse(&mixed), Err(NeedsError::ParametersForOtherMode { .. })));
        let mut tuples = ac(100, 6, 16);
        tuples["maxScheduleTuples"] = json!(0);
        assert!(matches!(parse(&tuples), Err(NeedsError::OutOfRange(_))));
    }
}

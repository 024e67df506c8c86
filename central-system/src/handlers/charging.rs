//! ISO 15118 charging needs and EV schedules (2.0.1 K15-K17): the connection's side. The rules
//! live in [`crate::smart_charging`]; this reads the EVSE's transaction from the connection's
//! cache and maps domain errors to what the station gets.

use super::{internal, Ctx};
use crate::smart_charging::needs;
use crate::smart_charging::negotiation::{self, NegotiationError};
use ocpp::{Fault, Violation};
use serde_json::Value;

fn failed(e: NegotiationError) -> Violation {
    match e {
        NegotiationError::Store(e) => internal(e),
        other => {
            tracing::error!(error = %other, "ISO 15118 negotiation failed");
            Violation::new(
                Fault::Internal,
                "the central system could not process the message; retry later",
            )
        }
    }
}

/// NotifyEVChargingNeeds: values the schema lets through but no EV can mean (evseId 0, a
/// minimum above the maximum, parameters for the other mode) are a PropertyConstraintViolation.
pub async fn notify_ev_charging_needs(ctx: &mut Ctx<'_>, p: &Value) -> Result<Value, Violation> {
    let needs = needs::parse(p).map_err(|e| Violation::new(Fault::PropertyConstraint, e.to_string()))?;
    let transaction = ctx.active_on_evse(needs.evse_id).await?;
    let outcome = negotiation::on_needs(ctx.state, ctx.station_id, &needs, p, transaction, ctx.now)
        .await
        .map_err(failed)?;
    if let Some((row, request)) = outcome.deliver {
        negotiation::deliver_later(ctx.state, ctx.station_id, row, request);
    }
    Ok(outcome.response)
}

/// NotifyEVChargingSchedule: checked against the profile sent for the EVSE's transaction.
pub async fn notify_ev_charging_schedule(ctx: &mut Ctx<'_>, p: &Value) -> Result<Value, Violation> {
    let evse_id = p
        .get("evseId")
        .and_then(Value::as_u64)
        .and_then(|e| u32::try_from(e).ok())
        .filter(|e| *e > 0)
        .ok_or_else(|| Violation::new(Fault::PropertyConstraint, "evseId must be greater than 0"))?;
    let transaction = ctx.active_on_evse(evse_id).await?;
    negotiation::on_ev_schedule(ctx.state, ctx.station_id, evse_id, transaction, p, ctx.now)
        .await
        .map_err(failed)
}

//! OCPP 2.0.1 charger-initiated messages.

use super::authorization::{authorize, ConcurrencyCheck};
use super::{internal, typed, Ctx};
use crate::store::messages::DeviceVariable;
use crate::store::outbox;
use crate::store::types::Ts;
use crate::store::writer::SeqNoSeen;
use ocpp::messages::v201::messages as m;
use ocpp::model::{from_v201, meter, AuthorizationStatus, Location, StationEvent};
use ocpp::{Call, Violation};
use serde_json::{json, Value};

/// Handles one validated 2.0.1 CALL.
pub async fn handle(ctx: &mut Ctx<'_>, call: &Call) -> Result<Value, Violation> {
    let p = &call.payload;
    match call.action.as_str() {
        "BootNotification" => {
            let req: m::boot_notification::BootNotificationRequest = typed(p)?;
            super::boot(ctx, from_v201::boot(&req)).await
        }
        "Heartbeat" => super::heartbeat(ctx).await,
        "StatusNotification" => {
            let req: m::status_notification::StatusNotificationRequest = typed(p)?;
            let change = from_v201::status(&req)?;
            ctx.state
                .store
                .record_status(ctx.station_id, &change, ctx.version)
                .await
                .map_err(internal)?;
            Ok(json!({}))
        }
        "Authorize" => {
            let req: m::authorize::AuthorizeRequest = typed(p)?;
            let token = from_v201::id_token(&req.id_token);
            let decision = authorize(&ctx.state.store, &token.value, ctx.station_id, ctx.now_ts(), None)
                .await
                .map_err(internal)?;
            Ok(json!({ "idTokenInfo": decision.id_token_info() }))
        }
        "TransactionEvent" => transaction_event(ctx, typed(p)?).await,
        "MeterValues" => {
            let evse = p
                .get("evseId")
                .and_then(Value::as_u64)
                .and_then(|e| u32::try_from(e).ok());
            let Some(evse_id) = evse else {
                return Err(Violation::new(
                    ocpp::Fault::PropertyConstraint,
                    "evseId is out of range",
                ));
            };
            let samples = meter::from_json(&p["meterValue"])?;
            super::meter_values(ctx, evse_id, None, samples).await?;
            Ok(json!({}))
        }
        "DataTransfer" => {
            ctx.keep(&call.action, p).await?;
            let vendor = p.get("vendorId").and_then(Value::as_str).unwrap_or_default();
            Ok(ctx.state.data_transfer.handle(ctx.station_id, vendor, p))
        }
        "NotifyReport" => {
            ctx.keep(&call.action, p).await?;
            let vars = device_variables(p, ctx.now_ts());
            ctx.state
                .store
                .upsert_device_variables(ctx.station_id, &vars)
                .await
                .map_err(internal)?;
            Ok(json!({}))
        }
        "ReservationStatusUpdate" => {
            ctx.keep(&call.action, p).await?;
            let req: m::reservation_status_update::ReservationStatusUpdateRequest = typed(p)?;
            let update = from_v201::reservation_status(&req);
            ctx.state
                .store
                .set_reservation_status(
                    ctx.station_id,
                    i64::from(update.reservation_id),
                    &update.status,
                    ctx.now_ts(),
                )
                .await
                .map_err(internal)?;
            Ok(json!({}))
        }
        // Requests whose response has required fields: answer what a CSMS without the feature
        // (ISO 15118 certificates) can truthfully say.
        "SignCertificate" => {
            ctx.keep(&call.action, p).await?;
            let csr = p.get("csr").and_then(Value::as_str).unwrap_or_default();
            let certificate_type = p.get("certificateType").and_then(Value::as_str);
            Ok(super::sign_certificate(ctx, csr, certificate_type).await)
        }
        "SecurityEventNotification" => {
            ctx.keep(&call.action, p).await?;
            super::security_event_notification(ctx, p).await?;
            Ok(json!({}))
        }
        "Get15118EVCertificate" => keep_and(ctx, call, json!({ "status": "Failed", "exiResponse": "" })).await,
        "GetCertificateStatus" => keep_and(ctx, call, json!({ "status": "Failed" })).await,
        "NotifyEVChargingNeeds" => {
            ctx.keep(&call.action, p).await?;
            super::charging::notify_ev_charging_needs(ctx, p).await
        }
        "NotifyEVChargingSchedule" => {
            ctx.keep(&call.action, p).await?;
            super::charging::notify_ev_charging_schedule(ctx, p).await
        }
        // Everything else (NotifyEvent, SecurityEventNotification, firmware/log status, charging
        // limits, display messages, monitoring and customer information reports) is kept.
        _ => keep_and(ctx, call, json!({})).await,
    }
}

async fn keep_and(ctx: &Ctx<'_>, call: &Call, response: Value) -> Result<Value, Violation> {
    ctx.keep(&call.action, &call.payload).await?;
    Ok(response)
}

async fn transaction_event(
    ctx: &mut Ctx<'_>,
    req: m::transaction_event::TransactionEventRequest,
) -> Result<Value, Violation> {
    let store = &ctx.state.store;
    let now = ctx.now_ts();
    let station_tx_id = req.transaction_info.transaction_id.clone();
    let token = req.id_token.as_ref().map(from_v201::id_token);
    let event = from_v201::transaction_event(&req)?;
    let remote_start_id = req.transaction_info.remote_start_id.map(i64::from);
    // A seqNo left to the batch writer is committed together with the event's readings.
    let mut deferred_seq_no = None;
    // Whether the event's readings still go into the transaction's meter summary (an event
    // that wrote its own summary has taken them already).
    let mut summarize = true;
    let state = ctx.state;
    let summaries = &state.meter_summaries;
    let (id, location, samples, ended) = match event {
        StationEvent::TransactionStarted(start) => {
            let (id, _) = store
                .start_transaction(ctx.station_id, &station_tx_id, &start, None, remote_start_id, now)
                .await
                .map_err(internal)?;
            // An EVSE has one transaction at a time: one that started earlier and is still
            // Active here was lost by the station. Replays are harmless (the later start wins).
            let evse = start.location.evse_id;
            if evse != 0 {
                let started = Ts::from_datetime(start.timestamp);
                super::abandon_on_evse(ctx, evse, started, Some(id), "a new transaction started on the EVSE").await?;
            }
            (id, start.location, start.samples, false)
        }
        StationEvent::TransactionUpdated(update) => {
            // Periodic meter events are most of a 2.0.1 charger's traffic. With the id known on
            // this connection, one that carries no charging state, no token and no new EVSE
            // changes nothing in the row but its seqNo, which goes with its readings' batch. Until
            // that commits, a late event with an older seqNo may still set the charging state,
            // which is right: an event without a state cannot supersede one.
            let known = ctx.v201_transactions.get(&station_tx_id).copied();
            let id = match known {
                Some(known)
                    if update.charging_state.is_none()
                        && update.id_token.is_none()
                        && (update.location.is_none() || known.location.is_some()) =>
                {
                    deferred_seq_no = Some(SeqNoSeen {
                        transaction_id: known.id,
                        seq_no: i64::from(update.seq_no),
                        at: now,
                    });
                    known.id
                }
                Some(known) => {
                    // A transaction event carries the values the bus has not seen yet.
                    let at = outbox::bus_location(ctx.version, known.location.unwrap_or(Location::STATION));
                    summaries.observe(known.id, at, &update.samples, ctx.now);
                    let summary = summaries.pending(known.id);
                    store
                        .apply_transaction_update(ctx.station_id, known.id, &update, summary.as_ref(), now)
                        .await
                        .map_err(internal)?;
                    if summary.is_some() {
                        summaries.summarized(known.id, ctx.now);
                    }
                    summarize = false;
                    known.id
                }
                None => store
                    .update_transaction(ctx.station_id, &update, None, now)
                    .await
                    .map_err(internal)?,
            };
            (id, update.location.unwrap_or(Location::STATION), update.samples, false)
        }
        StationEvent::TransactionEnded(ended) => {
            let received = ctx.now;
            let summary_for = |id: i64, location| {
                summaries.observe(id, location, &ended.samples, received);
                summaries.pending(id)
            };
            let id = store
                .end_transaction(ctx.station_id, &ended, None, summary_for, now)
                .await
                .map_err(internal)?
                .ok_or_else(|| internal(crate::store::StoreError::NotFound))?;
            summaries.finish(id);
            summarize = false;
            (id, ended.location.unwrap_or(Location::STATION), ended.samples, true)
        }
        _ => {
            return Err(Violation::new(
                ocpp::Fault::Internal,
                "unexpected transaction event conversion",
            ))
        }
    };
    // Later events may omit the EVSE: their readings go under the transaction's EVSE. The row's
    // EVSE and connector only ever change from 0, so once both are set they are remembered
    // instead of read again.
    let row_location = match ctx.v201_transactions.get(&station_tx_id).and_then(|k| k.location) {
        Some(settled) => Some(settled),
        None => store.transaction(id).await.map_err(internal)?.map(|t| t.location()),
    };
    let location = if location == Location::STATION {
        row_location.unwrap_or(location)
    } else {
        location
    };
    if ended {
        ctx.v201_transactions.remove(&station_tx_id);
    } else {
        let settled = row_location.filter(|l| l.evse_id != 0 && l.connector_id != 0);
        ctx.remember_v201_transaction(&station_tx_id, id, settled);
    }
    if location.evse_id != 0 {
        ctx.active_by_evse.insert(location.evse_id, (!ended).then_some(id));
    }
    ctx.store_samples(location, Some(id), samples, deferred_seq_no, summarize)
        .await?;
    let mut response = json!({});
    if let Some(token) = token {
        let store = &ctx.state.store;
        let check = ConcurrencyCheck::new(Some(id), now, ctx.state.config.liveness_window());
        let decision = authorize(store, &token.value, ctx.station_id, now, Some(check))
            .await
            .map_err(internal)?;
        // A transaction whose token is not Accepted is refused: it never blocks the token.
        if decision.status != AuthorizationStatus::Accepted {
            let status = if decision.known {
                decision.status.as_str()
            } else {
                "Unknown"
            };
            if store.refuse_transaction(id, status).await.map_err(internal)? {
                // A refused transaction delivers nothing worth summarizing.
                ctx.state.meter_summaries.finish(id);
                if ctx.active_by_evse.get(&location.evse_id) == Some(&Some(id)) {
                    ctx.active_by_evse.remove(&location.evse_id);
                }
            }
        }
        response["idTokenInfo"] = decision.id_token_info();
    }
    Ok(response)
}

/// Flattens NotifyReport's reportData into device-model rows (one per attribute).
fn device_variables(payload: &Value, now: Ts) -> Vec<DeviceVariable> {
    let mut out = Vec::new();
    let Some(items) = payload.get("reportData").and_then(Value::as_array) else {
        return out;
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    for item in items {
        let component = &item["component"];
        let variable = &item["variable"];
        let characteristics = &item["variableCharacteristics"];
        let evse = &component["evse"];
        for attr in item["variableAttribute"].as_array().into_iter().flatten() {
            out.push(DeviceVariable {
                component: text(component, "name").unwrap_or_default(),
                component_instance: text(component, "instance").unwrap_or_default(),
                evse_id: evse.get("id").and_then(Value::as_i64).unwrap_or(0),
                connector_id: evse.get("connectorId").and_then(Value::as_i64).unwrap_or(0),
                variable: text(variable, "name").unwrap_or_default(),
                variable_instance: text(variable, "instance").unwrap_or_default(),
                attribute_type: text(attr, "type").unwrap_or_else(|| "Actual".into()),
                value: text(attr, "value"),
                mutability: text(attr, "mutability"),
                data_type: text(characteristics, "dataType"),
                unit: text(characteristics, "unit"),
                updated_at: now,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_report_data() {
        let payload = json!({"requestId": 1, "generatedAt": "2024-01-01T00:00:00Z", "seqNo": 0, "reportData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
             "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}, {"type": "MaxSet", "value": "3600"}],
             "variableCharacteristics": {"dataType": "integer", "unit": "s", "supportsMonitoring": false}},
            {"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}, "variable": {"name": "Available"},
             "variableAttribute": [{"value": "true"}]}
        ]});
        let vars = device_variables(&payload, Ts(5));
        assert_eq!(vars.len(), 3);
        assert_eq!(
            (
                vars[0].component.as_str(),
                vars[0].variable.as_str(),
                vars[0].value.as_deref()
            ),
            ("OCPPCommCtrlr", "HeartbeatInterval", Some("300"))
        );
        assert_eq!(vars[1].attribute_type, "MaxSet");
        assert_eq!(vars[1].unit.as_deref(), Some("s"));
        assert_eq!(
            (vars[2].evse_id, vars[2].connector_id, vars[2].attribute_type.as_str()),
            (1, 1, "Actual")
        );
    }
}

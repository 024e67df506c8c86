//! OCPP 1.6J charger-initiated messages (core profile, firmware management, security extension).

use super::authorization::{authorize, ConcurrencyCheck};
use super::{internal, typed, Ctx};
use crate::store::types::Ts;
use ocpp::messages::v16::messages as m;
use ocpp::model::{from_v16, meter, AuthorizationStatus, ConnectorStatus, Location};
use ocpp::{Call, Violation};
use serde_json::{json, Value};

/// Handles one validated 1.6 CALL.
pub async fn handle(ctx: &mut Ctx<'_>, call: &Call) -> Result<Value, Violation> {
    let p = &call.payload;
    match call.action.as_str() {
        "BootNotification" => {
            let req: m::boot_notification::BootNotificationRequest = typed(p)?;
            super::boot(ctx, from_v16::boot(&req)).await
        }
        "Heartbeat" => super::heartbeat(ctx).await,
        "StatusNotification" => {
            let req: m::status_notification::StatusNotificationRequest = typed(p)?;
            let change = from_v16::status(&req, ctx.now);
            ctx.state
                .store
                .record_status(ctx.station_id, &change, ctx.version)
                .await
                .map_err(internal)?;
            // Available means free for a new user: no transaction is going on there. The other
            // statuses may come with one (Preparing..Finishing) or without (Unavailable and
            // Faulted are reachable from Charging, transitions C8/C9), so they close nothing.
            let evse = change.location.evse_id;
            if change.status == ConnectorStatus::Available && evse != 0 {
                let now = ctx.now_ts();
                super::abandon_on_evse(ctx, evse, now, None, "the station reported the connector Available").await?;
            }
            Ok(json!({}))
        }
        "Authorize" => {
            let req: m::authorize::AuthorizeRequest = typed(p)?;
            let token = from_v16::authorize(&req);
            let decision = authorize(&ctx.state.store, &token.value, ctx.station_id, ctx.now_ts(), None)
                .await
                .map_err(internal)?;
            Ok(json!({ "idTagInfo": decision.id_tag_info() }))
        }
        "StartTransaction" => start_transaction(ctx, typed(p)?).await,
        "StopTransaction" => stop_transaction(ctx, typed(p)?).await,
        "MeterValues" => {
            // The hot path: samples come straight from the validated JSON (see meter::from_json).
            let connector = p
                .get("connectorId")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok());
            let Some(connector) = connector else {
                return Err(Violation::new(
                    ocpp::Fault::PropertyConstraint,
                    "connectorId is out of range",
                ));
            };
            let samples = meter::from_json(&p["meterValue"])?;
            let tx = p.get("transactionId").and_then(Value::as_i64);
            super::meter_values(ctx, connector, tx, samples).await?;
            Ok(json!({}))
        }
        "DataTransfer" => {
            ctx.keep(&call.action, p).await?;
            let vendor = p.get("vendorId").and_then(Value::as_str).unwrap_or_default();
            Ok(ctx.state.data_transfer.handle(ctx.station_id, vendor, p))
        }
        "SignCertificate" => {
            ctx.keep(&call.action, p).await?;
            let csr = p.get("csr").and_then(Value::as_str).unwrap_or_default();
            Ok(super::sign_certificate(ctx, csr, None).await)
        }
        "SecurityEventNotification" => {
            ctx.keep(&call.action, p).await?;
            super::security_event_notification(ctx, p).await?;
            Ok(json!({}))
        }
        // Notifications kept as received: firmware, diagnostics, log and security events.
        _ => {
            ctx.keep(&call.action, p).await?;
            Ok(json!({}))
        }
    }
}

/// The replay key of a 1.6 start: a resent StartTransaction repeats all of these exactly.
fn replay_key(req: &m::start_transaction::StartTransactionRequest) -> String {
    format!(
        "v16|{}|{}|{}|{}",
        req.connector_id,
        req.timestamp.timestamp_millis(),
        req.id_tag,
        req.meter_start
    )
}

async fn start_transaction(
    ctx: &mut Ctx<'_>,
    req: m::start_transaction::StartTransactionRequest,
) -> Result<Value, Violation> {
    let store = &ctx.state.store;
    let now = ctx.now_ts();
    let key = replay_key(&req);
    let start = from_v16::start_transaction(&req);
    let window = ctx.state.config.liveness_window();
    // A replayed start is answered as the first time: the charger acts on this answer.
    if let Some(stored) = store.transaction_state(ctx.station_id, &key).await.map_err(internal)? {
        let check = ConcurrencyCheck::new(Some(stored.id), now, window);
        let mut decision = authorize(store, &req.id_tag, ctx.station_id, now, Some(check))
            .await
            .map_err(internal)?;
        if stored.status == "Refused" {
            decision.status = stored
                .end_reason
                .as_deref()
                .and_then(AuthorizationStatus::parse)
                .unwrap_or(AuthorizationStatus::Invalid);
        }
        return answer_start(ctx, stored.id, &decision, start).await;
    }
    // A new start on the connector ends whatever the central system still thinks runs there,
    // before the token is checked: that older one must not make this one ConcurrentTx.
    let evse = start.location.evse_id;
    if evse != 0 {
        let started = Ts::from_datetime(start.timestamp);
        super::abandon_on_evse(ctx, evse, started, None, "a new transaction started on the connector").await?;
    }
    let decision = authorize(
        store,
        &req.id_tag,
        ctx.station_id,
        now,
        Some(ConcurrencyCheck::new(None, now, window)),
    )
    .await
    .map_err(internal)?;
    let refused = (decision.status != AuthorizationStatus::Accepted).then(|| decision.status.as_str());
    let (id, _created) = store
        .start_transaction(ctx.station_id, &key, &start, refused, None, now)
        .await
        .map_err(internal)?;
    answer_start(ctx, id, &decision, start).await
}

/// Queues a start's readings and builds its answer. 1.6 requires a transactionId even for a
/// refused start, and the charger sends its StopTransaction with it.
async fn answer_start(
    ctx: &mut Ctx<'_>,
    id: i64,
    decision: &super::authorization::TokenDecision,
    start: ocpp::model::TransactionStarted,
) -> Result<Value, Violation> {
    ctx.remember_transaction(id);
    ctx.store_samples(start.location, Some(id), start.samples, None, true)
        .await?;
    let Ok(transaction_id) = i32::try_from(id) else {
        return Err(Violation::new(ocpp::Fault::Internal, "transaction id space exhausted"));
    };
    Ok(json!({ "transactionId": transaction_id, "idTagInfo": decision.id_tag_info() }))
}

async fn stop_transaction(
    ctx: &mut Ctx<'_>,
    req: m::stop_transaction::StopTransactionRequest,
) -> Result<Value, Violation> {
    let store = &ctx.state.store;
    let ended = from_v16::stop_transaction(&req)?;
    // The stop's readings and its meterStop are the transaction's last values: its final
    // meterSummary goes out with transactionEnded, in the same database transaction.
    let summaries = &ctx.state.meter_summaries;
    let now = ctx.now;
    let summary_for = |id: i64, location| {
        summaries.observe(id, location, &ended.samples, now);
        if let Some(wh) = ended.meter_stop_wh {
            summaries.observe_register(id, location, wh, ended.timestamp);
        }
        summaries.pending(id)
    };
    let id = store
        .end_transaction(
            ctx.station_id,
            &ended,
            Some(i64::from(req.transaction_id)),
            summary_for,
            ctx.now_ts(),
        )
        .await
        .map_err(internal)?;
    let location = match id {
        Some(id) => {
            ctx.state.meter_summaries.finish(id);
            store.transaction(id).await.map_err(internal)?.map(|t| t.location())
        }
        None => {
            // 1.6 says to answer anyway: the charger must be able to delete the message from its queue.
            tracing::warn!(station = %ctx.station_id, transaction = req.transaction_id, "StopTransaction for an unknown transaction");
            None
        }
    };
    ctx.store_samples(location.unwrap_or(Location::STATION), id, ended.samples, None, false)
        .await?;
    let mut response = json!({});
    if let Some(tag) = &req.id_tag {
        let decision = authorize(store, tag, ctx.station_id, Ts::from_datetime(ctx.now), None)
            .await
            .map_err(internal)?;
        response["idTagInfo"] = decision.id_tag_info();
    }
    Ok(response)
}

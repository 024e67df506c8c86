//! The inbound pipeline per message: `Frame::parse` -> `schema::validate` -> typed `rust-ocpp`
//! request, for the messages a central system receives most (MeterValues, TransactionEvent) and
//! the one every connection starts with (BootNotification).
//!
//! `pipeline/*` measures the whole path; `validate/*` measures `schema::validate` alone on an
//! already parsed payload, to show its share. `meter_values_to_samples/*` compares the general
//! path from MeterValues text to normalised samples with `ocpp::fast_path`.
//!
//! Quick run: `cargo bench -p ocpp --bench frame_pipeline -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ocpp::messages::{v16, v201};
use ocpp::schema::{self, Direction};
use ocpp::{Frame, Version};
use serde::de::DeserializeOwned;
use serde_json::Value;

const V16_BOOT: &str = r#"[2,"b-1","BootNotification",{"chargePointVendor":"Acme","chargePointModel":"Wallbox 22","chargePointSerialNumber":"ACM-22-000123","chargeBoxSerialNumber":"ACM-22-000123","firmwareVersion":"2.3.1","iccid":"8931440000000000001","imsi":"204080000000001","meterType":"ABB B23 312-100","meterSerialNumber":"B23-0042"}]"#;

/// One meter reading of a three-phase AC session: energy, power, current and voltage per phase,
/// and the EV's state of charge.
const V16_METER: &str = r#"[2,"m-1","MeterValues",{"connectorId":1,"transactionId":1742,"meterValue":[{"timestamp":"2024-05-01T10:15:00.000Z","sampledValue":[
{"value":"12345.67","context":"Sample.Periodic","format":"Raw","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},
{"value":"10980.5","context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unit":"W"},
{"value":"15.9","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","location":"Outlet","unit":"A"},
{"value":"16.0","context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","location":"Outlet","unit":"A"},
{"value":"15.8","context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","location":"Outlet","unit":"A"},
{"value":"230.4","context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","location":"Outlet","unit":"V"},
{"value":"229.9","context":"Sample.Periodic","measurand":"Voltage","phase":"L2-N","location":"Outlet","unit":"V"},
{"value":"231.2","context":"Sample.Periodic","measurand":"Voltage","phase":"L3-N","location":"Outlet","unit":"V"},
{"value":"67","context":"Sample.Periodic","measurand":"SoC","location":"EV","unit":"Percent"}]}]}]"#;

const V201_TRANSACTION_EVENT: &str = r#"[2,"t-1","TransactionEvent",{"eventType":"Updated","timestamp":"2024-05-01T10:15:00.000Z","triggerReason":"MeterValuePeriodic","seqNo":12,"transactionInfo":{"transactionId":"7f3c2a9e-1b4d-4c8a-9e2f-0a1b2c3d4e5f","chargingState":"Charging"},"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"2024-05-01T10:15:00.000Z","sampledValue":[
{"value":12345.67,"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unitOfMeasure":{"unit":"Wh"}},
{"value":10980.5,"context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unitOfMeasure":{"unit":"W"}},
{"value":15.9,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","location":"Outlet"},
{"value":16.0,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","location":"Outlet"},
{"value":15.8,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","location":"Outlet"},
{"value":230.4,"context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","location":"Outlet"},
{"value":229.9,"context":"Sample.Periodic","measurand":"Voltage","phase":"L2-N","location":"Outlet"},
{"value":231.2,"context":"Sample.Periodic","measurand":"Voltage","phase":"L3-N","location":"Outlet"},
{"value":67,"context":"Sample.Periodic","measurand":"SoC","location":"EV","unitOfMeasure":{"unit":"Percent"}}]}]}]"#;

const V201_METER: &str = r#"[2,"m-2","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2024-05-01T10:15:00.000Z","sampledValue":[
{"value":12345.67,"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unitOfMeasure":{"unit":"Wh"}},
{"value":10980.5,"context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unitOfMeasure":{"unit":"W"}},
{"value":15.9,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","location":"Outlet"},
{"value":16.0,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","location":"Outlet"},
{"value":15.8,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","location":"Outlet"},
{"value":230.4,"context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","location":"Outlet"},
{"value":229.9,"context":"Sample.Periodic","measurand":"Voltage","phase":"L2-N","location":"Outlet"},
{"value":231.2,"context":"Sample.Periodic","measurand":"Voltage","phase":"L3-N","location":"Outlet"},
{"value":67,"context":"Sample.Periodic","measurand":"SoC","location":"EV","unitOfMeasure":{"unit":"Percent"}}]}]}]"#;

/// The whole inbound path for one CALL text; panics on any failure so a broken sample cannot
/// be mistaken for a fast one.
fn pipeline<T: DeserializeOwned>(version: Version, text: &str) -> T {
    let call = match Frame::parse(text) {
        Ok(Frame::Call(call)) => call,
        other => panic!("not a CALL: {other:?}"),
    };
    if let Err(v) = schema::validate(version, &call.action, Direction::Request, &call.payload) {
        panic!("{} invalid: {v}", call.action);
    }
    match serde_json::from_value(call.payload) {
        Ok(typed) => typed,
        Err(e) => panic!("{} does not deserialise: {e}", call.action),
    }
}

fn payload_of(text: &str) -> (String, Value) {
    match Frame::parse(text) {
        Ok(Frame::Call(call)) => (call.action, call.payload),
        other => panic!("not a CALL: {other:?}"),
    }
}

fn bench_pipeline(c: &mut Criterion) {
    // Compile outside the measurement: the first validate of an action pays for it.
    if let Err(v) = schema::preload() {
        panic!("{v}");
    }
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("v16_boot_notification", |b| {
        b.iter(|| {
            pipeline::<v16::messages::boot_notification::BootNotificationRequest>(Version::V16, black_box(V16_BOOT))
        })
    });
    group.bench_function("v16_meter_values_9_samples", |b| {
        b.iter(|| pipeline::<v16::messages::meter_values::MeterValuesRequest>(Version::V16, black_box(V16_METER)))
    });
    group.bench_function("v201_transaction_event_updated_9_samples", |b| {
        b.iter(|| {
            pipeline::<v201::messages::transaction_event::TransactionEventRequest>(
                Version::V201,
                black_box(V201_TRANSACTION_EVENT),
            )
        })
    });
    group.bench_function("v201_meter_values_9_samples", |b| {
        b.iter(|| pipeline::<v201::messages::meter_values::MeterValuesRequest>(Version::V201, black_box(V201_METER)))
    });
    group.finish();

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    for (name, version, text) in [
        ("v16_boot_notification", Version::V16, V16_BOOT),
        ("v16_meter_values_9_samples", Version::V16, V16_METER),
        (
            "v201_transaction_event_updated_9_samples",
            Version::V201,
            V201_TRANSACTION_EVENT,
        ),
        ("v201_meter_values_9_samples", Version::V201, V201_METER),
    ] {
        let (action, payload) = payload_of(text);
        group.bench_function(name, |b| {
            b.iter(|| schema::validate(version, black_box(&action), Direction::Request, &payload))
        });
    }
    group.finish();

    // What the central system does with a MeterValues text: the general path (tree, schema,
    // samples) against the fast path that reads it into borrowed types.
    let mut group = c.benchmark_group("meter_values_to_samples");
    group.throughput(Throughput::Elements(1));
    for (name, version, text) in [
        ("v16_9_samples", Version::V16, V16_METER),
        ("v201_9_samples", Version::V201, V201_METER),
    ] {
        group.bench_function(format!("general/{name}"), |b| {
            b.iter(|| {
                let (action, payload) = payload_of(black_box(text));
                if let Err(v) = schema::validate(version, &action, Direction::Request, &payload) {
                    panic!("{action} invalid: {v}");
                }
                match ocpp::model::meter::from_json(&payload["meterValue"]) {
                    Ok(samples) => samples,
                    Err(v) => panic!("{v}"),
                }
            })
        });
        group.bench_function(format!("fast/{name}"), |b| {
            b.iter(|| match ocpp::fast_path::meter_values(version, black_box(text)) {
                Some(call) => call.samples,
                None => panic!("the fast path declined {name}"),
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);

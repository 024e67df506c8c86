#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/ (valid frames of both OCPP versions, a few
broken ones, and REST bodies). Re-run after changing it; libFuzzer adds what it finds on top, and
scripts/fuzz keeps those finds out of the repo."""
import hashlib
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
TS = "2026-11-22T10:00:00.000Z"


def call(mid, action, payload):
    return json.dumps([2, mid, action, payload], separators=(",", ":"))


def result(mid, payload):
    return json.dumps([3, mid, payload], separators=(",", ":"))


V16_METER = {
    "connectorId": 1,
    "transactionId": 42,
    "meterValue": [
        {"timestamp": TS, "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
             "context": "Sample.Periodic", "location": "Outlet", "format": "Raw"},
            {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1-N"},
            {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        ]},
        {"timestamp": "2026-11-22T10:00:10+01:00", "sampledValue": [
            {"value": "1.3e3", "unit": "kWh"},
            {"value": "opaque", "format": "SignedData"},
        ]},
    ],
}

V201_METER = {
    "evseId": 2,
    "meterValue": [
        {"timestamp": TS, "sampledValue": [
            {"value": 1234.5, "measurand": "Energy.Active.Import.Register",
             "unitOfMeasure": {"unit": "kWh", "multiplier": -3}, "context": "Sample.Clock",
             "location": "Outlet"},
            {"value": 7200, "measurand": "Power.Active.Import", "phase": "L1-N",
             "unitOfMeasure": {"unit": "W"}},
            {"value": 55, "measurand": "SoC", "location": "EV"},
        ]},
    ],
}


def tx_event(kind, seq, context):
    event = {
        "eventType": kind, "timestamp": TS,
        "triggerReason": {"Started": "Authorized", "Ended": "StopAuthorized"}.get(kind, "MeterValuePeriodic"),
        "seqNo": seq, "transactionInfo": {"transactionId": "tx-201-a"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": TS, "sampledValue": [
            {"value": 20 + seq, "context": context, "measurand": "Energy.Active.Import.Register",
             "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}]}],
    }
    if kind == "Started":
        event["idToken"] = {"idToken": "TAG-3", "type": "ISO14443"}
    if kind == "Updated":
        event["transactionInfo"]["chargingState"] = "Charging"
    if kind == "Ended":
        event["transactionInfo"]["stoppedReason"] = "Local"
        event["offline"] = True
    return event


V16 = [
    call("b1", "BootNotification", {"chargePointVendor": "EVCS", "chargePointModel": "Sim-16",
                                    "firmwareVersion": "1.0.0", "chargePointSerialNumber": "S-1"}),
    call("h1", "Heartbeat", {}),
    call("s1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                                      "timestamp": TS, "info": "ok"}),
    call("a1", "Authorize", {"idTag": "TAG-0001"}),
    call("st1", "StartTransaction", {"connectorId": 1, "idTag": "TAG-0001", "meterStart": 1000,
                                     "timestamp": TS, "reservationId": 7}),
    call("sp1", "StopTransaction", {"transactionId": 42, "meterStop": 5000, "timestamp": TS,
                                    "idTag": "TAG-0001", "reason": "Local",
                                    "transactionData": V16_METER["meterValue"]}),
    call("mv1", "MeterValues", V16_METER),
    call("dt1", "DataTransfer", {"vendorId": "com.example", "messageId": "m", "data": "x"}),
    call("fw1", "FirmwareStatusNotification", {"status": "Installed"}),
    call("sec1", "SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": TS}),
    result("r1", {"status": "Accepted"}),
    result("r2", {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
                  "unknownKey": []}),
    json.dumps([4, "e1", "NotImplemented", "no", {}]),
]

V201 = [
    call("b2", "BootNotification", {"reason": "PowerUp", "chargingStation": {
        "model": "Sim-201", "vendorName": "EVCS", "firmwareVersion": "2.0.1"}}),
    call("s2", "StatusNotification", {"timestamp": TS, "connectorStatus": "Available", "evseId": 1,
                                      "connectorId": 1}),
    call("a2", "Authorize", {"idToken": {"idToken": "TAG-3", "type": "ISO14443"}}),
    call("te1", "TransactionEvent", tx_event("Started", 0, "Transaction.Begin")),
    call("te2", "TransactionEvent", tx_event("Updated", 1, "Sample.Periodic")),
    call("te3", "TransactionEvent", tx_event("Ended", 2, "Transaction.End")),
    call("mv2", "MeterValues", V201_METER),
    call("rs1", "ReservationStatusUpdate", {"reservationId": 3, "reservationUpdateStatus": "Expired"}),
    call("nr1", "NotifyReport", {"requestId": 1, "generatedAt": TS, "seqNo": 0, "reportData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "variableAttribute": [{"type": "Actual", "value": "60"}]}]}),
    result("r3", {"status": "Accepted", "statusInfo": {"reasonCode": "ok"}}),
    json.dumps([4, "e2", "FormatViolation", "bad", {"x": 1}]),
]

BROKEN = [
    "[2,\"only-two\"]",
    "[5,\"x\",{}]",
    "[2,\"ni\",\"FooBar\",{}]",
    "[2,\"tc\",\"StatusNotification\",{\"connectorId\":\"one\",\"errorCode\":\"NoError\",\"status\":\"Available\"}]",
    "{\"not\":\"an array\"}",
]

REST = {
    # (selector byte, content-type byte, body); selectors as in fuzz_targets/rest_bodies.rs.
    0: '{"action":"Reset","payload":{"type":"Soft"}}',
    1: '{"idToken":"TAG-0001","status":"Accepted","type":"ISO14443","expiresAt":"2027-01-01T00:00:00Z",'
       '"parentIdToken":"GROUP-1"}',
    2: '{"id":"CP-1","password":"correct-horse-battery","registrationStatus":"Accepted"}',
    3: '{"description":"Bay 1","password":null,"registrationStatus":"Pending"}',
    4: 'stationId=CP-1&status=Active&limit=10',
    5: 'from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&measurand=Energy.Active.Import.Register',
    6: 'limit=5&cursor=abc',
    7: 'action=BootNotification&limit=3',
    8: 'limit=100',
    9: '{"centralStationId":"CP-1","name":"Main St","address":"1 Main St","latitude":6.9,'
       '"longitude":79.8,"timeZone":"Asia/Colombo","slotMinutes":60,"connectors":[{"connectorId":1,'
       '"type":"CCS2","maxPowerKw":50}],"schedule":{"weekly":[{"day":"mon","open":"08:00","close":"18:00"}],'
       '"exceptions":[{"date":"2026-12-25","intervals":[]}]}}',
    10: '{"name":"New name","autoApprove":true}',
    11: '{"schedule":{"weekly":[{"day":"sun","open":"00:00","close":"24:00"}]},"slotMinutes":30}',
    12: '{"connectors":[{"connectorId":2,"type":"Type2","maxPowerKw":22,"bookable":false}]}',
    13: '{"stationId":1,"slotStart":"2026-12-01T10:00:00Z","vehicleId":2}',
    14: '{"slotStart":"2026-12-01T12:00:00+05:30"}',
    15: '{"identifier":"admin@evcs.local","password":"correct horse battery"}',
    16: '{"refreshToken":"abc.def"}',
    17: '{"nic":"912345678V","name":"Ann","email":"ann@example.com","phone":"+94771234567",'
        '"password":"long enough pass"}',
    18: '{"email":"ops@example.com","name":"Ops","phone":"+94771234567","password":"long enough pass",'
        '"businessName":"Ops Ltd","stationIds":[1,2]}',
    19: '{"stationIds":[1,2]}',
    20: '{"make":"Nissan","model":"Leaf","plate":"CAB-1234","batteryKwh":60,"connectorTypes":["CHAdeMO"]}',
    21: 'stationId=st-1&from=2026-12-01&to=2026-12-02',
    22: 'actor=admin&limit=20',
    23: 'q=main&limit=10',
    24: 'status=Pending&stationId=st-1',
    25: 'limit=10',
    26: 'lat=6.9&lon=79.8&radiusKm=10',
    27: 'unread=true',
    28: '199123456789',
    29: ' Alice@Example.COM ',
    30: '+94771234567',
    31: ' Type2 ',
}


def write(target, items):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for item in items:
        data = item if isinstance(item, bytes) else item.encode()
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def main():
    write("ocpp_frame", V16 + V201 + BROKEN)
    meter = [call("mv1", "MeterValues", V16_METER), call("mv2", "MeterValues", V201_METER),
             json.dumps([2, "mv3", "MeterValues", V16_METER], indent=1)]
    write("meter_values_fast_path", meter)
    write("rest_bodies", [bytes([sel, 0]) + body.encode() for sel, body in REST.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check charger.py and csms.py against each other, for both versions.

The two scripts are the independent reference peers of our test suite, so
they must be known-good before they are trusted to judge our own code.  This
runs one charger per OCPP version against csms.py with every scripted CSMS
action enabled (Pending boot, call battery, remote start/stop, Reset) and
asserts on the JSON events of both sides.  Exit status 0 means all passed.
"""

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
METER_VALUES = 3
EXPECTED_WH = 1000 + 500 * (METER_VALUES + 1)
REMOTE_START = {
    "1.6": "RemoteStartTransaction",
    "2.0.1": "RequestStartTransaction",
}
ACCEPTED = {"status": "Accepted"}
CSMS_ARGS = [
    "--stay", "12", "--pending-boots", "1", "--exercise",
    "--remote-start", "RTAG", "--remote-stop-after", "1",
    "--reset-after", "9",
]  # fmt: skip


async def launch(script, *args):
    """Start one of the scripts with its stdout (the events) captured."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
    )


async def collect(process):
    """Read a script's events until it exits; return (status, events)."""
    events = [json.loads(line) async for line in process.stdout]
    return await process.wait(), events


def final_energy(csms_events):
    """Energy register the CSMS saw at the end of the first transaction."""
    for event in csms_events:
        action, payload = event.get("action"), event.get("payload", {})
        if action == "StopTransaction":
            return payload["meterStop"]
        if action == "TransactionEvent" and payload["eventType"] == "Ended":
            return payload["meterValue"][0]["sampledValue"][0]["value"]
    return None


async def pair(version):
    """Run one charger against a fresh csms.py and check both logs."""
    csms = await launch("csms.py", *CSMS_ARGS)
    port = json.loads(await csms.stdout.readline())["port"]
    charger = await launch(
        "charger.py",
        "--version", version,
        "--url", f"ws://127.0.0.1:{port}/ocpp",
        "--id", f"SELFTEST-{version}",
        "--id-tag", "TAG1",
        "--meter-values", str(METER_VALUES),
    )  # fmt: skip
    status, charger_events = await collect(charger)
    csms_status, csms_events = await collect(csms)

    kinds = [event["event"] for event in charger_events]
    responses = {
        event["action"]: event["payload"]
        for event in csms_events
        if event["event"] == "response"
    }
    stops = [
        e["reason"]
        for e in charger_events
        if e["event"] == "transaction_stopped"
    ]
    boots = [e["status"] for e in charger_events if e["event"] == "booted"]
    energy = [
        e["energyWh"] for e in charger_events if e["event"] == "session_done"
    ]
    remote = REMOTE_START[version]
    checks = [
        ("charger exit 0", status == 0),
        ("csms exit 0", csms_status == 0),
        ("charger saw no error", "error" not in kinds),
        ("csms saw no error", all(e["event"] != "error" for e in csms_events)),
        ("Pending, then Accepted", boots[:2] == ["Pending", "Accepted"]),
        ("local, then remote stop", stops == ["Local", "Remote"]),
        ("session energy", energy == [EXPECTED_WH - 1000]),
        ("final register", final_energy(csms_events) == EXPECTED_WH),
        ("reset ends the run", kinds[-1:] == ["reset"]),
        ("remote start accepted", responses.get(remote) == ACCEPTED),
        ("reset accepted", responses.get("Reset") == ACCEPTED),
    ]
    failures = [label for label, passed in checks if not passed]
    calls = sum(event["event"] == "call" for event in charger_events)
    summary = {
        "version": version,
        "charger_events": len(charger_events),
        "calls_answered": calls,
        "csms_events": len(csms_events),
        "answers_logged_by_csms": sorted(responses),
        "failures": failures,
    }
    print(json.dumps(summary, indent=2))
    return not failures


async def main():
    results = await asyncio.gather(pair("1.6"), pair("2.0.1"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

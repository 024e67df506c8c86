#!/usr/bin/env python3
"""Independent OCPP 1.6J / 2.0.1 charger for the backend's integration tests.

It is written on the third-party `ocpp` package rather than on our own Rust
code, so the backend is checked against an implementation that shares none of
its assumptions: the package validates every frame, in both directions,
against the official OCPP JSON schemas.

The charger plays one scripted charging session, then stays connected and
answers the central system's calls as a real charger would.  Milestones are
printed as one JSON object per stdout line:

    {"event": "connected", "subprotocol": "ocpp1.6"}
    {"event": "booted", "status": "Accepted", "interval": 30}
    {"event": "authorized", "status": "Accepted"}
    {"event": "transaction_started", "transactionId": 1}
    {"event": "transaction_stopped", "transactionId": 1, "reason": "Local"}
                                                     (or "Remote")
    {"event": "session_done", "energyWh": 2000}
    {"event": "call", "action": "Reset", "payload": {...}}  (every CSMS call)
    {"event": "unsupported", "action": "..."}  (answered NotImplemented)
    {"event": "reset"}
    {"event": "error", "detail": "..."}

Any CALLERROR answer or schema violation is an "error" event and makes the
process exit with status 1.
"""

import argparse
import asyncio
import ssl
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.headers import build_authorization_basic

from reporting import (
    CallFailedError,
    ReportingPeer,
    configure_logging,
    emit,
    rfc3339,
    utc_now,
)

SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
VENDOR, MODEL, SERIAL = "PyVendor", "PyModel", "PY-1"
#: Upper bound for the retry delay after a Pending/Rejected boot, so tests
#: exercising that path do not wait for a production-sized interval.
BOOT_RETRY_CAP = 2
METER_START_WH = 1000
METER_STEP_WH = 500
#: How long a remotely started transaction waits for a remote stop.
REMOTE_TX_SECONDS = 5
#: The charger has a single connector: connector 1 (1.6) / EVSE 1 conn. 1.
CONNECTOR = 1


def readings(energy_wh, full):
    """Meter readings as (measurand, unit, phase, value) tuples.

    Values other than energy are fixed plausible numbers for a 3-phase 16 A
    charge; SoC grows 10 % per 500 Wh so consecutive samples differ.
    """
    rows = [("Energy.Active.Import.Register", "Wh", None, energy_wh)]
    if full:
        rows.append(("Power.Active.Import", "W", None, 11040))
        rows += [
            ("Current.Import", "A", phase, 16) for phase in ("L1", "L2", "L3")
        ]
        rows.append(("Voltage", "V", None, 230))
        soc = min(100, 20 + (energy_wh - METER_START_WH) // 50)
        rows.append(("SoC", "Percent", None, soc))
    return rows


class BaseCharger(ReportingPeer):
    """Version-independent charger behaviour.

    Subclasses supply the message shapes of their OCPP version (the
    *_request builders, token, authorize, sampled_value, start_transaction,
    send_periodic, send_meter_values, stop_transaction, version_triggers,
    set_heartbeat_interval); the order of the scripted session and the
    answers that are identical in both versions live here so the two
    versions cannot drift apart.
    """

    calls = None
    results = None

    def __init__(self, station_id, connection, id_tag):
        super().__init__(station_id, connection)
        self.id_tag = id_tag
        self.energy_wh = METER_START_WH
        self.connector_status = "Available"
        self.transaction_id = None
        self.stop_requested = asyncio.Event()
        self.in_use = False
        self.remote_start_accepted = False
        self.reservations = set()
        self.reset_requested = False
        self.last_sample_at = None

    # Scripted session

    async def run_session(self, meter_samples):
        """Boot, authorize and run one locally started transaction."""
        await self.boot()
        await self.request(self.calls.Heartbeat())
        await self.send_status("Available")
        token = self.token(self.id_tag)
        status = await self.authorize(token)
        self.report("authorized", status=status)
        if status != "Accepted":
            return  # A real charger does not start charging for this tag.
        start_wh = self.energy_wh
        await self.charge(token, meter_samples)
        self.report("session_done", energyWh=self.energy_wh - start_wh)

    async def boot(self):
        """Send BootNotification until the central system accepts us."""
        while True:
            result = await self.send_boot("PowerUp")
            if result.status == "Accepted":
                self.set_heartbeat_interval(result.interval)
                return
            delay = result.interval if result.interval > 0 else BOOT_RETRY_CAP
            await asyncio.sleep(min(delay, BOOT_RETRY_CAP))

    async def send_boot(self, reason):
        result = await self.request(self.boot_request(reason))
        self.report("booted", status=result.status, interval=result.interval)
        return result

    async def send_status(self, status):
        self.connector_status = status
        await self.request(self.status_request(status))

    async def charge(self, token, meter_samples, remote_start_id=None, wait=0):
        """Run one transaction: start, sample, await a remote stop, stop.

        The remote stop is awaited for at most `wait` seconds.  The meter
        advances one step per sample and one more before the stop, so the
        backend sees 500 Wh more at the stop than in the last sample.
        """
        self.in_use = True
        self.stop_requested = asyncio.Event()
        try:
            await self.start_transaction(token, remote_start_id)
            self.report(
                "transaction_started", transactionId=self.transaction_id
            )
            for _ in range(meter_samples):
                self.energy_wh += METER_STEP_WH
                await self.send_periodic()
            remote = await self.wait_for_remote_stop(wait)
            await self.report_final_reading()
            self.energy_wh += METER_STEP_WH
            await self.stop_transaction(remote)
            self.report(
                "transaction_stopped",
                transactionId=self.transaction_id,
                reason="Remote" if remote else "Local",
            )
        finally:
            self.transaction_id = None
            self.in_use = False

    async def wait_for_remote_stop(self, timeout):
        """Wait up to `timeout` s for a remote stop; return whether it came."""
        try:
            await asyncio.wait_for(self.stop_requested.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def report_final_reading(self):
        """Send extra readings before the stop (only 2.0.1 does)."""

    def meter_value(self, context, full=True):
        """One MeterValue of the current meter state, version-shaped."""
        samples = [
            self.sampled_value(measurand, unit, phase, value, context)
            for measurand, unit, phase, value in readings(self.energy_wh, full)
        ]
        return {"timestamp": self.sample_time(), "sampled_value": samples}

    def sample_time(self):
        """Now, but strictly after the previous sample.

        A real meter samples an instant once. The backend stores an instant
        with the same measurands once and takes a second one for a replay, so
        two back-to-back samples within one millisecond must not share it.
        """
        moment = datetime.now(timezone.utc)
        # Compare what goes on the wire: milliseconds.
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if self.last_sample_at is not None and moment <= self.last_sample_at:
            moment = self.last_sample_at + timedelta(milliseconds=1)
        self.last_sample_at = moment
        return rfc3339(moment)

    def accept_remote_start(self, connector):
        """Decide on a remote start and remember the decision.

        The library runs @after hooks even when we answered Rejected, so the
        hook needs to know whether to start charging.
        """
        self.remote_start_accepted = not self.in_use and connector == CONNECTOR
        if self.remote_start_accepted:
            self.in_use = True
        return "Accepted" if self.remote_start_accepted else "Rejected"

    def start_remote_transaction(self, token, remote_start_id=None):
        """Run the accepted remote start: one sample, then await the stop."""
        if self.remote_start_accepted:
            self.remote_start_accepted = False
            self.spawn(
                self.charge(token, 1, remote_start_id, wait=REMOTE_TX_SECONDS)
            )

    def request_remote_stop(self, transaction_id):
        """Answer for a remote stop: only the running transaction stops."""
        if (
            self.transaction_id is not None
            and transaction_id == self.transaction_id
        ):
            self.stop_requested.set()
            return "Accepted"
        return "Rejected"

    # TriggerMessage

    def triggers(self):
        """Messages the central system may trigger, with how to send them."""
        return {
            "BootNotification": lambda: self.send_boot("Triggered"),
            "Heartbeat": lambda: self.request(self.calls.Heartbeat()),
            "StatusNotification": lambda: self.send_status(
                self.connector_status
            ),
            "MeterValues": lambda: self.send_meter_values("Trigger"),
            "FirmwareStatusNotification": lambda: self.request(
                self.calls.FirmwareStatusNotification(status="Idle")
            ),
            **self.version_triggers(),
        }

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message, **kwargs):
        supported = requested_message in self.triggers()
        status = "Accepted" if supported else "NotImplemented"
        return self.results.TriggerMessage(status=status)

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message, **kwargs):
        send = self.triggers().get(requested_message)
        if send is not None:
            self.spawn(send())

    # Calls answered identically in both versions

    @on("Reset")
    def on_reset(self, **kwargs):
        return self.results.Reset(status="Accepted")

    @after("Reset")
    def after_reset(self, **kwargs):
        self.spawn(self.reboot())

    async def reboot(self):
        """Emulate the reboot by dropping the link; the process then ends."""
        self.reset_requested = True
        self.report("reset")
        await self._connection.close()

    @on("UnlockConnector")
    def on_unlock_connector(self, **kwargs):
        return self.results.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, **kwargs):
        return self.results.ChangeAvailability(status="Accepted")

    @on("ClearCache")
    def on_clear_cache(self, **kwargs):
        return self.results.ClearCache(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, **kwargs):
        return self.results.DataTransfer(status="UnknownVendorId")

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id, **kwargs):
        if reservation_id in self.reservations:
            self.reservations.discard(reservation_id)
            return self.results.CancelReservation(status="Accepted")
        return self.results.CancelReservation(status="Rejected")

    # Process lifecycle

    async def operate(self, meter_samples, stay):
        """Run the scripted session, then serve calls for `stay` seconds.

        Incoming calls are served throughout; the run ends early when the
        link drops (server close, Reset) or the session fails.
        """
        listener = asyncio.create_task(self.listen())
        session = asyncio.create_task(self.run_session(meter_samples))
        await asyncio.wait(
            {listener, session}, return_when=asyncio.FIRST_COMPLETED
        )
        if session.done():
            if await self._session_succeeded(session):
                await asyncio.wait({listener}, timeout=stay)
        elif not self.reset_requested:
            self.error("connection closed before the scripted session ended")
        for task in (session, listener):
            task.cancel()
        await asyncio.gather(session, listener, return_exceptions=True)
        await self.shutdown()

    async def _session_succeeded(self, session):
        try:
            await session
        except CallFailedError:
            return False
        except ConnectionClosed:
            if not self.reset_requested:
                self.error(
                    "connection closed before the scripted session ended"
                )
            return False
        return True


class Charger16(BaseCharger, ChargePoint16):
    """OCPP 1.6J message shapes and 1.6-only calls."""

    calls = call16
    results = result16

    def __init__(self, station_id, connection, id_tag):
        super().__init__(station_id, connection, id_tag)
        self.configuration = {
            "HeartbeatInterval": "30",
            "MeterValueSampleInterval": "60",
        }
        self.id_tag_in_use = None

    def boot_request(self, reason):
        """1.6 has no boot reason field; `reason` only matters in 2.0.1."""
        return call16.BootNotification(
            charge_point_vendor=VENDOR,
            charge_point_model=MODEL,
            charge_point_serial_number=SERIAL,
        )

    def set_heartbeat_interval(self, seconds):
        self.configuration["HeartbeatInterval"] = str(seconds)

    def status_request(self, status):
        return call16.StatusNotification(
            connector_id=CONNECTOR,
            error_code="NoError",
            status=status,
            timestamp=utc_now(),
        )

    def token(self, id_tag):
        return id_tag

    async def authorize(self, token):
        result = await self.request(call16.Authorize(id_tag=token))
        return result.id_tag_info["status"]

    def sampled_value(self, measurand, unit, phase, value, context):
        sample = {
            "value": str(value),
            "context": context,
            "measurand": measurand,
            "unit": unit,
        }
        if phase is not None:
            sample["phase"] = phase
        return sample

    async def start_transaction(self, token, remote_start_id):
        """`remote_start_id` is a 2.0.1 concept; 1.6 does not report it."""
        await self.send_status("Preparing")
        result = await self.request(
            call16.StartTransaction(
                connector_id=CONNECTOR,
                id_tag=token,
                meter_start=self.energy_wh,
                timestamp=utc_now(),
            )
        )
        self.id_tag_in_use = token
        self.transaction_id = result.transaction_id
        await self.send_status("Charging")

    async def send_periodic(self):
        await self.send_meter_values("Sample.Periodic")

    async def send_meter_values(self, context):
        await self.request(
            call16.MeterValues(
                connector_id=CONNECTOR,
                transaction_id=self.transaction_id,
                meter_value=[self.meter_value(context)],
            )
        )

    async def stop_transaction(self, remote):
        await self.request(
            call16.StopTransaction(
                meter_stop=self.energy_wh,
                timestamp=utc_now(),
                transaction_id=self.transaction_id,
                reason="Remote" if remote else "Local",
                id_tag=self.id_tag_in_use,
                transaction_data=[
                    self.meter_value("Transaction.End", full=False)
                ],
            )
        )
        await self.send_status("Finishing")
        await self.send_status("Available")

    def version_triggers(self):
        return {
            "DiagnosticsStatusNotification": lambda: self.request(
                call16.DiagnosticsStatusNotification(status="Idle")
            ),
        }

    @on("RemoteStartTransaction")
    def on_remote_start_transaction(self, connector_id=CONNECTOR, **kwargs):
        status = self.accept_remote_start(connector_id)
        return result16.RemoteStartTransaction(status=status)

    @after("RemoteStartTransaction")
    def after_remote_start_transaction(self, id_tag, **kwargs):
        self.start_remote_transaction(id_tag)

    @on("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id, **kwargs):
        status = self.request_remote_stop(transaction_id)
        return result16.RemoteStopTransaction(status=status)

    @on("GetConfiguration")
    def on_get_configuration(self, key=None, **kwargs):
        requested = key or list(self.configuration)
        known = [
            {"key": name, "readonly": False, "value": self.configuration[name]}
            for name in requested
            if name in self.configuration
        ]
        unknown = [
            name for name in requested if name not in self.configuration
        ]
        return result16.GetConfiguration(
            configuration_key=known, unknown_key=unknown or None
        )

    @on("ChangeConfiguration")
    def on_change_configuration(self, key, value, **kwargs):
        if key not in self.configuration:
            return result16.ChangeConfiguration(status="NotSupported")
        if not value.isdigit():
            return result16.ChangeConfiguration(status="Rejected")
        self.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @on("ReserveNow")
    def on_reserve_now(self, reservation_id, **kwargs):
        self.reservations.add(reservation_id)
        return result16.ReserveNow(status="Accepted")


@dataclass
class Variable:
    """One entry of the 2.0.1 device model (Actual attribute only)."""

    value: str
    data_type: str = "integer"
    mutable: bool = True

    @property
    def mutability(self):
        return "ReadWrite" if self.mutable else "ReadOnly"


class Charger201(BaseCharger, ChargePoint201):
    """OCPP 2.0.1 message shapes and 2.0.1-only calls."""

    calls = call201
    results = result201
    evse = {"id": CONNECTOR, "connector_id": CONNECTOR}

    def __init__(self, station_id, connection, id_tag):
        super().__init__(station_id, connection, id_tag)
        self.seq_no = 0
        self.device_model = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): Variable("30"),
            ("SampledDataCtrlr", "TxUpdatedInterval"): Variable("60"),
            ("ChargingStation", "Model"): Variable(MODEL, "string", False),
            ("ChargingStation", "VendorName"): Variable(
                VENDOR, "string", False
            ),
        }

    def boot_request(self, reason):
        station = {
            "model": MODEL,
            "vendor_name": VENDOR,
            "serial_number": SERIAL,
        }
        return call201.BootNotification(
            charging_station=station, reason=reason
        )

    def set_heartbeat_interval(self, seconds):
        key = ("OCPPCommCtrlr", "HeartbeatInterval")
        self.device_model[key].value = str(seconds)

    def status_request(self, status):
        return call201.StatusNotification(
            timestamp=utc_now(),
            connector_status=status,
            evse_id=CONNECTOR,
            connector_id=CONNECTOR,
        )

    def token(self, id_tag):
        return {"id_token": id_tag, "type": "ISO14443"}

    async def authorize(self, token):
        result = await self.request(call201.Authorize(id_token=token))
        return result.id_token_info["status"]

    def sampled_value(self, measurand, unit, phase, value, context):
        sample = {
            "value": value,
            "context": context,
            "measurand": measurand,
            "unit_of_measure": {"unit": unit},
        }
        if phase is not None:
            sample["phase"] = phase
        return sample

    async def transaction_event(
        self, event_type, trigger_reason, meter_value, info, **fields
    ):
        """Send a TransactionEvent with the next sequence number."""
        await self.request(
            call201.TransactionEvent(
                event_type=event_type,
                timestamp=utc_now(),
                trigger_reason=trigger_reason,
                seq_no=self.seq_no,
                transaction_info={
                    "transaction_id": self.transaction_id,
                    **info,
                },
                meter_value=[meter_value],
                **fields,
            )
        )
        self.seq_no += 1

    async def start_transaction(self, token, remote_start_id):
        await self.send_status("Occupied")
        self.transaction_id = str(uuid.uuid4())
        self.seq_no = 0
        info, trigger = {}, "Authorized"
        if remote_start_id is not None:
            info, trigger = {"remote_start_id": remote_start_id}, "RemoteStart"
        await self.transaction_event(
            "Started",
            trigger,
            self.meter_value("Transaction.Begin", full=False),
            info,
            id_token=token,
            evse=self.evse,
        )

    async def send_periodic(self):
        await self.transaction_event(
            "Updated",
            "MeterValuePeriodic",
            self.meter_value("Sample.Periodic"),
            {"charging_state": "Charging"},
        )

    async def send_meter_values(self, context):
        await self.request(
            call201.MeterValues(
                evse_id=CONNECTOR, meter_value=[self.meter_value(context)]
            )
        )

    async def report_final_reading(self):
        """Also exercise the standalone MeterValues message of 2.0.1."""
        await self.send_meter_values("Sample.Periodic")

    async def stop_transaction(self, remote):
        await self.transaction_event(
            "Ended",
            "RemoteStop" if remote else "StopAuthorized",
            self.meter_value("Transaction.End", full=False),
            {"stopped_reason": "Remote" if remote else "Local"},
        )
        await self.send_status("Available")

    def version_triggers(self):
        return {
            "LogStatusNotification": lambda: self.request(
                call201.LogStatusNotification(status="Idle")
            ),
        }

    @on("RequestStartTransaction")
    def on_request_start_transaction(self, evse_id=CONNECTOR, **kwargs):
        status = self.accept_remote_start(evse_id)
        return result201.RequestStartTransaction(status=status)

    @after("RequestStartTransaction")
    def after_request_start_transaction(
        self, id_token, remote_start_id, **kwargs
    ):
        self.start_remote_transaction(id_token, remote_start_id)

    @on("RequestStopTransaction")
    def on_request_stop_transaction(self, transaction_id, **kwargs):
        status = self.request_remote_stop(transaction_id)
        return result201.RequestStopTransaction(status=status)

    def lookup(self, component, variable):
        """Return (status, Variable) for a component/variable pair."""
        key = (component["name"], variable["name"])
        if key in self.device_model:
            return "Accepted", self.device_model[key]
        if any(name == key[0] for name, _ in self.device_model):
            return "UnknownVariable", None
        return "UnknownComponent", None

    def get_variable(
        self, component, variable, attribute_type="Actual", **kwargs
    ):
        result = {"component": component, "variable": variable}
        status, entry = self.lookup(component, variable)
        if entry is not None and attribute_type != "Actual":
            status = "NotSupportedAttributeType"
        elif entry is not None:
            result["attribute_value"] = entry.value
        result["attribute_status"] = status
        return result

    def set_variable(
        self,
        component,
        variable,
        attribute_value,
        attribute_type="Actual",
        **kwargs,
    ):
        result = {"component": component, "variable": variable}
        status, entry = self.lookup(component, variable)
        if entry is not None and attribute_type != "Actual":
            status = "NotSupportedAttributeType"
        elif entry is not None:
            acceptable = entry.mutable and (
                entry.data_type != "integer" or attribute_value.isdigit()
            )
            status = "Accepted" if acceptable else "Rejected"
            if acceptable:
                entry.value = attribute_value
        result["attribute_status"] = status
        return result

    @on("GetVariables")
    def on_get_variables(self, get_variable_data, **kwargs):
        results = [self.get_variable(**item) for item in get_variable_data]
        return result201.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data, **kwargs):
        results = [self.set_variable(**item) for item in set_variable_data]
        return result201.SetVariables(set_variable_result=results)

    @on("GetBaseReport")
    def on_get_base_report(self, **kwargs):
        return result201.GetBaseReport(status="Accepted")

    @after("GetBaseReport")
    def after_get_base_report(self, request_id, **kwargs):
        self.spawn(self.notify_report(request_id))

    async def notify_report(self, request_id):
        """Report the whole (small) device model in one NotifyReport."""
        report = [
            {
                "component": {"name": component},
                "variable": {"name": variable},
                "variable_attribute": [
                    {
                        "type": "Actual",
                        "value": entry.value,
                        "mutability": entry.mutability,
                    }
                ],
                "variable_characteristics": {
                    "data_type": entry.data_type,
                    "supports_monitoring": False,
                },
            }
            for (component, variable), entry in self.device_model.items()
        ]
        await self.request(
            call201.NotifyReport(
                request_id=request_id,
                generated_at=utc_now(),
                seq_no=0,
                tbc=False,
                report_data=report,
            )
        )

    @on("ReserveNow")
    def on_reserve_now(self, **kwargs):
        self.reservations.add(kwargs["id"])  # "id" would shadow the builtin
        return result201.ReserveNow(status="Accepted")


CHARGERS = {"1.6": Charger16, "2.0.1": Charger201}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, choices=sorted(CHARGERS))
    parser.add_argument(
        "--url",
        required=True,
        help="ws[s]://HOST:PORT/ocpp; the id is appended",
    )
    parser.add_argument(
        "--id", required=True, help="charging station identity"
    )
    parser.add_argument(
        "--id-tag", required=True, help="RFID tag to authorize"
    )
    parser.add_argument(
        "--password", help="HTTP Basic password (security profile 1/2)"
    )
    parser.add_argument("--ca", help="CA bundle to verify a wss:// server")
    parser.add_argument(
        "--cert", help="client certificate (security profile 3)"
    )
    parser.add_argument(
        "--key", help="client private key (security profile 3)"
    )
    parser.add_argument("--meter-values", type=int, default=3, metavar="N")
    parser.add_argument("--stay", type=float, default=30, metavar="SECONDS")
    parser.add_argument(
        "--verbose", action="store_true", help="log OCPP frames to stderr"
    )
    args = parser.parse_args(argv)
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    tls_options = args.ca or args.cert
    if tls_options and not args.url.startswith("wss://"):
        parser.error("--ca/--cert/--key need a wss:// URL")
    return args


def tls_context(args):
    """TLS settings for wss://, or None for plain ws://."""
    if not args.url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    return context


async def run(args):
    """Connect, run the charger and return the process exit status."""
    url = f"{args.url.rstrip('/')}/{quote(args.id, safe='')}"
    headers = {}
    if args.password is not None:
        headers["Authorization"] = build_authorization_basic(
            args.id, args.password
        )
    subprotocol = SUBPROTOCOLS[args.version]
    try:
        connection = await connect(
            url,
            subprotocols=[subprotocol],
            additional_headers=headers,
            ssl=tls_context(args),
        )
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        emit(
            "error",
            detail=f"cannot connect to {url}: {type(exc).__name__}: {exc}",
        )
        return 1
    async with connection:
        emit("connected", subprotocol=connection.subprotocol)
        if connection.subprotocol != subprotocol:
            emit("error", detail=f"server did not agree to {subprotocol}")
            return 1
        charger = CHARGERS[args.version](args.id, connection, args.id_tag)
        await charger.operate(args.meter_values, args.stay)
    return 1 if charger.failed else 0


def main():
    args = parse_args()
    configure_logging(args.verbose)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Minimal independent OCPP 1.6J / 2.0.1 central system for tests.

It exists to test our own charger simulator against a server that shares no
code with our backend.  It is built on the third-party `ocpp` package, which
validates every frame against the official OCPP JSON schemas, and it accepts
everything: every boot (unless told to answer Pending first), every tag,
every transaction.

Everything it sees is printed as one JSON object per stdout line:

    {"event": "listening", "port": 9000}
    {"event": "connected", "id": "CP1", "subprotocol": "ocpp1.6",
     "user": "CP1" | null, "clientCertificate": "CP1" | null}
    {"event": "call", "id": "CP1", "action": "BootNotification", "payload": {}}
    {"event": "response", "id": "CP1", "action": "Reset", "payload": {}}
    {"event": "unsupported", "id": "CP1", "action": "..."}
    {"event": "error", "id": "CP1", "detail": "..."}
    {"event": "disconnected", "id": "CP1"}

"call" is a call received from a charger, "response" a charger's answer to a
call we sent.  The exit status is 1 if any "error" was printed.
"""

import argparse
import asyncio
import itertools
import ssl
import sys
from urllib.parse import unquote

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import basic_auth, serve

from reporting import (
    CallFailedError,
    ReportingPeer,
    configure_logging,
    emit,
    utc_now,
    wire_format,
)

HEARTBEAT_INTERVAL = 30
#: Retry interval announced with a Pending boot; short to keep tests fast.
PENDING_INTERVAL = 1
#: Delay between an accepted boot and the remote start (--remote-start).
REMOTE_START_DELAY = 2
#: How long an accepted remote start may take to produce a transaction.
REMOTE_TX_TIMEOUT = 10
EXERCISE_TAG = "EXERCISE"
EXERCISE_VENDOR = "org.example.test"


class BaseCsms(ReportingPeer):
    """Behaviour shared by the 1.6 and 2.0.1 central systems."""

    results = None

    def __init__(self, station_id, connection, options):
        super().__init__(station_id, connection)
        self.context = {"id": station_id}
        self.options = options
        self.boots = 0
        self.boot_accepted = False
        self.scenario_started = False
        self.remote_transaction = None

    async def send(self, payload):
        """Send a call and log the charger's answer (None on failure)."""
        try:
            result = await self.request(payload)
        except CallFailedError:
            return None
        self.report(
            "response",
            action=type(payload).__name__,
            payload=wire_format(result),
        )
        return result

    @on("BootNotification")
    def on_boot_notification(self, **kwargs):
        self.boots += 1
        self.boot_accepted = self.boots > self.options.pending_boots
        if self.boot_accepted:
            status, interval = "Accepted", HEARTBEAT_INTERVAL
        else:
            status, interval = "Pending", PENDING_INTERVAL
        return self.results.BootNotification(
            current_time=utc_now(), interval=interval, status=status
        )

    @after("BootNotification")
    def after_boot_notification(self, **kwargs):
        if self.boot_accepted and not self.scenario_started:
            self.scenario_started = True
            self.start_scenario()

    def start_scenario(self):
        """Start the calls requested on the command line, concurrently."""
        options = self.options
        if options.exercise:
            self.spawn(self.exercise())
        if options.remote_start is not None:
            self.spawn(self.remote_session(options.remote_start))
        if options.reset_after is not None:
            self.spawn(self.reset_later(options.reset_after))

    async def exercise(self):
        """Send each call of the version's battery once, in order."""
        for payload in self.exercise_calls():
            await self.send(payload)

    async def remote_session(self, id_tag):
        """Remote start, then (optionally) remote stop of that transaction."""
        await asyncio.sleep(REMOTE_START_DELAY)
        self.remote_transaction = asyncio.get_running_loop().create_future()
        result = await self.send(self.remote_start_request(id_tag))
        accepted = result is not None and result.status == "Accepted"
        if not accepted or self.options.remote_stop_after is None:
            return
        try:
            transaction_id = await asyncio.wait_for(
                self.remote_transaction, REMOTE_TX_TIMEOUT
            )
        except TimeoutError:
            self.error("remote start was accepted but no transaction started")
            return
        await asyncio.sleep(self.options.remote_stop_after)
        await self.send(self.remote_stop_request(transaction_id))

    def remote_transaction_started(self, transaction_id):
        """Hand the transaction our remote start produced to remote_session."""
        if (
            self.remote_transaction is not None
            and not self.remote_transaction.done()
        ):
            self.remote_transaction.set_result(transaction_id)

    async def reset_later(self, delay):
        await asyncio.sleep(delay)
        await self.send(self.reset_request())

    @on("Heartbeat")
    def on_heartbeat(self, **kwargs):
        return self.results.Heartbeat(current_time=utc_now())

    @on("StatusNotification")
    def on_status_notification(self, **kwargs):
        return self.results.StatusNotification()

    @on("MeterValues")
    def on_meter_values(self, **kwargs):
        return self.results.MeterValues()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **kwargs):
        return self.results.FirmwareStatusNotification()


class Csms16(BaseCsms, ChargePoint16):
    """OCPP 1.6J central system."""

    results = result16
    #: Transaction ids are unique across all connections of this process.
    transaction_ids = itertools.count(1)

    def remote_start_request(self, id_tag):
        return call16.RemoteStartTransaction(id_tag=id_tag, connector_id=1)

    def remote_stop_request(self, transaction_id):
        return call16.RemoteStopTransaction(transaction_id=transaction_id)

    def reset_request(self):
        return call16.Reset(type="Soft")

    def exercise_calls(self):
        return [
            call16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]),
            call16.GetConfiguration(),
            call16.ChangeConfiguration(key="HeartbeatInterval", value="60"),
            call16.ChangeConfiguration(key="NoSuchKey", value="1"),
            call16.TriggerMessage(requested_message="Heartbeat"),
            call16.TriggerMessage(
                requested_message="StatusNotification", connector_id=1
            ),
            call16.ReserveNow(
                connector_id=1,
                expiry_date=utc_now(3600),
                id_tag=EXERCISE_TAG,
                reservation_id=7,
            ),
            call16.CancelReservation(reservation_id=7),
            call16.CancelReservation(reservation_id=7),
            call16.ChangeAvailability(connector_id=1, type="Operative"),
            call16.UnlockConnector(connector_id=1),
            call16.ClearCache(),
            call16.DataTransfer(vendor_id=EXERCISE_VENDOR),
            call16.RemoteStopTransaction(transaction_id=999999),
        ]

    @on("Authorize")
    def on_authorize(self, **kwargs):
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def on_start_transaction(self, id_tag, **kwargs):
        transaction_id = next(self.transaction_ids)
        if id_tag == self.options.remote_start:
            self.remote_transaction_started(transaction_id)
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
        )

    @on("StopTransaction")
    def on_stop_transaction(self, **kwargs):
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status_notification(self, **kwargs):
        return result16.DiagnosticsStatusNotification()


def component_variable(component, variable):
    return {"component": {"name": component}, "variable": {"name": variable}}


class Csms201(BaseCsms, ChargePoint201):
    """OCPP 2.0.1 central system."""

    results = result201
    #: remoteStartId values are unique across all connections.
    remote_start_ids = itertools.count(1)

    def __init__(self, station_id, connection, options):
        super().__init__(station_id, connection, options)
        self.remote_start_id = None

    def remote_start_request(self, id_tag):
        self.remote_start_id = next(self.remote_start_ids)
        return call201.RequestStartTransaction(
            id_token={"id_token": id_tag, "type": "ISO14443"},
            remote_start_id=self.remote_start_id,
            evse_id=1,
        )

    def remote_stop_request(self, transaction_id):
        return call201.RequestStopTransaction(transaction_id=transaction_id)

    def reset_request(self):
        return call201.Reset(type="Immediate")

    def exercise_calls(self):
        heartbeat = component_variable("OCPPCommCtrlr", "HeartbeatInterval")
        return [
            call201.GetVariables(
                get_variable_data=[
                    heartbeat,
                    component_variable(
                        "SampledDataCtrlr", "TxUpdatedInterval"
                    ),
                    component_variable("OCPPCommCtrlr", "NoSuchVariable"),
                    component_variable("NoSuchCtrlr", "HeartbeatInterval"),
                ]
            ),
            call201.SetVariables(
                set_variable_data=[
                    {**heartbeat, "attribute_value": "60"},
                    {
                        **component_variable("ChargingStation", "Model"),
                        "attribute_value": "X",
                    },
                    {
                        **component_variable("NoSuchCtrlr", "X"),
                        "attribute_value": "1",
                    },
                ]
            ),
            call201.GetBaseReport(request_id=1, report_base="FullInventory"),
            call201.TriggerMessage(requested_message="Heartbeat"),
            call201.TriggerMessage(
                requested_message="StatusNotification",
                evse={"id": 1, "connector_id": 1},
            ),
            call201.ReserveNow(
                id=7,
                expiry_date_time=utc_now(3600),
                id_token={"id_token": EXERCISE_TAG, "type": "ISO14443"},
            ),
            call201.CancelReservation(reservation_id=7),
            call201.CancelReservation(reservation_id=7),
            call201.ChangeAvailability(operational_status="Operative"),
            call201.UnlockConnector(evse_id=1, connector_id=1),
            call201.ClearCache(),
            call201.DataTransfer(vendor_id=EXERCISE_VENDOR),
            call201.RequestStopTransaction(
                transaction_id="no-such-transaction"
            ),
        ]

    @on("Authorize")
    def on_authorize(self, **kwargs):
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    def on_transaction_event(self, event_type, transaction_info, **kwargs):
        remote_start_id = transaction_info.get("remote_start_id")
        if event_type == "Started" and remote_start_id == self.remote_start_id:
            self.remote_transaction_started(transaction_info["transaction_id"])
        if "id_token" in kwargs:
            return result201.TransactionEvent(
                id_token_info={"status": "Accepted"}
            )
        return result201.TransactionEvent()

    @on("NotifyReport")
    def on_notify_report(self, **kwargs):
        return result201.NotifyReport()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **kwargs):
        return result201.LogStatusNotification()


CENTRAL_SYSTEMS = {"ocpp2.0.1": Csms201, "ocpp1.6": Csms16}


def client_certificate_name(connection):
    """Return the CN of the charger's TLS client certificate, if any."""
    certificate = connection.transport.get_extra_info("peercert")
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class CentralSystem:
    """The WebSocket server: one OCPP peer per charger connection."""

    def __init__(self, options):
        self.options = options
        self.failed = False

    async def handle(self, connection):
        station_id = unquote(
            connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        )
        emit(
            "connected",
            id=station_id,
            subprotocol=connection.subprotocol,
            user=getattr(connection, "username", None),
            clientCertificate=client_certificate_name(connection),
        )
        peer = CENTRAL_SYSTEMS[connection.subprotocol](
            station_id, connection, self.options
        )
        try:
            await peer.listen()
        finally:
            await peer.shutdown()
            self.failed |= peer.failed
            emit("disconnected", id=station_id)

    def tls_context(self):
        """TLS for wss:// (--cert/--key); --ca also demands client certs."""
        if self.options.cert is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.options.cert, self.options.key)
        if self.options.ca is not None:
            context.load_verify_locations(self.options.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def authentication(self):
        """HTTP Basic check (security profile 1/2) when --password is set."""
        if self.options.password is None:
            return None
        return basic_auth(
            realm="ocpp",
            check_credentials=lambda _user, password: (
                password == self.options.password
            ),
        )

    async def run(self):
        """Serve for --stay seconds and return the process exit status."""
        async with serve(
            self.handle,
            self.options.host,
            self.options.port,
            subprotocols=list(CENTRAL_SYSTEMS),
            process_request=self.authentication(),
            ssl=self.tls_context(),
        ) as server:
            emit("listening", port=server.sockets[0].getsockname()[1])
            await asyncio.sleep(self.options.stay)
        return 1 if self.failed else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port"
    )
    parser.add_argument("--stay", type=float, default=30, metavar="SECONDS")
    parser.add_argument(
        "--remote-start", metavar="TAG", help="remote start 2 s after boot"
    )
    parser.add_argument(
        "--remote-stop-after",
        type=float,
        metavar="S",
        help="remote stop S seconds after the remote transaction started",
    )
    parser.add_argument(
        "--reset-after", type=float, metavar="S", help="Reset S s after boot"
    )
    parser.add_argument(
        "--exercise",
        action="store_true",
        help="after boot, send one of each configuration/reservation/... call",
    )
    parser.add_argument(
        "--pending-boots",
        type=int,
        default=0,
        metavar="N",
        help="answer the first N BootNotifications of a connection Pending",
    )
    parser.add_argument(
        "--password", help="require HTTP Basic auth with this password"
    )
    parser.add_argument("--cert", help="server certificate: serve wss://")
    parser.add_argument("--key", help="server private key")
    parser.add_argument(
        "--ca", help="CA for client certificates (security profile 3)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log OCPP frames to stderr"
    )
    args = parser.parse_args(argv)
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    if args.ca is not None and args.cert is None:
        parser.error("--ca needs --cert/--key")
    if args.remote_stop_after is not None and args.remote_start is None:
        parser.error("--remote-stop-after needs --remote-start")
    return args


def main():
    args = parse_args()
    configure_logging(args.verbose)
    sys.exit(asyncio.run(CentralSystem(args).run()))


if __name__ == "__main__":
    main()

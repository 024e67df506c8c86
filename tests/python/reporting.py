"""Plumbing shared by charger.py and csms.py.

Both scripts are driven as black boxes by the integration tests, so everything
they observe is reported as one JSON object per stdout line.  This module holds
that reporting and the hooks into the `ocpp` package that make protocol
problems visible instead of only logged.
"""

import asyncio
import contextlib
import json
import logging
import sys
from datetime import datetime, timedelta, timezone

from ocpp.charge_point import (
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import (
    NotSupportedError,
    OCPPError,
    UnknownCallErrorCodeError,
)
from ocpp.messages import unpack
from websockets.exceptions import ConnectionClosed

LOGGER = logging.getLogger("ocpp-test-peer")

#: Seconds to wait for the peer's answer to one of our calls.  Both peers run
#: on the same machine during tests, so anything slower is a bug worth failing.
RESPONSE_TIMEOUT = 10
#: On shutdown, background tasks get this long to finish; an answer that
#: arrived just before the link closed is then still logged.
SHUTDOWN_GRACE = 0.2


def emit(event, **fields):
    """Print one event as a JSON line and flush, so tests can follow live."""
    print(json.dumps({"event": event, **fields}), flush=True)


def utc_now(seconds_ahead=0):
    """Return now (or a later time) in the RFC 3339 form OCPP expects."""
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds_ahead)
    return rfc3339(moment)


def rfc3339(moment):
    """Render an aware datetime in the RFC 3339 form OCPP expects (ms, Z)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire_format(result):
    """Render a call_result dataclass the way it travelled (camelCase keys)."""
    return snake_to_camel_case(remove_nones(serialize_as_dict(result)))


def describe(exc):
    """Summarise an OCPPError in one line.

    The library's own str() embeds the whole message repr and a multi-line
    jsonschema report, which is unreadable inside a JSON event.
    """
    details = exc.details if isinstance(exc.details, dict) else {}
    text = str(details.get("cause") or exc.description)
    return f"{exc.code}: {text.splitlines()[0] if text else ''}"


def configure_logging(verbose):
    """Send library logs to stderr; stdout is reserved for JSON events."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


class CallFailedError(Exception):
    """A call we sent was not answered properly; already reported."""


class ReportingPeer:
    """Mixin for `ocpp` ChargePoint classes that reports traffic as JSON.

    The library answers malformed or schema-violating calls with a CALLERROR
    and only logs the fact; it also has no public hook for "a call arrived".
    Overriding `route_message` and `_handle_call` is the only way to turn both
    into events, so a test can fail on them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, response_timeout=RESPONSE_TIMEOUT, **kwargs)
        self.failed = False
        self.context = {}
        self._tasks = set()

    def report(self, event, **fields):
        """Emit an event tagged with this peer's context (e.g. station id)."""
        emit(event, **self.context, **fields)

    def error(self, detail):
        """Report a protocol error; the process will exit with status 1."""
        self.failed = True
        self.report("error", detail=detail)

    async def route_message(self, raw_msg):
        try:
            unpack(raw_msg)
        except OCPPError as exc:
            self.error(f"unparseable frame {raw_msg!r}: {describe(exc)}")
        await super().route_message(raw_msg)

    async def _handle_call(self, msg):
        self.report("call", action=msg.action, payload=msg.payload)
        try:
            return await super()._handle_call(msg)
        except (OcppNotImplementedError, NotSupportedError):
            self.report("unsupported", action=msg.action)
            raise
        except OCPPError as exc:
            self.error(f"{msg.action} rejected: {describe(exc)}")
            raise

    async def request(self, payload):
        """Send a call and return its result; report and raise on failure.

        Unlike the library default (suppress=True, which turns a CALLERROR
        into a silent None), every CALLERROR and every answer that violates
        the schema becomes an error event.
        """
        action = type(payload).__name__
        try:
            return await self.call(payload, suppress=False)
        except OCPPError as exc:
            detail = f"{action} failed: {describe(exc)}"
        except UnknownCallErrorCodeError as exc:
            detail = f"{action} failed: {exc}"
        except TimeoutError:
            detail = f"{action} failed: no answer within {RESPONSE_TIMEOUT} s"
        self.error(detail)
        raise CallFailedError(detail)

    def spawn(self, coro):
        """Run follow-up work (e.g. after a response) as a tracked task.

        The library fire-and-forgets awaitables returned by @after hooks, so
        their exceptions vanish; tracking our own tasks lets failures surface
        and lets shutdown cancel whatever is still pending.
        """
        task = asyncio.create_task(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, coro):
        try:
            await coro
        except (CallFailedError, ConnectionClosed):
            pass  # Already reported, or the link is gone and the run ends.
        except Exception as exc:  # noqa: BLE001 - a crash must fail the run
            LOGGER.exception("background task crashed")
            self.error(f"internal error: {exc!r}")

    async def listen(self):
        """Serve incoming frames until the WebSocket closes."""
        with contextlib.suppress(ConnectionClosed):
            await self.start()

    async def shutdown(self):
        """Stop background work still running for this connection."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(
            set(self._tasks), timeout=SHUTDOWN_GRACE
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

#!/usr/bin/env python3
"""Property-based probe of both services' REST APIs with schemathesis.

Starts the all-in-one `evcs` binary on free 127.0.0.1 ports with a fresh data directory, gets an
admin token for each service (the central system's from `central-system mint-token` with the same
secret, the booking API's by logging in with the first admin's printed password), then runs
schemathesis against each service's own OpenAPI document with a bounded number of examples and
time. Any 5xx fails the probe (`not_a_server_error`), as do answers that contradict the document
(status code, content type, response schema). Prints per service: operations, test cases,
requests and failures.

Run through scripts/api-probe, which builds the binaries and the virtual environment.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# What every run enforces. Conformance checks keep the documents honest; `not_a_server_error`
# is the point of the probe. `content_type_conformance` joins once malformed path parameters
# (`/bookings/9223372036854775808`) answer problem+json instead of axum's text/plain.
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"api-probe: {url} did not answer in time")


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def admin_password(stdout_path, deadline):
    pattern = re.compile(r"with password (\S+)")
    while time.monotonic() < deadline:
        with open(stdout_path, encoding="utf-8", errors="replace") as f:
            m = pattern.search(f.read())
        if m:
            return m.group(1)
        time.sleep(0.2)
    raise SystemExit("api-probe: evcs printed no booking admin password")


def probe(name, schemathesis, url, token, args, report_dir):
    """Runs schemathesis on one service; returns (ok, summary line)."""
    ndjson = os.path.join(report_dir, f"{name}.ndjson")
    cmd = [
        schemathesis, "run", url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", args.checks,
        "--max-examples", str(args.max_examples),
        "--max-time", str(args.max_time),
        "--workers", str(args.workers),
        "--request-timeout", "30",
        "--seed", str(args.seed),
        "--suppress-health-check", "all",
        "--report", "ndjson", "--report-ndjson-path", ndjson,
    ]
    started = time.monotonic()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=args.max_time + 300, check=False)
    elapsed = time.monotonic() - started
    log = os.path.join(report_dir, f"{name}.txt")
    with open(log, "w", encoding="utf-8") as f:
        f.write(out.stdout)
    requests, statuses = count_requests(ndjson)
    five_xx = sum(n for code, n in statuses.items() if code >= 500)
    cases = re.search(r"Test cases:\s*\n\s*(.+)", out.stdout)
    ops = re.search(r"Tested:\s*(\d+)", out.stdout)
    summary = (f"api-probe {name}: {ops.group(1) if ops else '?'} operations, "
               f"{cases.group(1).strip() if cases else '? test cases'}; {requests} requests "
               f"({five_xx} 5xx; by status {dict(sorted(statuses.items()))}) in {elapsed:.0f} s")
    ok = out.returncode == 0 and five_xx == 0
    if not ok:
        # The failures section names each failing operation, check and a curl to reproduce it.
        tail = out.stdout[out.stdout.find("FAILURES"):] if "FAILURES" in out.stdout else out.stdout[-6000:]
        print(tail[:20000], file=sys.stderr)
        print(f"api-probe {name}: FAILED (full output in {log})", file=sys.stderr)
    return ok, summary


def count_requests(ndjson):
    """Counts the requests of a run and their statuses from schemathesis's NDJSON events."""
    statuses = {}
    total = 0
    if not os.path.exists(ndjson):
        return 0, statuses

    def walk(node):
        nonlocal total
        if isinstance(node, dict):
            resp = node.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("status_code"), int):
                total += 1
                statuses[resp["status_code"]] = statuses.get(resp["status_code"], 0) + 1
            for v in node.values():
                if isinstance(v, (dict, list)) and v is not resp:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    with open(ndjson, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "ScenarioFinished" in event or "scenario_finished" in event:
                walk(event)
    return total, statuses


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evcs", required=True)
    p.add_argument("--central-system", required=True)
    p.add_argument("--schemathesis", required=True)
    p.add_argument("--max-examples", type=int, default=int(os.environ.get("PROBE_MAX_EXAMPLES", 25)))
    p.add_argument("--max-time", type=int, default=int(os.environ.get("PROBE_MAX_TIME", 120)),
                   help="seconds per service")
    # One worker: with several, hypothesis on Python 3.11 intermittently fails inside `ast`
    # ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=int(os.environ.get("PROBE_SEED", 1)))
    p.add_argument("--checks", default=os.environ.get("PROBE_CHECKS", CHECKS))
    p.add_argument("--keep", action="store_true", help="keep the data and report directory")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="evcs-api-probe-")
    data = os.path.join(work, "data")
    central_port, booking_port = free_port(), free_port()
    env = dict(os.environ)
    env["EVCS_JWT_SECRET"] = secrets.token_hex(32)
    env.setdefault("RUST_LOG", "warn")
    stdout_path = os.path.join(work, "evcs.out")
    server = subprocess.Popen(
        [args.evcs, "--data-dir", data, "--listen", f"127.0.0.1:{central_port}",
         "--booking-listen", f"127.0.0.1:{booking_port}"],
        stdout=open(stdout_path, "w"), stderr=open(os.path.join(work, "evcs.err"), "w"), env=env)
    ok = True
    try:
        deadline = time.monotonic() + 120
        central = f"http://127.0.0.1:{central_port}/api/v1"
        booking = f"http://127.0.0.1:{booking_port}/api/v1"
        wait_for(f"{central}/openapi.json", deadline)
        wait_for(f"{booking}/openapi.json", deadline)
        central_token = subprocess.run(
            [args.central_system, "--data-dir", data, "mint-token", "--role", "admin", "--subject", "api-probe"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True, timeout=60,
        ).stdout.strip()
        password = admin_password(stdout_path, deadline)

        def booking_token():
            # Logged in just before its probe: booking access tokens live 15 minutes.
            body = {"identifier": "admin@evcs.local", "password": password}
            return post_json(f"{booking}/auth/login", body)["accessToken"]

        summaries = []
        for name, url, token in [("central-system", central, lambda: central_token), ("booking-api", booking, booking_token)]:
            passed, summary = probe(name, args.schemathesis, f"{url}/openapi.json", token(), args, work)
            summaries.append(summary)
            ok = ok and passed
            if server.poll() is not None:
                print(f"api-probe: evcs exited with {server.returncode} during the {name} probe", file=sys.stderr)
                ok = False
                break
        for s in summaries:
            print(s)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if args.keep or not ok:
            print(f"api-probe: logs and reports in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

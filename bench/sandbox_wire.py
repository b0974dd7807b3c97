"""Benchmark: what one call to the sandbox costs on a kept-alive connection, as the google
clients (requests/urllib3) make it: the API stand-in directly, through the fault proxy (no rule),
and the stand-in answering the way it did before (head and body in two writes, Nagle on), so
the ~40 ms that pattern adds to every call stays measured.

The last stdout line is JSON: api_ms, proxy_ms, two_writes_nagle_ms (mean per GET and per POST).

    .venv/bin/python bench/sandbox_wire.py [--calls 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from deploycheck.netutil import free_port
from deploycheck.sandbox import apiserver
from deploycheck.sandbox.faultproxy import FaultProxy

NAME = "projects/p/locations/r/services/s"
LOG_QUERY = {"resourceNames": ["projects/p"], "filter": 'resource.labels.service_name="s"'}


@contextmanager
def serving(handler_changes: dict | None = None):
    state = apiserver.ApiState({NAME: {"name": NAME, "padding": "x" * 2000}})
    server = apiserver.make_server(state, free_port())
    if handler_changes:
        server.RequestHandlerClass = type("Changed", (server.RequestHandlerClass,), handler_changes)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _two_writes(self, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    self.send_response(status)
    self.send_header("Content-Type", "application/json; charset=UTF-8")
    self.send_header("Content-Length", str(len(payload)))
    self.end_headers()
    self.wfile.write(payload)


def per_call_ms(base: str, calls: int) -> dict:
    with requests.Session() as session:
        session.get(f"{base}/v2/{NAME}").raise_for_status()  # the connection, opened once
        began = time.monotonic()
        for _ in range(calls):
            session.get(f"{base}/v2/{NAME}").raise_for_status()
        get_ms = (time.monotonic() - began) / calls * 1000
        began = time.monotonic()
        for _ in range(calls):
            session.post(f"{base}/v2/entries:list", json=LOG_QUERY).raise_for_status()
        post_ms = (time.monotonic() - began) / calls * 1000
    return {"get": round(get_ms, 2), "post": round(post_ms, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    sys.stderr = open(Path(tempfile.gettempdir()) / "sandbox_wire.log", "w")  # the servers' request logs  # noqa: SIM115 (kept open for the whole run)
    with serving() as url:
        api = per_call_ms(url, args.calls)
        proxy = FaultProxy(Path(tempfile.mkdtemp()), backend="api", kind="http", upstream=url).start()
        try:
            proxied = per_call_ms(proxy.address, args.calls)
        finally:
            proxy.stop()
    with serving({"disable_nagle_algorithm": False, "_send_json": _two_writes}) as url:
        before = per_call_ms(url, args.calls)
    print(json.dumps({"calls": args.calls, "api_ms": api, "proxy_ms": proxied, "two_writes_nagle_ms": before}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A local stand-in for the Google REST APIs that have no official emulator.

It speaks the public REST wire protocol of Cloud Run admin v2 (services, revisions, jobs,
executions), Resource Manager v3 (projects, folders, organisations and their IAM policies), IAM
v1 (roles.get) and Cloud Logging v2 (entries.list,
with the subset of the query language in logquery.py), so the unmodified google-cloud-run,
google-cloud-resource-manager and google-cloud-logging clients (REST transports) talk to it
exactly as to the real endpoints. It holds state only: resources are stored in the APIs' own
JSON shapes, keyed by resource name, and it knows nothing of the checks.

Sandbox-only endpoints live under /_sandbox/ (request counters, fault injection).

Run as: python -m deploycheck.sandbox.apiserver --state STATE.json --port N [--parent-pid P]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import logquery, logstore

# Google's error envelope uses the canonical code names next to the HTTP status.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# A resource may carry its later state under this key (scenario `rollout_after`); see ApiState.current.
LATER_KEY = "x-sandbox-later"

# Cloud Run v2 collections: list responses name their array after the collection.
_CLOUDRUN_COLLECTIONS = ("services", "revisions", "jobs", "executions", "tasks")


class ApiState:
    """Resources by name plus the bookkeeping tests and benchmarks read back."""

    def __init__(
        self,
        resources: dict[str, dict],
        iam_policies: dict[str, dict] | None = None,
        log_entries: list[dict] | None = None,
        iam_resources: dict[str, dict] | None = None,
    ):
        self.resources = resources
        self.iam_policies = iam_policies or {}
        self.iam_resources = iam_resources or {}  # projects, folders, organisations, custom roles by name
        self.log_entries = log_entries or []
        self.logs = logstore.LogStore(self.log_entries)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        # Per list route: calls, calls that began a listing (no page token), items served, page sizes
        # asked for; benchmarks tell from these whether every list call brought a page of results.
        self.lists: dict[str, dict] = {}
        self.write_attempts: list[str] = []
        self.faults: list[dict] = []
        self.started = time.monotonic()
        self._collections: dict[str, list[str]] = {}  # "PARENT/COLLECTION/" -> names, sorted

    def names_under(self, prefix: str) -> list[str]:
        """Sorted names of a collection's members (`-` as a parent id matches any); the resources
        never change, so each collection is found once, and its list pages cost only the page."""
        names = self._collections.get(prefix)
        if names is None:
            pattern = re.compile(
                "^" + "/".join("[^/]+" if seg == "-" else re.escape(seg) for seg in prefix.split("/")) + "[^/]+$"
            )
            names = sorted(name for name in self.resources if pattern.match(name))
            self._collections[prefix] = names
        return names

    def record_list(self, route: str, *, began: bool, items: int, page_size: int) -> None:
        with self.lock:
            entry = self.lists.setdefault(route, {"calls": 0, "listings": 0, "items": 0, "page_sizes": []})
            entry["calls"] += 1
            entry["listings"] += began
            entry["items"] += items
            if page_size not in entry["page_sizes"]:
                entry["page_sizes"].append(page_size)

    def current(self, resource: dict) -> dict:
        """The resource as it is now: a scheduled later state replaces it once its time has come."""
        later = resource.get(LATER_KEY)
        if later is None:
            return resource
        if time.monotonic() - self.started >= later["after_s"]:
            return later["resource"]
        return {key: value for key, value in resource.items() if key != LATER_KEY}

    @classmethod
    def from_file(cls, path: str) -> ApiState:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        resources = {item["name"]: item for item in data.get("resources", [])}
        log_entries = list(data.get("log_entries") or [])
        for volume in data.get("log_volume") or []:
            log_entries.extend(logstore.generate_volume(volume))
        return cls(resources, data.get("iam_policies"), log_entries, data.get("iam_resources"))

    def take_fault(self, method: str, path: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("method", method) == method and re.search(fault["path_regex"], path):
                    if fault.get("times") is not None:
                        if fault["times"] <= 0:
                            continue
                        fault["times"] -= 1
                    return fault
        return None


def _page_size(query: dict[str, list[str]]) -> int:
    return int((query.get("pageSize") or ["0"])[0] or 0) or 100


def _page(items: list, query: dict[str, list[str]]) -> tuple[list, str]:
    size = _page_size(query)
    start = int((query.get("pageToken") or ["0"])[0] or 0)
    chunk = items[start : start + size]
    next_token = str(start + size) if start + size < len(items) else ""
    return chunk, next_token


class Handler(BaseHTTPRequestHandler):
    server_version = "deploycheck-sandbox/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: Nagle plus the client's delayed ACK cost ~44 ms a call
    state: ApiState  # set on the subclass by make_server

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {fmt % args}\n")

    # --- plumbing -------------------------------------------------------------------------
    def _send_json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        # Headers and body leave in one write, as one segment for small answers.
        self._headers_buffer.extend((b"\r\n", payload))  # type: ignore[attr-defined]  # http.server's own list, not in its stub
        self.flush_headers()

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(
            status, {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
        )

    def _read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        return json.loads(self.rfile.read(length) or b"{}")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/_sandbox/"):
            return self._sandbox_endpoint(method, path)
        self.state.calls[f"{method} {_route_key(path)}"] += 1
        # Read the body before any early answer: left in the socket it would be parsed as the
        # next request on this keep-alive connection.
        body = self._read_body() if method in ("POST", "PATCH", "PUT") else {}
        fault = self.state.take_fault(method, path)
        if fault:
            if fault.get("delay_s"):
                time.sleep(fault["delay_s"])  # a stalled backend, on purpose
            if fault.get("status"):
                return self._send_error(fault["status"], fault.get("message", "injected fault"))
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler(self, match, query, body)
        if method != "GET":
            # The suite must be read-only: remember any write so tests can prove none happened.
            self.state.write_attempts.append(f"{method} {path}")
            return self._send_error(405, f"{method} {path} is not served by the sandbox (read-only stand-in)")
        return self._send_error(404, f"no route for {path}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # --- sandbox control ------------------------------------------------------------------
    def _sandbox_endpoint(self, method: str, path: str) -> None:
        if path == "/_sandbox/health":
            return self._send_json(200, {"ok": True, "resources": len(self.state.resources)})
        if path == "/_sandbox/calls" and method == "GET":
            return self._send_json(
                200,
                {
                    "calls": dict(self.state.calls),
                    "lists": self.state.lists,
                    "write_attempts": self.state.write_attempts,
                },
            )
        if path == "/_sandbox/calls" and method == "DELETE":
            self.state.calls.clear()
            self.state.lists.clear()
            self.state.write_attempts.clear()
            return self._send_json(200, {})
        if path == "/_sandbox/faults" and method == "POST":
            with self.state.lock:
                self.state.faults = self._read_body().get("faults", [])
            return self._send_json(200, {"faults": self.state.faults})
        return self._send_error(404, f"no sandbox endpoint {method} {path}")


def _route_key(path: str) -> str:
    """Collapse resource ids so call counters group by API method, not by resource."""
    segments = path.split("/")
    return "/".join(seg if i % 2 == 0 or seg in ("v1", "v2", "v3") else "*" for i, seg in enumerate(segments))


# --- Cloud Run admin v2 ----------------------------------------------------------------------
def _get_resource(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    name = match.group("name")
    resource = handler.state.resources.get(name)
    if resource is None:
        kind = name.split("/")[-2].rstrip("s")
        return handler._send_error(
            404,
            f"Resource '{name.split('/')[-1]}' of kind '{kind.upper()}' in region "
            f"'{name.split('/')[3]}' in project '{name.split('/')[1]}' does not exist.",
        )
    handler._send_json(200, handler.state.current(resource))


def _list_resources(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    parent, collection = match.group("parent"), match.group("collection")
    # "-" as a parent id is the API's wildcard (e.g. all services' revisions).
    names, next_token = _page(handler.state.names_under(f"{parent}/{collection}/"), query)
    handler.state.record_list(
        f"GET {_route_key(urlsplit(handler.path).path)}",
        began=not query.get("pageToken"),
        items=len(names),
        page_size=_page_size(query),
    )
    response: dict = {collection: [handler.state.current(handler.state.resources[name]) for name in names]}
    if next_token:
        response["nextPageToken"] = next_token
    handler._send_json(200, response)


# --- Resource Manager v3 and IAM v1: the hierarchy, its IAM policies, role permissions ----------
PREDEFINED_ROLES_DIR = Path(__file__).parent / "iam_roles"


def _get_iam_resource(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    """projects.get, folders.get, organizations.get and custom roles' roles.get."""
    name = match.group("name")
    resource = handler.state.iam_resources.get(name)
    if resource is None:
        # As the real APIs answer for what does not exist or may not be seen.
        return handler._send_error(403, f"The caller does not have permission (no {name} in the sandbox)")
    handler._send_json(200, resource)


def _get_predefined_role(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    """roles.get of a predefined role: Google's own answer, from the snapshot in iam_roles/."""
    path = PREDEFINED_ROLES_DIR / f"{match.group('role')}.json"
    if not path.is_file():
        return handler._send_error(404, f"The role named roles/{match.group('role')} was not found.")
    handler._send_json(200, json.loads(path.read_text(encoding="utf-8")))


def _get_iam_policy(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    resource = match.group("resource")
    policy = handler.state.iam_policies.get(resource)
    if policy is None:
        return handler._send_error(403, f"The caller does not have permission (no IAM policy for {resource})")
    handler._send_json(200, policy)


# --- Cloud Logging v2: entries.list -----------------------------------------------------------
_LOG_ORDERS = {"timestamp asc": False, "timestamp desc": True}  # orderBy -> descending
_LOG_PAGE_DEFAULT, _LOG_PAGE_MAX = 50, 1000


def _list_log_entries(handler: Handler, match: re.Match, query: dict, body: dict) -> None:
    resource_names = body.get("resourceNames") or []
    if not resource_names:
        return handler._send_error(400, "resourceNames is required")
    order_by = " ".join(str(body.get("orderBy") or "timestamp asc").split())
    if order_by not in _LOG_ORDERS:
        return handler._send_error(400, f"orderBy must be 'timestamp asc' or 'timestamp desc', not {order_by!r}")
    try:
        page_size = int(body.get("pageSize") or _LOG_PAGE_DEFAULT)
    except (TypeError, ValueError):
        page_size = -1
    if not 0 < page_size <= _LOG_PAGE_MAX:
        return handler._send_error(400, f"pageSize must be between 1 and {_LOG_PAGE_MAX}, not {body.get('pageSize')!r}")
    filter_text = body.get("filter") or ""
    try:
        log_query = logquery.parse(filter_text)
    except logquery.UnsupportedQuery as exc:
        return handler._send_error(400, str(exc))
    # A page token only continues the listing it came from, as the API requires.
    listing = hashlib.sha256(json.dumps([resource_names, filter_text, order_by]).encode()).hexdigest()[:16]
    after = None
    if body.get("pageToken"):
        after = logstore.token_position(body["pageToken"], listing)
        if after is None:
            return handler._send_error(400, "pageToken does not continue this listing")
    try:
        page, last = handler.state.logs.page(
            resource_names, log_query, descending=_LOG_ORDERS[order_by], after=after, page_size=page_size
        )
    except (KeyError, ValueError) as exc:
        return handler._send_error(500, f"malformed log entry in the sandbox state: {exc}")
    response: dict = {"entries": page} if page else {}  # the API omits empty fields
    if last is not None:
        response["nextPageToken"] = logstore.page_token(last, listing)
    handler._send_json(200, response)


_NAME = r"projects/[^/]+/locations/[^/]+(?:/[^/]+/[^/]+)*"
ROUTES: list[tuple[str, re.Pattern, Callable[[Handler, re.Match, dict, dict], None]]] = [
    ("POST", re.compile(r"/v3/(?P<resource>(?:projects|folders|organizations)/[^/:]+):getIamPolicy"), _get_iam_policy),
    ("GET", re.compile(r"/v3/(?P<name>(?:projects|folders|organizations)/[^/:]+)"), _get_iam_resource),
    ("GET", re.compile(r"/v1/roles/(?P<role>[A-Za-z0-9_.]+)"), _get_predefined_role),
    ("GET", re.compile(r"/v1/(?P<name>(?:projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)"), _get_iam_resource),
    ("POST", re.compile(r"/v2/entries:list"), _list_log_entries),
    ("GET", re.compile(rf"/v2/(?P<parent>{_NAME})/(?P<collection>{'|'.join(_CLOUDRUN_COLLECTIONS)})"), _list_resources),
    ("GET", re.compile(rf"/v2/(?P<name>{_NAME})"), _get_resource),
]


def make_server(state: ApiState, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _exit_when_parent_dies(parent_pid: int, also_kill: list[int], also_kill_file: str | None = None) -> None:
    """A sandbox started for one pytest session must not outlive it, even after kill -9."""
    while True:
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            for pid in also_kill + _pids_in(also_kill_file):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os._exit(0)
        time.sleep(0.5)


def _pids_in(path: str | None) -> list[int]:
    """The process groups the sandbox recorded (its children start while this server does)."""
    try:
        text = Path(path).read_text(encoding="ascii") if path else ""
    except OSError:
        return []
    return [int(line) for line in text.split() if line.isdigit()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="JSON file with resources, IAM policies, log entries")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument(
        "--also-kill",
        type=int,
        action="append",
        default=[],
        help="process group to kill when the parent is gone (the sandbox registry)",
    )
    parser.add_argument("--also-kill-file", help="file of process group ids (one per line) to kill with them")
    args = parser.parse_args(argv)
    server = make_server(ApiState.from_file(args.state), args.port)
    if args.parent_pid:
        threading.Thread(
            target=_exit_when_parent_dies, args=(args.parent_pid, args.also_kill, args.also_kill_file), daemon=True
        ).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

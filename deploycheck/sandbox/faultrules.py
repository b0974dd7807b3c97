"""Fault rules for the sandbox's fault proxies: what to break, on which requests, how often.

A rule is a mapping (from a scenario's `faults:` section or the proxy's control endpoint):

  fault     what happens (FAULT_KINDS below)
  path      regex searched in the request path (HTTP) or the full gRPC method
            ("/google.firestore.v1.Firestore/RunQuery"); default: every request
  method    HTTP method (GET, HEAD, POST, ...); default: any
  times     how many matching requests it breaks, then it is spent; absent or null: forever
  after     let this many matching requests through untouched first (a backend that dies mid-run)
  status    the HTTP status of `fault: status` (429, 500, 503, 504, 403, ...); on gRPC it becomes
            the matching canonical code (UNAVAILABLE for 503, ...)
  interval  seconds between the bytes (HTTP) or messages (gRPC) of `fault: trickle` (default 0.5)
  ms        milliseconds `fault: delay` holds each matching exchange before forwarding it
  mbit      `fault: throttle`: megabits per second that all the responses the rule matches share,
            as one network link would (a CI runner pulls at about 200)

The first rule that matches a request decides; a request no rule matches is forwarded as it is.
`fault: delay` rules are the exception: they stand for the network, not for a broken backend, so
every matching one adds its delay and the request then goes on to the other rules.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from ..errors import InputError

# Kinds that change a response body: a body-less answer (HEAD) passes them untouched.
BODY_KINDS = frozenset(
    {"truncate", "corrupt", "empty", "duplicate", "page_token_repeat", "page_token_cycle", "empty_pages"}
)
FAULT_KINDS = {
    "status": "answer with this HTTP status and Google's JSON error envelope (gRPC: the matching code)",
    "hang": "accept the request and never answer",
    "trickle": "send the response one byte (gRPC: one message) every `interval` seconds",
    "reset": "reset the connection instead of answering (gRPC: the stream breaks after half its messages)",
    "truncate": "announce the whole body, send half of it, close (gRPC: half the messages, then reset)",
    "corrupt": "flip bytes of the body (invalid UTF-8 in JSON, wrong digests in blobs, undecodable protobuf)",
    "empty": "answer 200 with `{}` (gRPC: a stream with no messages)",
    "duplicate": "every item of the JSON list fields twice (gRPC: every stream message twice)",
    "page_token_repeat": "every list page says nextPageToken A, and A serves the first page again",
    "page_token_cycle": "list pages hand out tokens A, B, A, B, ... forever",
    "empty_pages": "after the first page, endless empty pages, each with a new nextPageToken",
    "down": "the backend is gone: reset every connection (gRPC: forward to a port nobody listens on)",
    "delay": "hold the exchange `ms` milliseconds, then forward it or apply the rule that decides (a network "
    "round trip, for benchmarks)",
    "throttle": "send response bodies at `mbit` megabits per second, shared by all matched responses (HTTP)",
}
DEFAULT_TRICKLE_INTERVAL = 0.5

# Google's canonical code names, as its JSON error envelope and gRPC use them.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# What the real services say with those codes (the proxy must not name its own faults).
STATUS_MESSAGES = {
    403: "The caller does not have permission",
    429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}


@dataclass
class FaultRule:
    fault: str
    path: re.Pattern | None = None
    method: str | None = None
    times: int | None = None
    after: int = 0
    status: int = 503
    interval: float = DEFAULT_TRICKLE_INTERVAL
    message: str | None = None  # a status fault's error text instead of the service's usual one
    delay_s: float = 0.0  # `fault: delay`: seconds each matching exchange waits
    hits: int = 0  # requests this rule broke
    seen: int = 0  # matching requests, including the ones `after` let through
    spec: dict = field(default_factory=dict)
    link: Link | None = None  # the shared bandwidth of a throttle rule

    @classmethod
    def parse(cls, spec: object, where: str = "fault rule") -> FaultRule:
        if not isinstance(spec, dict):
            raise InputError(f"{where}: expected a mapping with a `fault` key, got {type(spec).__name__}")
        unknown = set(spec) - {
            "fault",
            "path",
            "method",
            "times",
            "after",
            "status",
            "interval",
            "message",
            "ms",
            "mbit",
        }
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        kind = spec.get("fault")
        if kind not in FAULT_KINDS:
            raise InputError(f"{where}: fault {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        try:
            path = re.compile(spec["path"]) if spec.get("path") else None
        except re.error as exc:
            raise InputError(f"{where}: path {spec['path']!r} is not a regex ({exc})") from None
        times = spec.get("times")
        for name, value in (("times", times), ("after", spec.get("after", 0)), ("status", spec.get("status", 503))):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InputError(f"{where}: {name} must be a non-negative integer, not {value!r}")
        interval = spec.get("interval", DEFAULT_TRICKLE_INTERVAL)
        if not isinstance(interval, (int, float)) or interval <= 0:
            raise InputError(f"{where}: interval must be a positive number of seconds, not {interval!r}")
        message = spec.get("message")
        if message is not None and not isinstance(message, str):
            raise InputError(f"{where}: message must be a string, not {message!r}")
        link = Link.parse(spec.get("mbit"), where) if kind == "throttle" else None
        return cls(
            fault=kind,
            path=path,
            method=(spec.get("method") or "").upper() or None,
            times=times,
            after=spec.get("after", 0),
            status=spec.get("status", 503),
            interval=float(interval),
            message=message,
            delay_s=_delay_seconds(spec, kind, where),
            spec=dict(spec),
            link=link,
        )

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if self.path and not self.path.search(path):
            return False
        return not (self.fault in BODY_KINDS and method == "HEAD")

    def describe(self) -> dict:
        return {
            **self.spec,
            "hits": self.hits,
            "seen": self.seen,
            **({"bytes_sent": self.link.bytes_sent} if self.link else {}),
        }


class Link:
    """The bandwidth a throttle rule grants, shared by every response it matches at once.

    A sender asks `pace(n)` before writing n bytes; it sleeps until the link has had time to
    carry everything sent before. An idle link builds up no credit (no burst after a pause).
    """

    def __init__(self, mbit: float):
        self.bytes_per_second = mbit * 1_000_000 / 8
        self.bytes_sent = 0
        self._free_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, mbit: object, where: str) -> Link:
        if not isinstance(mbit, (int, float)) or isinstance(mbit, bool) or mbit <= 0:
            raise InputError(f"{where}: throttle needs mbit, a positive number of megabits per second, not {mbit!r}")
        return cls(float(mbit))

    def pace(self, count: int, stopping: threading.Event) -> bool:
        """Wait until `count` more bytes fit the link; False if the proxy stops meanwhile."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + count / self.bytes_per_second
        return not stopping.wait(max(0.0, start - time.monotonic()))

    def sent(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count


def _delay_seconds(spec: dict, kind: str, where: str) -> float:
    if kind != "delay":
        if "ms" in spec:
            raise InputError(f"{where}: ms applies to `fault: delay` only, not {kind!r}")
        return 0.0
    ms = spec.get("ms")
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms <= 0:
        raise InputError(f"{where}: fault delay needs ms, a positive number of milliseconds, not {ms!r}")
    return ms / 1000


class FaultBook:
    """The live rule list of one proxy; thread-safe, replaced whole by the control endpoint."""

    def __init__(self, specs: list | None = None):
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.requests = 0
        self.replace(specs or [])

    def replace(self, specs: list) -> None:
        if not isinstance(specs, list):
            raise InputError(f"faults: expected a list of rules, got {type(specs).__name__}")
        rules = [FaultRule.parse(spec, f"fault rule {index + 1}") for index, spec in enumerate(specs)]
        with self._lock:
            self.rules = rules
            self.requests = 0

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule that breaks this request, counting it; None: forward it untouched."""
        with self._lock:
            self.requests += 1
            for rule in self.rules:
                if rule.fault == "delay" or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    return None
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                return rule
        return None

    def delay(self, method: str, path: str) -> float:
        """Seconds the matching `delay` rules hold this request (before `take` decides the rest)."""
        total = 0.0
        with self._lock:
            for rule in self.rules:
                if rule.fault != "delay" or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after or (rule.times is not None and rule.hits >= rule.times):
                    continue
                rule.hits += 1
                total += rule.delay_s
        return total

    def describe(self) -> dict:
        with self._lock:
            return {"faults": [rule.describe() for rule in self.rules], "requests": self.requests}


def error_envelope(status: int, message: str | None = None) -> dict:
    return {
        "error": {
            "code": status,
            "message": message or STATUS_MESSAGES.get(status, "Error"),
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


def parse_scenario_faults(section: object, where: str) -> dict[str, list]:
    """A scenario's `faults:` section: {api|registry|firestore: [rule, ...]}, validated here so a
    typo is an InputError naming the scenario, not a proxy that fails to start."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InputError(f"{where}: faults must map a backend (api, registry, firestore) to a list of rules")
    unknown = set(section) - set(BACKENDS)
    if unknown:
        raise InputError(
            f"{where}: faults: unknown backend(s) {', '.join(sorted(unknown))}; known: {', '.join(BACKENDS)}"
        )
    parsed = {}
    for backend, rules in section.items():
        rules = rules or []
        if not isinstance(rules, list):
            raise InputError(f"{where}: faults.{backend}: expected a list of rules")
        for index, spec in enumerate(rules):
            FaultRule.parse(spec, f"{where}: faults.{backend}[{index}]")
        parsed[backend] = rules
    return parsed


BACKENDS = ("api", "registry", "firestore")

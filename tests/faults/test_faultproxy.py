"""The fault proxy itself: each fault does what it says, against a tiny backend, seen with httpx."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from deploycheck.errors import InputError
from deploycheck.netutil import free_port
from deploycheck.sandbox.faultproxy import FaultControl, FaultProxy

pytestmark = pytest.mark.faults

LIST_BODY = {"services": [{"name": "a"}, {"name": "b"}]}
BLOB = bytes(range(256)) * 4


class _Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_tokens: ClassVar[list] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/list"):
            _Backend.seen_tokens.append(self.path)
            payload, kind = json.dumps(LIST_BODY).encode(), "application/json"
        else:
            payload, kind = BLOB, "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_HEAD = do_GET  # noqa: N815 (body written to a HEAD is dropped by the client; unused here)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    backend = ThreadingHTTPServer(("127.0.0.1", free_port()), _Backend)
    backend.daemon_threads = True
    threading.Thread(target=backend.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    running = FaultProxy(
        tmp_path_factory.mktemp("proxy"),
        backend="api",
        kind="http",
        upstream=f"http://127.0.0.1:{backend.server_address[1]}",
    ).start()
    yield running, FaultControl(running.control_url)
    running.stop()
    backend.shutdown()
    backend.server_close()


def _get(proxy, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{proxy.address}{path}", timeout=kwargs.pop("timeout", 5), **kwargs)


def test_no_rule_forwards_byte_for_byte(proxy):
    running, control = proxy
    control.clear()
    assert _get(running, "/blob").content == BLOB
    assert _get(running, "/list").json() == LIST_BODY


def test_status_n_times_then_ok_with_google_envelope(proxy):
    running, control = proxy
    control.set([{"fault": "status", "status": 503, "path": "^/list", "times": 2}])
    first, second, third = (_get(running, "/list") for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.json() == {
        "error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}
    }
    assert third.status_code == 200
    assert _get(running, "/blob").status_code == 200  # the path did not match
    assert control.status()["faults"][0]["hits"] == 2


def test_after_lets_requests_through_then_the_backend_is_down(proxy):
    running, control = proxy
    control.set([{"fault": "down", "after": 1}])
    assert _get(running, "/list").status_code == 200
    with pytest.raises(httpx.TransportError):
        _get(running, "/list")


def test_reset(proxy):
    running, control = proxy
    control.set([{"fault": "reset", "times": 1}])
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _get(running, "/list")
    assert _get(running, "/list").status_code == 200


def test_hang_never_answers(proxy):
    running, control = proxy
    control.set([{"fault": "hang"}])
    with pytest.raises(httpx.ReadTimeout):
        _get(running, "/list", timeout=0.5)


def test_trickle_sends_a_byte_at_a_time(proxy):
    running, control = proxy
    control.set([{"fault": "trickle", "interval": 0.05}])
    with httpx.stream("GET", f"{running.address}/list", timeout=5) as response:
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == json.dumps(LIST_BODY).encode()
    assert len(chunks) > 10  # arrived in many pieces, not one


def test_throttle_paces_bodies_over_one_shared_link_and_counts_what_it_sent(proxy):
    running, control = proxy
    control.set([{"fault": "throttle", "mbit": 0.08, "path": "^/blob"}])  # 10,000 bytes a second
    started = time.monotonic()
    bodies = [_get(running, "/blob").content for _ in range(3)]
    assert bodies == [BLOB] * 3
    # Each body waits for the link to carry the ones before it: 2 x 1,024 bytes at 10,000 B/s.
    assert time.monotonic() - started >= 2 * len(BLOB) / 10_000
    assert control.status()["faults"][0]["bytes_sent"] == 3 * len(BLOB)
    assert _get(running, "/list").json() == LIST_BODY  # not matched: not throttled, not counted
    assert control.status()["faults"][0]["bytes_sent"] == 3 * len(BLOB)


def test_throttle_needs_a_rate(proxy):
    _, control = proxy
    with pytest.raises(InputError, match="throttle needs mbit, a positive number"):
        control.set([{"fault": "throttle"}])


def test_truncate_announces_all_sends_half(proxy):
    running, control = proxy
    control.set([{"fault": "truncate"}])
    with pytest.raises(httpx.RemoteProtocolError):
        _get(running, "/blob")


def test_corrupt_flips_bytes_into_invalid_utf8(proxy):
    running, control = proxy
    control.set([{"fault": "corrupt"}])
    blob = _get(running, "/blob").content
    assert len(blob) == len(BLOB) and blob != BLOB
    with pytest.raises(UnicodeDecodeError):
        _get(running, "/list").content.decode("utf-8")


def test_empty_is_a_valid_empty_object(proxy):
    running, control = proxy
    control.set([{"fault": "empty"}])
    response = _get(running, "/list")
    assert response.status_code == 200 and response.json() == {}


def test_duplicate_doubles_list_items(proxy):
    running, control = proxy
    control.set([{"fault": "duplicate"}])
    assert [item["name"] for item in _get(running, "/list").json()["services"]] == ["a", "a", "b", "b"]


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("page_token_repeat", ["faultproxy-A", "faultproxy-A", "faultproxy-A"]),
        ("page_token_cycle", ["faultproxy-A", "faultproxy-B", "faultproxy-A"]),
        ("empty_pages", ["faultproxy-1", "faultproxy-2", "faultproxy-3"]),
    ],
)
def test_page_tokens_never_end(proxy, fault, expected):
    running, control = proxy
    control.set([{"fault": fault, "path": "^/list"}])
    _Backend.seen_tokens.clear()
    tokens, items, token = [], [], None
    for _ in range(3):
        page = _get(running, "/list", params={"pageToken": token} if token else None).json()
        token = page["nextPageToken"]
        tokens.append(token)
        items.append(len(page["services"]))
    assert tokens == expected
    assert items == ([2, 0, 0] if fault == "empty_pages" else [2, 2, 2])
    # The backend never sees a token it did not make.
    assert all("faultproxy" not in path for path in _Backend.seen_tokens)


def test_bad_rules_are_refused_with_the_reason(proxy):
    _, control = proxy
    with pytest.raises(InputError, match="fault 'explode' is not one of"):
        control.set([{"fault": "explode"}])
    with pytest.raises(InputError, match="times must be a non-negative integer"):
        control.set([{"fault": "status", "times": "twice"}])


def test_delay_holds_every_exchange_and_changes_nothing(proxy):
    running, control = proxy
    control.set([{"fault": "delay", "ms": 200, "path": "^/list"}])
    with httpx.Client(base_url=running.address, timeout=5) as client:  # one kept-alive connection
        for _ in range(3):
            began = time.monotonic()
            response = client.get("/list")
            assert time.monotonic() - began >= 0.2  # at least the delay, every time
            assert response.status_code == 200 and response.json() == LIST_BODY
        assert client.get("/blob").content == BLOB  # the path did not match: forwarded at once
    assert control.status()["faults"][0]["hits"] == 3


def test_delay_composes_with_the_rule_that_decides(proxy):
    running, control = proxy
    control.set([{"fault": "delay", "ms": 200}, {"fault": "status", "status": 503, "times": 1}])
    began = time.monotonic()
    assert _get(running, "/list").status_code == 503
    assert time.monotonic() - began >= 0.2
    assert _get(running, "/list").json() == LIST_BODY
    assert [rule["hits"] for rule in control.status()["faults"]] == [2, 1]


def test_bad_delay_rules_are_refused(proxy):
    _, control = proxy
    with pytest.raises(InputError, match="delay needs ms"):
        control.set([{"fault": "delay"}])
    with pytest.raises(InputError, match="delay needs ms"):
        control.set([{"fault": "delay", "ms": -5}])
    with pytest.raises(InputError, match="ms applies to `fault: delay` only"):
        control.set([{"fault": "status", "ms": 50}])


def test_traffic_counts_requests_by_endpoint_and_bytes_answered(proxy):
    running, control = proxy
    control.clear()
    control.reset_traffic()
    _get(running, "/list")
    _get(running, "/list")
    blob = _get(running, "/blob")
    traffic = control.traffic()
    assert traffic["requests"] == {"GET /list": 2, "GET /blob": 1} and traffic["total_requests"] == 3
    assert traffic["bytes"] > 2 * len(json.dumps(LIST_BODY)) + len(blob.content)  # bodies and heads
    control.reset_traffic()
    assert control.traffic() == {"requests": {}, "total_requests": 0, "bytes": 0}

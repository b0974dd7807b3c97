"""gcall.call and the Cloud Run reader under misbehaving servers: every answer bounded in wall-clock
time, statuses named, malformed or empty answers an ERROR naming the API, never a traceback."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests
from google.auth.credentials import AnonymousCredentials

from deploycheck.cloudrun import CloudRunReader
from deploycheck.errors import ObservationError
from deploycheck.gcall import CallPolicy, call
from deploycheck.imageref import ImageRef
from deploycheck.registry import RegistryClient, RegistryRouter

PROJECT, REGION = "p", "us-west2"
FAST = dict(initial=0.01, maximum=0.05)


@contextmanager
def raw_server(answer):
    """A loopback server that reads one request per connection and calls answer(connection)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def handle(connection):
        with connection:
            try:
                connection.recv(65536)
                answer(connection, stop)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode() + body


def trickle(payload: bytes, every: float = 0.2):
    def answer(connection, stop):
        for byte in payload:
            if stop.is_set():
                return
            connection.sendall(bytes([byte]))
            time.sleep(every)  # the fault under test: one byte at a time

    return answer


def fixed(payload: bytes):
    return lambda connection, stop: connection.sendall(payload)


def reader(url: str, deadline: float = 1.5) -> CloudRunReader:
    return CloudRunReader(
        PROJECT,
        REGION,
        AnonymousCredentials(),
        endpoint=url,
        policy=CallPolicy(deadline=deadline, attempt_timeout=deadline, **FAST),
    )


def test_a_trickling_server_is_cut_at_the_deadline():
    body = b'{"name": "projects/p/locations/us-west2/services/s"}' * 50
    with raw_server(trickle(http_answer(200, body))) as url:
        cloudrun = reader(url)
        began = time.monotonic()
        with pytest.raises(ObservationError, match=r"Cloud Run services.get gave no complete answer within"):
            cloudrun.service("s")
        assert time.monotonic() - began < 1.5 + 1.0


def test_an_attempt_the_deadline_cuts_short_does_not_hide_what_the_earlier_ones_met():
    """The last try started with little time left and ran out of it: the server had already
    been unreachable, and that stays the cause a reader (e.g. "could not reach Firestore") sees."""
    release = threading.Event()
    attempts = []

    def unreachable_then_silent():
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise requests.ConnectionError("connection refused")
        release.wait(10)  # a later try that never answers: only the deadline ends it

    policy = CallPolicy(deadline=0.5, attempt_timeout=10, initial=0.001, maximum=0.001)
    try:
        with pytest.raises(ObservationError) as raised:
            call("the heartbeats", unreachable_then_silent, policy=policy, api="Firestore", method="RunQuery")
    finally:
        release.set()
    assert len(attempts) == 2
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    assert "could not be reached (ConnectionError)" in str(raised.value)
    assert "gave no complete answer within" in str(raised.value)  # the cut-short try is still told


def test_making_the_clients_is_not_timed_as_part_of_the_first_call(monkeypatch):
    """The client library is imported when a reader is first used; on a busy machine that can
    take longer than a call's deadline, which must time the exchange alone."""
    from deploycheck import cloudrun as module

    make = module._RunClients.make
    monkeypatch.setattr(module._RunClients, "make", classmethod(lambda cls, *args: time.sleep(1.0) or make(*args)))
    body = json.dumps({"name": f"projects/{PROJECT}/locations/{REGION}/services/s"}).encode()
    with raw_server(fixed(http_answer(200, body, "application/json"))) as url:
        try:
            reader(url, deadline=0.5).service("s")
        except ObservationError as exc:
            assert "within" not in str(exc), f"the deadline ran out while the clients were made: {exc}"


def test_a_trickling_registry_is_cut_at_the_deadline():
    with raw_server(trickle(http_answer(200, b"{}" * 100))) as url:
        client = RegistryClient(RegistryRouter.mirror(url), timeout=5, deadline=1.0)
        began = time.monotonic()
        with pytest.raises(ObservationError, match=r"timed out|before the deadline"):
            client.resolve(ImageRef.parse("gcr.io/p/app:latest"))
        assert time.monotonic() - began < 1.0 * 3 + 1.5  # at most three bounded attempts


@pytest.mark.parametrize(
    "status, named",
    [(503, "HTTP 503 (UNAVAILABLE)"), (429, "HTTP 429"), (500, "HTTP 500 (INTERNAL)"), (504, "HTTP 504")],
)
def test_retryable_statuses_are_retried_then_named(status, named):
    envelope = b'{"error": {"code": %d, "message": "backend says no", "status": "X"}}' % status
    with raw_server(fixed(http_answer(status, envelope))) as url, pytest.raises(ObservationError) as raised:
        reader(url, deadline=1.0).service("s")
    message = str(raised.value)
    assert "Cloud Run services.get" in message and f"answered {named}" in message
    assert "times" in message and "--deadline 1s" in message


def test_a_non_retryable_status_is_not_retried():
    envelope = b'{"error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}}'
    with raw_server(fixed(http_answer(400, envelope))) as url:
        cloudrun = reader(url)
        with pytest.raises(ObservationError, match=r"services.get answered HTTP 400: .*bad request"):
            cloudrun.service("s")
        assert cloudrun.calls["services.get"] == 1


@pytest.mark.parametrize(
    "body, cause",
    [
        (b"{}", "an object without a name"),
        (b'{"name": "projects/p/locations/us-west2/services/other"}', "one named"),
        (b'{"name": "projects/p/locations/us-west2/services/s", "generation": "x"}', "malformed payload"),
        (b'{"name": "projects/p/locations/us-west2/serv', "malformed payload"),
        (b"<html>gateway</html>", "malformed payload"),
    ],
)
def test_an_empty_or_malformed_service_is_an_error(body, cause):
    with raw_server(fixed(http_answer(200, body))) as url, pytest.raises(ObservationError, match=cause):
        reader(url).service("s")


REVISION = b'{"name": "projects/p/locations/us-west2/services/s/revisions/r1", "containers": [{"image": "%s"}]}'


@pytest.mark.parametrize(
    "body, cause",
    [
        (b"{}", "it has no name"),
        (b"[]", "not a JSON object"),
        (b'{"name": "projects/p/locations/us-west2/services/s/revisions/r1"}', "lists no containers"),
        (
            b'{"name": "projects/p/locations/us-west2/services/s/revisions/r2", "containers": [{"image": "a"}]}',
            "named 'r2', not 'r1'",
        ),
        (REVISION % b"us-west2-docker.pkg.dev/p/r/app\xff\xfe:latest", "malformed payload"),
        (REVISION % b"us-west2-docker.pkg.dev/p/r/app\\ufffd:latest", "characters no image name has"),
        (REVISION[:40], "malformed payload"),
    ],
)
def test_an_empty_corrupt_or_truncated_revision_is_an_error(body, cause):
    with raw_server(fixed(http_answer(200, body))) as url, pytest.raises(ObservationError, match=cause):
        reader(url).revision("s", "r1")


@pytest.mark.parametrize(
    "page, cause",
    [
        (
            b'{"services": [{"name": "projects/p/locations/us-west2/services/a"}], "nextPageToken": "same"}',
            "already followed",
        ),
        (b'{"services": [], "nextPageToken": "%d"}', "pages in a row were empty"),
        (b'{"services": [{"name": ""}]}', "listed an item named ''"),
    ],
)
def test_service_listings_that_never_end_or_lie_are_errors(page, cause):
    counter = iter(range(10**6))

    def answer(connection, stop):
        body = page % next(counter) if b"%d" in page else page
        connection.sendall(http_answer(200, body))

    with raw_server(answer) as url:
        cloudrun = reader(url, deadline=5)
        with pytest.raises(ObservationError, match=cause):
            cloudrun.service_names()
    assert cloudrun.calls["services.list"] < 100

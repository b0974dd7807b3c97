"""The sandbox must not slow the product: every answer leaves in one write on a TCP_NODELAY socket.

A head written before its body, with Nagle's algorithm on, waits for the client's delayed ACK
(~40 ms on Linux) on every call of a kept-alive connection: 1,000 calls would add 40 s that
Google's endpoints do not. Checked at the socket level, without timing anything.
"""

from __future__ import annotations

import socket
import threading

import pytest

from deploycheck.netutil import free_port
from deploycheck.sandbox.apiserver import ApiState, make_server
from deploycheck.sandbox.faultproxy import FaultControl, FaultProxy

NAME = "projects/p/locations/r/services/s"
STATE = {NAME: {"name": NAME, "padding": "x" * 3000}}


class _CountingWriter:
    def __init__(self, inner, writes: list[int]):
        self.inner, self.writes = inner, writes

    def write(self, data) -> int:
        self.writes.append(len(data))
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name):  # closed, close(): what the server's finish() asks of its wfile
        return getattr(self.inner, name)


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()


def _one_recv_holds_the_whole_answer(connection: socket.socket) -> bool:
    data = connection.recv(1 << 20)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return len(body) == length


@pytest.fixture
def apiserver():
    server = make_server(ApiState(dict(STATE)), free_port())
    writes: list[int] = []
    nodelay: list[int] = []
    bound = server.RequestHandlerClass

    class Recording(bound):
        def setup(self):
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            self.wfile = _CountingWriter(self.wfile, writes)

    server.RequestHandlerClass = Recording
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1], writes, nodelay
    server.shutdown()
    server.server_close()


def test_api_stand_in_answers_in_one_write_with_nodelay(apiserver):
    port, writes, nodelay = apiserver
    with socket.create_connection(("127.0.0.1", port)) as connection:
        for _ in range(3):  # one kept-alive connection, as the google clients use it
            connection.sendall(_request(f"/v2/{NAME}"))
            assert _one_recv_holds_the_whole_answer(connection)
        connection.sendall(_request("/v2/projects/p/locations/r/services/missing"))  # an error answer too
        assert _one_recv_holds_the_whole_answer(connection)
    assert nodelay == [1]
    assert len(writes) == 4 and all(size > 3000 for size in writes[:3])


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    server = make_server(ApiState(dict(STATE)), free_port())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    proxy = FaultProxy(
        tmp_path_factory.mktemp("proxy"),
        backend="api",
        kind="http",
        upstream=f"http://127.0.0.1:{server.server_address[1]}",
    ).start()
    yield proxy
    proxy.stop()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "rules",
    [[], [{"fault": "delay", "ms": 1}], [{"fault": "status", "status": 503}]],
    ids=["forwarded", "delayed", "status"],
)
def test_fault_proxy_answers_in_one_write(proxied, rules):
    FaultControl(proxied.control_url).set(rules)
    with socket.create_connection(("127.0.0.1", proxied.port)) as connection:
        for _ in range(3):
            connection.sendall(_request(f"/v2/{NAME}"))
            assert _one_recv_holds_the_whole_answer(connection)

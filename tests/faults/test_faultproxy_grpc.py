"""The gRPC fault proxy against a tiny raw-bytes gRPC backend (a server-streaming RunQuery)."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import pytest

from deploycheck.netutil import free_port
from deploycheck.sandbox.faultproxy import FaultControl, FaultProxy

pytestmark = pytest.mark.faults

METHOD = "/google.firestore.v1.Firestore/RunQuery"
MESSAGES = [b"\x0a\x03doc" + bytes([index]) for index in range(4)]


def _run_query(request: bytes, context):
    assert dict(context.invocation_metadata()).get("authorization") == "Bearer owner"
    yield from MESSAGES


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    backend = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    backend.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "google.firestore.v1.Firestore", {"RunQuery": grpc.unary_stream_rpc_method_handler(_run_query)}
            ),
        )
    )
    port = backend.add_insecure_port(f"127.0.0.1:{free_port()}")
    backend.start()
    running = FaultProxy(
        tmp_path_factory.mktemp("grpc-proxy"), backend="firestore", kind="grpc", upstream=f"127.0.0.1:{port}"
    ).start()
    channel = grpc.insecure_channel(running.address)
    yield channel.unary_stream(METHOD), FaultControl(running.control_url)
    channel.close()
    running.stop()
    backend.stop(None)


def _call(proxy, timeout: float = 5) -> list[bytes]:
    stub, _ = proxy
    return list(stub(b"", metadata=(("authorization", "Bearer owner"),), timeout=timeout))


def _code(proxy, timeout: float = 5) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _call(proxy, timeout)
    return caught.value.code()


def test_forwards_messages_and_metadata(proxy):
    proxy[1].clear()
    assert _call(proxy) == MESSAGES


def test_status_twice_then_ok(proxy):
    proxy[1].set([{"fault": "status", "status": 503, "path": "/RunQuery$", "times": 2}])
    assert _code(proxy) == _code(proxy) == grpc.StatusCode.UNAVAILABLE
    assert _call(proxy) == MESSAGES


@pytest.mark.parametrize(
    "status, code", [(429, "RESOURCE_EXHAUSTED"), (403, "PERMISSION_DENIED"), (504, "DEADLINE_EXCEEDED")]
)
def test_status_maps_to_the_canonical_code(proxy, status, code):
    proxy[1].set([{"fault": "status", "status": status}])
    assert _code(proxy) == getattr(grpc.StatusCode, code)


def test_duplicate_sends_every_message_twice(proxy):
    proxy[1].set([{"fault": "duplicate"}])
    assert _call(proxy) == [message for message in MESSAGES for _ in (0, 1)]


def test_truncate_breaks_the_stream_after_half(proxy):
    proxy[1].set([{"fault": "truncate"}])
    stub, _ = proxy
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for message in stub(b"", metadata=(("authorization", "Bearer owner"),), timeout=5):
            received.append(message)
    assert received == MESSAGES[:2] and caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_empty_and_corrupt(proxy):
    proxy[1].set([{"fault": "empty"}])
    assert _call(proxy) == []
    proxy[1].set([{"fault": "corrupt"}])
    assert [message[0] for message in _call(proxy)] == [0xFF] * len(MESSAGES)


def test_hang_until_the_deadline_and_down(proxy):
    proxy[1].set([{"fault": "hang"}])
    assert _code(proxy, timeout=0.5) == grpc.StatusCode.DEADLINE_EXCEEDED
    proxy[1].set([{"fault": "down"}])
    assert _code(proxy) == grpc.StatusCode.UNAVAILABLE


def test_delay_holds_each_call_and_forwards_it_untouched(proxy):
    proxy[1].set([{"fault": "delay", "ms": 200}])
    for _ in range(2):
        began = time.monotonic()
        assert _call(proxy) == MESSAGES
        assert time.monotonic() - began >= 0.2  # at least the delay, every call
    assert proxy[1].status()["faults"][0]["hits"] == 2


def test_traffic_counts_calls_and_message_bytes(proxy):
    proxy[1].clear()
    proxy[1].reset_traffic()
    _call(proxy)
    assert proxy[1].traffic() == {
        "requests": {f"POST {METHOD}": 1},
        "total_requests": 1,
        "bytes": sum(len(message) for message in MESSAGES),
    }

"""The gRPC side of the fault proxy: raw message bytes forwarded to the Firestore emulator.

grpcio's generic handlers with no (de)serializers hand over each message as bytes, so the proxy
needs no protobuf types, only each method's cardinality (which side streams). Faults follow
faultrules.py; on gRPC they mean:

  status     abort with the canonical code of the HTTP status (503 -> UNAVAILABLE, ...)
  hang       never answer, until the client cancels
  trickle    forward the stream one message every `interval` seconds
  reset      the stream breaks before its first message (UNAVAILABLE, as a reset socket gives)
  truncate   half the messages, then the stream breaks the same way
  corrupt    every message made undecodable (its first byte becomes an invalid field tag)
  empty      a stream with no messages (a unary answer: the empty message), status OK
  duplicate  every stream message twice
  down       forward to a port nobody listens on: the channel's own connection failure
  delay      wait `ms` milliseconds per call (not per message), then apply any other rule
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from ..netutil import free_port
from .faultrules import STATUS_MESSAGES, STATUS_NAMES, FaultBook
from .traffic import Traffic

# Methods whose responses (or requests) stream; every other method is unary. Firestore v1's
# service definition; extend for another gRPC backend.
_SERVER_STREAMING = {"RunQuery", "RunAggregationQuery", "BatchGetDocuments"}
_BIDI_STREAMING = {"Listen", "Write"}
_RESET_DETAILS = "Connection reset by peer"
_MAX_WORKERS = 16


def _code_for(status: int) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, STATUS_NAMES.get(status, "UNKNOWN"), grpc.StatusCode.UNKNOWN)


def _forwarded_metadata(context: grpc.ServicerContext) -> tuple[tuple[str, str | bytes], ...]:
    return tuple(
        (key, value)
        for key, value in context.invocation_metadata()
        if not key.startswith((":", "grpc-")) and key not in ("user-agent", "content-type", "te")
    )


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, upstream: str, book: FaultBook, stopping: threading.Event, traffic: Traffic):
        self.book = book
        self.traffic = traffic
        self.stopping = stopping
        self.channel = grpc.insecure_channel(upstream)
        # Nothing listens there: a request sent to it fails as a request to a killed backend does.
        self.dead_channel = grpc.insecure_channel(f"127.0.0.1:{free_port()}")

    def service(self, handler_call_details):
        method = handler_call_details.method
        short = method.rsplit("/", 1)[-1]
        self.traffic.request("POST", method)
        if short in _BIDI_STREAMING:
            return grpc.stream_stream_rpc_method_handler(
                lambda requests, context: self._counted(self._bidi(method, requests, context))
            )
        if short in _SERVER_STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: self._counted(self._stream(method, request, context))
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self._counted_one(self._unary(method, request, context))
        )

    def _counted(self, messages):
        for message in messages:
            self.traffic.sent(len(message))
            yield message

    def _counted_one(self, message: bytes) -> bytes:
        self.traffic.sent(len(message))
        return message

    def _hang(self, context: grpc.ServicerContext) -> None:
        done = threading.Event()
        context.add_callback(done.set)
        while context.is_active() and not self.stopping.is_set():
            done.wait(0.2)

    def _abort_status(self, rule, context: grpc.ServicerContext) -> None:
        context.abort(_code_for(rule.status), STATUS_MESSAGES.get(rule.status, "Error"))

    def _delay(self, method: str, context: grpc.ServicerContext) -> None:
        delay_s = self.book.delay("POST", method)
        if delay_s and self.stopping.wait(delay_s):
            context.abort(grpc.StatusCode.UNAVAILABLE, _RESET_DETAILS)  # the proxy is stopping

    def _stream(self, method: str, request: bytes, context: grpc.ServicerContext):
        self._delay(method, context)
        rule = self.book.take("POST", method)
        kind = rule.fault if rule else None
        if kind == "status":
            self._abort_status(rule, context)
        if kind == "hang":
            return self._hang(context)
        if kind == "reset":
            context.abort(grpc.StatusCode.UNAVAILABLE, _RESET_DETAILS)
        channel = self.dead_channel if kind == "down" else self.channel
        forward: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
        call = forward(request, metadata=_forwarded_metadata(context), timeout=context.time_remaining())
        try:
            received = list(call) if kind in ("truncate", "empty") else []
            if kind == "empty":
                return
            if kind == "truncate":
                yield from received[: len(received) // 2]
                context.abort(grpc.StatusCode.UNAVAILABLE, _RESET_DETAILS)
            for message in call:
                if kind == "trickle" and rule and self.stopping.wait(rule.interval):
                    return
                if kind == "corrupt":
                    message = _corrupt(message)
                yield message
                if kind == "duplicate":
                    yield message
        except grpc.RpcError as exc:
            call.cancel()
            context.abort(exc.code(), exc.details() or "")

    def _unary(self, method: str, request: bytes, context: grpc.ServicerContext):
        self._delay(method, context)
        rule = self.book.take("POST", method)
        kind = rule.fault if rule else None
        if kind == "status":
            self._abort_status(rule, context)
        if kind == "hang":
            self._hang(context)
            return b""
        if kind in ("reset", "truncate"):
            context.abort(grpc.StatusCode.UNAVAILABLE, _RESET_DETAILS)
        channel = self.dead_channel if kind == "down" else self.channel
        try:
            forward: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            response = forward(request, metadata=_forwarded_metadata(context), timeout=context.time_remaining())
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
        if kind == "trickle" and rule:
            self.stopping.wait(rule.interval)
        if kind == "empty":
            return b""
        return _corrupt(response) if kind == "corrupt" else response

    def _bidi(self, method: str, requests, context: grpc.ServicerContext):
        # Listen/Write are not read by the suite; forwarded untouched.
        forward: grpc.StreamStreamMultiCallable[bytes, bytes] = self.channel.stream_stream(method)
        call = forward(requests, metadata=_forwarded_metadata(context), timeout=context.time_remaining())
        try:
            yield from call
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")


def _corrupt(message: bytes) -> bytes:
    """Wire type 7 does not exist: a parser must refuse the message, not read a different one."""
    return b"\xff" + message[1:] if message else b"\xff"


def serve_grpc(
    port: int, upstream: str, book: FaultBook, stopping: threading.Event, traffic: Traffic | None = None
) -> grpc.Server:
    # so_reuseport off: another process on the port must be an error (LocalServer retries), not shared.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_MAX_WORKERS),
        options=[("grpc.so_reuseport", 0)],
        handlers=[_Forwarder(upstream, book, stopping, traffic or Traffic())],
    )
    try:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError as exc:
        raise OSError(f"address already in use: 127.0.0.1:{port} ({exc})") from None
    if bound == 0:
        raise OSError(f"address already in use: 127.0.0.1:{port}")
    server.start()
    return server

"""A fault-injecting proxy in front of one sandbox backend, to prove the suite fails closed.

It forwards HTTP/1.1 (the API stand-in, the registry) or gRPC (the Firestore emulator, see
faultproxy_grpc.py) to the real backend and breaks the requests its rules match (faultrules.py):
error statuses, hangs, trickled or truncated or corrupted bodies, `{}` answers, page tokens that
never end, duplicated list items, a backend gone mid-run; or it only delays them (a network round
trip, so benchmarks on loopback pay what a call to Google costs). A request no rule matches, and every
`/_sandbox/` control request of the API stand-in, passes through byte for byte.

The rules are read from a file at start and replaced live through a control server on its own
port (`FaultControl`): GET /_faultproxy/faults (rules with hit counts), PUT /_faultproxy/faults
{"faults": [...]}. The sandbox starts a proxy only for a backend that asks for one, so normal
runs pay nothing.

Run as: python -m deploycheck.sandbox.faultproxy --kind http|grpc --upstream URL|HOST:PORT
        --port N --control-port N [--faults FILE] [--parent-pid P]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from ..errors import InputError
from ..netutil import free_port, http_probe
from .faultrules import FaultBook, FaultRule, error_envelope
from .local_server import LocalServer
from .traffic import CountingWriter, Traffic

CONTROL_PREFIX = "/_faultproxy"
PASSTHROUGH_PREFIX = "/_sandbox/"  # the API stand-in's own control endpoints are never faulted
FAULT_TOKEN_PREFIX = "faultproxy-"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_COPY_CHUNK = 64 * 1024
_THROTTLE_SLICE = 16 * 1024
_THROTTLE_SEND_BUFFER = 4 * _THROTTLE_SLICE
_UPSTREAM_TIMEOUT = 60.0


# --- the HTTP proxy ----------------------------------------------------------------------------
class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, port: int, upstream: str, book: FaultBook, stopping: threading.Event, traffic: Traffic | None = None
    ):
        self.upstream = upstream.rstrip("/")
        split = urlsplit(self.upstream)
        self.upstream_host, self.upstream_port = split.hostname or "127.0.0.1", split.port or 80
        self.book = book
        self.traffic = traffic or Traffic()
        self.stopping = stopping
        super().__init__(("127.0.0.1", port), _ProxyHandler)

    def handle_error(self, request, client_address) -> None:
        # A client that gave up mid-answer is part of the game here, not a proxy failure.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, and the head leaves with the body's first chunk: with Nagle on, a body written
    # after its head waits for the client's delayed ACK, ~40 ms on every call of a kept-alive connection.
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {fmt % args}\n")

    def setup(self) -> None:
        super().setup()
        # The stub fixes wfile to BufferedIOBase; the handler only ever calls write() and flush() on it.
        self.wfile = CountingWriter(self.wfile, self.server.traffic)  # type: ignore[assignment]

    def do_GET(self) -> None:
        self._proxy("GET")

    def do_HEAD(self) -> None:
        self._proxy("HEAD")

    def do_POST(self) -> None:
        self._proxy("POST")

    def do_PUT(self) -> None:
        self._proxy("PUT")

    def do_PATCH(self) -> None:
        self._proxy("PATCH")

    def do_DELETE(self) -> None:
        self._proxy("DELETE")

    def _proxy(self, method: str) -> None:
        body = self._read_request_body()
        split = urlsplit(self.path)
        passthrough = split.path.startswith(PASSTHROUGH_PREFIX)
        if not passthrough:
            self.server.traffic.request(method, split.path)
        delay_s = 0.0 if passthrough else self.server.book.delay(method, split.path)
        if delay_s and self.server.stopping.wait(delay_s):
            return self._close_quietly()
        rule = None if passthrough else self.server.book.take(method, split.path)
        kind = rule.fault if rule else None
        self.log_message("%s %s -> %s", method, split.path, kind or "forward")
        if kind in ("reset", "down"):
            return self._reset()
        if kind == "hang":
            return self._hang()
        if kind == "status":
            assert rule is not None  # a fault kind comes from a rule
            payload = json.dumps(error_envelope(rule.status, rule.message)).encode()
            return self._answer(rule.status, [("Content-Type", "application/json; charset=UTF-8")], payload, method)
        target, body, incoming_token = _strip_fault_token(split, body)
        headers = [(name, value) for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP]
        try:
            response = self._upstream_answer(method, target, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            # The backend is really gone: say so the way a gateway would.
            payload = json.dumps(
                {
                    "error": {
                        "code": 502,
                        "message": f"upstream unreachable: {exc or type(exc).__name__}",
                        "status": "UNAVAILABLE",
                    }
                }
            ).encode()
            return self._answer(502, [("Content-Type", "application/json")], payload, method)
        try:
            self._relay(method, response, rule, incoming_token)
        finally:
            if not response.isclosed():  # not read to its end: the connection cannot carry another request
                self._drop_upstream()

    # --- the backend ---------------------------------------------------------------------------
    # One kept-alive connection to the backend per client connection, with the standard library's
    # client: it costs a fraction of a general-purpose client's CPU per request, and this proxy's
    # CPU is taken from the run it measures.
    _upstream: http.client.HTTPConnection | None = None

    def _upstream_answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> http.client.HTTPResponse:
        for attempt in (1, 2):
            reused = self._upstream is not None
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(
                    self.server.upstream_host, self.server.upstream_port, timeout=_UPSTREAM_TIMEOUT
                )
            connection = self._upstream
            try:
                connection.putrequest(method, target, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                if body or method in ("POST", "PUT", "PATCH"):
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body or None)
                response = connection.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self._drop_upstream()
                if reused and attempt == 1:
                    continue  # the backend closed the idle connection: once more on a new one
                raise
            except BaseException:
                self._drop_upstream()
                raise
            if method == "HEAD" or response.status in (204, 304):
                response.read()  # no body: the connection is free for the next request
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def finish(self) -> None:
        super().finish()
        self._drop_upstream()

    # --- answers ---------------------------------------------------------------------------------
    def _relay(
        self, method: str, response: http.client.HTTPResponse, rule: FaultRule | None, incoming_token: str | None
    ) -> None:
        headers = [
            (name, self._rewrite_location(name, value))
            for name, value in response.getheaders()
            if name.lower() not in _HOP_BY_HOP
        ]
        length = response.getheader("content-length")
        status = response.status
        kind = rule.fault if rule else None
        if method == "HEAD" or status in (204, 304):
            return self._answer(status, headers, b"", method, length=length)
        if kind == "empty":
            response.read()
            return self._answer(200, [("Content-Type", "application/json; charset=UTF-8")], b"{}", method)
        if kind in ("duplicate", "page_token_repeat", "page_token_cycle", "empty_pages"):
            raw = response.read()
            encoded = response.getheader("content-encoding") is not None
            rewritten = None if encoded else _rewrite_json(raw, kind, incoming_token)
            return self._answer(status, headers, raw if rewritten is None else rewritten, method)
        if length is None:  # chunked upstream: the faults below need a length to work against
            raw = response.read()
            length, chunks = str(len(raw)), iter([raw])
        else:
            chunks = iter(functools.partial(response.read, _COPY_CHUNK), b"")
        total = int(length)
        if kind == "throttle":
            assert rule is not None  # a fault kind comes from a rule
            return self._throttle(status, headers, total, chunks, rule.link)
        if kind == "trickle":
            assert rule is not None
            self._start(status, headers, total)
            return self._trickle(chunks, rule.interval)
        limit = total // 2 if kind == "truncate" else total
        flips = _flip_positions(total) if kind == "corrupt" else set()
        sent, started = 0, False
        for chunk in chunks:
            chunk = chunk[: limit - sent]
            if flips:
                chunk = bytes(byte ^ 0xFF if sent + index in flips else byte for index, byte in enumerate(chunk))
            if started:
                self.wfile.write(chunk)
            else:
                self._start(status, headers, total, first=chunk)
                started = True
            sent += len(chunk)
            if sent >= limit:
                break
        if not started:
            self._start(status, headers, total)
        if kind == "truncate":
            self.wfile.flush()
            self._close_quietly()

    def _start(self, status: int, headers: list[tuple[str, str]], length: int | str | None, first: bytes = b"") -> None:
        """The status line and headers, and `first` bytes of the body in the same write."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        # send_header buffers here; the stub does not declare the attribute.
        self._headers_buffer.extend((b"\r\n", first))  # type: ignore[attr-defined]
        self.flush_headers()

    def _answer(
        self, status: int, headers: list[tuple[str, str]], payload: bytes, method: str, length: str | None = None
    ) -> None:
        self._start(
            status,
            headers,
            length if method == "HEAD" and length is not None else len(payload),
            first=payload if method != "HEAD" else b"",
        )

    def _trickle(self, chunks, interval: float) -> None:
        for chunk in chunks:
            for index in range(len(chunk)):
                if self.server.stopping.wait(interval):
                    return self._close_quietly()
                try:
                    self.wfile.write(chunk[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    return self._close_quietly()  # the client gave up, as it should

    def _throttle(self, status: int, headers: list[tuple[str, str]], length: int, chunks, link) -> None:
        """The body at the link's pace, in slices small enough that a client hanging up part way
        costs the link at most one slice it never read. The socket's send buffer is kept to a few
        slices: bytes are counted as sent when write() takes them, and a kernel buffer of megabytes
        would count as carried what a client that stopped reading never got."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _THROTTLE_SEND_BUFFER)
        self._start(status, headers, length)
        for chunk in chunks:
            for start in range(0, len(chunk), _THROTTLE_SLICE):
                piece = chunk[start : start + _THROTTLE_SLICE]
                if not link.pace(len(piece), self.server.stopping):
                    return self._close_quietly()
                try:
                    self.wfile.write(piece)
                except OSError:
                    return self._close_quietly()  # the client has what it wanted
                link.sent(len(piece))

    def _hang(self) -> None:
        """Never answer; return once the client hangs up (or the proxy stops)."""
        self.close_connection = True
        while not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                time.sleep(0.2)  # the client sent more (a pipelined request): still never answered

    def _reset(self) -> None:
        """RST instead of an answer: SO_LINGER with a zero timeout makes close() abort the connection."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close_quietly()

    def _close_quietly(self) -> None:
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _rewrite_location(self, name: str, value: str) -> str:
        if name.lower() == "location" and value.startswith(self.server.upstream):
            return f"http://127.0.0.1:{self.server.server_address[1]}{value[len(self.server.upstream) :]}"
        return value

    def _read_request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


# --- response and request rewriting for the list faults ---------------------------------------
def _strip_fault_token(split, body: bytes) -> tuple[str, bytes, str | None]:
    """A page token the proxy made up is not the backend's: forward the request without it (the
    backend serves its first page again) and remember it to decide the next made-up token."""
    query = parse_qsl(split.query, keep_blank_values=True)
    incoming = next(
        (value for name, value in query if name == "pageToken" and value.startswith(FAULT_TOKEN_PREFIX)), None
    )
    if incoming is not None:
        query = [(name, value) for name, value in query if name != "pageToken"]
    target = split.path + (f"?{urlencode(query)}" if query else "")
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        token = document.get("pageToken") if isinstance(document, dict) else None
        if isinstance(token, str) and token.startswith(FAULT_TOKEN_PREFIX):
            incoming = token
            del document["pageToken"]
            body = json.dumps(document).encode()
    return target, body, incoming


def _rewrite_json(raw: bytes, kind: str, incoming_token: str | None) -> bytes | None:
    """The list answer as the fault has it; None when it is not a JSON object (left untouched)."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    lists = [name for name, value in document.items() if isinstance(value, list)]
    if kind == "duplicate":
        for name in lists:
            document[name] = [item for item in document[name] for _ in (0, 1)]
    elif kind == "page_token_repeat":
        document["nextPageToken"] = f"{FAULT_TOKEN_PREFIX}A"
    elif kind == "page_token_cycle":
        document["nextPageToken"] = (
            f"{FAULT_TOKEN_PREFIX}B" if incoming_token == f"{FAULT_TOKEN_PREFIX}A" else f"{FAULT_TOKEN_PREFIX}A"
        )
    elif kind == "empty_pages":
        page = int(incoming_token[len(FAULT_TOKEN_PREFIX) :]) if incoming_token else 0
        if page:
            for name in lists:
                document[name] = []
        document["nextPageToken"] = f"{FAULT_TOKEN_PREFIX}{page + 1}"
    return json.dumps(document).encode()


def _flip_positions(length: int) -> set[int]:
    """A few bytes spread over the body: ASCII XOR 0xFF is never valid UTF-8 next to ASCII."""
    if length == 0:
        return set()
    return {length // 3, length // 2, (2 * length) // 3}


# --- the control server ------------------------------------------------------------------------
class _ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    book: FaultBook
    traffic: Traffic

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write("control: %s\n" % (fmt % args))

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path == f"{CONTROL_PREFIX}/health":
            return self._send(200, {"ok": True})
        if self.path == f"{CONTROL_PREFIX}/faults":
            return self._send(200, self.book.describe())
        if self.path == f"{CONTROL_PREFIX}/traffic":
            return self._send(200, self.traffic.describe())
        return self._send(404, {"error": f"no control endpoint GET {self.path}"})

    def do_DELETE(self) -> None:
        if self.path != f"{CONTROL_PREFIX}/traffic":
            return self._send(404, {"error": f"no control endpoint DELETE {self.path}"})
        self.traffic.reset()
        return self._send(200, self.traffic.describe())

    def do_PUT(self) -> None:
        if self.path != f"{CONTROL_PREFIX}/faults":
            return self._send(404, {"error": f"no control endpoint PUT {self.path}"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            self.book.replace(body.get("faults", []) if isinstance(body, dict) else body)
        except (ValueError, InputError) as exc:
            return self._send(400, {"error": str(exc)})
        return self._send(200, self.book.describe())

    do_POST = do_PUT  # noqa: N815


class FaultControl:
    """Reconfigure a running proxy: `set([{"fault": "status", "status": 503, "times": 2}])`."""

    def __init__(self, control_url: str):
        self.url = f"{control_url.rstrip('/')}{CONTROL_PREFIX}/faults"
        self.traffic_url = f"{control_url.rstrip('/')}{CONTROL_PREFIX}/traffic"

    def set(self, faults: list[dict]) -> dict:
        response = httpx.put(self.url, json={"faults": faults}, timeout=10)
        if response.status_code != 200:
            raise InputError(f"fault proxy refused the rules: {response.json().get('error', response.text)}")
        return response.json()

    def clear(self) -> dict:
        return self.set([])

    def status(self) -> dict:
        return httpx.get(self.url, timeout=10).raise_for_status().json()

    def traffic(self) -> dict:
        """{requests: {"METHOD endpoint": n}, total_requests, bytes}: what the proxy forwarded."""
        return httpx.get(self.traffic_url, timeout=10).raise_for_status().json()

    def reset_traffic(self) -> None:
        httpx.delete(self.traffic_url, timeout=10).raise_for_status()


# --- the process -------------------------------------------------------------------------------
class FaultProxy(LocalServer):
    """The proxy as a sandbox child: `address` replaces the backend's in SandboxInfo."""

    start_timeout = 20.0

    def __init__(
        self,
        root: Path,
        *,
        backend: str,
        kind: str,
        upstream: str,
        faults: list | None = None,
        parent_pid: int | None = None,
    ):
        super().__init__(Path(root) / f"faultproxy-{backend}")
        self.name = f"fault proxy for {backend}"
        self.log_name = "faultproxy.log"
        self.log_path = self.root / self.log_name
        self.backend, self.kind, self.upstream = backend, kind, upstream
        self.faults = faults or []
        self.parent_pid = parent_pid
        self.control_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}" if self.kind == "grpc" else f"http://127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def command(self, port: int) -> list[str]:
        self.control_port = free_port()
        faults_file = self.root / "faults.json"
        faults_file.write_text(json.dumps(self.faults), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "deploycheck.sandbox.faultproxy",
            "--kind",
            self.kind,
            "--upstream",
            self.upstream,
            "--port",
            str(port),
            "--control-port",
            str(self.control_port),
            "--faults",
            str(faults_file),
        ]
        return command + (["--parent-pid", str(self.parent_pid)] if self.parent_pid else [])

    def ready_probe(self, port: int):
        # The control server is bound after the proxied port: once it answers, both do.
        return http_probe(f"http://127.0.0.1:{self.control_port}{CONTROL_PREFIX}/health")


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("http", "grpc"), required=True)
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT (http) or HOST:PORT (grpc)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--faults", help="JSON file with the initial rules")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    book = FaultBook(json.loads(Path(args.faults).read_text(encoding="utf-8")) if args.faults else [])
    stopping = threading.Event()
    traffic = Traffic()
    if args.kind == "http":
        http_proxy = _ProxyServer(args.port, args.upstream, book, stopping, traffic)
        threading.Thread(target=http_proxy.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    else:
        from .faultproxy_grpc import serve_grpc

        _grpc_server = serve_grpc(args.port, args.upstream, book, stopping, traffic)  # kept: a collected server stops
    control = ThreadingHTTPServer(
        ("127.0.0.1", args.control_port), type("Control", (_ControlHandler,), {"book": book, "traffic": traffic})
    )
    control.daemon_threads = True
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    try:
        control.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

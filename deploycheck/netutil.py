"""Helpers for local servers: free ports and readiness polling without fixed sleeps."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path

_FIRST_POLL_INTERVAL = 0.005
_MAX_POLL_INTERVAL = 0.25


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log_path: Path | None, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or a note saying why there are none."""
    if log_path is None:
        return "(no log)"
    try:
        with open(log_path, errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip() or "(log is empty)"
    except OSError as exc:
        return f"(cannot read log {log_path}: {exc.strerror})"


def http_probe(url: str, *, expect_status: int = 200) -> Callable[[], bool]:
    """A readiness probe: True once GET `url` answers `expect_status`, False while it cannot connect."""

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if parts.scheme != "http" or host is None:
        raise ValueError(f"{url}: a readiness probe speaks plain http to a local server")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    def probe() -> bool:
        # http.client, not httpx: an httpx call builds a TLS context first, which costs more
        # than the whole exchange with a local server, and a run probes before it starts.
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=1.0)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == expect_status
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    return probe


def wait_until_ready(
    probe: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll `probe` with growing intervals until it returns True.

    Raises RuntimeError at once if `process` exits meanwhile (a server that died will never
    become ready), or after `timeout` seconds; both messages carry the tail of `log_path`.
    """
    deadline = time.monotonic() + timeout
    interval = _FIRST_POLL_INTERVAL
    while True:
        # Process first: a dead server's port may answer for someone else.
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {process.returncode} before becoming ready; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        if probe():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{what} not ready after {timeout:g}s; log {log_path}:\n{log_tail(log_path)}")
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, _MAX_POLL_INTERVAL)


def stop_process_group(pid: int, *, grace: float = 5.0, child: subprocess.Popen | None = None) -> None:
    """SIGTERM a process group (its leader started with start_new_session=True), SIGKILL what is
    left after `grace` seconds. Pass `child` when it is our own child so it is reaped, not left a
    zombie; stragglers of the group (a launcher's java, say) are killed either way."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        if child is not None:
            child.wait()
        return
    deadline = time.monotonic() + grace
    if child is not None:
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    else:
        while time.monotonic() < deadline and _group_exists(pid):
            time.sleep(0.02)  # not our child: nothing to wait on but the group's existence
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if child is not None:
        child.wait()
    # SIGKILL is asynchronous: return once no member of the group is still running, so "stopped"
    # means stopped (members that are only zombies, waiting for a parent to reap them, count as gone).
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _running_members(pid):
        time.sleep(0.01)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _running_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies (Linux /proc; elsewhere: none known)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp.
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members

"""A server the sandbox runs as a child process: free port, own process group, log file,
readiness polled (never slept for), a retry when another process takes the port first."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..netutil import free_port, stop_process_group, wait_until_ready

START_ATTEMPTS = 3  # free_port() cannot reserve the port: another process may bind it first
STOP_TIMEOUT = 5.0


class _PortTaken(Exception):
    pass


class LocalServer:
    """Subclasses say what to run on a port and how to tell it is ready; this runs it."""

    name = "server"
    log_name = "server.log"
    start_timeout = 10.0

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_path = self.root / self.log_name
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running_pid(self) -> int:
        """The pid of a started server; asking a stopped one is a bug, not a None to record."""
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def ready_probe(self, port: int) -> Callable[[], bool]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(START_ATTEMPTS):
            try:
                self._launch()
                return self
            except _PortTaken:
                continue
        raise RuntimeError(f"{self.name} could not bind a free port in {START_ATTEMPTS} attempts; log {self.log_path}")

    def _launch(self) -> None:
        self.port = free_port()
        command = self.command(self.port)
        with open(self.log_path, "ab") as log:
            log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
        try:
            wait_until_ready(
                self.ready_probe(self.port),
                timeout=self.start_timeout,
                what=f"{self.name} on port {self.port}",
                process=self._process,
                log_path=self.log_path,
            )
        except RuntimeError:
            self.stop()
            with open(self.log_path, errors="replace") as log:
                log.seek(log_offset)
                if "address already in use" in log.read().lower():
                    raise _PortTaken from None
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process.pid, grace=STOP_TIMEOUT, child=process)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

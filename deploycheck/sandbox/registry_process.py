"""The real CNCF distribution registry (`docker-registry serve`) on a free loopback port."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import yaml

from deploycheck.netutil import free_port, http_probe, stop_process_group, wait_until_ready

_BINARY = "docker-registry"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
# free_port() cannot reserve the port: another process may take it before the registry binds.
_START_ATTEMPTS = 3


class _PortTaken(Exception):
    """Another process bound the port between free_port() and the registry's listen()."""


class LocalRegistry:
    """A throwaway registry: filesystem storage under `root`, no auth, deletes enabled.

    Use as a context manager, or call start() and stop(). The process log is `root/registry.log`.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_path = self.root / "registry.log"
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalRegistry is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> "LocalRegistry":
        binary = shutil.which(_BINARY)
        if binary is None:
            raise RuntimeError(
                "docker-registry not found: apt-get install docker-registry "
                "(Debian package of the CNCF distribution registry)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(_START_ATTEMPTS):
            try:
                self._launch(binary)
                return self
            except _PortTaken:
                continue
        raise RuntimeError(
            f"docker-registry could not bind a free port in {_START_ATTEMPTS} attempts; log {self.log_path}"
        )

    def _launch(self, binary: str) -> None:
        self.port = free_port()
        config_path = self.root / "config.yml"
        config_path.write_text(yaml.safe_dump(self._config(self.port), sort_keys=False))
        # REGISTRY_* variables override the config file; a stray one must not change the sandbox.
        env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
        with open(self.log_path, "ab") as log:
            log_offset = log.tell()
            self._process = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_until_ready(
                http_probe(f"{self.url}/v2/"),
                timeout=_START_TIMEOUT,
                what=f"docker-registry on port {self.port}",
                process=self._process,
                log_path=self.log_path,
            )
        except RuntimeError:
            self.stop()
            with open(self.log_path, errors="replace") as log:
                log.seek(log_offset)
                if "address already in use" in log.read():
                    raise _PortTaken from None
            raise

    def _config(self, port: int) -> dict:
        return {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": f"127.0.0.1:{port}",
                # Upload state is signed with this; set it so the log has no "generated random secret" warning.
                "secret": secrets.token_hex(16),
            },
        }

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process.pid, grace=_STOP_TIMEOUT, child=process)

    def __enter__(self) -> "LocalRegistry":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

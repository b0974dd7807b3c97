"""The real CNCF distribution registry (`docker-registry serve`) on a free loopback port."""

from __future__ import annotations

import os
import secrets
import shutil

import yaml

from deploycheck.netutil import http_probe

from .local_server import LocalServer
from .needs import SandboxUnavailable

_BINARY = "docker-registry"


class LocalRegistry(LocalServer):
    """A throwaway registry: filesystem storage under `root`, no auth, deletes enabled.

    Use as a context manager, or call start() and stop(). The process log is `root/registry.log`.
    """

    name = "docker-registry"
    log_name = "registry.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalRegistry is not started")
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        binary = shutil.which(_BINARY)
        if binary is None:
            raise SandboxUnavailable("docker-registry (the CNCF distribution registry) not found on PATH")
        config_path = self.root / "config.yml"
        config_path.write_text(yaml.safe_dump(self._config(port), sort_keys=False))
        return [binary, "serve", str(config_path)]

    def environment(self) -> dict[str, str]:
        # REGISTRY_* variables override the config file; a stray one must not change the sandbox.
        environment = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
        # The registry stands in for Artifact Registry, whose CPU is not the run's; here it shares
        # the machine with the run. Collecting garbage less often cut its CPU per request by a
        # third (about 1.9 -> 1.3 ms) for some 10 MB more memory.
        environment.setdefault("GOGC", "400")
        return environment

    def ready_probe(self, port: int):
        return http_probe(f"http://127.0.0.1:{port}/v2/")

    def _config(self, port: int) -> dict:
        return {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                # What a blob is (its size, its media type) kept in memory instead of read from the
                # disk on every request: a fifth less CPU per request, taken from the run it serves.
                "cache": {"blobdescriptor": "inmemory"},
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

"""A private dockerd for the tests that need a docker engine: started if it can be, else a skip
that says why. vfs storage, no networking set-up, temp data-root; stopped and removed after."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from deploycheck.netutil import stop_process_group, wait_until_ready

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0
_API_VERSION = "1.41"


def _engine_client(socket: Path) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{socket}", version=_API_VERSION, timeout=60)


def _engine_answers(socket: Path) -> bool:
    if not socket.exists():
        return False
    client = _engine_client(socket)
    try:
        return client.ping()
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


@dataclass
class DockerEngine:
    client: docker.DockerClient
    host: str
    """What DOCKER_HOST must say for another process to reach this engine."""


@contextmanager
def dockerd_engine():
    """Yields a DockerEngine: a dockerd of our own, or a pytest.skip saying why there is none."""
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.skip("dockerd not found on PATH: the docker reader needs a docker engine (apt-get install docker.io)")
    if os.geteuid() != 0:
        pytest.skip(f"dockerd needs root and these tests run as uid {os.geteuid()}")
    # Short on purpose: unix socket paths (dockerd's and containerd's under exec-root) max out at 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="dc-dockerd-"))
    socket = root / "docker.sock"
    log_path = root / "dockerd.log"
    command = [
        binary,
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{socket}",
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--ip-forward=false",
        "--ip-masq=false",
        "--userland-proxy=false",
        "--containerd-namespace=deploycheck-tests",
        "--containerd-plugins-namespace=deploycheck-tests-plugins",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ready(
            lambda: _engine_answers(socket), timeout=_START_TIMEOUT, what="dockerd", process=process, log_path=log_path
        )
    except RuntimeError as exc:
        stop_process_group(process.pid, grace=_STOP_TIMEOUT, child=process)
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"dockerd failed to start: {exc}")
    client = _engine_client(socket)
    try:
        yield DockerEngine(client, f"unix://{socket}")
    finally:
        client.close()
        stop_process_group(process.pid, grace=_STOP_TIMEOUT, child=process)
        shutil.rmtree(root, ignore_errors=True)

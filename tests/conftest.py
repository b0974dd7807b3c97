"""Shared fixtures for the suite's own tests: the product as a user has it, and sandboxes.

`suite` lays the product (conftest.py, pytest.ini, services.yaml, checks/, fixtures/) into a
pytester directory and runs pytest there in a subprocess, exactly as a user would. Sandboxes
are started once per test session (per xdist worker) and handed to those runs through the
same reuse path `python -m deploycheck.sandbox up` uses, so most runs skip the start-up.
"""

from __future__ import annotations

import importlib
import json
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploycheck.inventory import load_inventory
from deploycheck.netutil import free_port
from deploycheck.sandbox.apiserver import ApiState, make_server
from deploycheck.sandbox.manager import Sandbox, SandboxInfo
from deploycheck.sandbox.registry_process import LocalRegistry

REPO = Path(__file__).resolve().parent.parent


def _import_lazy_transport_modules() -> None:
    """pytester restores sys.modules after each test, dropping modules first imported inside it.
    httpcore imports its socket backend on the first connect; if that happens inside a pytester
    test, the next test re-imports it and httpx no longer recognises its ConnectError. One
    refused connection here imports everything up front."""
    import httpx

    from deploycheck.netutil import free_port

    try:
        httpx.get(f"http://127.0.0.1:{free_port()}/", timeout=1)
    except httpx.TransportError:
        pass


_import_lazy_transport_modules()


def _import_client_libraries() -> None:
    """The readers import their Google client library on first use. First imported inside a
    pytester test, a library is dropped at its end, and importing it again in the same process
    fails: its protobuf descriptors are still registered ("duplicate file name ...proto")."""
    for library in (
        "google.cloud.firestore_v1",
        "google.cloud.logging",
        "google.cloud.resourcemanager_v3",
        "google.cloud.run_v2",
    ):
        importlib.import_module(library)


_import_client_libraries()
PRODUCT_FILES = ("conftest.py", "pytest.ini", "services.yaml", "services.schema.json", "checks", "fixtures")


class Sandboxes:
    def __init__(self, root: Path):
        self.root = root
        self.running: dict[str, tuple[Sandbox, Path]] = {}

    def state_file(self, scenario: str) -> Path:
        if scenario not in self.running:
            inventory = load_inventory(REPO / "services.yaml")
            sandbox = Sandbox(
                scenario,
                project=inventory.project,
                region=inventory.region,
                workdir=self.root / scenario.replace("/", "_"),
            )
            sandbox.start()
            self.running[scenario] = (sandbox, sandbox.state_path)
        return self.running[scenario][1]

    def info(self, scenario: str) -> SandboxInfo:
        return SandboxInfo.load(self.state_file(scenario))

    def stop_all(self) -> None:
        for sandbox, _ in self.running.values():
            sandbox.stop()
        self.running.clear()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real CNCF registry of the module's own: modules push and move tags freely."""
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def sandboxes(tmp_path_factory):
    pool = Sandboxes(tmp_path_factory.mktemp("sandboxes"))
    yield pool
    pool.stop_all()


@contextmanager
def serving(state: ApiState):
    """The API stand-in in a thread of this process, for tests that drive it with a client."""
    server = make_server(state, free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Suite:
    """The product checked out in a temp dir, run with pytest in a subprocess."""

    def __init__(self, pytester: pytest.Pytester, sandboxes: Sandboxes):
        self.pytester = pytester
        self.sandboxes = sandboxes
        self.path = pytester.path
        for name in PRODUCT_FILES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, self.path / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.path / name)

    def reuse_sandbox(self, scenario: str) -> SandboxInfo:
        """Point this checkout at a shared running sandbox, as `python -m deploycheck.sandbox up` would."""
        state = self.sandboxes.state_file(scenario)
        target = self.path / ".deploycheck" / "sandbox.json"
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(state, target)
        return SandboxInfo.load(state)

    @contextmanager
    def sandbox_without(self, part: str, workdir: Path):
        """A healthy sandbox of this test's own with one part ("registry", "firestore") stopped,
        handed to the runs through DEPLOYCHECK_SANDBOX_STATE: the backend-down case."""
        sandbox = Sandbox("healthy", project="nba-props-platform", region="us-west2", workdir=workdir)
        sandbox.start()
        try:
            getattr(sandbox, part).stop()
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("DEPLOYCHECK_SANDBOX_STATE", str(sandbox.state_path))
                yield sandbox
        finally:
            sandbox.stop()

    def run(self, *args: str, timeout: float = 300) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*args, timeout=timeout)

    def report(self, directory: str = "out") -> dict:
        return json.loads((self.path / directory / "report.json").read_text())


@pytest.fixture
def suite(pytester: pytest.Pytester, sandboxes: Sandboxes, monkeypatch) -> Suite:
    # The user's environment must not leak in: no sandbox state, no credentials.
    for name in ("DEPLOYCHECK_SANDBOX_STATE", "GOOGLE_APPLICATION_CREDENTIALS", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(pytester.path / ".gcloud-config"))
    monkeypatch.setenv("HOME", str(pytester.path))
    return Suite(pytester, sandboxes)


PHASE2_SCENARIO = """\
images:
  app:
    repository: us-west2-docker.pkg.dev/{{{{ project }}}}/nba-props/nba-phase2-raw-processors
    tags: [latest]
{image}
services:
  nba-phase2-raw-processors:
    image: us-west2-docker.pkg.dev/{{{{ project }}}}/nba-props/nba-phase2-raw-processors:latest
{service}
"""


def phase2_scenario(directory: Path, *, service: str, image: str = "") -> Path:
    """A scenario directory with one image `app` of phase2's repository and the phase2 service;
    `image` and `service` are the YAML lines that make the case (indented as in the file)."""
    directory.mkdir(parents=True)
    (directory / "scenario.yaml").write_text(PHASE2_SCENARIO.format(image=image.rstrip(), service=service.rstrip()))
    return directory


def findings_for(report: dict, check: str, resource: str) -> list[dict]:
    return [f for f in report["findings"] if f["check"] == check and f["resource"] == resource]


def registry_requests(info: SandboxInfo, methods: tuple[str, ...], path_part: str) -> int:
    """Requests the sandbox's real registry logged so far (its access log has a line per request)
    with one of `methods` on a /v2/ path containing `path_part`."""
    log = Path(info.workdir) / "registry" / "registry.log"
    return sum(
        1
        for line in log.read_text().splitlines()
        if line.startswith("127.0.0.1 - - ")
        and path_part in line
        and any(f'"{method} /v2/' in line for method in methods)
    )

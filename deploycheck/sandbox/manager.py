"""Start and stop the local stand-in project: real registry, real Firestore emulator, API
stand-in, scenario data.

`Sandbox(...).start()` builds the scenario's images in Python, pushes them through the real
registry's HTTP API, expands the scenario to Cloud Run v2 JSON and serves it. Everything it
starts is recorded in a state file (SandboxInfo) so another process can reuse it
(`python -m deploycheck.sandbox up`) or stop it (`... down`), and every child runs in its own
process group so stopping leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ..netutil import free_port, http_probe, stop_process_group, wait_until_ready
from . import fleet as fleets
from .faultproxy import FaultProxy
from .faultrules import BACKENDS
from .firestore_process import FirestoreEmulator, seed_documents
from .oci_builder import build_image, layer_from_files, push_image, push_oci_layout, random_layer
from .registry_process import LocalRegistry
from .registry_storage import RegistryStorage
from .scenario import (
    Scenario,
    expand_iam_policies,
    expand_iam_resources,
    expand_log_entries,
    expand_log_volume,
    expand_resources,
    load_scenario,
)
from .state import SandboxInfo
from .timeutil import rfc3339

STOP_GRACE_SECONDS = 5.0


class Sandbox:
    def __init__(
        self,
        scenario: str,
        *,
        project: str,
        region: str,
        workdir: Path | None = None,
        parent_pid: int | None = None,
        progress=None,
        fault_proxies: tuple[str, ...] = (),
    ):
        self.scenario_name = scenario
        self.project = project
        self.region = region
        # A temp workdir we made is removed on a clean stop; one that failed to start keeps its logs.
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="deploycheck-sandbox-"))
        self.parent_pid = parent_pid
        self.progress = progress or (lambda message: None)
        self.registry: LocalRegistry | None = None
        self.firestore: FirestoreEmulator | None = None
        self.api_process: subprocess.Popen | None = None
        self.info: SandboxInfo | None = None
        unknown = set(fault_proxies) - set(BACKENDS)
        if unknown:
            raise ValueError(f"fault_proxies: unknown backend(s) {sorted(unknown)}; known: {', '.join(BACKENDS)}")
        # Backends to put a fault proxy in front of even when the scenario lists no faults for them.
        self.fault_proxy_backends = tuple(fault_proxies)
        self.proxies: dict[str, FaultProxy] = {}

    def start(self) -> SandboxInfo:
        began = time.monotonic()
        timings: dict[str, float] = {}
        step = _Stopwatch(timings)
        with step("scenario"):
            scenario = load_scenario(self.scenario_name, project=self.project, region=self.region)
        # The emulator (a JVM) takes seconds to start and seed: meanwhile the images are built and
        # pushed and the API stand-in starts.
        firestore_start = None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-firestore")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._children_file.write_text("", encoding="ascii")
        try:
            if scenario.firestore:
                firestore_start = pool.submit(self._start_firestore, scenario, _Stopwatch(timings))
            with step("images"):
                bulk = self._write_bulk_images(scenario)
                self.registry = LocalRegistry(self.workdir / "registry").start()
                self._record_child(self.registry.pid)
                pushed = {**bulk, **self._push_images(scenario)}
            with step("api_state"):
                api_state = self.workdir / "api-state.json"
                api_state.write_text(
                    json.dumps(
                        {
                            "resources": expand_resources(scenario, pushed),
                            "iam_policies": expand_iam_policies(scenario),
                            "iam_resources": expand_iam_resources(scenario),
                            "log_entries": expand_log_entries(scenario),
                            "log_volume": expand_log_volume(scenario),
                        }
                    ),
                    encoding="utf-8",
                )
            api_port = free_port()
            api_url = f"http://127.0.0.1:{api_port}"
            command = [
                sys.executable,
                "-m",
                "deploycheck.sandbox.apiserver",
                "--state",
                str(api_state),
                "--port",
                str(api_port),
            ]
            if self.parent_pid:
                command += ["--parent-pid", str(self.parent_pid), "--also-kill-file", str(self._children_file)]
            log = open(self.workdir / "apiserver.log", "ab")  # noqa: SIM115 (the child holds it; closed in stop)
            self.api_process = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
            log.close()
            with step("apiserver"):
                wait_until_ready(
                    http_probe(f"{api_url}/_sandbox/health"),
                    timeout=60,
                    what="sandbox API stand-in",
                    process=self.api_process,
                    log_path=self.workdir / "apiserver.log",
                )
            if firestore_start is not None:
                with step("firestore_wait"):
                    firestore_start.result()
            with step("fault_proxies"):
                self._start_fault_proxies(scenario, api_url)
        except BaseException:
            self._owns_workdir = False
            if firestore_start is not None:
                firestore_start.exception()  # let it finish, so stop() sees what it started
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True)
        timings["total"] = round(time.monotonic() - began, 3)
        proxied = {backend: proxy.address for backend, proxy in self.proxies.items()}
        self.info = SandboxInfo(
            scenario=scenario.name,
            scenario_dir=str(scenario.directory),
            project=scenario.project,
            region=scenario.region,
            workdir=str(self.workdir),
            api_url=proxied.get("api", api_url),
            registry_url=proxied.get("registry", self.registry.url),
            firestore_host=proxied.get("firestore", self.firestore.host if self.firestore else None),
            pids={
                "registry": self.registry.running_pid,
                "apiserver": self.api_process.pid,
                **({"firestore": self.firestore.running_pid} if self.firestore else {}),
                **{f"faultproxy-{backend}": proxy.running_pid for backend, proxy in self.proxies.items()},
            },
            images=pushed,
            started_at=time.time(),
            fault_controls={backend: proxy.control_url for backend, proxy in self.proxies.items()},
            upstreams={backend: proxy.upstream for backend, proxy in self.proxies.items()},
            inventory=self._write_fleet_inventory(scenario),
            timings=timings,
        )
        self.info.save(self.state_path)
        self.progress(
            f"sandbox:{scenario.name} up in {time.monotonic() - began:.1f}s "
            f"(api {api_url}, registry {self.registry.url}, logs {self.workdir})"
        )
        return self.info

    def _registry(self) -> LocalRegistry:
        if self.registry is None:
            raise RuntimeError("the sandbox's registry is not running")
        return self.registry

    def _start_fault_proxies(self, scenario: Scenario, api_url: str) -> None:
        """A proxy only for the backends that asked for one: the normal path has no extra hop."""
        upstreams = {"api": ("http", api_url), "registry": ("http", self._registry().url)}
        if self.firestore:
            upstreams["firestore"] = ("grpc", self.firestore.host)
        for backend in dict.fromkeys([*scenario.faults, *self.fault_proxy_backends]):
            if backend not in upstreams:
                raise ValueError(
                    f"a fault proxy for {backend} was asked for, but sandbox:{scenario.name} runs no "
                    f"{backend} (its scenario seeds no Firestore documents)"
                )
            kind, upstream = upstreams[backend]
            self.proxies[backend] = FaultProxy(
                self.workdir,
                backend=backend,
                kind=kind,
                upstream=upstream,
                faults=scenario.faults.get(backend),
                parent_pid=self.parent_pid,
            )
        if self.proxies:  # each a Python process to start: side by side (stop() stops any that started)
            with ThreadPoolExecutor(max_workers=len(self.proxies), thread_name_prefix="sandbox-proxies") as pool:
                for started in [pool.submit(proxy.start) for proxy in self.proxies.values()]:
                    started.result()

    @property
    def state_path(self) -> Path:
        return self.workdir / "sandbox.json"

    @property
    def _children_file(self) -> Path:
        """Process groups the API stand-in kills if the sandbox's parent dies (--also-kill-file)."""
        return self.workdir / "children.pids"

    def _record_child(self, pid: int | None) -> None:
        with open(self._children_file, "a", encoding="ascii") as handle:
            handle.write(f"{pid}\n")

    def _start_firestore(self, scenario: Scenario, step: _Stopwatch) -> None:
        with step("firestore"):
            self.firestore = FirestoreEmulator(self.workdir / "firestore").start()
            self._record_child(self.firestore.pid)
        with step("firestore_seed"):
            for collection, documents in scenario.firestore.items():
                seed_documents(self.firestore.host, scenario.project, collection, documents)

    def _write_fleet_inventory(self, scenario: Scenario) -> str | None:
        if scenario.fleet is None:
            return None
        path = self.workdir / "services.yaml"
        path.write_text(
            fleets.inventory_yaml(scenario.fleet, project=scenario.project, region=scenario.region), encoding="utf-8"
        )
        return str(path)

    def _write_bulk_images(self, scenario: Scenario) -> dict[str, str]:
        """A fleet's images, straight into the registry's storage before it starts (registry_storage.py)."""
        storage = RegistryStorage(self.workdir / "registry" / "data")
        # Building is CPU, writing is ~30 small files a image: writers overlap the file system's latency.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-images") as writers:
            written = {
                image.key: writers.submit(storage.write, image.repository, _build(image), image.tags)
                for image in scenario.images
                if image.bulk
            }
            return {key: future.result() for key, future in written.items()}

    def _push_images(self, scenario: Scenario) -> dict[str, str]:
        pushed = {}
        with httpx.Client(timeout=60) as client:
            for image in scenario.images:
                if image.bulk:
                    continue
                if image.oci_layout:
                    pushed[image.key] = push_oci_layout(
                        image.oci_layout, self._registry().url, image.repository, image.tags
                    )
                    continue
                pushed[image.key] = push_image(
                    self._registry().url, image.repository, _build(image), image.tags, client=client
                )
        return pushed

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        self.proxies.clear()
        if self.api_process is not None:
            stop_process_group(self.api_process.pid, grace=STOP_GRACE_SECONDS, child=self.api_process)
            self.api_process = None
        for server in (self.registry, self.firestore):
            if server is not None:
                server.stop()
        self.registry = self.firestore = None
        if self._owns_workdir and self.info is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


class _Stopwatch:
    """`with step("name"):` records the seconds the block took into a dict."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name: str):
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - began, 3)


def _build(image):
    layers = []
    if image.base_layer_bytes:
        layers.append(_base_layer(image.base_layer_bytes, _seed(image.repository)))
    if image.base_files:
        layers.append(_files_layer(tuple(sorted(image.base_files.items()))))
    if image.files:
        layers.append(layer_from_files(image.files))
    return build_image(
        layers, labels=image.labels, annotations=image.annotations, created=rfc3339(image.created), env=image.env
    )


@functools.lru_cache(maxsize=8)
def _files_layer(files: tuple[tuple[str, bytes], ...]):
    """Base layers are shared by many images (a fleet's by all of them): build each once a process."""
    return layer_from_files(dict(files))


@functools.lru_cache(maxsize=2)
def _base_layer(size_bytes: int, seed: int):
    """Images of one repository share their base layer, as real ones do; build it once a process."""
    return random_layer(size_bytes, seed=seed)


def _seed(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "big")


def stop_recorded(info: SandboxInfo) -> None:
    """Stop a sandbox started by another process (`python -m deploycheck.sandbox down`)."""
    for pid in info.pids.values():
        stop_process_group(pid, grace=STOP_GRACE_SECONDS)
    shutil.rmtree(info.workdir, ignore_errors=True)

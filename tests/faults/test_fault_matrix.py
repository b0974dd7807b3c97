"""Every check against every fault on an endpoint it reads (see matrix.py for the verdicts).

One healthy sandbox with a fault proxy in front of each backend; LANES copies of the three
proxies share its backends so that several suite runs wait on their faults at once. The table
and the counts are written to fault-matrix.txt in the session's temp dir and shown in the
terminal summary (conftest.py), also under xdist.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from deploycheck.sandbox.faultproxy import FaultControl, FaultProxy
from deploycheck.sandbox.faultrules import BACKENDS
from deploycheck.sandbox.manager import Sandbox, SandboxInfo

from .matrix import ROWS, Config, Matrix, configurations, outcome, run_suite

pytestmark = pytest.mark.faults

LANES = int(os.environ.get("DEPLOYCHECK_FAULT_LANES", "4"))
# A regex over column labels ("logging:hang", "runquery:.*") to rerun part of the matrix.
ONLY = os.environ.get("DEPLOYCHECK_FAULT_ONLY")
MIN_CELLS = 150
_KINDS = {"api": "http", "registry": "http", "firestore": "grpc"}


class Lane:
    """One set of proxies (api, registry, firestore) and the state file that routes a run through it."""

    def __init__(self, state_file: Path, controls: dict[str, str], proxies: list[FaultProxy] = ()):
        self.state_file = state_file
        self.controls = {backend: FaultControl(url) for backend, url in controls.items()}
        self.proxies = list(proxies)

    @classmethod
    def extra(cls, info: SandboxInfo, root: Path) -> Lane:
        proxies = {
            backend: FaultProxy(root, backend=backend, kind=_KINDS[backend], upstream=info.upstreams[backend])
            for backend in BACKENDS
        }
        for proxy in proxies.values():
            proxy.start()
        lane_info = replace(
            info,
            api_url=proxies["api"].address,
            registry_url=proxies["registry"].address,
            firestore_host=proxies["firestore"].address,
            fault_controls={backend: proxy.control_url for backend, proxy in proxies.items()},
        )
        state_file = root / "sandbox.json"
        lane_info.save(state_file)
        return cls(state_file, lane_info.fault_controls, proxies.values())

    def configure(self, config: Config | None) -> None:
        for backend, control in self.controls.items():
            control.set(config.rules() if config and config.backend == backend else [])

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()


@pytest.fixture
def lanes(tmp_path):
    sandbox = Sandbox(
        "healthy", project="nba-props-platform", region="us-west2", workdir=tmp_path / "sandbox", fault_proxies=BACKENDS
    )
    info = sandbox.start()
    running = [Lane(sandbox.state_path, info.fault_controls)]
    try:
        for index in range(1, LANES):
            running.append(Lane.extra(info, tmp_path / f"lane{index}"))
        yield running
    finally:
        for lane in running:
            lane.stop()
        sandbox.stop()


def _run_all(checkout: Path, lanes: list[Lane], configs: list[Config]) -> list:
    pending: queue.Queue = queue.Queue()
    for index, config in enumerate(configs):
        pending.put((index, config))
    results: list = [None] * len(configs)

    def work(lane: Lane) -> None:
        while True:
            try:
                index, config = pending.get_nowait()
            except queue.Empty:
                return
            lane.configure(config)
            result = run_suite(checkout, lane.state_file, f"{index:03d}-{config.label.replace(':', '-')}", config)
            result.hits = sum(rule["hits"] for rule in lane.controls[config.backend].status()["faults"])
            results[index] = result
            lane.configure(None)

    threads = [threading.Thread(target=work, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_fault_matrix(suite, lanes, tmp_path_factory):
    baseline = run_suite(suite.path, lanes[0].state_file, "baseline", None)
    unhealthy = {row: outcome(baseline.findings.get(row, [])) for row in ROWS}
    assert set(unhealthy.values()) == {"pass"}, (
        f"the fault-free run must pass every check: {unhealthy}\n{baseline.output}"
    )

    configs = [config for config in configurations() if not ONLY or re.search(ONLY, config.label)]
    matrix = Matrix(_run_all(suite.path, lanes, configs), baseline)
    counts = matrix.counts()
    report = matrix.table()
    failures = matrix.failures()
    (tmp_path_factory.getbasetemp() / "fault-matrix.txt").write_text(
        "\n".join(["failing cells:", *failures, "", report]) + "\n"
    )
    print(report)
    assert ONLY or counts["N"] >= MIN_CELLS
    assert counts["0"] == 0, "faults that never fired prove nothing:\n" + "\n".join(failures)
    assert counts["F"] == counts["H"] == counts["U"] == 0, "\n".join([*failures, report])

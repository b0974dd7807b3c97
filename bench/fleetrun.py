"""One full deploycheck run against a generated fleet, measured at the sandbox side.

Shared by nightly.py and xdist.py. A fleet of N resources (half services, half jobs; see
deploycheck/sandbox/fleet.py) is started once with a fault proxy in front of every backend that
adds a fixed delay to each exchange (a Google API round trip; the registry may also be throttled
to a CI runner's pull rate). Then `pytest -m "postdeploy or nightly"` runs in a subprocess from an
empty directory, as a user with `pip install deploycheck` and the fleet's services.yaml would run
it; the sandbox is handed over through DEPLOYCHECK_SANDBOX_STATE, so its start-up is timed apart.

What the run cost is counted where nothing can hide it: the API stand-in counts its calls by
method and its list pages, the proxies count registry and Firestore requests and the bytes they
answered, and os.wait4 gives the peak RSS of the pytest process tree (the largest process in it:
the kernel keeps the maximum over a process and its waited-for descendants).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploycheck.sandbox.faultproxy import FaultControl
from deploycheck.sandbox.faultrules import FAULT_KINDS
from deploycheck.sandbox.fleet import write_fleet
from deploycheck.sandbox.manager import Sandbox
from deploycheck.target import SANDBOX_STATE_ENV

BACKENDS = ("api", "registry", "firestore")
LIST_COLLECTIONS = ("services", "revisions", "jobs", "executions", "tasks")
RUN_TIMEOUT_S = 3600


def byte_compile() -> None:
    """What `pip install` does for a wheel (this checkout is an editable install): the package's
    modules compiled once, so that every start reads bytecode, even under PYTHONDONTWRITEBYTECODE
    (common in CI images), which stops Python writing it itself."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "deploycheck", "deploycheck_pytest"],
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
        capture_output=True,
    )


def fleet_split(resources: int) -> tuple[int, int]:
    """(services, jobs): half and half, the odd one a service."""
    services = (resources + 1) // 2
    return services, resources - services


def default_failures(resources: int) -> dict[str, int]:
    """A few deliberate failures so the findings are not trivially all green: one of each kind per 250."""
    each = max(1, resources // 250)
    return {"boot_error": each, "traffic_pinned": each, "stale_job": each}


@dataclass
class FleetSandbox:
    resources: int
    root: Path
    latency_ms: float
    mbit: float | None
    failures: dict[str, int]

    def __enter__(self) -> FleetSandbox:
        services, jobs = fleet_split(self.resources)
        self.scenario_dir, self.inventory = write_fleet(
            self.root / "scenario", services=services, jobs=jobs, failures=self.failures
        )
        began = time.monotonic()
        self.sandbox = Sandbox(
            str(self.scenario_dir),
            project="fleet-project",
            region="us-central1",
            workdir=self.root / "sandbox",
            fault_proxies=BACKENDS,
        )
        self.info = self.sandbox.start()
        self.start_s = time.monotonic() - began
        self.controls = {backend: FaultControl(url) for backend, url in self.info.fault_controls.items()}
        self.throttled = False
        for backend, control in self.controls.items():
            rules = [{"fault": "delay", "ms": self.latency_ms}] if self.latency_ms > 0 else []
            if backend == "registry" and self.mbit and "throttle" in FAULT_KINDS:
                rules.append({"fault": "throttle", "mbit": self.mbit})
                self.throttled = True
            control.set(rules)
        return self

    def __exit__(self, *exc_info) -> None:
        self.sandbox.stop()

    def reset_counters(self) -> None:
        httpx.delete(f"{self.info.upstreams['api']}/_sandbox/calls", timeout=30).raise_for_status()
        for control in self.controls.values():
            control.reset_traffic()

    def counters(self) -> dict:
        api = httpx.get(f"{self.info.upstreams['api']}/_sandbox/calls", timeout=30).raise_for_status().json()
        traffic = {backend: control.traffic() for backend, control in self.controls.items()}
        return {"api": api, "traffic": traffic}

    def run(self, workdir: Path, *extra: str) -> dict:
        """One full run; its figures, report.json's findings and what the sandbox counted."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.reset_counters()
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "postdeploy or nightly",
            "--target",
            f"sandbox:{self.scenario_dir}",
            "--inventory",
            str(self.inventory),
            "--report-dir",
            str(workdir / "out"),
            "--cache-dir",
            str(workdir / "blob-cache"),
            "-p",
            "no:cacheprovider",
            "-q",
            *extra,
        ]  # a cold blob cache: every run reads what it needs
        env = {**os.environ, SANDBOX_STATE_ENV: str(self.sandbox.state_path)}
        load_before = os.getloadavg()[0]  # other work on the machine slows any run: say how busy it was
        sandbox_before = descendants_cpu_s()
        seconds, returncode, peak_rss_kb, cpu_s = run_measured(
            command, cwd=workdir, env=env, log=workdir / "pytest.log", timeout=RUN_TIMEOUT_S
        )
        sandbox_cpu_s = sum(
            spent - sandbox_before[pid] for pid, spent in descendants_cpu_s().items() if pid in sandbox_before
        )
        report_path = workdir / "out" / "report.json"
        if not report_path.is_file():
            raise RuntimeError(f"the run wrote no report (exit {returncode}); see {workdir / 'pytest.log'}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
        return {
            "seconds": seconds,
            "exit": returncode,
            "peak_rss_kb": peak_rss_kb,
            "cpu_s": cpu_s,
            "sandbox_cpu_s": sandbox_cpu_s,
            "report": report,
            "counters": self.counters(),
            "load_avg_1m": (round(load_before, 2), round(os.getloadavg()[0], 2)),
        }


def run_measured(
    command: list[str], *, cwd: Path, env: dict, log: Path, timeout: float
) -> tuple[float, int, int, float]:
    """Wall seconds, exit status, peak RSS (KiB) and CPU seconds of a command and its descendants."""
    with open(log, "wb") as output:
        began = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, process.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def descendants_cpu_s() -> dict[int, float]:
    """CPU seconds so far of each live process below this one: the sandbox's servers, whose CPU
    a run takes from the same cores (its own is counted by wait4 once it has ended)."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        spent[pid] = (int(fields[11]) + int(fields[12])) / ticks
    below, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    return {pid: spent[pid] for pid in below}


def collection_sizes(resources: int) -> dict[str, int]:
    """How many members each Cloud Run collection of a generated fleet has (fleet.py: two
    revisions a service, one execution a job)."""
    services, jobs = fleet_split(resources)
    return {"services": services, "revisions": 2 * services, "jobs": jobs, "executions": jobs, "tasks": 0}


def figures(resources: int, run: dict) -> dict:
    """The benchmark's line for one run: what it took and what it cost the sandbox."""
    api = run["counters"]["api"]
    traffic = run["counters"]["traffic"]
    calls = api["calls"]
    firestore_calls = traffic["firestore"]["total_requests"]
    lists = {route: entry for route, entry in api["lists"].items() if route.rsplit("/", 1)[-1] in LIST_COLLECTIONS}
    list_calls = sum(entry["calls"] for entry in lists.values())
    findings = run["report"].get("findings", [])
    outcomes: dict[str, int] = {}
    for finding in findings:
        outcomes[finding["outcome"]] = outcomes.get(finding["outcome"], 0) + 1
    return {
        "resources": resources,
        "seconds": round(run["seconds"], 2),
        "api_calls": sum(calls.values()) + firestore_calls,
        "list_calls": list_calls,
        "registry_requests": traffic["registry"]["total_requests"],
        "bytes": traffic["registry"]["bytes"],
        "peak_rss_mb": round(run["peak_rss_kb"] / 1024, 1),
        # Two cores serve the run and the sandbox: what each took of them.
        "cpu_s": round(run["cpu_s"], 2),
        "sandbox_cpu_s": round(run["sandbox_cpu_s"], 2),
        # What the figures above are made of, to check them and to find hot spots.
        "list_pages_needed": pages_needed(lists, collection_sizes(resources)),
        "list_calls_by_route": {route: entry["calls"] for route, entry in sorted(lists.items())},
        "log_queries": sum(n for route, n in calls.items() if route.endswith("entries:list")),
        "firestore_calls": firestore_calls,
        "api_bytes": traffic["api"]["bytes"] + traffic["firestore"]["bytes"],
        "calls_by_method": dict(sorted({**calls, **traffic["firestore"]["requests"]}.items())),
        "registry_by_method": dict(sorted(traffic["registry"]["requests"].items())),
        "findings": len(findings),
        "outcomes": outcomes,
        "exit": run["exit"],
        "load_avg_1m_before_after": run["load_avg_1m"],
    }


def pages_needed(lists: dict[str, dict], sizes: dict[str, int]) -> int:
    """The list calls that read each collection the run listed once, whole, at the largest page size
    it asked for: one per page of results. Listing a collection per parent (each service's
    revisions apart instead of `services/-/revisions`) or again in another worker costs more."""
    return sum(
        max(1, math.ceil(sizes[route.rsplit("/", 1)[-1]] / max(entry["page_sizes"]))) for route, entry in lists.items()
    )


def failing_findings(report: dict) -> set[tuple[str, str, str]]:
    return {(f["id"], f["check"], f["resource"]) for f in report.get("findings", []) if f["outcome"] != "pass"}

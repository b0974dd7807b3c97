"""Benchmark: the 250-resource full run with pytest-xdist `-n 1` and `-n 2`, against one sandbox
(bench/fleetrun.py: the same generated fleet, the same fixed delay on every API exchange).

The runs alternate, -n 1 then -n 2, --pairs times (a shared machine's speed drifts over minutes:
alternating exposes both to the same drift), each from a cold blob cache.

The last stdout line is JSON: `speedup` (the median seconds with -n 1 over the median with -n 2)
and `identical_findings` (every report holds the same findings, compared by id and outcome
whatever their order), with each run's figures as nightly.py reports them under `runs`, and the
CPU seconds the run and the sandbox took (`cpu_s_median`, `sandbox_cpu_s_median`): two cores
serve both, so a second worker gains only what the second core has left.

`control` is what xdist itself can gain on this machine for a suite of the same shape: plain
pytest (no deploycheck, no sandbox, no network, nothing shared), as many tests as the run has
findings, each spending the CPU the `-n 1` runs spent per finding beyond what pytest and xdist
spend on an empty test; the same alternation. The real run's speedup cannot exceed it by much:
it has the same work to spread and, besides, the sandbox's CPU on the same cores.

    .venv/bin/python bench/xdist.py [--resources 250] [--latency-ms 50] [--mbit 200] [--pairs 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetrun import RUN_TIMEOUT_S, FleetSandbox, byte_compile, default_failures, figures, run_measured


def findings_by_id(report: dict) -> dict[str, str]:
    return {finding["id"]: finding["outcome"] for finding in report.get("findings", [])}


def spend(loops: int) -> int:
    total = 0
    for number in range(loops):
        total += number * number % 7
    return total


# The control suite: plain tests that each run spend() for XDIST_CONTROL_LOOPS rounds.
CONTROL_SUITE = f"""
import os

import pytest

LOOPS = int(os.environ["XDIST_CONTROL_LOOPS"])


{inspect.getsource(spend)}

@pytest.mark.parametrize("number", range(int(os.environ["XDIST_CONTROL_TESTS"])))
def test_control(number):
    assert spend(LOOPS) >= 0
"""


def loops_per_cpu_second() -> float:
    """How many rounds of spend() this interpreter runs per CPU second (best of 5)."""
    best = 0.0
    for _ in range(5):
        began = time.process_time()
        spend(1_000_000)
        best = max(best, 1_000_000 / max(time.process_time() - began, 1e-9))
    return best


def control_speedup(workdir: Path, *, tests: int, cpu_s_n1: float, pairs: int) -> dict:
    """The control suite (see the module's docstring), -n 1 against -n 2."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "test_control.py").write_text(CONTROL_SUITE, encoding="utf-8")

    def run(workers: str, loops: int) -> tuple[float, float]:
        env = {**os.environ, "XDIST_CONTROL_TESTS": str(tests), "XDIST_CONTROL_LOOPS": str(loops)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:deploycheck"]
        seconds, returncode, _, cpu_s = run_measured(
            [*command, "-n", workers, "test_control.py"],
            cwd=workdir,
            env=env,
            log=workdir / f"pytest-n{workers}.log",
            timeout=RUN_TIMEOUT_S,
        )
        if returncode != 0:
            raise RuntimeError(f"the control suite failed (exit {returncode}); see {workdir}")
        return seconds, cpu_s

    _, empty_cpu_s = run("1", 0)
    per_test_s = max(0.0, cpu_s_n1 - empty_cpu_s) / tests
    loops = round(per_test_s * loops_per_cpu_second())
    seconds: dict[str, list[float]] = {"1": [], "2": []}
    for _ in range(pairs):
        for workers in ("1", "2"):
            seconds[workers].append(round(run(workers, loops)[0], 2))
    print(f"control: {tests} tests of {per_test_s * 1000:.2f} ms CPU each: {seconds}", flush=True)
    one, two = (statistics.median(seconds[workers]) for workers in ("1", "2"))
    return {
        "tests": tests,
        "cpu_ms_per_test": round(per_test_s * 1000, 2),
        "empty_suite_cpu_s_n1": round(empty_cpu_s, 2),
        "seconds": {f"n{workers}": runs for workers, runs in seconds.items()},
        "speedup": round(one / two, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=250, help="fleet size, services + jobs (default 250)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay per API exchange (default 50)")
    parser.add_argument(
        "--mbit",
        type=float,
        default=200.0,
        help="registry throughput cap, when the sandbox has the throttle fault (default 200)",
    )
    parser.add_argument("--pairs", type=int, default=3, help="alternating -n 1 / -n 2 pairs (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (reports, logs)")
    parser.add_argument("--no-control", action="store_true", help="skip the plain-pytest control suite")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="deploycheck-bench-xdist-"))
    runs, lines = {}, {}
    try:
        with FleetSandbox(
            args.resources, root / "fleet", args.latency_ms, args.mbit, default_failures(args.resources)
        ) as fleet:
            byte_compile()
            for pair in range(args.pairs):
                for workers in ("1", "2"):
                    run = fleet.run(root / f"run-{pair}-n{workers}", "-n", workers)
                    line = {"workers": int(workers), **figures(args.resources, run)}
                    runs.setdefault(workers, []).append(run)
                    lines.setdefault(workers, []).append(line)
                    print(
                        f"-n {workers}: {line['seconds']}s, {line['api_calls']} API calls, "
                        f"{line['registry_requests']} registry requests; CPU: run {line['cpu_s']}s, "
                        f"sandbox {line['sandbox_cpu_s']}s",
                        flush=True,
                    )
            throttled = fleet.throttled
        reports = [findings_by_id(run["report"]) for workers in ("1", "2") for run in runs[workers]]
        control = (
            None
            if args.no_control
            else control_speedup(
                root / "control",
                tests=len(reports[0]),
                cpu_s_n1=statistics.median(line["cpu_s"] for line in lines["1"]),
                pairs=args.pairs,
            )
        )
    finally:
        if args.keep:
            print(f"work directory: {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    for number, report in enumerate(reports[1:], start=1):
        differing = sorted(set(report.items()) ^ set(reports[0].items()))
        if differing:  # say which, so a difference can be looked into
            print(f"run {number} differs from run 0 in: {differing[:10]}", file=sys.stderr)
    one, two = (statistics.median(line["seconds"] for line in lines[workers]) for workers in ("1", "2"))
    print(
        json.dumps(
            {
                "resources": args.resources,
                "latency_ms": args.latency_ms,
                "mbit": args.mbit if throttled else None,
                "speedup": round(one / two, 3),
                "seconds_median": {"n1": one, "n2": two},
                # On two cores the run and the sandbox share: CPU seconds, medians per mode.
                "cpu_s_median": {
                    f"n{workers}": statistics.median(line["cpu_s"] for line in lines[workers]) for workers in ("1", "2")
                },
                "sandbox_cpu_s_median": {
                    f"n{workers}": statistics.median(line["sandbox_cpu_s"] for line in lines[workers])
                    for workers in ("1", "2")
                },
                "identical_findings": bool(reports[0]) and all(report == reports[0] for report in reports),
                "findings": len(reports[0]),
                "failing": sum(outcome != "pass" for outcome in reports[0].values()),
                "control": control,
                "runs": [line for pair in zip(lines["1"], lines["2"], strict=True) for line in pair],
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                },
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

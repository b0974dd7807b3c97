"""Benchmark: the full run (`pytest -m "postdeploy or nightly"`) over generated fleets of 25, 250
and 1,000 services + jobs, with a fixed delay on every exchange with a Google API (the Cloud Run,
Logging, IAM and Resource Manager stand-in, the Firestore emulator and the registry).

Each size gets its own sandbox (bench/fleetrun.py): half services, half jobs, a few deliberate
failures (one boot error, one service pinned to its previous revision and one stale job per 250
resources), so the report has real findings. The last stdout line is JSON:

  results   [{resources, seconds, api_calls, list_calls, registry_requests, bytes, peak_rss_mb, ...}]
            seconds: the pytest run, wall clock (sandbox start-up apart: sandbox_start_s);
            api_calls: every Google API call the sandbox served (Firestore RPCs included);
            list_calls: Cloud Run list pages; list_pages_needed: the pages that list each collection
            the run listed once, whole (one per page of results); bytes: registry bytes answered
  growth    per-resource cost at the largest size over the smallest (1.0: grows with the fleet)
  list_calls_one_per_page   list_calls == list_pages_needed at every size

    .venv/bin/python bench/nightly.py [--sizes 25,250,1000] [--latency-ms 50] [--mbit 200] [-n N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetrun import FleetSandbox, default_failures, failing_findings, figures, fleet_split

from deploycheck.sandbox.fleet import Fleet

GROWTH_METRICS = ("seconds", "api_calls", "list_calls", "registry_requests", "bytes", "log_queries")


def expected_failures(resources: int, failures: dict[str, int]) -> set[tuple[str, str]]:
    services, jobs = fleet_split(resources)
    fleet = Fleet.parse({"services": services, "jobs": jobs, "failures": failures}, "bench")
    return (
        {("boot", fleet.service_name(i)) for i in fleet.failing("boot_error")}
        | {("traffic", fleet.service_name(i)) for i in fleet.failing("traffic_pinned")}
        | {("stale-jobs", fleet.job_name(i)) for i in fleet.failing("stale_job")}
    )


def measure(resources: int, root: Path, *, latency_ms: float, mbit: float | None, workers: str | None) -> dict:
    failures = default_failures(resources)
    with FleetSandbox(resources, root / f"fleet-{resources}", latency_ms, mbit, failures) as fleet:
        run = fleet.run(root / f"run-{resources}", *(("-n", workers) if workers else ()))
        line = figures(resources, run)
        line["sandbox_start_s"] = round(fleet.start_s, 2)
        line["sandbox_start_steps"] = fleet.info.timings
        line["throttled"] = fleet.throttled
    seen = {(check, resource) for _, check, resource in failing_findings(run["report"])}
    line["failures_as_seeded"] = seen == expected_failures(resources, failures)
    return line


def growth(results: list[dict]) -> dict:
    small, large = results[0], results[-1]
    if small["resources"] == large["resources"]:
        return {}
    scale = large["resources"] / small["resources"]
    return {
        metric: round(large[metric] / small[metric] / scale, 3) if small[metric] else None for metric in GROWTH_METRICS
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="25,250,1000", help="fleet sizes, services + jobs (default 25,250,1000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay per API exchange (default 50)")
    parser.add_argument(
        "--mbit",
        type=float,
        default=200.0,
        help="registry throughput cap, when the sandbox has the throttle fault (default 200)",
    )
    parser.add_argument("-n", "--workers", default=None, help="pytest-xdist workers for the run (default: none)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (reports, logs)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    root = Path(tempfile.mkdtemp(prefix="deploycheck-bench-nightly-"))
    results = []
    try:
        for size in sizes:
            line = measure(size, root, latency_ms=args.latency_ms, mbit=args.mbit, workers=args.workers)
            results.append(line)
            print(
                f"{size} resources: {line['seconds']}s, {line['api_calls']} API calls "
                f"({line['list_calls']} list, {line['log_queries']} log queries), "
                f"{line['registry_requests']} registry requests, {line['bytes']} bytes, "
                f"{line['peak_rss_mb']} MB peak; sandbox up in {line['sandbox_start_s']}s",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"work directory: {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(
        json.dumps(
            {
                "latency_ms": args.latency_ms,
                "mbit": args.mbit if any(r["throttled"] for r in results) else None,
                "workers": args.workers,
                "results": results,
                "growth": growth(results),
                "list_calls_one_per_page": all(r["list_calls"] == r["list_pages_needed"] for r in results),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the 250-resource full run with pytest-xdist `-n 1` and `-n 2`, against one sandbox
(bench/fleetrun.py: the same generated fleet, the same fixed delay on every API exchange).

The last stdout line is JSON: `speedup` (seconds with -n 1 over seconds with -n 2) and
`identical_findings` (both reports hold the same findings, compared by id and outcome whatever
their order), with each run's figures as nightly.py reports them under `runs`.

    .venv/bin/python bench/xdist.py [--resources 250] [--latency-ms 50] [--mbit 200]
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

from fleetrun import FleetSandbox, default_failures, figures


def findings_by_id(report: dict) -> dict[str, str]:
    return {finding["id"]: finding["outcome"] for finding in report.get("findings", [])}


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
    parser.add_argument("--keep", action="store_true", help="keep the work directory (reports, logs)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="deploycheck-bench-xdist-"))
    runs, lines = {}, {}
    try:
        with FleetSandbox(
            args.resources, root / "fleet", args.latency_ms, args.mbit, default_failures(args.resources)
        ) as fleet:
            for workers in ("1", "2"):
                runs[workers] = fleet.run(root / f"run-n{workers}", "-n", workers)
                lines[workers] = {"workers": int(workers), **figures(args.resources, runs[workers])}
                print(
                    f"-n {workers}: {lines[workers]['seconds']}s, {lines[workers]['api_calls']} API calls, "
                    f"{lines[workers]['registry_requests']} registry requests",
                    flush=True,
                )
            throttled = fleet.throttled
    finally:
        if args.keep:
            print(f"work directory: {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    one, two = findings_by_id(runs["1"]["report"]), findings_by_id(runs["2"]["report"])
    print(
        json.dumps(
            {
                "resources": args.resources,
                "latency_ms": args.latency_ms,
                "mbit": args.mbit if throttled else None,
                "speedup": round(lines["1"]["seconds"] / lines["2"]["seconds"], 3),
                "identical_findings": bool(one) and one == two,
                "findings": len(one),
                "failing": sum(outcome != "pass" for outcome in one.values()),
                "runs": [lines["1"], lines["2"]],
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

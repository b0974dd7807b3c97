"""Benchmark: how long pytest takes to start a deploycheck run, in an installed (wheel) copy.

Builds a wheel of this checkout, installs it into a venv of its own (tests/installed.py), and
runs `python -m pytest --co -q -m postdeploy --service S` in a project holding only
services.yaml, as a team that did `pip install deploycheck` would. Each run is timed (wall and
CPU of the child); one more run with `-X importtime` says where the import time goes, and a
probe counts the deploycheck modules pytest's assertion rewriter loaded. PYTHONDONTWRITEBYTECODE=1
(as in most CI images) is the default: nothing cached between runs, as on a fresh runner.

    .venv/bin/python bench/startup.py [--runs 5] [--bytecode]

The last line is JSON: wall_s (median), cpu_s (median), runs, rewritten_library_modules,
rewritten_modules, importtime_ms (self time summed: total, deploycheck, google, pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from installed import LOADERS_PROBE, install_copy, project

SERVICE = "nba-phase2-raw-processors"
ARGS = ["--co", "-q", "-m", "postdeploy", "--service", SERVICE]


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), run


def import_times(stderr: str) -> dict[str, float]:
    """Self time of every import, summed by family (milliseconds)."""
    sums = {"total": 0.0, "deploycheck": 0.0, "google": 0.0, "pytest": 0.0}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|", 2)
        name = name.strip()
        microseconds = int(self_us.strip())
        sums["total"] += microseconds / 1000
        top = name.split(".")[0]
        if top in ("deploycheck", "deploycheck_pytest"):
            sums["deploycheck"] += microseconds / 1000
        elif top in ("google", "grpc", "proto"):
            sums["google"] += microseconds / 1000
        elif top in ("pytest", "_pytest", "pluggy", "xdist"):
            sums["pytest"] += microseconds / 1000
    return {key: round(value, 1) for key, value in sums.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--bytecode", action="store_true", help="let Python and pytest cache bytecode (a warm developer machine)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deploycheck-startup-"))
    python = install_copy(work)
    where = project(work / "project")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DEPLOYCHECK_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not args.bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    walls, cpus = [], []
    for _ in range(args.runs):
        wall, cpu, _ = timed([str(python), "-m", "pytest", *ARGS], where, env)
        walls.append(wall)
        cpus.append(cpu)
    _, _, traced = timed([str(python), "-X", "importtime", "-m", "pytest", *ARGS], where, env)
    (work / "probe.py").write_text(LOADERS_PROBE)
    _, _, probed = timed([str(python), str(work / "probe.py"), *ARGS], where, env)
    probe = json.loads(next(line for line in probed.stdout.splitlines() if line.startswith("PROBE "))[6:])
    figures = {
        "wall_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "runs": args.runs,
        "bytecode_cached": args.bytecode,
        "rewritten_library_modules": len([n for n in probe["rewritten"] if n.split(".")[0] == "deploycheck"]),
        "rewritten_modules": len(probe["rewritten"]),
        "importtime_ms": import_times(traced.stderr),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmarks still run and still meet their targets (ratios and byte counts, not times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_image_read_bench_reads_under_one_percent_and_nothing_when_warm():
    run = subprocess.run([sys.executable, str(BENCH / "image_read.py")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(figures) >= {"bytes_read", "image_bytes", "ratio", "cold_s", "warm_s", "warm_bytes_read", "full_pull_s"}
    assert figures["image_bytes"] > 100 * 1024 * 1024
    assert figures["ratio"] <= 0.01
    assert figures["warm_bytes_read"] == 0 and figures["requests_warm"] == 0
    assert figures["layers_opened"] == 1 < figures["layers_total"]

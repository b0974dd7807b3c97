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


def test_gate_bench_reads_within_a_fifth_of_the_floor_and_prints_its_figures():
    """A tiny configuration: the realistic image at 0.2 scale behind a 25 Mbit/s registry. What the
    proxy sent includes what sat in socket buffers when the reader stopped, which grows with the
    link's rate times however long a busy machine leaves the reader unscheduled: a slow link
    keeps that within the margin here. The keys, the gate green, the by-hand procedure's 13 calls,
    and the bytes ratios; times are printed, not judged."""
    run = subprocess.run([sys.executable, str(BENCH / "gate.py"), "--scale", "0.2", "--mbit", "25"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(figures) >= {"api_calls", "registry_bytes", "floor_bytes", "gate_s", "naive_s", "speedup_vs_naive"}
    assert figures["gate_exit"] == 0 and figures["naive_api_calls"] == 13 and figures["api_calls"] > 0
    floor = figures["floor_bytes"]
    assert figures["client_bytes"] <= 1.1 * floor  # the reader's own count: chunk granularity only
    assert floor <= figures["registry_bytes"] <= 1.2 * floor, figures
    assert figures["registry_bytes"] < figures["image_bytes"] / 10

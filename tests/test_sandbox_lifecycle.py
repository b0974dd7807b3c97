"""The sandbox as users drive it: `python -m deploycheck.sandbox up/down`, reuse, clean exits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deploycheck.sandbox.manager import SandboxInfo

PHASE2 = "nba-phase2-raw-processors"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.05)  # polling process exit; nothing to wait on for a non-child
    return alive


def test_up_then_pytest_reuses_it_then_down_stops_everything(suite):
    cli = [sys.executable, "-m", "deploycheck.sandbox"]
    up = subprocess.run([*cli, "up", "healthy"], cwd=suite.path, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    info = SandboxInfo.load(suite.path / ".deploycheck" / "sandbox.json")
    try:
        again = subprocess.run([*cli, "up", "healthy"], cwd=suite.path, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "already running" in again.stderr

        status = subprocess.run([*cli, "status"], cwd=suite.path, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "healthy" in status.stdout

        result = suite.run(
            "-m",
            "postdeploy",
            "--service",
            PHASE2,
            "--target",
            "sandbox:healthy",
            "--pyargs",
            "deploycheck_pytest.checks.test_cloudrun",
        )
        assert result.ret == 0
        assert "reusing sandbox:healthy" in result.stderr.str()
        assert "up in" not in result.stderr.str()  # it did not start a second one
        calls = httpx.get(f"{info.api_url}/_sandbox/calls").json()
        assert calls["calls"], "the run must have read from the recorded sandbox"
        assert calls["write_attempts"] == []  # read-only, always
    finally:
        down = subprocess.run([*cli, "down"], cwd=suite.path, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert _wait_gone(info.pids.values()) == []
    assert not (suite.path / ".deploycheck" / "sandbox.json").exists()


def test_killed_pytest_leaves_no_sandbox_process(suite):
    """Even kill -9 of the pytest that started it: the stand-in notices and takes the registry down."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "postdeploy",
            "--target",
            "sandbox:healthy",
            "--wait",
            "600",
            "-p",
            "no:cacheprovider",
        ],
        cwd=suite.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()  # the sandbox announces itself once it is up
        match = re.search(r"logs (\S+)\)", line)
        assert match, line
        info_file = Path(match.group(1)) / "sandbox.json"
        info = SandboxInfo.load(info_file)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert _wait_gone(info.pids.values()) == []


def test_unknown_scenario_is_a_usage_error_listing_the_known_ones(suite):
    result = suite.run("--target", "sandbox:incidnet")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown sandbox scenario 'incidnet'" in result.stderr.str()
    assert "healthy, incident" in result.stderr.str()


def test_custom_check_from_the_readme_runs_with_the_inventory_and_the_report(suite):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = re.search(r"```python\n# checks/test_custom.py\n(.*?)```", readme, re.S).group(1)
    (suite.path / "checks" / "test_custom.py").write_text(snippet)
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--report-dir",
        "out",
        "checks/test_custom.py",
        "-v",
    )
    assert result.ret == 1  # the healthy scenario has no tier label: the custom check says so
    assert f"checks/test_custom.py::test_min_instances_label[{PHASE2}] FAILED" in result.stdout.str()
    [finding] = suite.report()["findings"]
    assert finding["check"] == "tier-label" and finding["outcome"] == "fail"
    assert finding["remediation"].startswith(f"gcloud run services update {PHASE2} --update-labels tier=critical")

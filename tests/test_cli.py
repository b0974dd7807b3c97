"""The `deploycheck` command as a team runs it: gate, nightly, inventory, sandbox, exit codes.

Each run is the venv's console script in a subprocess, in a pytester directory holding the
product (the `suite` fixture: no credentials, HOME of its own), against a shared sandbox."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

import deploycheck
from deploycheck.cli import build_parser
from deploycheck.cli.checks import gate_arguments, nightly_arguments
from deploycheck.sandbox.manager import SandboxInfo

REPO = Path(__file__).resolve().parent.parent
BAD = REPO / "tests" / "bad_inventory"
PHASE2 = "nba-phase2-raw-processors"
CONSOLE_SCRIPT = Path(sys.executable).parent / "deploycheck"


def deploycheck_command(*args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def outcomes(output: str) -> dict[str, int]:
    """pytest's last line ("3 failed, 7 passed, 4 deselected in 1.2s") as counts."""
    last = [line for line in output.splitlines() if line.startswith("=") or re.match(r"^\d+ \w+", line)][-1]
    return {word: int(count) for count, word in re.findall(r"(\d+) (passed|failed|errors?|deselected|skipped)", last)}


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stdout + done.stderr and "INTERNALERROR" not in done.stdout + done.stderr


# ---- the command itself


def test_the_version_is_written_once_and_shown(tmp_path):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("deploycheck") == deploycheck.__version__
    for command in ([str(CONSOLE_SCRIPT)], [sys.executable, "-m", "deploycheck"]):
        done = subprocess.run([*command, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout) == (0, f"deploycheck {deploycheck.__version__}\n")


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "usage: deploycheck"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("gate",), "the following arguments are required: SERVICE"),
        (("gate", "svc", "--wait", "soon"), "argument --wait: expected a number of seconds, got 'soon'"),
        (("gate", "svc", "--fail-on", "P5"), "argument --fail-on: 'P5': expected one of P0, P1, P2, P3"),
        (("inventory",), "the following arguments are required: COMMAND"),
        (("inventory", "check", "--", "-x"), "takes no arguments after `--`"),
        (("sandbox", "up", "incidnet"), "unknown sandbox scenario 'incidnet': not a directory and not one of"),
    ],
)
def test_bad_usage_is_exit_4_with_the_reason_and_no_traceback(tmp_path, args, message):
    done = deploycheck_command(*args, cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    assert message in done.stderr
    no_traceback(done)


def test_gate_and_nightly_pass_every_named_option_to_pytest_as_one_argument():
    parser = build_parser()
    args = parser.parse_args(
        [
            "gate",
            "svc-a",
            "svc-b",
            "--expect-commit",
            "ce269d67",
            "--wait",
            "600",
            "--inventory",
            "/srv/inv.yaml",
            "--target",
            "sandbox:auto",
            "--report-dir",
            "/srv/out",
            "--previous",
            "/srv/last",
            "--history",
            "/srv/history",
            "--fail-on",
            "p1",
            "--project",
            "p",
            "--region",
            "r",
            "--shard",
            "2/4",
            "-n",
            "2",
        ]
    )
    args.pytest_args = ["-k", "traffic"]
    assert gate_arguments(args) == [
        "-m",
        "postdeploy",
        "--service=svc-a",
        "--service=svc-b",
        "-p",
        "xdist",
        "--numprocesses=2",
        "--expect-commit=ce269d67",
        "--wait=600.0",
        "--inventory=/srv/inv.yaml",
        "--target=sandbox:auto",
        "--report-dir=/srv/out",
        "--previous=/srv/last",
        "--history=/srv/history",
        "--fail-on=P1",
        "--project=p",
        "--region=r",
        "--shard=2/4",
        "-k",
        "traffic",
    ]
    args = parser.parse_args(["nightly", "--report-dir", "/srv/out"])
    args.pytest_args = []
    assert nightly_arguments(args) == ["-m", "nightly", "--report-dir=/srv/out"]


# ---- gate and nightly against the sandbox


def test_gate_is_pytest_m_postdeploy_for_the_service(suite, tmp_path):
    suite.reuse_sandbox("incident")
    reports = tmp_path / "reports"
    reports.mkdir()  # an existing absolute directory, written with a space
    gate = deploycheck_command(
        "gate", PHASE2, "--target", "sandbox:incident", "--report-dir", str(reports), cwd=suite.path
    )
    plain = suite.run("-m", "postdeploy", "--service", PHASE2, "--target", "sandbox:incident", "--report-dir", "out")
    assert gate.returncode == plain.ret == 1, gate.stdout
    assert outcomes(gate.stdout) == outcomes(plain.stdout.str())
    assert outcomes(gate.stdout)["failed"] >= 1
    found = {
        (f["check"], f["resource"], f["outcome"]) for f in json.loads((reports / "report.json").read_text())["findings"]
    }
    assert found == {(f["check"], f["resource"], f["outcome"]) for f in suite.report()["findings"]}
    assert {resource for _, resource, _ in found} == {PHASE2}


def test_gate_fail_on_lets_lower_failures_pass(suite):
    suite.reuse_sandbox("incident")
    gate = deploycheck_command("gate", PHASE2, "--target", "sandbox:incident", "--fail-on", "P0", cwd=suite.path)
    failed = outcomes(gate.stdout)["failed"]
    assert gate.returncode == 0, gate.stdout
    assert f"{failed} failures below --fail-on P0 do not fail the run" in gate.stdout


def test_gate_is_green_on_the_healthy_stand_in(suite):
    suite.reuse_sandbox("healthy")
    gate = deploycheck_command("gate", PHASE2, "--target", "sandbox:healthy", "-n", "2", cwd=suite.path)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert outcomes(gate.stdout)["passed"] >= 5 and "failed" not in outcomes(gate.stdout)


@pytest.mark.parametrize("form", ["space", "equals"])
def test_an_empty_expect_commit_is_refused_not_passed(suite, form):
    argument = ["--expect-commit", ""] if form == "space" else ["--expect-commit="]
    gate = deploycheck_command("gate", PHASE2, "--target", "sandbox:incident", *argument, cwd=suite.path)
    plain = suite.run("-m", "postdeploy", "--service", PHASE2, "--target", "sandbox:incident", *argument)
    assert gate.returncode == plain.ret == pytest.ExitCode.USAGE_ERROR
    for output in (gate.stderr, plain.stderr.str()):
        assert "argument --expect-commit: is empty" in output and "$GITHUB_SHA" in output
    no_traceback(gate)


def test_a_gate_that_selects_nothing_is_an_error_with_a_hint(suite):
    suite.reuse_sandbox("healthy")
    gate = deploycheck_command(
        "gate", PHASE2, "--target", "sandbox:healthy", "--", "-k", "no_such_check", cwd=suite.path
    )
    assert gate.returncode == pytest.ExitCode.NO_TESTS_COLLECTED
    assert f"`deploycheck gate {PHASE2}` selected no check, so it proves nothing" in gate.stderr
    assert f"deploycheck gate {PHASE2} -- --collect-only -q" in gate.stderr


def test_gate_without_credentials_says_how_to_log_in(suite):
    # The suite fixture removed GOOGLE_APPLICATION_CREDENTIALS and gave HOME and CLOUDSDK_CONFIG empty directories.
    gate = deploycheck_command("gate", PHASE2, cwd=suite.path)
    assert gate.returncode == pytest.ExitCode.USAGE_ERROR
    assert "gcloud auth application-default login" in gate.stdout + gate.stderr
    no_traceback(gate)


def test_nightly_twice_into_an_existing_report_dir_gives_the_same_answer(suite, tmp_path):
    suite.reuse_sandbox("healthy")
    reports = tmp_path / "srv" / "reports"
    reports.mkdir(parents=True)
    runs = [
        deploycheck_command(
            "nightly",
            "--target",
            "sandbox:healthy",
            "--report-dir",
            str(reports),
            "--previous",
            str(reports),
            cwd=suite.path,
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stdout + runs[-1].stderr
    assert outcomes(runs[0].stdout) == outcomes(runs[1].stdout)
    assert outcomes(runs[0].stdout)["passed"] >= 1
    assert "0 new, 0 still failing, 0 fixed" in runs[1].stdout
    assert (reports / "report.json").is_file() and not (reports / ".pytest_cache").exists()


# ---- inventory


@pytest.mark.parametrize("name", ["alias_bomb.yaml", "not_utf8.yaml"])
def test_inventory_check_and_pytest_agree_on_a_bad_file(suite, name):
    path = BAD / name
    check = deploycheck_command("inventory", "check", str(path), cwd=suite.path)
    plain = suite.run("-m", "postdeploy", "--inventory", str(path))
    assert check.returncode == plain.ret == pytest.ExitCode.USAGE_ERROR
    assert check.stdout == ""
    first_error = check.stderr.splitlines()[0]
    assert first_error.startswith(f"{path}:") and first_error in plain.stderr.str()
    no_traceback(check)


def test_inventory_check_of_a_good_file_and_the_old_command_name(suite):
    check = deploycheck_command("inventory", "check", cwd=suite.path)
    assert (check.returncode, check.stdout) == (0, "services.yaml: 6 services, 21 jobs, OK\n")
    old = subprocess.run(
        [sys.executable, "-m", "deploycheck", "check-inventory"],
        cwd=suite.path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (old.returncode, old.stdout) == (0, check.stdout)


def test_inventory_schema_is_the_committed_schema(tmp_path):
    schema = deploycheck_command("inventory", "schema", cwd=tmp_path)
    assert schema.returncode == 0
    assert schema.stdout == (REPO / "services.schema.json").read_text()


# ---- sandbox


def test_sandbox_up_then_gate_reuses_it_then_down(suite):
    up = deploycheck_command("sandbox", "up", "healthy", cwd=suite.path, timeout=180)
    assert up.returncode == 0, up.stderr
    info = SandboxInfo.load(suite.path / ".deploycheck" / "sandbox.json")
    try:
        again = deploycheck_command("sandbox", "up", "healthy", cwd=suite.path)
        assert again.returncode == 1 and "run `deploycheck sandbox down` first" in again.stderr
        status = deploycheck_command("sandbox", "status", cwd=suite.path)
        assert status.returncode == 0 and "healthy" in status.stdout
        gate = deploycheck_command("gate", PHASE2, "--target", "sandbox:healthy", cwd=suite.path)
        assert gate.returncode == 0, gate.stdout
        assert "reusing sandbox:healthy" in gate.stdout + gate.stderr
        assert httpx.get(f"{info.api_url}/_sandbox/calls").json()["calls"]
        other = deploycheck_command("sandbox", "down", "incident", cwd=suite.path)
        assert other.returncode == 1 and "is sandbox:healthy, not incident; nothing stopped" in other.stderr
        assert info.is_healthy()
    finally:
        down = deploycheck_command("sandbox", "down", "healthy", cwd=suite.path)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not (suite.path / ".deploycheck" / "sandbox.json").exists()
    assert deploycheck_command("sandbox", "status", cwd=suite.path).returncode == 1


def test_a_missing_sandbox_program_says_what_to_install(suite, tmp_path):
    """A production install on a machine without the sandbox's Debian programs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("java", "gcloud"):  # present, so the registry is what is missing
        found = subprocess.run(["sh", "-c", f"command -v {program}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / program).symlink_to(found)
    up = deploycheck_command("sandbox", "up", "healthy", cwd=suite.path, PATH=str(bin_dir))
    gate = deploycheck_command("gate", PHASE2, "--target", "sandbox:healthy", cwd=suite.path, PATH=str(bin_dir))
    assert up.returncode == gate.returncode == pytest.ExitCode.USAGE_ERROR
    for output in (up.stderr, gate.stdout + gate.stderr):
        assert "docker-registry (the CNCF distribution registry) not found on PATH" in output
        assert "pip install 'deploycheck[sandbox]'" in output and "apt-get install docker-registry" in output
    no_traceback(up)
    no_traceback(gate)


@pytest.mark.parametrize("content", ["{truncated", "[1, 2]", '{"scenario": "healthy"}'])
def test_an_unreadable_sandbox_state_file_is_named_not_a_traceback(suite, content):
    state = suite.path / ".deploycheck" / "sandbox.json"
    state.parent.mkdir()
    state.write_text(content)
    for command in (("sandbox", "status"), ("sandbox", "down"), ("gate", PHASE2, "--target", "sandbox:healthy")):
        done = deploycheck_command(*command, cwd=suite.path)
        assert done.returncode == 4, (command, done.stdout, done.stderr)
        assert "sandbox.json: not a sandbox state file this deploycheck can read" in done.stdout + done.stderr
        assert "delete it and start the sandbox again" in done.stdout + done.stderr
        no_traceback(done)

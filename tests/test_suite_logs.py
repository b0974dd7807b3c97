"""Log checks run as a user runs them, against the Logging stand-in and the real client."""

from __future__ import annotations

import re

import httpx
import pytest

from conftest import findings_for

PHASE2 = "nba-phase2-raw-processors"
LOG_CHECKS = "boot or heartbeat_log or log_visibility"


def test_incident_each_seeded_log_fault_is_red(suite):
    suite.reuse_sandbox("incident")
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 1
    report = suite.report()
    failing = {(f["check"], f["resource"]) for f in report["findings"] if f["outcome"] != "pass"}
    assert failing == {("boot", "nba-phase3-analytics-processors"), ("boot", "prediction-worker"),
                       ("heartbeat-log", PHASE2), ("log-visibility", "prediction-coordinator")}
    [phase3] = findings_for(report, "boot", "nba-phase3-analytics-processors")
    assert phase3["severity"] == "P0" and "cannot import name 'firestore' from 'google.cloud'" in phase3["summary"]
    assert phase3["remediation"].startswith("gcloud logging read 'resource.type=\"cloud_run_revision\"")
    [heartbeats] = findings_for(report, "heartbeat-log", PHASE2)
    assert "NbacTeamBoxscoreProcessor_None_a7ac21c9" in heartbeats["summary"]
    [blackout] = findings_for(report, "log-visibility", "prediction-coordinator")
    assert "gunicorn" in blackout["summary"]


def test_healthy_log_checks_pass(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--target", "sandbox:healthy")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=6 + 4 + 6)  # boot and visibility for 6 services, heartbeats for the 4 that log them


def test_three_log_checks_of_one_service_make_five_bounded_logging_calls(suite):
    """boot: its error lines + the latest line of the serving revision; heartbeat-log: the
    old-format lines + the latest expected line; log-visibility: the latest INFO line."""
    info = suite.reuse_sandbox("healthy")
    httpx.delete(f"{info.api_url}/_sandbox/calls").raise_for_status()
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--target", "sandbox:healthy")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    calls = httpx.get(f"{info.api_url}/_sandbox/calls").json()["calls"]
    assert calls["POST /v2/entries:list"] == 5


@pytest.mark.parametrize("fault, cause", [
    ({"status": 503}, "gave up after retries"),
    ({"status": 403, "message": "Permission 'logging.logEntries.list' denied"}, "missing permission logging.logEntries.list"),
])
def test_logging_outage_or_denial_is_an_error_naming_the_cause(suite, fault, cause):
    info = suite.reuse_sandbox("healthy")
    rule = {"method": "POST", "path_regex": "^/v2/entries:list", **fault}
    httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": [rule]}).raise_for_status()
    try:
        result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--target", "sandbox:healthy",
                           "--deadline", "2")
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    result.assert_outcomes(errors=3)
    assert cause in result.stdout.str()


def test_a_log_pattern_cloud_logging_cannot_run_is_refused_when_the_inventory_loads(suite):
    """A lookahead is valid Python but not RE2: Cloud Logging would refuse the query, so the
    inventory refuses the pattern first, with its line (the stand-in refuses such queries too)."""
    inventory = (suite.path / "services.yaml").read_text()
    inventory = inventory.replace(r"expected: '(?:Started|Stopped) heartbeat for p2_nba_raw\.\w+'",
                                  r"expected: '(?:Started|Stopped) heartbeat for (?=p2_)p2_nba_raw\.\w+'", 1)
    assert "(?=p2_)" in inventory
    (suite.path / "services.yaml").write_text(inventory)
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--target", "sandbox:healthy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert re.search(r"services\.yaml:\d+:\d+: services\[0\]\.heartbeat_log\.expected: .*'\(\?=' is a lookahead", err), err
    assert "RE2" in err

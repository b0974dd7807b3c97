"""Log checks run as a user runs them, against the Logging stand-in and the real client."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from conftest import findings_for, phase2_scenario

PHASE2 = "nba-phase2-raw-processors"
LOG_CHECKS = "boot or heartbeat_log or log_visibility"


def test_incident_each_seeded_log_fault_is_red(suite):
    suite.reuse_sandbox("incident")
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 1
    report = suite.report()
    failing = {(f["check"], f["resource"]) for f in report["findings"] if f["outcome"] != "pass"}
    assert failing == {
        ("boot", "nba-phase3-analytics-processors"),
        ("boot", "prediction-worker"),
        ("heartbeat-log", PHASE2),
        ("log-visibility", "prediction-coordinator"),
    }
    [phase3] = findings_for(report, "boot", "nba-phase3-analytics-processors")
    assert phase3["severity"] == "P0" and "cannot import name 'firestore' from 'google.cloud'" in phase3["summary"]
    rollback, why = phase3["remediation"].splitlines()  # stop the bleeding first, then see why
    assert rollback.startswith("gcloud run services update-traffic nba-phase3-analytics-processors --to-revisions=")
    assert why.startswith('gcloud logging read \'resource.type="cloud_run_revision"')
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


@pytest.mark.parametrize(
    "fault, cause",
    [
        ({"status": 503}, "Cloud Logging entries.list answered HTTP 503"),
        (
            {"status": 403, "message": "Permission 'logging.logEntries.list' denied"},
            "missing permission logging.logEntries.list",
        ),
    ],
)
def test_logging_outage_or_denial_is_an_error_naming_the_cause(suite, fault, cause):
    info = suite.reuse_sandbox("healthy")
    rule = {"method": "POST", "path_regex": "^/v2/entries:list", **fault}
    httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": [rule]}).raise_for_status()
    try:
        result = suite.run(
            "-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--target", "sandbox:healthy", "--deadline", "2"
        )
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    result.assert_outcomes(errors=3)
    assert cause in result.stdout.str()


def test_a_log_pattern_cloud_logging_cannot_run_is_refused_when_the_inventory_loads(suite):
    """A lookahead is valid Python but not RE2: Cloud Logging would refuse the query, so the
    inventory refuses the pattern first, with its line (the stand-in refuses such queries too)."""
    inventory = (suite.path / "services.yaml").read_text()
    inventory = inventory.replace(
        r"expected: '(?:Started|Stopped) heartbeat for p2_nba_raw\.\w+'",
        r"expected: '(?:Started|Stopped) heartbeat for (?=p2_)p2_nba_raw\.\w+'",
        1,
    )
    assert "(?=p2_)" in inventory
    (suite.path / "services.yaml").write_text(inventory)
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--target", "sandbox:healthy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert re.search(
        r"services\.yaml:\d+:\d+: services\[0\]\.heartbeat_log\.expected: .*'\(\?=' is a lookahead", err
    ), err
    assert "RE2" in err


# --- production-sized logs ---------------------------------------------------------------------------
VOLUME_REVISION = f"{PHASE2}-00200-vol"
VOLUME_LINES = 100_000
# The serving revision's day: heartbeats, INFO lines and request logs, then (in the bad case) a
# cold start that fails to import, and a processor still logging the old heartbeat id.
VOLUME = f"""\
log_volume:
  - service: {PHASE2}
    revision: 00200-vol
    count: {VOLUME_LINES}
    from: now-19h
    to: now-10m
    lines:
      - {{severity: INFO, text: "Started heartbeat for p2_nba_raw.nbac_schedule"}}
      - {{severity: INFO, json: {{message: "Processed batch {{n}} of nbac_schedule", severity: INFO}}}}
      - {{severity: INFO, text: "Stopped heartbeat for p2_nba_raw.nbac_schedule"}}
      - {{log: requests, severity: INFO}}
"""
LATE_FAULTS = f"""\
logs:
  - {{service: {PHASE2}, revision: 00200-vol, at: now-5m, severity: ERROR, text: "ModuleNotFoundError: No module named 'google.cloud.monitoring_v3'"}}
  - {{service: {PHASE2}, revision: 00200-vol, at: now-4m, severity: INFO, text: "Started heartbeat for NbacScheduleProcessor_None_097ffc9c"}}
"""


def volume_scenario(directory, *, extra: str = "") -> str:
    scenario = phase2_scenario(
        directory,
        service="""\
    revisions:
      - {suffix: 00200-vol, image: app, created: now-20h}
""",
    )
    with (scenario / "scenario.yaml").open("a") as handle:
        handle.write(VOLUME + extra)
    return f"sandbox:{scenario}"


def timed_run(suite, *args):
    began = time.monotonic()
    result = suite.run("-m", "postdeploy", "-k", LOG_CHECKS, "--service", PHASE2, "--report-dir", "out", *args)
    return result, time.monotonic() - began


def test_errors_after_100000_ordinary_lines_are_found_and_quoted_in_under_30s(suite, tmp_path):
    """Seed 004's boot failure came on a later cold start: a reader that lists the first N lines
    oldest first never sees it. Sandbox start included, the run must stay under 30 s."""
    result, seconds = timed_run(suite, "--target", volume_scenario(tmp_path / "late-faults", extra=LATE_FAULTS))
    assert result.ret == 1, result.stdout.str() + result.stderr.str()
    report = suite.report()
    [boot] = findings_for(report, "boot", PHASE2)
    assert boot["outcome"] == "fail" and boot["severity"] == "P0"
    assert f"{VOLUME_REVISION}: ModuleNotFoundError: No module named 'google.cloud.monitoring_v3'" in boot["summary"]
    [heartbeats] = findings_for(report, "heartbeat-log", PHASE2)
    assert heartbeats["outcome"] == "fail" and "(1 lines, newest first)" in heartbeats["summary"]
    assert "Started heartbeat for NbacScheduleProcessor_None_097ffc9c" in heartbeats["summary"]
    [visibility] = findings_for(report, "log-visibility", PHASE2)
    assert visibility["outcome"] == "pass"
    assert seconds < 30, f"{seconds:.1f}s"


def test_the_same_100000_lines_without_faults_pass_in_under_30s(suite, tmp_path):
    result, seconds = timed_run(suite, "--target", volume_scenario(tmp_path / "clean"))
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=3)
    [heartbeats] = findings_for(suite.report(), "heartbeat-log", PHASE2)
    assert "latest heartbeat:" in heartbeats["summary"] and "Stopped heartbeat for p2_nba_raw" in heartbeats["summary"]
    assert seconds < 30, f"{seconds:.1f}s"


def test_a_listing_cut_at_the_limit_is_an_error_naming_the_limit_and_the_option(suite, tmp_path):
    """The newest revision crash-loops 1,500 times while traffic stays on the previous one: with
    1,000 lines read, whether the serving revision failed too is unknown, so boot cannot pass."""
    scenario = phase2_scenario(
        tmp_path / "crash-loop",
        service=f"""\
    revisions:
      - {{suffix: 00200-vol, image: app, created: now-20h}}
      - {{suffix: 00201-bad, image: app, created: now-2h, ready: false}}
    traffic: [{{revision: 00200-vol, percent: 100}}]
log_volume:
  - service: {PHASE2}
    revision: 00201-bad
    count: 1500
    from: now-2h
    to: now-1m
    lines: [{{severity: ERROR, text: "ModuleNotFoundError: No module named 'google.cloud.monitoring_v3'"}}]
logs:
  - {{service: {PHASE2}, revision: 00200-vol, at: now-3h, severity: INFO, text: "Booting worker with pid: 7"}}
""",
    )
    result = suite.run(
        "-m", "postdeploy", "-k", "boot", "--service", PHASE2, "--target", f"sandbox:{scenario}", "--report-dir", "out"
    )
    assert result.ret == 1
    [boot] = findings_for(suite.report(), "boot", PHASE2)
    assert boot["outcome"] == "error", boot
    assert "more than 1,000 boot-error lines" in boot["summary"]
    assert "limit of 1,000 entries (--max-log-entries); raise --max-log-entries" in boot["summary"]

    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "boot",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--report-dir",
        "out",
        "--max-log-entries",
        "2000",
    )
    [boot] = findings_for(suite.report(), "boot", PHASE2)
    assert boot["outcome"] == "fail" and boot["severity"] == "P1", boot
    assert f"the newest revision {PHASE2}-00201-bad fails at boot" in boot["summary"]


def test_boot_cannot_pass_without_a_single_line_from_the_serving_revision(suite, tmp_path):
    """The stand-in answers `{}` to every query: no boot error, but also no sign that this
    revision's logs reach Cloud Logging at all."""
    scenario = phase2_scenario(
        tmp_path / "silent",
        service="""\
    revisions:
      - {suffix: 00200-vol, image: app, created: now-20h}
""",
    )
    result = suite.run(
        "-m", "postdeploy", "-k", "boot", "--service", PHASE2, "--target", f"sandbox:{scenario}", "--report-dir", "out"
    )
    assert result.ret == 1
    [boot] = findings_for(suite.report(), "boot", PHASE2)
    assert boot["outcome"] == "error", boot
    assert f"no log entry at all from {VOLUME_REVISION}" in boot["summary"]


def test_a_stalled_logging_api_errors_within_the_runs_deadline(suite):
    """google-cloud-logging waits 60 s per request by default; the reader's timeout is --deadline's."""
    info = suite.reuse_sandbox("healthy")
    rule = {"method": "POST", "path_regex": "^/v2/entries:list", "delay_s": 20}
    httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": [rule]}).raise_for_status()
    began = time.monotonic()
    try:
        result = suite.run(
            "-m", "postdeploy", "-k", "boot", "--service", PHASE2, "--target", "sandbox:healthy", "--deadline", "2"
        )
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    assert "the boot-error lines of nba-phase2-raw-processors" in result.stdout.str()
    assert time.monotonic() - began < 15

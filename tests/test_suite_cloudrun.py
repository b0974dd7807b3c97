"""The Cloud Run state gate run as a user runs it: pytest in a subprocess, against the sandbox."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from conftest import findings_for, phase2_scenario

PHASE2 = "nba-phase2-raw-processors"
CLOUDRUN_CHECKS = ("traffic", "rollout", "digest", "commit")
REVISION_LABEL = "    labels: {org.opencontainers.image.revision: ce269d67a1b2c3d4e5f60718293a4b5c6d7e8f90}"


def test_incident_phase2_gate_is_red_with_the_cause_and_the_fix(suite):
    suite.reuse_sandbox("incident")
    reports = suite.path.parent / f"{suite.path.name}-reports"  # outside the rootdir, given as a separate argument
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:incident",
        "--report-dir",
        str(reports),
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
    )
    assert result.ret == 1, result.stdout.str()
    report = json.loads((reports / "report.json").read_text())
    html, markdown = (reports / "report.html").read_text(), (reports / "report.md").read_text()
    assert f"gcloud run deploy {PHASE2} --image" in html
    assert f"P1 FAIL · digest · tag-not-rolled-out · {PHASE2}" in markdown
    assert f"gcloud run deploy {PHASE2} --image" in markdown
    digest = findings_for(report, "digest", PHASE2)
    assert [f["outcome"] for f in digest] == ["fail"]
    assert "the tag moved and was never rolled out" in digest[0]["summary"]
    assert digest[0]["remediation"].startswith(f"gcloud run deploy {PHASE2} --image us-west2-docker.pkg.dev/")
    assert "@sha256:" in digest[0]["remediation"] and "--region us-west2" in digest[0]["remediation"]
    # The terminal tells the same story in one line plus the command.
    out = result.stdout.str()
    assert f"FAIL  [P1] digest[{PHASE2}]: serving revision {PHASE2}-00128-x7k runs sha256:" in out
    assert f"      fix: gcloud run deploy {PHASE2} --image us-west2-docker.pkg.dev/" in out
    assert report["summary"]["selection"]["services"] == [PHASE2]
    assert {f["resource"] for f in report["findings"]} == {PHASE2}


def test_healthy_gate_passes_every_check_and_skips_none(suite):
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
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
        "-v",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=len(CLOUDRUN_CHECKS))
    for check in CLOUDRUN_CHECKS:
        assert f"checks/test_cloudrun.py::test_{check}[{PHASE2}] PASSED" in result.stdout.str()
    outcomes = {f["check"]: f["outcome"] for f in suite.report()["findings"]}
    assert outcomes == {check: "pass" for check in CLOUDRUN_CHECKS}


def test_incident_whole_platform_each_seeded_fault_is_red(suite):
    suite.reuse_sandbox("incident")
    result = suite.run(
        "-m",
        "postdeploy",
        "--target",
        "sandbox:incident",
        "--report-dir",
        "out",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
        "-n",
        "2",
    )
    assert result.ret == 1
    report = suite.report()
    failing = {(f["check"], f["resource"]) for f in report["findings"] if f["outcome"] == "fail"}
    assert ("digest", PHASE2) in failing  # seed 001: :latest moved
    assert ("commit", "nba-phase3-analytics-processors") in failing  # seed 001: stale commit-sha label
    assert ("traffic", "prediction-worker") in failing  # seed 004: newest revision failed
    assert ("rollout", "prediction-worker") in failing
    assert ("traffic", "nba-scrapers") in failing  # pinned to an old revision
    assert ("traffic", "nba-phase4-precompute-processors") not in failing
    worker = findings_for(report, "rollout", "prediction-worker")[0]
    assert worker["severity"] == "P0" and "failed to start" in worker["summary"]
    assert worker["remediation"].startswith("gcloud logging read")
    scrapers = " ".join(f["summary"] for f in findings_for(report, "traffic", "nba-scrapers"))
    assert "nba-scrapers-00040-m5t 100%" in scrapers and "'canary'" in scrapers


def test_expect_commit_names_the_commit_and_whether_the_tag_has_it(suite):
    suite.reuse_sandbox("incident")
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:incident",
        "--expect-commit",
        "ce269d67",
        "--report-dir",
        "out",
        "-k",
        "commit",
    )
    assert result.ret == 1
    [finding] = findings_for(suite.report(), "commit", PHASE2)
    assert finding["outcome"] == "fail"
    assert (
        "running commit e05b63b3c2a1 (image label org.opencontainers.image.revision), expected ce269d67"
        in finding["summary"]
    )
    assert "has it but was never rolled out" in finding["summary"]

    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--expect-commit",
        "ce269d67",
        "-k",
        "commit",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)


def test_test_ids_are_the_resource_names(suite):
    result = suite.run("--collect-only", "-q", "--target", "sandbox:incident")
    assert result.ret == 0
    ids = result.stdout.lines
    assert f"checks/test_cloudrun.py::test_traffic[{PHASE2}]" in ids
    assert "checks/test_cloudrun.py::test_digest[prediction-coordinator]" in ids


def test_unknown_service_is_a_usage_error_with_close_matches(suite):
    result = suite.run("--service", "nba-phase2-raw-procesors", "--target", "sandbox:incident")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--service nba-phase2-raw-procesors: not in the inventory; did you mean nba-phase2-raw-processors*"]
    )


def test_gcp_without_credentials_exits_fast_saying_how_to_authenticate(suite):
    began = time.monotonic()
    result = suite.run("-m", "postdeploy", "--service", PHASE2)
    assert time.monotonic() - began < 30
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--target gcp needs Application Default Credentials*", "*gcloud auth application-default login*"]
    )
    assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


def test_bad_inventory_reports_every_error_with_its_line_before_any_network_call(suite, tmp_path):
    inventory = (suite.path / "services.yaml").read_text()
    inventory = inventory.replace(
        "  - name: nba-phase2-raw-processors\n", "  - name: nba-phase2-raw-processors\n    imagee: typo\n", 1
    )
    inventory = re.sub(r"must_contain: \[", "must_contain: ['(unclosed', ", inventory, count=1)
    bad = tmp_path / "elsewhere" / "services.yaml"
    bad.parent.mkdir()
    bad.write_text(inventory)
    # An absolute path as a separate argument: pytest must take it as the option's value.
    result = suite.run("-m", "postdeploy", "--inventory", str(bad))  # target gcp: credentials come after
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert re.search(rf"{re.escape(str(bad))}:\d+:\d+: services\[0\]\.imagee: ", err), err
    assert re.search(r"services\.yaml:\d+:\d+: .*must_contain\[0\].*'\(' is never closed", err), err
    assert "Application Default Credentials" not in err


def test_unobservable_fact_is_an_error_naming_the_permission(suite, sandboxes):
    info = suite.reuse_sandbox("healthy")
    # The gate reads the serving and newest revisions from the service's revisions.list.
    faults = {
        "faults": [
            {
                "method": "GET",
                "path_regex": f"/services/{PHASE2}/revisions$",
                "status": 403,
                "message": "Permission 'run.revisions.list' denied",
            }
        ]
    }
    httpx.post(f"{info.api_url}/_sandbox/faults", json=faults).raise_for_status()
    try:
        result = suite.run(
            "-m",
            "postdeploy",
            "--service",
            PHASE2,
            "--target",
            "sandbox:healthy",
            "--report-dir",
            "out",
            "--pyargs",
            "deploycheck_pytest.checks.test_cloudrun",
        )
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 3 and "passed" in outcomes  # traffic needs no revision read
    result.stdout.fnmatch_lines(["*missing permission run.revisions.list*"])
    errors = [f for f in suite.report()["findings"] if f["outcome"] == "error"]
    assert {f["check"] for f in errors} == {"rollout", "digest", "commit"}


def test_api_that_keeps_failing_is_error_not_green(suite):
    """Cloud Run answers 503 to everything: after the --deadline of retries every check ERRORs."""
    info = suite.reuse_sandbox("healthy")
    faults = {"faults": [{"method": "GET", "path_regex": "^/v2/", "status": 503}]}
    httpx.post(f"{info.api_url}/_sandbox/faults", json=faults).raise_for_status()
    try:
        result = suite.run(
            "-m",
            "postdeploy",
            "--service",
            PHASE2,
            "--target",
            "sandbox:healthy",
            "--deadline",
            "2",
            "--report-dir",
            "out",
            "--pyargs",
            "deploycheck_pytest.checks.test_cloudrun",
        )
    finally:
        httpx.post(f"{info.api_url}/_sandbox/faults", json={"faults": []}).raise_for_status()
    assert result.ret == 1
    result.assert_outcomes(errors=len(CLOUDRUN_CHECKS))
    assert "Cloud Run services.get answered HTTP 503 (UNAVAILABLE)" in result.stdout.str()
    assert {f["outcome"] for f in suite.report()["findings"]} == {"error"}


def test_registry_down_is_error_not_green(suite, tmp_path):
    """The registry stopped: the checks that need it ERROR; those that do not still conclude."""
    with suite.sandbox_without("registry", tmp_path / "sb"):
        result = suite.run(
            "-m",
            "postdeploy",
            "--service",
            PHASE2,
            "--target",
            "sandbox:healthy",
            "--deadline",
            "3",
            "--pyargs",
            "deploycheck_pytest.checks.test_cloudrun",
        )
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=2)  # traffic, rollout | digest, commit
    assert "not answering; checks that need it will ERROR" in result.stderr.str()


def test_wait_polls_with_progress_and_fails_a_rollout_that_never_settles(suite, tmp_path):
    scenario = phase2_scenario(
        tmp_path / "stuck",
        image=REVISION_LABEL,
        service="""\
    revisions:
      - {suffix: 00129-lf2, image: app, created: now-1h}
      - {suffix: 00130-zz1, image: app, created: now-1m, ready: null}
    traffic: [{revision: 00129-lf2, percent: 100}]
""",
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--wait",
        "2",
        "--report-dir",
        "out",
        "-k",
        "rollout",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*waiting for nba-phase2-raw-processors-00130-zz1 (CONDITION_RECONCILING)*", "*still rolling out after 2s*"]
    )
    [finding] = findings_for(suite.report(), "rollout", PHASE2)
    assert finding["outcome"] == "fail" and "has not finished after waiting 2s" in finding["summary"]


def _sandbox_processes(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                pids.append(int(proc.name))
    return pids


def test_own_sandbox_with_xdist_leaves_no_process_behind(suite):
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "-n",
        "2",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=len(CLOUDRUN_CHECKS))
    match = re.search(r"logs (/\S+deploycheck-sandbox-\w+)\)", result.stderr.str())
    assert match, result.stderr.str()
    assert _sandbox_processes(match.group(1)) == []


def test_a_check_that_skips_is_red_not_green(suite):
    (suite.path / "checks" / "test_lazy.py").write_text(
        "import pytest\n\n@pytest.mark.postdeploy\ndef test_lazy(service):\n    pytest.skip('not today')\n"
    )
    suite.reuse_sandbox("healthy")
    result = suite.run("-m", "postdeploy", "--service", PHASE2, "--target", "sandbox:healthy", "checks/test_lazy.py")
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    assert f"lazy[{PHASE2}]: the check skipped instead of concluding: not today" in result.stdout.str()


def test_scenario_resources_in_the_apis_own_json_are_served_verbatim(suite, tmp_path):
    """A Service and Revision as the v2 REST API returns them, dropped into a scenario as they are."""
    parent = "projects/nba-props-platform/locations/us-west2/services/nba-phase2-raw-processors"
    old = "sha256:" + "e0" * 32
    service = {
        "name": parent,
        "uid": "0d8e6a2c-1111-4a7e-9b1b-2f4c6d8e0a11",
        "generation": "130",
        "labels": {"commit-sha": "e05b63b3"},
        "createTime": "2025-10-01T10:00:00.123456789Z",
        "template": {
            "containers": [
                {"image": "us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors:latest"}
            ]
        },
        "traffic": [
            {
                "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                "revision": "nba-phase2-raw-processors-00128-x7k",
                "percent": 100,
            }
        ],
        "observedGeneration": "130",
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"},
        "latestReadyRevision": f"{parent}/revisions/nba-phase2-raw-processors-00129-lf2",
        "latestCreatedRevision": f"{parent}/revisions/nba-phase2-raw-processors-00129-lf2",
        "trafficStatuses": [
            {
                "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                "revision": "nba-phase2-raw-processors-00128-x7k",
                "percent": 100,
            }
        ],
        "uri": "https://nba-phase2-raw-processors-756957797294.us-west2.run.app",
    }
    revision = {
        "name": f"{parent}/revisions/nba-phase2-raw-processors-00128-x7k",
        "service": parent,
        "createTime": "2026-01-20T10:00:00Z",
        "containers": [{"name": "app", "image": service["template"]["containers"][0]["image"]}],
        "conditions": [{"type": "Ready", "state": "CONDITION_SUCCEEDED"}],
        "containerStatuses": [
            {
                "name": "app",
                "imageDigest": f"us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors@{old}",
            }
        ],
    }
    scenario = tmp_path / "captured"
    scenario.mkdir()
    (scenario / "scenario.yaml").write_text(json.dumps({"resources": [service, revision]}))  # JSON is YAML
    result = suite.run(
        "-m",
        "postdeploy",
        "-k",
        "traffic",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--report-dir",
        "out",
    )
    assert result.ret == 1
    [finding] = findings_for(suite.report(), "traffic", PHASE2)
    assert "not all on the latest ready revision nba-phase2-raw-processors-00129-lf2" in finding["summary"]
    assert "nba-phase2-raw-processors-00128-x7k 100%" in finding["summary"]


def test_wait_follows_a_rollout_until_it_settles_then_checks_the_result(suite, tmp_path):
    scenario = phase2_scenario(
        tmp_path / "rolling",
        image=REVISION_LABEL,
        service="""\
    rollout_after: 6  # seconds from the sandbox start: longer than collection takes
    revisions:
      - {suffix: 00129-lf2, image: app, created: now-1h}
      - {suffix: 00130-zz1, image: app, created: now-1m}
""",
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--wait",
        "60",
        "-k",
        "rollout or traffic",
        "--report-dir",
        "out",
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "waiting for nba-phase2-raw-processors-00130-zz1 (CONDITION_RECONCILING)" in output
    assert re.search(r"rollout settled after \d+s \(nba-phase2-raw-processors-00130-zz1 CONDITION_SUCCEEDED\)", output)
    [traffic] = findings_for(suite.report(), "traffic", PHASE2)
    assert "100% of traffic on nba-phase2-raw-processors-00130-zz1" in traffic["summary"]

    # Without --wait the same moment is red: the rollout has not finished.
    result = suite.run("-m", "postdeploy", "--service", PHASE2, "--target", f"sandbox:{scenario}", "-k", "rollout")
    assert result.ret == 1
    assert "has not finished" in result.stdout.str()


def test_commit_from_the_manifest_annotation_when_the_image_has_no_label(suite, tmp_path):
    scenario = phase2_scenario(
        tmp_path / "annotated",
        service="    revisions: [{suffix: 00129-lf2, image: app}]",
        image="    annotations: {org.opencontainers.image.revision: ce269d67a1b2c3d4e5f60718293a4b5c6d7e8f90}",
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--expect-commit",
        "ce269d67",
        "-k",
        "commit",
        "--report-dir",
        "out",
    )
    assert result.ret == 0, result.stdout.str()
    [finding] = findings_for(suite.report(), "commit", PHASE2)
    assert "(manifest annotation org.opencontainers.image.revision); expected ce269d67" in finding["summary"]


def test_spent_budget_turns_the_remaining_checks_into_errors(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--budget",
        "0",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
    )
    assert result.ret == 1
    result.assert_outcomes(errors=len(CLOUDRUN_CHECKS))
    assert "the run's --budget of 0s is spent" in result.stdout.str()


def test_iam_incident_names_the_missing_role_and_the_grant_healthy_passes(suite):
    suite.reuse_sandbox("incident")
    result = suite.run("-m", "postdeploy", "-k", "iam", "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 1
    failing = [f for f in suite.report()["findings"] if f["outcome"] != "pass"]
    assert [(f["check"], f["resource"]) for f in failing] == [("iam", "prediction-worker")]
    assert failing[0]["remediation"] == (
        "gcloud projects add-iam-policy-binding nba-props-platform "
        "--member=serviceAccount:prediction-worker@nba-props-platform.iam.gserviceaccount.com --role=roles/datastore.user"
    )

    suite.reuse_sandbox("healthy")
    result = suite.run("-m", "postdeploy", "-k", "iam", "--target", "sandbox:healthy")
    assert result.ret == 0
    result.assert_outcomes(passed=6)


def test_iam_policy_unreadable_is_an_error_naming_the_permission(suite, tmp_path):
    scenario = phase2_scenario(
        tmp_path / "nopolicy",
        service="""\
    service_account: 756957797294-compute@developer.gserviceaccount.com
    revisions: [{suffix: 00001-aaa, image: app}]
""",
    )
    result = suite.run("-m", "postdeploy", "-k", "iam", "--service", PHASE2, "--target", f"sandbox:{scenario}")
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    assert "missing permission resourcemanager.projects.getIamPolicy" in result.stdout.str()

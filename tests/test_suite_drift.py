"""stale-jobs and orphans run as a user runs them (seed 001's backfill jobs and unknown jobs)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx

from deploycheck.cloudrun import JobState
from deploycheck.findings import Outcome
from deploycheck.imageref import ImageRef
from deploycheck.rules.drift import evaluate_orphans, evaluate_stale_job

from conftest import findings_for

NOW = datetime(2026, 2, 1, tzinfo=timezone.utc)
PHASE2 = ImageRef.parse("us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors:latest")
OLD, NEW = "sha256:" + "0" * 64, "sha256:" + "1" * 64


def job(last_run=datetime(2025, 9, 18, tzinfo=timezone.utc)):
    return JobState(
        name="nbac-schedule-processor-backfill",
        image="gcr.io/nba-props-platform/x",
        service_account="",
        labels={},
        create_time=None,
        update_time=None,
        execution_count=1,
        last_execution="e1",
        last_execution_time=last_run,
    )


def stale(image, digest, **overrides):
    args = dict(
        image=ImageRef.parse(image),
        digest=digest,
        created="2025-08-01T00:00:00Z",
        expected=PHASE2,
        expected_digest=NEW,
        expected_created="2026-01-31T00:00:00Z",
        legacy_registries=["gcr.io"],
        now=NOW,
        region="us-west2",
        project="nba-props-platform",
    )
    return evaluate_stale_job(job(), **{**args, **overrides})


def test_stale_job_on_a_legacy_registry_names_both_and_the_update_command():
    [finding] = stale("gcr.io/nba-props-platform/nbac-schedule-processor-backfill", OLD)
    assert finding.outcome is Outcome.FAIL
    assert "legacy registry gcr.io" in finding.summary and "built 184 days ago" in finding.summary
    assert "last ran 136 days ago (unused for months" in finding.summary
    assert finding.remediation == (
        "gcloud run jobs update nbac-schedule-processor-backfill --image "
        f"{PHASE2.repository}@{NEW} --region us-west2 --project nba-props-platform"
    )


def test_job_on_the_current_service_digest_passes():
    [finding] = stale(str(PHASE2), NEW)
    assert finding.outcome is Outcome.PASS


def test_orphans_both_ways():
    findings = evaluate_orphans(
        "p/r",
        deployed_services=["a", "b"],
        deployed_jobs=["j", "x"],
        declared_services=["a", "c"],
        declared_jobs=["j"],
        region="r",
        project="p",
    )
    summaries = " | ".join(f.summary for f in findings)
    assert "1 deployed services nobody declared: b" in summaries and "1 declared services not deployed" in summaries
    assert "1 deployed jobs nobody declared: x" in summaries
    [clean] = evaluate_orphans(
        "p/r",
        deployed_services=["a"],
        deployed_jobs=[],
        declared_services=["a"],
        declared_jobs=[],
        region="r",
        project="p",
    )
    assert clean.outcome is Outcome.PASS


def test_an_empty_listing_is_named_as_such_not_as_ordinary_drift():
    """`{}` from services.list and a region really emptied look alike: the finding says which to suspect."""
    [finding] = evaluate_orphans(
        "p/r",
        deployed_services=[],
        deployed_jobs=[],
        declared_services=["a", "c"],
        declared_jobs=[],
        region="r",
        project="p",
    )
    assert finding.outcome is Outcome.FAIL
    assert finding.summary.startswith("services.list answered an empty list for p/r, yet the inventory declares 2")
    assert finding.remediation == "gcloud run services list --region r --project p"


def test_incident_drift_lists_every_backfill_job_and_the_undeclared_one(suite):
    info = suite.reuse_sandbox("incident")
    httpx.delete(f"{info.api_url}/_sandbox/calls").raise_for_status()
    result = suite.run("-m", "drift", "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 1
    report = suite.report()
    stale_jobs = [f for f in report["findings"] if f["check"] == "stale-jobs"]
    assert len(stale_jobs) == 21 and all(f["outcome"] == "fail" for f in stale_jobs)
    assert all(f["evidence"]["image"].startswith("gcr.io/nba-props-platform/") for f in stale_jobs)
    assert all(f["evidence"]["image_age_days"] >= 169 for f in stale_jobs)
    [orphans] = findings_for(report, "orphans", "nba-props-platform/us-west2")
    assert "odds-api-props-backfill-manual" in orphans["summary"]
    calls = httpx.get(f"{info.api_url}/_sandbox/calls").json()["calls"]
    # One list call per resource type for the whole run, not one per name.
    assert calls["GET /v2/projects/*/locations/*/jobs"] == 1
    assert calls["GET /v2/projects/*/locations/*/services"] == 1


def test_healthy_has_no_drift(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run("-m", "drift", "--target", "sandbox:healthy")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=22)

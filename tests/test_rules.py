"""Rules are pure: observed state in, findings out. Each seed's shape must come out red."""

from __future__ import annotations

from datetime import datetime, timezone

from deploycheck.cloudrun import ContainerState, RevisionState, ServiceState, ServingImage, TrafficShare, parse_revision
from deploycheck.findings import Outcome, Severity
from deploycheck.imageref import ImageRef
from deploycheck.rules.commit import CommitEvidence, evaluate_commit, same_commit
from deploycheck.rules.digest import evaluate_digest
from deploycheck.rules.rollout import evaluate_rollout, rollout_settled
from deploycheck.rules.traffic import evaluate_traffic

OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "1" * 64
REPO = "us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors"
WHERE = {"region": "us-west2", "project": "nba-props-platform"}


def service(**overrides) -> ServiceState:
    fields = dict(
        name="svc",
        uri="https://svc",
        generation=2,
        observed_generation=2,
        reconciling=False,
        latest_ready_revision="svc-2",
        latest_created_revision="svc-2",
        traffic=(TrafficShare("svc-2", 100, latest=True),),
        labels={},
        template_image=f"{REPO}:latest",
        terminal_state="CONDITION_SUCCEEDED",
        terminal_message="",
    )
    fields.update(overrides)
    return ServiceState(**fields)


def revision(
    name="svc-2", digest=OLD, ready="CONDITION_SUCCEEDED", message="", image=f"{REPO}:latest"
) -> RevisionState:
    return RevisionState(
        name=name,
        service="svc",
        create_time=datetime(2026, 1, 1, tzinfo=timezone.utc),
        containers=(ContainerState("app", image, digest),),
        ready_state=ready,
        ready_message=message,
        service_account="sa",
    )


def test_traffic_all_on_latest_passes():
    [finding] = evaluate_traffic(service(), **WHERE)
    assert finding.outcome is Outcome.PASS


def test_traffic_pinned_to_old_revision_fails_with_update_traffic():
    findings = evaluate_traffic(
        service(latest_ready_revision="svc-3", latest_created_revision="svc-3", traffic=(TrafficShare("svc-2", 100),)),
        **WHERE,
    )
    assert [f.outcome for f in findings] == [Outcome.FAIL]
    assert "svc-2 100%" in findings[0].summary
    assert findings[0].remediation == (
        "gcloud run services update-traffic svc --to-latest --region us-west2 --project nba-props-platform"
    )


def test_traffic_failed_newest_revision_is_red_even_with_traffic_on_latest_ready():
    findings = evaluate_traffic(
        service(
            latest_created_revision="svc-3", terminal_message="ImportError at boot", terminal_state="CONDITION_FAILED"
        ),
        **WHERE,
    )
    assert any("svc-3 is not ready (ImportError at boot)" in f.summary for f in findings)
    assert all(f.outcome is Outcome.FAIL for f in findings)


def test_traffic_stale_tag_and_bad_total_are_reported():
    findings = evaluate_traffic(
        service(traffic=(TrafficShare("svc-2", 90, latest=True), TrafficShare("svc-1", 0, tag="canary"))), **WHERE
    )
    summaries = " | ".join(f.summary for f in findings)
    assert "add up to 90%" in summaries and "tag 'canary'" in summaries
    assert any(
        f.remediation.endswith("--remove-tags canary --region us-west2 --project nba-props-platform") for f in findings
    )


def test_traffic_no_ready_revision_is_p0():
    [finding] = evaluate_traffic(service(latest_ready_revision="", traffic=()), **WHERE)
    assert finding.severity is Severity.P0 and finding.failed


def test_rollout_states():
    assert evaluate_rollout(service(), revision(), waited_s=None, project=WHERE["project"]).outcome is Outcome.PASS
    failed = evaluate_rollout(
        service(), revision(ready="CONDITION_FAILED", message="boot failed"), waited_s=None, project=WHERE["project"]
    )
    assert failed.severity is Severity.P0 and "boot failed" in failed.summary
    pending = evaluate_rollout(
        service(reconciling=True), revision(ready="CONDITION_RECONCILING"), waited_s=30, project=WHERE["project"]
    )
    assert pending.failed and "after waiting 30s" in pending.summary
    assert not rollout_settled(service(reconciling=True), revision())
    assert not rollout_settled(service(observed_generation=1), revision())
    assert rollout_settled(service(), revision(ready="CONDITION_FAILED"))


def test_digest_moved_tag_is_red_with_pinned_deploy_command():
    expected = ImageRef.parse(f"{REPO}:latest")
    serving = [ServingImage(revision(), revision().containers[0], OLD)]
    finding = evaluate_digest("svc", expected, NEW, serving, **WHERE)
    assert finding.failed and "the tag moved and was never rolled out" in finding.summary
    assert (
        finding.remediation
        == f"gcloud run deploy svc --image {REPO}@{NEW} --region us-west2 --project nba-props-platform"
    )
    assert evaluate_digest("svc", expected, OLD, serving, **WHERE).outcome is Outcome.PASS


def test_digest_foreign_repository_is_red():
    foreign = revision(image="gcr.io/nba-props-platform/old@" + OLD)
    finding = evaluate_digest(
        "svc", ImageRef.parse(f"{REPO}:latest"), NEW, [ServingImage(foreign, None, None)], **WHERE
    )
    assert finding.failed and "gcr.io/nba-props-platform/old" in finding.summary


def test_parse_revision_digest_sources():
    pinned = parse_revision(
        {
            "name": "x/revisions/r",
            "containers": [{"name": "a", "image": f"{REPO}@{NEW}"}],
            "containerStatuses": [{"name": "a", "imageDigest": f"{REPO}@{OLD}"}],
        }
    )
    assert pinned.containers[0].digest == NEW  # a digest-pinned image is what runs
    reported = parse_revision(
        {
            "name": "r",
            "containers": [{"name": "a", "image": f"{REPO}:latest"}],
            "containerStatuses": [{"name": "a", "imageDigest": OLD}],
        }
    )
    assert reported.containers[0].digest == OLD  # bare sha256: accepted too
    missing = parse_revision({"name": "r", "containers": [{"name": "a", "image": f"{REPO}:latest"}]})
    assert missing.containers[0].digest is None


def commit_findings(labels=None, env=None, service_labels=None, expect=None, tag_commit=None):
    return evaluate_commit(
        "svc",
        evidence=CommitEvidence(labels or {}, {}, env or {}),
        label="org.opencontainers.image.revision",
        env="COMMIT_SHA",
        service_labels=service_labels or {},
        claim_labels=["commit-sha"],
        expect_commit=expect,
        tag_commit=tag_commit,
        tag_image=f"{REPO}:latest",
        pinned_tag_image=f"{REPO}@{NEW}",
        **WHERE,
    )


def test_commit_expected_and_matching_passes():
    [finding] = commit_findings(labels={"org.opencontainers.image.revision": "ce269d67aaaa"}, expect="ce269d67")
    assert finding.outcome is Outcome.PASS


def test_commit_mismatch_suggests_the_tag_when_it_has_the_commit():
    [finding] = commit_findings(
        labels={"org.opencontainers.image.revision": "e05b63b3ffff"}, expect="ce269d67", tag_commit="ce269d67aaaa"
    )
    assert finding.failed and "never rolled out" in finding.summary
    assert finding.remediation.endswith(f"--image {REPO}@{NEW} --region us-west2 --project nba-props-platform")


def test_commit_stale_service_label_and_missing_label():
    findings = commit_findings(
        labels={"org.opencontainers.image.revision": "5d1e2c3b4a59"}, service_labels={"commit-sha": "075fab1e"}
    )
    assert [f.severity for f in findings] == [Severity.P3]
    assert (
        "commit-sha=075fab1e" in findings[0].summary
        and "--update-labels commit-sha=5d1e2c3b" in findings[0].remediation
    )
    [unlabelled] = commit_findings(expect="ce269d67")
    assert unlabelled.failed and "cannot be proven" in unlabelled.summary
    [from_env] = commit_findings(env={"COMMIT_SHA": "ce269d67aaaa"}, expect="ce269d67")
    assert from_env.outcome is Outcome.PASS and "container env COMMIT_SHA" in from_env.summary


def test_same_commit_needs_a_real_prefix():
    assert same_commit("ce269d67", "CE269D67ABCDEF")
    assert not same_commit("ce26", "ce269d67")
    assert not same_commit("ce269d67", "ce269d68")

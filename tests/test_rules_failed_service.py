"""A Cloud Run service whose terminal (Ready) condition failed is red for that reason, quoting the
condition's message, whatever latestReadyRevision and the traffic split say."""

from __future__ import annotations

from deploycheck.cloudrun import TrafficShare
from deploycheck.findings import Outcome, Severity
from deploycheck.rules.rollout import evaluate_rollout
from deploycheck.rules.traffic import evaluate_traffic

from test_rules import WHERE, revision, service

FAILED_UPDATE = (
    "spec.template.spec.serviceAccountName: Service account "
    "prediction-worker@nba-props-platform.iam.gserviceaccount.com does not exist."
)


def test_a_failed_condition_is_red_quoting_it_even_with_all_traffic_on_the_latest_ready():
    failed_service = service(terminal_state="CONDITION_FAILED", terminal_message=FAILED_UPDATE)
    [traffic] = evaluate_traffic(failed_service, **WHERE)
    assert traffic.outcome is Outcome.FAIL and traffic.severity is Severity.P1
    assert FAILED_UPDATE in traffic.summary and "svc-2 still serves" in traffic.summary
    assert traffic.evidence["terminal_condition"] == {"state": "CONDITION_FAILED", "message": FAILED_UPDATE}
    rollout = evaluate_rollout(failed_service, revision(), waited_s=None, project=WHERE["project"])
    assert rollout.outcome is Outcome.FAIL and rollout.severity is Severity.P1 and FAILED_UPDATE in rollout.summary


def test_a_failed_condition_with_nothing_serving_is_p0():
    [finding] = evaluate_traffic(
        service(
            terminal_state="CONDITION_FAILED",
            terminal_message="Image not found",
            traffic=(TrafficShare("svc-2", 0, latest=True),),
        ),
        **WHERE,
    )
    assert finding.severity is Severity.P0 and "nothing can serve: Image not found" in finding.summary
    [no_ready] = evaluate_traffic(
        service(
            latest_ready_revision="", traffic=(), terminal_state="CONDITION_FAILED", terminal_message="Image not found"
        ),
        **WHERE,
    )
    assert no_ready.severity is Severity.P0 and "Image not found" in no_ready.summary


def test_a_failed_newest_revision_is_p0_for_rollout_and_quoted_by_traffic():
    failing = service(
        latest_created_revision="svc-3",
        terminal_state="CONDITION_FAILED",
        terminal_message="Revision 'svc-3' is not ready and cannot serve traffic.",
    )
    findings = evaluate_traffic(failing, **WHERE)
    assert [f.severity for f in findings] == [Severity.P1]
    assert "Revision 'svc-3' is not ready" in findings[0].summary
    rollout = evaluate_rollout(
        failing,
        revision("svc-3", ready="CONDITION_FAILED", message="boot failed"),
        waited_s=None,
        project=WHERE["project"],
    )
    assert rollout.severity is Severity.P0 and rollout.failed

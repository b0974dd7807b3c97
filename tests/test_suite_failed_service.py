"""A service whose terminalCondition failed while latestReadyRevision is set and 100% of traffic is on
it: the gate is red for that reason, quoting the condition, as a user sees it against the sandbox."""

from __future__ import annotations

from conftest import findings_for, phase2_scenario

PHASE2 = "nba-phase2-raw-processors"
MESSAGE = (
    "spec.template.spec.serviceAccountName: Service account "
    "phase2@nba-props-platform.iam.gserviceaccount.com does not exist."
)


def test_failed_terminal_condition_with_all_traffic_on_the_latest_ready_is_red(suite, tmp_path):
    scenario = phase2_scenario(
        tmp_path / "failed",
        service=f"""\
    service_account: 756957797294-compute@developer.gserviceaccount.com
    revisions: [{{suffix: 00001-aaa, image: app}}]
    raw:
      terminalCondition: {{state: CONDITION_FAILED, message: "{MESSAGE}"}}
""",
    )
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        f"sandbox:{scenario}",
        "--report-dir",
        "out",
        "-k",
        "traffic or rollout",
        "--pyargs",
        "deploycheck_pytest.checks.test_cloudrun",
    )
    assert result.ret == 1, result.stdout.str()
    report = suite.report()
    [traffic] = findings_for(report, "traffic", PHASE2)
    assert traffic["evidence"]["latest_ready_revision"] == f"{PHASE2}-00001-aaa"
    assert traffic["evidence"]["traffic"] == [f"{PHASE2}-00001-aaa=100%"]
    assert (traffic["outcome"], traffic["severity"]) == ("fail", "P1") and MESSAGE in traffic["summary"]
    [rollout] = findings_for(report, "rollout", PHASE2)
    assert (rollout["outcome"], rollout["severity"]) == ("fail", "P1") and MESSAGE in rollout["summary"]

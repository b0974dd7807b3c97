"""Scenario resources captured with `gcloud run services|revisions|jobs describe --format=json`
(Cloud Run admin v1: Knative Service/Revision, run.googleapis.com/v1 Job) replay a team's own
incident: tests/data/captured_v1 holds such output for a made-up shop (the newest checkout revision
failed its start-up probe, traffic stayed on a revision whose digest the tag left behind, the export
job still runs from gcr.io). A payload of the wrong kind or shape is refused naming the file, the
resource and what was expected."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from deploycheck.cloudrun import parse_revision
from deploycheck.errors import InputError
from deploycheck.sandbox.knative import Refused, captured_resources, to_v2
from deploycheck.sandbox.scenario import load_scenario

from conftest import findings_for

CAPTURED = Path(__file__).resolve().parent / "data" / "captured_v1"
PROJECT, REGION = "acme-shop-prod", "europe-west1"


def captured(name: str):
    return json.loads((CAPTURED / "captured" / name).read_text())


def test_a_v1_service_becomes_the_v2_service_the_checks_read():
    service = to_v2(captured("checkout-service.json"), project=PROJECT, region="us-west2")
    # The region comes from the resource's own location label, not the scenario's default.
    assert service["name"] == "projects/acme-shop-prod/locations/europe-west1/services/checkout"
    assert service["latestCreatedRevision"].endswith("/revisions/checkout-00002-xyz")
    assert service["latestReadyRevision"].endswith("/revisions/checkout-00001-abc")
    assert service["trafficStatuses"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "revision": "checkout-00001-abc", "percent": 100}
    ]
    assert service["terminalCondition"]["state"] == "CONDITION_FAILED"
    assert "checkout-00002-xyz' is not ready" in service["terminalCondition"]["message"]
    assert service["template"]["serviceAccount"] == "checkout@acme-shop-prod.iam.gserviceaccount.com"
    assert service["labels"] == {"team": "payments"}  # system labels stay v1's
    assert {
        "name": "PAYMENT_KEY",
        "valueSource": {"secretKeyRef": {"secret": "payment-key", "version": "latest"}},
    } in service["template"]["containers"][0]["env"]


def test_v1_revisions_keep_the_digest_they_run_and_why_the_newest_failed():
    newest, serving = (to_v2(item, project=PROJECT, region=REGION) for item in captured("checkout-revisions.json"))
    running = parse_revision(serving)
    assert running.containers[0].digest == "sha256:5d2b1f0c9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
    assert running.ready_state == "CONDITION_SUCCEEDED" and running.service == "checkout"
    failed = parse_revision(newest)
    assert failed.ready_state == "CONDITION_FAILED" and failed.containers[0].digest is None
    assert "failed to start and listen on the port" in failed.ready_message


def test_a_v1_job_keeps_its_image_and_last_execution():
    job = to_v2(captured("export-job.json"), project=PROJECT, region=REGION)
    assert job["template"]["template"]["containers"][0]["image"] == "gcr.io/acme-shop-prod/export:latest"
    assert job["template"]["template"]["timeout"] == "600s"  # gcloud prints timeoutSeconds as a string
    assert job["executionCount"] == 3
    assert job["latestCreatedExecution"] == {
        "name": "export-x7k2q",
        "createTime": "2024-10-01T02:00:03.629476Z",
        "completionTime": "2024-10-01T02:04:19.335167Z",
        "completionStatus": "EXECUTION_SUCCEEDED",
    }


def _broken(name: str, change) -> dict:
    payload = copy.deepcopy(captured(name))
    change(payload)
    return payload


@pytest.mark.parametrize(
    "payload, message",
    [
        (
            _broken("checkout-service.json", lambda p: p.update(kind="Route")),
            "serving.knative.dev/v1 Route is not a resource the sandbox replays (expected a serving.knative.dev/v1 Service "
            "or Revision, or a run.googleapis.com/v1 Job",
        ),
        (
            _broken("checkout-service.json", lambda p: p.pop("status")),
            "serving.knative.dev/v1 Service 'checkout': status is missing (expected what `describe` prints, status included",
        ),
        (
            _broken("checkout-service.json", lambda p: p["spec"]["template"]["spec"].pop("containers")),
            "serving.knative.dev/v1 Service 'checkout': spec.template.spec.containers is missing (expected the containers "
            "the revision runs, each with an image)",
        ),
        (
            _broken("checkout-service.json", lambda p: p["status"]["conditions"][0].update(status="Maybe")),
            "status.conditions[0].status is 'Maybe' (expected True, False or Unknown)",
        ),
        (
            _broken("checkout-service.json", lambda p: p["status"]["conditions"][0].update(status=["True"])),
            "status.conditions[0].status is ['True'] (expected True, False or Unknown)",
        ),
        (
            _broken(
                "export-job.json",
                lambda p: p["spec"]["template"]["spec"]["template"]["spec"]["containers"][0].pop("image"),
            ),
            "run.googleapis.com/v1 Job 'export': spec.template.spec.template.spec.containers[0].image is missing",
        ),
        (
            _broken("export-job.json", lambda p: p["metadata"].update(name="Export Job")),
            "run.googleapis.com/v1 Job: metadata.name 'Export Job' is not a Cloud Run name",
        ),
        (
            {"name": "projects/p/locations/r/services/s/revisions/s-1", "containers": []},
            "the v2 payload 'projects/p/locations/r/services/s/revisions/s-1' cannot be served: it lists no containers",
        ),
        ({"metadata": {"name": "x"}, "spec": {}}, "neither Cloud Run v1 (no apiVersion and kind) nor v2"),
    ],
)
def test_a_payload_of_the_wrong_kind_or_shape_is_refused_with_the_reason(payload, message):
    with pytest.raises(Refused) as refused:
        to_v2(payload, project=PROJECT, region=REGION)
    assert message in str(refused.value)


def test_a_refusal_names_the_file_and_the_item(tmp_path):
    (tmp_path / "revisions.json").write_text(
        json.dumps([captured("checkout-revisions.json")[0], {"apiVersion": "v1", "kind": "Pod"}])
    )
    with pytest.raises(InputError) as refused:
        captured_resources(
            [{"file": "revisions.json"}],
            directory=tmp_path,
            source=tmp_path / "scenario.yaml",
            project=PROJECT,
            region=REGION,
        )
    assert str(refused.value).startswith(
        f"{tmp_path / 'revisions.json'}[1]: v1 Pod is not a resource the sandbox replays"
    )


def test_the_captured_incident_loads_as_a_scenario():
    scenario = load_scenario(str(CAPTURED), project=PROJECT, region=REGION)
    names = sorted(resource["name"].split("/", 4)[-1] for resource in scenario.resources)
    assert names == [
        "jobs/export",
        "services/checkout",
        "services/checkout/revisions/checkout-00001-abc",
        "services/checkout/revisions/checkout-00002-xyz",
    ]


def test_the_captured_incident_replays_through_the_suite_with_its_findings(suite):
    result = suite.run(
        "--inventory",
        str(CAPTURED / "services.yaml"),
        "--target",
        f"sandbox:{CAPTURED}",
        "--report-dir",
        "out",
        "-k",
        "not deployed_by_script",
    )
    assert result.ret == 1, result.stdout.str() + result.stderr.str()
    report = suite.report()
    [rollout] = findings_for(report, "rollout", "checkout")
    assert rollout["outcome"] == "fail" and "checkout-00002-xyz failed to become ready" in rollout["summary"]
    [traffic] = findings_for(report, "traffic", "checkout")
    assert traffic["outcome"] == "fail" and "traffic stays on checkout-00001-abc" in traffic["summary"]
    [digest] = findings_for(report, "digest", "checkout")
    assert digest["outcome"] == "fail" and "runs sha256:5d2b1f0c9e8a" in digest["summary"]
    [boot] = findings_for(report, "boot", "checkout")
    assert boot["outcome"] == "fail" and "ModuleNotFoundError: No module named 'stripe'" in boot["summary"]
    [stale] = findings_for(report, "stale-jobs", "export")
    assert stale["outcome"] == "fail" and "from the legacy registry gcr.io" in stale["summary"]
    assert {f["outcome"] for f in findings_for(report, "orphans", "acme-shop-prod/europe-west1")} == {"pass"}
    assert {f["outcome"] for f in report["findings"]} == {"pass", "fail"}  # every fact was observed


def test_a_scenario_with_a_refused_payload_cannot_start(suite, tmp_path):
    scenario = tmp_path / "bad"
    scenario.mkdir()
    (scenario / "captured").mkdir()
    (scenario / "captured" / "route.json").write_text(
        json.dumps(_broken("checkout-service.json", lambda p: p.update(kind="Route")))
    )
    (scenario / "scenario.yaml").write_text("resources:\n  - {file: captured/route.json}\n")
    result = suite.run("--inventory", str(CAPTURED / "services.yaml"), "--target", f"sandbox:{scenario}")
    assert result.ret == 4
    assert (
        f"{scenario / 'captured' / 'route.json'}: serving.knative.dev/v1 Route is not a resource" in result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str()

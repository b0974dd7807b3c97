"""`deploycheck inventory import` (also `python -m deploycheck inventory import`): a valid inventory drafted
from what is deployed, read-only, one list call per resource type; the round trip: imported from
sandbox:healthy, the whole suite on it is green; imported from sandbox:incident, the stale jobs and
the orphan still show, because the draft states the platform's conventions rather than copying drift
(see deploycheck/inventory/draft.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from deploycheck.__main__ import main
from deploycheck.cloudrun import JobState, ServiceState
from deploycheck.iam import Binding, IamPolicy
from deploycheck.inventory import load_inventory
from deploycheck.inventory.draft import Fleet
from deploycheck.inventory_import import draft_inventory

from conftest import findings_for

PROJECT, REGION = "nba-props-platform", "us-west2"
NOW = datetime(2026, 2, 1, tzinfo=timezone.utc)
AR = "us-west2-docker.pkg.dev/acme-shop-prod/apps"


def import_from(sandboxes, scenario: str, output, monkeypatch, *extra: str) -> tuple[int, dict]:
    """Import from the test session's running sandbox of `scenario`; return the exit code and the API
    calls the import made."""
    info = sandboxes.info(scenario)
    monkeypatch.setenv("DEPLOYCHECK_SANDBOX_STATE", str(sandboxes.state_file(scenario)))
    httpx.delete(f"{info.api_url}/_sandbox/calls")
    code = main(
        [
            "inventory",
            "import",
            "--project",
            PROJECT,
            "--region",
            REGION,
            "--target",
            f"sandbox:{scenario}",
            "-o",
            str(output),
            *extra,
        ]
    )
    return code, httpx.get(f"{info.api_url}/_sandbox/calls").json()


def test_imported_from_healthy_the_whole_suite_is_green(suite, sandboxes, tmp_path, monkeypatch):
    output = tmp_path / "imported.yaml"
    code, calls = import_from(sandboxes, "healthy", output, monkeypatch)
    assert code == 0
    # Read-only, one list call per resource type, the project's policy, nothing per resource.
    assert calls["write_attempts"] == []
    assert calls["calls"] == {
        "GET /v2/projects/*/locations/*/services": 1,
        "GET /v2/projects/*/locations/*/jobs": 1,
        "POST /v3/projects/*": 1,
    }  # getIamPolicy
    inventory = load_inventory(output)
    assert inventory.registry == "us-west2-docker.pkg.dev/nba-props-platform/nba-props"
    assert len(inventory.services) == 6 and len(inventory.jobs) == 21
    assert {job.runs for job in inventory.jobs} == {"nba-phase2-raw-processors"}
    worker = inventory.service("prediction-worker")
    assert worker.image.repository.endswith("/predictions-worker")
    assert worker.service_account == "prediction-worker@nba-props-platform.iam.gserviceaccount.com"
    assert worker.roles == ["roles/datastore.user", "roles/logging.logWriter"]
    text = output.read_text()
    assert "service_commit_labels: [commit-sha]  # GUESS:" in text
    assert "runs: nba-phase2-raw-processors  # it runs nba-phase2-raw-processors's image repository" in text

    monkeypatch.delenv("DEPLOYCHECK_SANDBOX_STATE")
    suite.reuse_sandbox("healthy")
    result = suite.run("--inventory", str(output), "--target", "sandbox:healthy", "--report-dir", "out", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    report = suite.report()
    assert report["summary"]["fail"] == report["summary"]["error"] == 0
    assert {f["check"] for f in report["findings"]} >= {
        "traffic",
        "rollout",
        "digest",
        "commit",
        "boot",
        "log-visibility",
        "iam",
        "stale-jobs",
        "orphans",
    }
    # What an import cannot see is listed, not passed.
    assert {e["check"] for e in report["not_configured"]} == {"code", "heartbeat-log", "heartbeat-docs"}


def test_imported_from_the_incident_the_stale_jobs_and_the_orphan_still_show(suite, sandboxes, tmp_path, monkeypatch):
    output = tmp_path / "imported.yaml"
    code, calls = import_from(sandboxes, "incident", output, monkeypatch)
    assert code == 0 and calls["write_attempts"] == []
    inventory = load_inventory(output)
    assert inventory.legacy_registries == ["gcr.io"]
    # The job nobody declared (never ran, 200 days old) is left out, and said to be.
    assert "odds-api-props-backfill-manual" not in inventory.job_names() and len(inventory.jobs) == 21
    text = output.read_text()
    assert "#   - odds-api-props-backfill-manual: never executed since it was created 200 days ago" in text
    assert "runs: nba-phase2-raw-processors  # GUESS: its image is in the legacy registry gcr.io" in text

    monkeypatch.delenv("DEPLOYCHECK_SANDBOX_STATE")
    suite.reuse_sandbox("incident")
    result = suite.run(
        "--inventory", str(output), "--target", "sandbox:incident", "--report-dir", "out", "-n", "2", "-m", "drift"
    )
    assert result.ret == 1
    report = suite.report()
    stale = [f for f in report["findings"] if f["check"] == "stale-jobs"]
    assert len(stale) == 21 and all(f["outcome"] == "fail" and "legacy registry gcr.io" in f["summary"] for f in stale)
    [orphans] = findings_for(report, "orphans", f"{PROJECT}/{REGION}")
    assert orphans["outcome"] == "fail"
    assert orphans["summary"] == "1 deployed jobs nobody declared: odds-api-props-backfill-manual"


def test_an_existing_output_is_kept_unless_forced(sandboxes, tmp_path, monkeypatch, capsys):
    output = tmp_path / "services.yaml"
    output.write_text("# the team's own\n")
    code, calls = import_from(sandboxes, "healthy", output, monkeypatch)
    assert code == 4 and output.read_text() == "# the team's own\n"
    assert f"{output} exists and was left as it is (pass --force to replace it)" in capsys.readouterr().err
    assert calls["calls"] == {}  # refused before reading anything
    code, _ = import_from(sandboxes, "healthy", output, monkeypatch, "--force")
    assert code == 0 and load_inventory(output).project == PROJECT


def test_without_output_the_draft_is_printed(sandboxes, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DEPLOYCHECK_SANDBOX_STATE", str(sandboxes.state_file("healthy")))
    assert main(["inventory", "import", "--project", PROJECT, "--region", REGION, "--target", "sandbox:healthy"]) == 0
    printed = capsys.readouterr().out
    (tmp_path / "printed.yaml").write_text(printed)
    assert load_inventory(tmp_path / "printed.yaml").service_names()[0] == "nba-phase2-raw-processors"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--project", "X", "--region", REGION], "--project 'X': not a project id"),
        (
            ["--project", PROJECT, "--region", REGION, "--target", "sandbox:auto"],
            "sandbox:auto is generated from an inventory",
        ),
    ],
)
def test_bad_arguments_are_bad_usage(args, message, capsys):
    assert main(["inventory", "import", *args]) == 4
    assert message in capsys.readouterr().err


# ---- the draft's rules, on a fleet made here


def service(name, image, account="", labels=None):
    return ServiceState(
        name=name,
        uri="",
        generation=1,
        observed_generation=1,
        reconciling=False,
        latest_ready_revision=f"{name}-1",
        latest_created_revision=f"{name}-1",
        traffic=(),
        labels=labels or {},
        template_image=image,
        terminal_state="CONDITION_SUCCEEDED",
        terminal_message="",
        template_service_account=account,
    )


def job(name, image, executions=1, age_days=10):
    return JobState(
        name=name,
        image=image,
        service_account="",
        labels={},
        create_time=NOW - timedelta(days=age_days),
        update_time=None,
        execution_count=executions,
        last_execution="",
        last_execution_time=None,
    )


def draft(tmp_path, services, jobs, bindings=(), effective=None):
    fleet = Fleet(
        project="acme-shop-prod",
        region="europe-west1",
        services=services,
        jobs=jobs,
        policy=IamPolicy("projects/acme-shop-prod", tuple(bindings)),
        effective_accounts=effective or {},
    )
    text = draft_inventory(fleet, NOW)
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    return text, load_inventory(path)


def test_own_images_tags_digests_default_accounts_and_conditional_roles(tmp_path):
    sa = "checkout@acme-shop-prod.iam.gserviceaccount.com"
    text, inventory = draft(
        tmp_path,
        [
            service("checkout", f"{AR}/checkout:v42", account=sa),
            service("catalog", f"{AR}/catalog@sha256:{'a' * 64}"),
            service("web", "europe-docker.pkg.dev/shared-images/web/web:latest", account=sa),
        ],
        [job("export", f"{AR}/exporter:2024-10"), job("reindex", f"{AR}/catalog:latest")],
        bindings=[
            Binding("roles/datastore.user", (f"serviceAccount:{sa}",)),
            Binding(
                "roles/pubsub.publisher", (f"serviceAccount:{sa}",), condition="request.time < timestamp('2027-01-01')"
            ),
        ],
        effective={"catalog": "123456789012-compute@developer.gserviceaccount.com"},
    )
    checkout, catalog, web = (inventory.service(name) for name in ("checkout", "catalog", "web"))
    assert inventory.registry == AR
    assert str(checkout.image) == f"{AR}/checkout:v42" and "GUESS: the service was deployed from :v42" in text
    assert str(catalog.image) == f"{AR}/catalog:latest" and "deployed by digest (sha256:aaaaaaaaaaaa…)" in text
    assert catalog.service_account == "123456789012-compute@developer.gserviceaccount.com"
    assert "the account its newest ready revision runs as (the default)" in text
    assert str(web.image) == "europe-docker.pkg.dev/shared-images/web/web:latest"
    assert "not in the detected registry" in text
    assert checkout.roles == ["roles/datastore.user"]
    assert f"only under a condition, {sa} also holds: roles/pubsub.publisher" in text
    assert str(inventory.job_image(inventory.job("export"))) == f"{AR}/exporter:2024-10"
    assert inventory.job("reindex").runs == "catalog"
    assert inventory.legacy_registries == []


def test_an_abandoned_job_is_left_out_and_a_recent_unrun_one_kept(tmp_path):
    text, inventory = draft(
        tmp_path,
        [service("checkout", f"{AR}/checkout:latest")],
        [
            job("old-manual", f"{AR}/checkout:latest", executions=0, age_days=91),
            job("new-one", f"{AR}/checkout:latest", executions=0, age_days=3),
        ],
    )
    assert inventory.job_names() == ["new-one"]
    assert "#   - old-manual: never executed since it was created 91 days ago" in text

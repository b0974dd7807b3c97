"""The inventory loader: the real services.yaml, its schema and the command line. The broken
inventories, one per kind of mistake with its exact LINE:COL message, are in test_bad_inventory.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploycheck.__main__ import main
from deploycheck.inventory import inventory_json_schema, load_inventory

REPO = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_inventory"

# Seed 001: the backfill jobs found running old gcr.io images.
SEED_001_BACKFILL_JOBS = {
    "nbac-team-boxscore-processor-backfill",
    "nbac-schedule-processor-backfill",
    "bettingpros-player-props-processor-backfill",
    "nbac-injury-report-processor-backfill",
    "nbac-player-boxscore-processor-backfill",
    "bdl-active-players-processor-backfill",
    "bdl-standings-processor-backfill",
    "bdl-boxscores-processor-backfill",
    "bdl-injuries-processor-backfill",
    "bigdataball-pbp-processor-backfill",
    "br-roster-processor-backfill",
    "espn-boxscore-processor-backfill",
    "espn-scoreboard-processor-backfill",
    "espn-team-roster-processor-backfill",
    "gamebook-registry-processor-backfill",
    "nba-players-registry-processor-backfill",
    "nbac-gamebook-processor-backfill",
    "nbac-play-by-play-processor-backfill",
    "nbac-player-movement-processor-backfill",
    "nbac-referee-processor-backfill",
    "odds-game-lines-processor-backfill",
}


# ---- the real inventory


def test_real_inventory_has_the_six_services_and_the_21_backfill_jobs():
    inventory = load_inventory(REPO / "services.yaml")

    assert (inventory.project, inventory.region) == ("nba-props-platform", "us-west2")
    assert inventory.service_names() == [
        "nba-phase2-raw-processors",
        "nba-phase3-analytics-processors",
        "nba-phase4-precompute-processors",
        "nba-scrapers",
        "prediction-worker",
        "prediction-coordinator",
    ]
    assert set(inventory.job_names()) == SEED_001_BACKFILL_JOBS
    assert len(inventory.jobs) == 21
    for job in inventory.jobs:
        assert job.runs == "nba-phase2-raw-processors"
        assert inventory.job_image(job) == inventory.service(job.runs).image


def test_real_inventory_phase2_must_serve_the_heartbeat_fix():
    phase2 = load_inventory(REPO / "services.yaml").service("nba-phase2-raw-processors")

    heartbeat_code = {pattern.path: pattern for pattern in phase2.code}["/app/shared/monitoring/processor_heartbeat.py"]
    assert r"return self\.processor_name" in heartbeat_code.must_contain
    assert str(phase2.image) == "us-west2-docker.pkg.dev/nba-props-platform/nba-props/nba-phase2-raw-processors:latest"
    assert "p2_nba_raw.nbac_team_boxscore" in phase2.processors
    assert phase2.roles == ["roles/datastore.user"]


def test_real_inventory_entries_override_defaults():
    inventory = load_inventory(REPO / "services.yaml")

    worker = inventory.service("prediction-worker")
    assert worker.image.repository == "us-west2-docker.pkg.dev/nba-props-platform/nba-props/predictions-worker"
    assert worker.service_account == "prediction-worker@nba-props-platform.iam.gserviceaccount.com"
    assert [pattern.name for pattern in worker.code] == ["heartbeat-doc-id", "lazy-monitoring-import"]
    assert worker.heartbeat_log is not None
    assert inventory.service("nba-scrapers").heartbeat_log is None
    assert inventory.service("nba-phase3-analytics-processors").service_account == (
        "756957797294-compute@developer.gserviceaccount.com"
    )
    assert inventory.legacy_registry_of(inventory.service("nba-scrapers").image) is None
    with pytest.raises(KeyError):
        inventory.service("nba-phase5")


# ---- schema and command line


def test_committed_schema_is_up_to_date(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == inventory_json_schema()
    assert (REPO / "services.schema.json").read_text() == printed, (
        "services.schema.json is stale: python -m deploycheck schema > services.schema.json"
    )


def test_check_inventory_prints_a_summary_or_the_errors(capsys):
    assert main(["check-inventory", str(REPO / "services.yaml")]) == 0
    assert capsys.readouterr().out == f"{REPO / 'services.yaml'}: 6 services, 21 jobs, OK\n"

    assert main(["inventory", "check", str(BAD / "unknown_runs.yaml")]) == pytest.ExitCode.USAGE_ERROR  # as pytest
    assert f"{BAD / 'unknown_runs.yaml'}:14:11: jobs[0].runs: unknown service" in capsys.readouterr().err


def test_library_does_not_import_pytest():
    probe = "import sys, deploycheck.inventory, deploycheck.__main__; sys.exit('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO).returncode == 0

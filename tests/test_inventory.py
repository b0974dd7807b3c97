"""The inventory loader: the real services.yaml, and one bad file per kind of mistake.

Bad inputs live in tests/data/inventory/; each test asserts the exact LINE:COL and field path,
because pointing at the right line is the loader's whole job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploycheck.__main__ import main
from deploycheck.inventory import InventoryError, inventory_json_schema, load_inventory

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "inventory"

# Seed 001: the backfill jobs found running old gcr.io images.
SEED_001_BACKFILL_JOBS = {
    "nbac-team-boxscore-processor-backfill", "nbac-schedule-processor-backfill",
    "bettingpros-player-props-processor-backfill", "nbac-injury-report-processor-backfill",
    "nbac-player-boxscore-processor-backfill", "bdl-active-players-processor-backfill",
    "bdl-standings-processor-backfill", "bdl-boxscores-processor-backfill", "bdl-injuries-processor-backfill",
    "bigdataball-pbp-processor-backfill", "br-roster-processor-backfill", "espn-boxscore-processor-backfill",
    "espn-scoreboard-processor-backfill", "espn-team-roster-processor-backfill",
    "gamebook-registry-processor-backfill", "nba-players-registry-processor-backfill",
    "nbac-gamebook-processor-backfill", "nbac-play-by-play-processor-backfill",
    "nbac-player-movement-processor-backfill", "nbac-referee-processor-backfill",
    "odds-game-lines-processor-backfill",
}


def errors_of(name: str) -> list[str]:
    """The error lines for tests/data/inventory/NAME, without the file prefix: 'LINE:COL: field: message'."""
    path = DATA / name
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.issues)
    assert all(line.startswith(f"{path}:") for line in lines)
    return [line.removeprefix(f"{path}:") for line in lines]


# ---- the real inventory


def test_real_inventory_has_the_six_services_and_the_21_backfill_jobs():
    inventory = load_inventory(REPO / "services.yaml")

    assert (inventory.project, inventory.region) == ("nba-props-platform", "us-west2")
    assert inventory.service_names() == [
        "nba-phase2-raw-processors", "nba-phase3-analytics-processors", "nba-phase4-precompute-processors",
        "nba-scrapers", "prediction-worker", "prediction-coordinator"]
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
        "756957797294-compute@developer.gserviceaccount.com")
    assert inventory.legacy_registry_of(inventory.service("nba-scrapers").image) is None
    with pytest.raises(KeyError):
        inventory.service("nba-phase5")


# ---- one bad file per kind of mistake


def test_yaml_syntax_error_reports_the_line_pyyaml_reports():
    assert errors_of("syntax_error.yaml") == [
        "6:1: YAML syntax error: expected <block end>, but found '-' (while parsing a block mapping at line 2)"]


def test_unknown_key_suggests_the_close_match_and_lists_the_allowed_keys():
    [error] = errors_of("unknown_key.yaml")
    assert error.startswith("12:5: services[0].imagee: unknown key; did you mean 'image'? (expected one of: name, ")


def test_wrong_types_name_what_was_given_and_what_was_expected():
    assert errors_of("wrong_type.yaml") == [
        "9:18: heartbeats.max_age_hours: wrong type: got string 'two' "
        "(expected a number of hours after which a heartbeat is stale)",
        "12:12: services[0].roles: wrong type: got string 'roles/datastore.user' "
        "(expected a list of IAM roles the service account must hold)",
    ]


def test_missing_required_keys_point_at_the_enclosing_entry():
    [count_error, name_error] = errors_of("missing_field.yaml")
    assert count_error == "8:3: heartbeats.count.p0_above: missing required key (expected a number of documents)"
    assert name_error.startswith("15:5: services[1].name: missing required key (expected a Cloud Run name")


def test_invalid_regex_reports_the_re_error_and_its_position():
    assert errors_of("bad_regex.yaml") == [
        r"10:9: patterns.heartbeat-doc-id.must_contain[1]: invalid regex 'return (self\\.processor_name': "
        "a '(' is never closed (expected an RE2 regular expression)"]


def test_a_typo_and_a_bad_regex_are_reported_together():
    [typo, regex] = errors_of("typo_and_bad_regex.yaml")
    assert typo.startswith("12:5: services[0].service_acount: unknown key; did you mean 'service_account'?")
    assert regex == ("14:17: services[0].heartbeat_log.expected: invalid regex 'heartbeat for [a-z': "
                     "'[a-z' is not a valid regular expression: a '[' is never closed; "
                     "Cloud Logging matches log lines with RE2 (expected an RE2 regular expression)")


def test_duplicate_names_point_at_the_second_and_name_the_first_line():
    assert errors_of("duplicate_names.yaml") == [
        "13:11: services[2].name: duplicate service name 'phase2', first defined at line 11 "
        "(expected each service once)",
        "17:11: jobs[1].name: duplicate job name 'backfill', first defined at line 15 (expected each job once)",
    ]


def test_job_running_an_unknown_service_suggests_the_close_match():
    assert errors_of("unknown_runs.yaml") == [
        "14:11: jobs[0].runs: unknown service 'nba-phase2-raw-processor'; did you mean "
        "'nba-phase2-raw-processors'? (expected one of the services: nba-phase2-raw-processors)"]


def test_code_naming_an_unknown_pattern_suggests_the_close_match():
    assert errors_of("unknown_pattern.yaml") == [
        "16:30: services[0].code[1]: unknown pattern 'heartbeat-docid'; did you mean 'heartbeat-doc-id'? "
        "(expected one of the names under `patterns`: heartbeat-doc-id)"]


def test_empty_code_list_is_an_error():
    [error] = errors_of("empty_code.yaml")
    assert error.startswith("19:11: services[0].code: empty code pattern list checks nothing")


def test_malformed_image_references_report_the_imageref_message():
    assert errors_of("bad_image.yaml") == [
        "12:12: services[0].image: image reference "
        "'us-west2-docker.pkg.dev/demo-project/demo/Phase2-Processors': repository path "
        "'demo-project/demo/Phase2-Processors' must be lowercase components separated by '/'",
        "15:12: jobs[0].image: image reference 'gcr.io/demo-project/backfill@sha256:abc': "
        "digest must be sha256: followed by 64 lowercase hex digits",
    ]


def test_duplicate_yaml_key_is_detected_although_pyyaml_keeps_the_last():
    assert errors_of("duplicate_key.yaml") == [
        "13:5: services[0].image: duplicate key: 'image' is already set at line 12 "
        "(YAML silently keeps only the last value; expected each key once)"]


def test_image_in_a_legacy_registry_is_an_error():
    [error] = errors_of("legacy_image.yaml")
    assert error.startswith("13:12: services[0].image: image gcr.io/demo-project/prediction-coordinator:logging-fix "
                            "is in legacy registry 'gcr.io'")


def test_processor_names_must_be_good_heartbeat_ids_under_one_service():
    [not_an_id, bad_id, listed_twice] = errors_of("bad_processors.yaml")
    assert not_an_id.startswith("13:44: services[0].processors[1]: processor 'nbac schedule' does not match "
                                "heartbeats.id_pattern")
    assert bad_id.startswith("15:46: services[1].processors[1]: processor 'NbacProcessor_None_Processor' matches "
                             "heartbeats.bad_id_patterns '_None_'")
    assert listed_twice.startswith("15:76: services[1].processors[2]: processor 'p2_nba_raw.nbac_schedule' "
                                   "is already listed at line 13")


def test_conflicting_or_missing_image_settings():
    [count, tag, both, neither] = errors_of("job_image_conflicts.yaml")
    assert count.startswith("9:10: heartbeats.count: thresholds out of order: 1, 500, 100, 50")
    assert tag.startswith("14:10: services[0].tag: tag given twice")
    assert both.startswith("18:12: jobs[0].image: a job runs either a service's image or its own")
    assert neither.startswith("19:5: jobs[1]: the job names no image")


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "services.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(InventoryError, match=r"services\.yaml:1:1: the document is empty \(expected a mapping"):
        load_inventory(empty)
    with pytest.raises(InventoryError, match=r"missing\.yaml: cannot read the inventory"):
        load_inventory(tmp_path / "missing.yaml")


# ---- schema and command line


def test_committed_schema_is_up_to_date(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == inventory_json_schema()
    assert (REPO / "services.schema.json").read_text() == printed, (
        "services.schema.json is stale: python -m deploycheck schema > services.schema.json")


def test_check_inventory_prints_a_summary_or_the_errors(capsys):
    assert main(["check-inventory", str(REPO / "services.yaml")]) == 0
    assert capsys.readouterr().out == f"{REPO / 'services.yaml'}: 6 services, 21 jobs, OK\n"

    assert main(["check-inventory", str(DATA / "unknown_runs.yaml")]) == 2
    assert f"{DATA / 'unknown_runs.yaml'}:14:11: jobs[0].runs: unknown service" in capsys.readouterr().err


def test_library_does_not_import_pytest():
    probe = "import sys, deploycheck.inventory, deploycheck.__main__; sys.exit('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO).returncode == 0

"""Any project: an inventory with only project, region, services and jobs runs; every check it gives
nothing to hold an entry to is listed as not configured (terminal, report.json/md/txt/html), never
passed and never silently dropped; --project / --region override the inventory; an entry may run
in a region of its own. Runs against sandbox:auto, the stand-in generated from the inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploycheck.inventory import load_inventory, unconfigured_reason
from deploycheck.inventory.configured import HEARTBEATS_SECTION

REPO = Path(__file__).resolve().parent.parent

# A team that is not the NBA platform: two services, one job, no heartbeats, no code patterns.
ACME = """\
project: acme-shop-prod
region: europe-west1
registry: europe-west1-docker.pkg.dev/acme-shop-prod/apps
services:
  - name: checkout
  - name: catalog
    service_account: catalog@acme-shop-prod.iam.gserviceaccount.com
    roles: [roles/datastore.user]
jobs:
  - name: nightly-export
    runs: catalog
"""
BUILTIN_ONLY = ("-k", "not deployed_by_script")  # the NBA platform's own check is not this team's

# What the inventory above leaves unconfigured, by check id.
EXPECTED_NOT_CONFIGURED = {
    ("commit", "checkout"),
    ("commit", "catalog"),
    ("code", "checkout"),
    ("code", "catalog"),
    ("code", "nightly-export"),
    ("heartbeat-log", "checkout"),
    ("heartbeat-log", "catalog"),
    ("iam", "checkout"),
    ("heartbeat-docs", "heartbeats"),
}


def write(tmp_path: Path, text: str, name: str = "acme.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- the rule, without pytest


def test_each_unconfigured_check_says_what_the_inventory_lacks(tmp_path):
    inventory = load_inventory(write(tmp_path, ACME))
    checkout, catalog = inventory.service("checkout"), inventory.service("catalog")
    export = inventory.job("nightly-export")

    def reason(check, entry, expect_commit=None):
        return unconfigured_reason(check, entry, inventory, expect_commit=expect_commit)

    assert reason("heartbeat-docs", None) == HEARTBEATS_SECTION
    assert "no `heartbeat_log`" in reason("heartbeat-log", checkout)
    assert "no `service_account` and no `roles`" in reason("iam", checkout)
    assert reason("iam", catalog) is None
    assert "no `code` patterns for this job" in reason("code", export)
    assert "no --expect-commit" in reason("commit", checkout)
    assert reason("commit", checkout, expect_commit="ce269d67") is None
    for check in ("traffic", "rollout", "digest", "boot", "log-visibility"):
        assert reason(check, checkout) is None
    assert reason("stale-jobs", export) is None
    # The NBA inventory configures everything but the heartbeat lines of the two services that log none.
    nba = load_inventory(REPO / "services.yaml")
    assert unconfigured_reason("heartbeat-log", nba.service("nba-scrapers"), nba, expect_commit=None)
    assert all(
        unconfigured_reason(check, nba.service("prediction-worker"), nba, expect_commit=None) is None
        for check in ("commit", "code", "iam", "heartbeat-log")
    )


def test_overrides_move_the_entries_that_name_no_region_of_their_own(tmp_path):
    inventory = load_inventory(
        write(tmp_path, ACME.replace("  - name: checkout\n", "  - name: checkout\n    region: us-east1\n"))
    )
    moved = inventory.with_overrides(project="acme-shop-staging", region="europe-west4")
    assert (moved.project, moved.region) == ("acme-shop-staging", "europe-west4")
    assert moved.service("checkout").region == "us-east1"
    assert moved.service("catalog").region == moved.job("nightly-export").region == "europe-west4"
    assert moved.regions() == ["europe-west4", "us-east1"]
    assert inventory.with_overrides() is inventory


# ---- as a user runs it


def test_a_minimal_inventory_is_green_against_its_stand_in_and_lists_what_it_does_not_configure(suite, tmp_path):
    inventory = write(tmp_path, ACME)
    result = suite.run("--inventory", str(inventory), "--target", "sandbox:auto", "--report-dir", "out", *BUILTIN_ONLY)
    output = result.stdout.str()
    assert result.ret == 0, output + result.stderr.str()
    report = suite.report()
    passed = {(f["check"], f["resource"]) for f in report["findings"] if f["outcome"] == "pass"}
    assert {f["outcome"] for f in report["findings"]} == {"pass"}
    assert passed == {
        (check, name)
        for check in ("traffic", "rollout", "digest", "boot", "log-visibility")
        for name in ("checkout", "catalog")
    } | {("iam", "catalog"), ("stale-jobs", "nightly-export"), ("orphans", "acme-shop-prod/europe-west1")}
    listed = {(entry["check"], entry["resource"]) for entry in report["not_configured"]}
    assert listed == EXPECTED_NOT_CONFIGURED
    assert not listed & passed, "a check not configured must never also pass"
    assert report["summary"]["not_configured"] == len(EXPECTED_NOT_CONFIGURED)
    assert "checks/test_heartbeats.py::test_heartbeat_docs[heartbeats]" in {e["test"] for e in report["not_configured"]}
    # The terminal, report.md and report.txt say it too, grouped by check and reason.
    assert "deploycheck: not configured (not run)" in output
    assert "heartbeat-docs[heartbeats]: no `heartbeats:` section" in output
    assert "iam[checkout]: no `service_account` and no `roles`" in output
    markdown = (suite.path / "out" / "report.md").read_text()
    assert "Not configured by the inventory (not run, not passed)" in markdown
    assert "commit\\[checkout, catalog\\]" in markdown
    assert "code[checkout, catalog]: no `code` patterns" in (suite.path / "out" / "report.txt").read_text()
    assert "Not configured by the inventory: 6 checks not run" in (suite.path / "out" / "report.html").read_text()


def test_not_configured_travels_from_xdist_workers_and_expect_commit_configures_commit(suite, tmp_path):
    inventory = write(tmp_path, ACME)
    result = suite.run(
        "--inventory",
        str(inventory),
        "--target",
        "sandbox:auto",
        "--report-dir",
        "out",
        "--expect-commit",
        "ce269d67a1b2",
        "-n",
        "2",
        *BUILTIN_ONLY,
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    report = suite.report()
    listed = {(entry["check"], entry["resource"]) for entry in report["not_configured"]}
    assert listed == EXPECTED_NOT_CONFIGURED - {("commit", "checkout"), ("commit", "catalog")}
    commits = [f for f in report["findings"] if f["check"] == "commit"]
    assert len(commits) == 2 and all(f["outcome"] == "pass" for f in commits)
    assert all("ce269d67a1b2" in f["summary"] for f in commits)


def test_project_and_region_options_override_the_inventory_and_entries_keep_their_own_region(suite, tmp_path):
    inventory = write(tmp_path, ACME.replace("  - name: checkout\n", "  - name: checkout\n    region: us-east1\n"))
    result = suite.run(
        "--inventory",
        str(inventory),
        "--target",
        "sandbox:auto",
        "--report-dir",
        "out",
        "--project",
        "acme-shop-staging",
        "--region",
        "europe-west4",
        *BUILTIN_ONLY,
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    report = suite.report()
    assert (report["project"], report["region"]) == ("acme-shop-staging", "europe-west4")
    orphans = {f["resource"]: f for f in report["findings"] if f["check"] == "orphans"}
    # One orphans check per region the entries run in, each listing its own region only.
    assert set(orphans) == {"acme-shop-staging/europe-west4", "acme-shop-staging/us-east1"}
    assert "1 services and 1 jobs" in orphans["acme-shop-staging/europe-west4"]["summary"]
    assert "1 services and 0 jobs" in orphans["acme-shop-staging/us-east1"]["summary"]
    # checkout was read in its own region; the fix names it.
    [traffic] = [f for f in report["findings"] if f["check"] == "traffic" and f["resource"] == "checkout"]
    assert traffic["outcome"] == "pass"
    state = json.loads((suite.path / "out" / "report.json").read_text())
    assert state["summary"]["target"] == "sandbox:auto"


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--region", "Europe", "--region 'Europe': not a region (expected e.g. us-west2, europe-west1)"),
        ("--project", "x", "--project 'x': not a project id"),
    ],
)
def test_a_bad_override_is_bad_usage(suite, tmp_path, option, value, message):
    result = suite.run("--inventory", str(write(tmp_path, ACME)), "--target", "sandbox:auto", option, value)
    assert result.ret == 4
    assert message in result.stderr.str()

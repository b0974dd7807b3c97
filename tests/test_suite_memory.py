"""Memory across runs, as a user runs it: `--previous` classifies findings new / still / fixed,
`--history` keeps nights, similar failures group into one fix, and a run that cannot start
still writes a report saying why."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from deploycheck.findings import finding_id

BACKFILL_JOBS = 21


def nightly(suite, scenario: str, report_dir: str, *extra: str):
    suite.reuse_sandbox(scenario)
    return suite.run("-m", "nightly", "--target", f"sandbox:{scenario}", "--report-dir", report_dir, *extra)


def failing(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["outcome"] != "pass"]


def test_incident_then_healthy_shows_what_was_fixed_and_the_reverse_shows_it_new(suite):
    first = nightly(suite, "incident", "A")
    assert first.ret == 1, first.stdout.str()
    incident = suite.report("A")
    broken = failing(incident)
    assert len(broken) >= BACKFILL_JOBS + 2
    assert all(f["id"] == finding_id(f["check"], f["resource"], f["cause"]) for f in incident["findings"])
    assert incident["changes"] is None and incident["project"] == "nba-props-platform"

    healed = nightly(suite, "healthy", "B", "--previous", "A/report.json")
    assert healed.ret == 0, healed.stdout.str()
    healthy = suite.report("B")
    assert healthy["changes"]["new"] == 0 and healthy["changes"]["still"] == 0
    assert healthy["changes"]["fixed"] == len(broken) == len(healthy["fixed"])
    assert {f["id"] for f in healthy["fixed"]} == {f["id"] for f in broken}
    markdown = (suite.path / "B" / "report.md").read_text()
    assert f"**0 new**, 0 still failing, **{len(broken)} fixed**" in markdown
    assert "- fixed: stale-jobs (stale-image) on bdl-active-players-processor-backfill, " in markdown
    page = (suite.path / "B" / "report.html").read_text()
    assert f"<b>0</b> new · <b>0</b> still failing · <b>{len(broken)}</b> fixed" in page
    assert f"{len(broken)} fixed since then" in page and 'class="tag new"' not in page
    text = (suite.path / "B" / "report.txt").read_text()
    assert f"0 new, 0 still failing, {len(broken)} fixed" in text
    assert f"0 new, 0 still failing, {len(broken)} fixed" in healed.stdout.str()

    again = nightly(suite, "incident", "C", "--previous", "B")  # a directory: its newest report
    assert again.ret == 1
    relapse = suite.report("C")
    assert relapse["changes"] == {
        "new": len(broken),
        "still": 0,
        "fixed": 0,
        "unchecked": 0,
        "previous": str(suite.path / "B" / "report.json"),
        "previous_started": healthy["summary"]["started"],
    }
    assert all(f["change"] == "new" and f["since"] == relapse["summary"]["started"] for f in failing(relapse))
    assert f"**{len(broken)} new**, 0 still failing, **0 fixed**" in (suite.path / "C" / "report.md").read_text()
    page = (suite.path / "C" / "report.html").read_text()
    assert f"<b>{len(broken)}</b> new · <b>0</b> still failing · <b>0</b> fixed" in page
    assert 'class="tag new"' in page

    nightly(suite, "incident", "D", "--previous", "A/report.json")
    assert {f["change"] for f in failing(suite.report("D"))} == {"still"}
    assert {f["since"] for f in failing(suite.report("D"))} == {incident["summary"]["started"]}


def test_incident_groups_the_backfill_jobs_stale_images_into_one_loop_and_prints_each_failure_once(suite):
    result = nightly(suite, "incident", "out", "--junitxml", "junit.xml")
    assert result.ret == 1
    report = suite.report()
    [stale] = [g for g in report["groups"] if g["check"] == "stale-jobs"]
    assert stale["cause"] == "stale-image" and len(stale["resources"]) == BACKFILL_JOBS
    assert stale["remediation"].startswith("for name in bdl-active-players-processor-backfill ")
    assert (
        '\n  gcloud run jobs update "${name}" --image us-west2-docker.pkg.dev/nba-props-platform/'
        in stale["remediation"]
    )
    assert stale["remediation"].endswith("--region us-west2 --project nba-props-platform\ndone")
    markdown = (suite.path / "out" / "report.md").read_text()
    assert markdown.count("P2 FAIL · stale-jobs · stale-image · 21 resources") == 1
    assert "gcloud run jobs update bdl-" not in markdown  # one loop, not 21 commands

    out = result.stdout.str()
    one_job = "nbac-schedule-processor-backfill"
    assert out.count(f"stale-jobs[{one_job}]") == 1  # not again in a failure section or short summary
    assert "short test summary info" not in out and "= FAILURES =" not in out
    assert "gcloud run jobs update bdl-" not in out and "fix for all 21: for name in bdl-active-players" in out

    cases = ElementTree.parse(suite.path / "junit.xml").getroot().iter("testcase")
    properties = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
    job_case = properties[f"test_stale_jobs[{one_job}]"]
    assert job_case["severity"] == "P2" and job_case["outcome"] == "fail"
    assert job_case["remediation"].startswith(f"gcloud run jobs update {one_job} --image ")
    [recorded] = json.loads(job_case["deploycheck.findings"])
    assert recorded["cause"] == "stale-image" and json.loads(job_case["finding_ids"]) == [recorded["id"]]


def test_history_keeps_each_run_bounded_and_feeds_the_trend(suite):
    for night in range(3):
        result = nightly(suite, "incident", f"night{night}", "--history", "hist", "--history-keep", "2")
        assert result.ret == 1
    kept = sorted(p.name for p in (suite.path / "hist").iterdir())
    assert len(kept) == 2 and all(name.startswith("report-") and name.endswith(".json") for name in kept)
    history = suite.report("night2")["history"]
    assert len(history) == 2 and history[-1]["started"] == suite.report("night2")["summary"]["started"]
    assert history[0]["started"] == suite.report("night1")["summary"]["started"]
    tonight = history[-1]
    assert tonight["heartbeat_docs"] == 1053 and tonight["failing"]["P0"] >= 1
    assert len(tonight["job_image_age_days"]) == BACKFILL_JOBS and min(tonight["job_image_age_days"].values()) >= 169


def test_a_run_that_cannot_start_still_writes_why_and_when(suite):
    stale = suite.path / "out"
    stale.mkdir()
    (stale / "report.html").write_text("last night")
    (suite.path / "services.yaml").write_text("project: nba-props-platform\nregion: [us-west2\n")
    result = suite.run("-m", "nightly", "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 4
    report = suite.report()
    assert "services.yaml" in report["error"] and report["started"] and report["summary"]["exit_status"] == 4
    assert report["findings"] == [] and not (stale / "report.html").exists()
    assert "could not start" in (stale / "report.md").read_text()
    assert report["error"] in (stale / "report.txt").read_text()


def test_a_previous_report_that_is_not_one_stops_the_run_with_exit_4_and_a_report(suite):
    (suite.path / "bad.json").write_text('{"findings": [\n  {"check": 1}\n')
    result = suite.run("-m", "nightly", "--target", "sandbox:healthy", "--report-dir", "out", "--previous", "bad.json")
    assert result.ret == 4
    assert "bad.json:3:1: not JSON" in result.stderr.str()
    assert "bad.json:3:1: not JSON" in suite.report()["error"]


def test_a_serving_revision_that_fails_at_boot_is_rolled_back_first(suite):
    suite.reuse_sandbox("incident")
    service = "nba-phase3-analytics-processors"
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        service,
        "--target",
        "sandbox:incident",
        "--report-dir",
        "out",
        "--pyargs",
        "deploycheck_pytest.checks.test_logs",
        "-k",
        "boot",
    )
    assert result.ret == 1
    [boot] = [f for f in suite.report()["findings"] if f["check"] == "boot"]
    assert boot["severity"] == "P0" and boot["cause"] == "boot-error"
    rollback, why = boot["remediation"].splitlines()
    # 00170 crashes at import; 00168 was the ready revision before it.
    assert rollback == (
        f"gcloud run services update-traffic {service} --to-revisions={service}-00168-k1p=100 "
        "--region us-west2 --project nba-props-platform"
    )
    assert why.startswith("gcloud logging read ") and f"{service}-00170-q2m" in why
    assert f"      fix: {rollback}" in result.stdout.str()


def test_no_credentials_is_a_report_naming_the_project_and_the_way_to_log_in(suite):
    result = suite.run("-m", "nightly", "--target", "gcp", "--report-dir", "out")
    assert result.ret == 4
    report = suite.report()
    assert "Application Default Credentials" in report["error"]
    assert (report["project"], report["region"]) == ("nba-props-platform", "us-west2")
    assert (
        (suite.path / "out" / "report.md")
        .read_text()
        .startswith("## deploycheck: nba-props-platform (us-west2) could not start")
    )

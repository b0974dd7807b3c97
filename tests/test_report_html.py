"""report.html's view: the grid picks each cell's worst finding, groups fold into one entry, and a
report with none of the optional keys (project, groups, changes, history) still renders."""

from datetime import datetime, timezone

from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.report.html_view import fleet_grid, red_entries
from deploycheck.report.json_report import build_report
from deploycheck.report.render import render


def _finding(check, resource, severity, outcome, summary="x"):
    return {
        "check": check,
        "resource": resource,
        "severity": severity,
        "outcome": outcome,
        "summary": summary,
        "remediation": None,
        "evidence": {},
    }


def test_a_cell_shows_its_worst_finding_and_links_to_it():
    findings = [
        _finding("iam", "svc", "P1", "error", "cannot verify"),
        _finding("iam", "svc", "P0", "fail", "missing"),
        _finding("iam", "svc", "P3", "pass"),
        _finding("stale-jobs", "job", "P2", "waived"),
        _finding("traffic", "svc", "P3", "pass"),
    ]
    grid = fleet_grid(findings, {"services": ["svc"], "jobs": ["job"]})
    assert grid["checks"] == ["traffic", "iam", "stale-jobs"]  # the checks' own order, not alphabetical
    [svc, job] = grid["rows"]
    assert svc["resource"] == "svc" and job["resource"] == "job"
    traffic, iam, stale = svc["cells"]
    assert (traffic["state"], traffic["label"]) == ("pass", "✓")
    assert (iam["state"], iam["label"]) == ("P0", "P0×3") and "missing" in iam["title"].splitlines()[1]
    assert stale is None and job["cells"][2]["state"] == "waived"


def test_a_group_of_red_findings_becomes_one_entry_and_the_rest_stand_alone():
    findings = [dict(_finding("stale-jobs", f"j{n}", "P2", "fail"), id=f"id{n}") for n in range(3)]
    findings.append(dict(_finding("boot", "svc", "P0", "fail"), id="boot"))
    groups = [{"id": "g", "finding_ids": ["id0", "id1", "id2", "gone"]}, {"id": "alone", "finding_ids": ["boot"]}]
    entries = red_entries(findings, groups)
    assert [(e["lead"]["check"], len(e["members"]), bool(e["group"])) for e in entries] == [
        ("boot", 1, False),
        ("stale-jobs", 3, True),
    ]
    assert entries[1]["resources"] == ["j0", "j1", "j2"]


def test_a_report_without_any_optional_key_still_renders_and_escapes_what_servers_said():
    findings = [Finding("traffic", "<b>svc</b>", Severity.P1, Outcome.FAIL, "tag <script>x</script>", {}, "fix <it>")]
    report = build_report(
        findings,
        target="gcp",
        inventory="services.yaml",
        started=datetime(2026, 2, 1, tzinfo=timezone.utc),
        exit_status=1,
        selection={},
    )
    for key in ("project", "region", "waivers", "heartbeat_band"):
        report.pop(key)
    html = render(report, "report.html.j2")
    assert "<title>deploycheck — gcp</title>" in html  # no project known: the target names the page
    assert "What changed" not in html and "Waived" not in html and "Trends" not in html
    assert '<h2 id="trends">Tonight</h2>' in html
    assert "&lt;b&gt;svc&lt;/b&gt;" in html and "<b>svc</b>" not in html and "<script>x" not in html
    assert html.count("<svg") == 1  # tonight's failing count; no heartbeat or job data, so no such chart

"""report.md and report.txt: within budget for any fleet, regexes and commands intact once rendered."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from markdown_it import MarkdownIt

from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.report.json_report import build_report
from deploycheck.report.memory import PreviousReport
from deploycheck.report.text import MARKDOWN_LIMIT, TEXT_LIMIT, md_code, render_markdown, render_text

STARTED = datetime(2026, 2, 1, 3, 0, tzinfo=timezone.utc)
PROJECT = dict(project="nba-props-platform", region="us-west2")
REGEX = r"^from google\.cloud import monitoring_v3 *$|_None_\d{8}|[`*]|a\|b"
QUERY = (
    'gcloud logging read \'resource.type="cloud_run_revision" AND textPayload=~"Worker failed\\.\\s+`boot`"\' '
    "--project nba-props-platform --limit 50"
)


def rendered_text(markdown: str) -> str:
    """What a reader sees: GitHub-flavoured rendering (CommonMark + tables), tags stripped."""
    page = MarkdownIt("commonmark").enable("table").render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def report_of(findings, **kwargs):
    return build_report(
        findings,
        target="sandbox:incident",
        inventory="services.yaml",
        started=STARTED,
        exit_status=1,
        selection={},
        **PROJECT,
        **kwargs,
    )


def test_regexes_and_commands_survive_rendering_unchanged():
    finding = Finding(
        "code",
        "prediction-worker",
        Severity.P0,
        Outcome.FAIL,
        f"main.py:3: `import x` matches forbidden /{REGEX}/ <b>not bold</b> # not a heading",
        {},
        QUERY,
        "pattern-monitoring",
    )
    markdown = render_markdown(report_of([finding]))
    seen = rendered_text(markdown)
    assert f"/{REGEX}/" in seen and "<b>not bold</b> # not a heading" in seen
    assert QUERY in seen
    assert "nba-props-platform (us-west2)" in markdown.splitlines()[0]


def test_a_fence_is_longer_than_any_backtick_run_in_the_command():
    command = "echo ```` done"
    block = md_code(command)
    assert block.startswith("`````sh\n") and rendered_text(block).strip() == command


def generated_incident(resources: int) -> list[Finding]:
    """A fleet-sized incident: per service a digest and a boot finding each with its own command,
    per job a stale image (one shared remedy), plus long regex-quoting summaries."""
    findings = []
    for index in range(resources):
        if index % 2:
            name = f"backfill-job-{index:04d}"
            findings.append(
                Finding(
                    "stale-jobs",
                    name,
                    Severity.P2,
                    Outcome.FAIL,
                    f"runs gcr.io/p/{name} (built 170 days ago), not phase2's sha256:ab…",
                    {},
                    f"gcloud run jobs update {name} --image us-west2-docker.pkg.dev/p/r/phase2@sha256:"
                    + "a" * 64
                    + " --region us-west2 --project p",
                    "stale-image",
                )
            )
        else:
            name = f"service-{index:04d}"
            findings.append(
                Finding(
                    "digest",
                    name,
                    Severity.P1,
                    Outcome.FAIL,
                    f"serving revision {name}-00001-abc runs sha256:{index:064x} but :latest points elsewhere",
                    {},
                    f"gcloud run deploy {name} --image r/{name}@sha256:{index:064x} --region us-west2 --project p",
                    "tag-not-rolled-out",
                )
            )
            findings.append(
                Finding(
                    "boot",
                    name,
                    Severity.P0,
                    Outcome.FAIL,
                    f"boot errors: /{REGEX}/ " + "x" * 300,
                    {},
                    QUERY.replace("cloud_run_revision", name),
                    "boot-error",
                )
            )
    return findings


def test_markdown_of_a_1000_resource_incident_stays_under_the_limit_and_leads_with_what_changed():
    findings = generated_incident(1000)
    previous = PreviousReport(
        "last/report.json",
        "2026-01-31T03:00:00+00:00",
        [{**f.to_dict(), "since": "2026-01-20T03:00:00+00:00"} for f in findings[:300]],
    )
    report = report_of(findings, previous=previous, compare=True)
    markdown = render_markdown(report)
    assert len(markdown) < MARKDOWN_LIMIT
    lines = markdown.splitlines()
    assert lines[0].startswith("## deploycheck: nba-props-platform (us-west2) — 1500 failed")
    assert lines[2].startswith(
        f"**What changed** since the previous report (2026-01-31 03:00Z): "
        f"**{1500 - 300} new**, 300 still failing, **0 fixed**"
    )
    assert re.search(r"\*\*\d+ more groups \(\d+ findings\) are in report\.html and report\.json\.\*\*", markdown)
    assert "P0 FAIL · boot" in markdown  # the worst come first
    assert markdown.rstrip().endswith("exit status 1.")
    seen = rendered_text(markdown)
    assert f"/{REGEX}/" in seen
    # The 500 services' boot errors are one group (one command, the name aside); a loop naming them
    # all is too long for a comment, so the names are read from report.json and the command stays whole.
    [boot] = [g for g in report["groups"] if g["check"] == "boot"]
    assert len(boot["resources"]) == 500 and boot["remediation"].count("service-") == 500
    loop = (
        f"jq -r '.groups[] | select(.id == \"{boot['id']}\") | .resources[]' report.json |\n"
        "while read -r name; do\n  gcloud logging read "
    )
    assert loop in markdown and """resource.type="'"${name}"'" AND""" in markdown
    text = render_text(report)
    assert len(text) < TEXT_LIMIT and "1200 new, 300 still failing, 0 fixed" in text


def test_plain_text_has_no_markup_and_keeps_commands_whole():
    finding = Finding("boot", "svc", Severity.P0, Outcome.FAIL, f"errors /{REGEX}/", {}, QUERY, "boot-error")
    text = render_text(report_of([finding]))
    assert f"errors /{REGEX}/" in text and f"    {QUERY}" in text
    assert "**" not in text and "```" not in text


def test_a_report_of_a_run_that_could_not_start_says_why_in_both():
    report = build_report([], target="gcp", inventory="services.yaml", started=STARTED, exit_status=4, selection={})
    report["error"] = "--target gcp needs Application Default Credentials: run gcloud auth application-default login"
    report["started"] = STARTED.isoformat()
    assert "could not start" in render_markdown(report) and "No check ran" in render_markdown(report)
    assert report["error"] in render_text(report)

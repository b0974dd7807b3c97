"""report.md (more in test_report_text.py) and report.html: every red finding with its fix, escaped, self-contained."""

import re
from datetime import datetime, timezone
from html.parser import HTMLParser

from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.report.json_report import build_report
from deploycheck.report.render import render
from deploycheck.report.text import render_markdown

FINDINGS = [
    Finding(
        "digest",
        "nba-phase2-raw-processors",
        Severity.P1,
        Outcome.FAIL,
        "serving revision runs sha256:0 but :latest points to sha256:1 <script>alert(1)</script>",
        {"tag": "x"},
        "gcloud run deploy nba-phase2-raw-processors --image x@sha256:1 --region us-west2",
        "tag-not-rolled-out",
    ),
    Finding("iam", "prediction-worker", Severity.P2, Outcome.ERROR, "cannot verify: granted to group:a|b", {}, None),
    Finding("traffic", "nba-scrapers", Severity.P3, Outcome.PASS, "100% of traffic on nba-scrapers-00041", {}),
]
REPORT = build_report(
    FINDINGS,
    target="sandbox:incident",
    inventory="services.yaml",
    started=datetime(2026, 2, 1, tzinfo=timezone.utc),
    exit_status=1,
    selection={},
)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.external = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        # In-page links (#anchor) stay on the page; anything else would leave it or load something.
        self.external += [
            value
            for name, value in attrs
            if name in ("src", "href", "action", "srcset", "data") and value and not value.startswith("#")
        ]


def test_html_is_self_contained_escaped_and_lists_every_red_finding_with_its_fix():
    html = render(REPORT, "report.html.j2")
    parser = Tags()
    parser.feed(html)
    assert parser.external == []  # no request leaves the page; its one script is inline
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "gcloud run deploy nba-phase2-raw-processors --image x@sha256:1 --region us-west2" in html
    assert html.index("P1 FAIL") < html.index("Passed (1)")  # red before green
    assert re.search(r"<b>1</b>P1", html) and re.search(r"<b>1</b>passed", html)


def test_markdown_lists_every_red_finding_with_its_fix_and_escapes_what_would_be_markup():
    markdown = render_markdown(REPORT)
    assert markdown.splitlines()[0] == "## deploycheck: sandbox:incident — 1 failed, 1 unobserved, 1 passed"
    assert "#### P1 FAIL · digest · tag-not-rolled-out · nba-phase2-raw-processors" in markdown
    assert "#### P2 ERROR · iam · iam · prediction-worker" in markdown
    assert "granted to group:a\\|b" in markdown  # a pipe stays a pipe, not a table cell
    assert "\\<script\\>" in markdown

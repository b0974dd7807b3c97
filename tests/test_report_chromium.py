"""report.html in real headless Chromium (Debian `chromium`, installed by `make setup`): the page
renders fully with every host unresolvable, makes no network request (Chromium's own net log is
read), its title names project and region, the fleet grid links to findings that exist, and the
filter script pre-filters from a URL fragment or query. Screenshots are left in tests/artifacts/
(ignored by git) and their paths printed, for a person to look at."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.report.json_report import build_report
from deploycheck.report.render import write_rendered

pytestmark = pytest.mark.chromium

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WINDOW = (1280, 2000)
# Quiet Chromium's own background traffic (updates, sync); the page's requests are told apart
# from whatever remains by their file:// network isolation key.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


class Browser:
    def __init__(self, workdir: Path):
        self.binary = shutil.which("chromium")
        assert self.binary, "Debian chromium is not installed: run `make setup` (SYSTEM_PACKAGES has chromium)"
        self.workdir = workdir
        self.runs = 0

    def _run(self, url: str, *action: str) -> tuple[str, list[str]]:
        """Chromium's stdout for `action` on `url`, and the URLs the page itself requested."""
        self.runs += 1
        net_log = self.workdir / f"net-{self.runs}.json"
        done = subprocess.run(
            [
                self.binary,
                *FLAGS,
                f"--user-data-dir={self.workdir / f'profile-{self.runs}'}",
                f"--log-net-log={net_log}",
                *action,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout, page_requests(net_log)

    def dom(self, url: str) -> tuple[Dom, list[str]]:
        """The DOM after load and after the page's script ran."""
        stdout, requests = self._run(url, "--dump-dom")
        return Dom(stdout), requests

    def screenshot(self, url: str, path: Path) -> list[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        _, requests = self._run(url, f"--screenshot={path}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == WINDOW
        return requests


def page_requests(net_log: Path) -> list[str]:
    """URLs Chromium started loading on behalf of a file:// page (its own traffic has another key)."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("network_isolation_key", "").startswith("file://")
    ]


class Dom(HTMLParser):
    """Every element's tag and attributes, in document order, and the page's <title> text (the
    first one: SVG charts carry <title>s of their own)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.title, self._in_title = "", False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title" and sum(1 for name, _ in self.elements if name == "title") == 1

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def having(self, attribute: str) -> list[dict]:
        return [attrs for _, attrs in self.elements if attribute in attrs]

    def ids(self) -> set[str]:
        return {attrs["id"] for attrs in self.having("id")}


@pytest.fixture
def browser(tmp_path) -> Browser:
    return Browser(tmp_path)


def _announce(capsys, *paths: Path) -> None:
    with capsys.disabled():
        for path in paths:
            print(f"\nscreenshot: {path}")


def test_the_net_log_sees_a_request_a_page_makes(browser, tmp_path):
    """The detector the other tests rely on: a page that loads an image is caught doing so."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><title>leaky</title><img src="https://example.com/pixel.png">')
    dom, requests = browser.dom(page.as_uri())
    assert dom.title == "leaky"
    assert requests == ["https://example.com/pixel.png"]


def test_the_incident_report_renders_in_chromium_without_a_request_and_filters_from_the_url(suite, browser, capsys):
    suite.reuse_sandbox("incident")
    result = suite.run("-m", "nightly or postdeploy", "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = suite.report()
    page = suite.path / "out" / "report.html"
    screenshot = ARTIFACTS / "incident-report.png"
    assert browser.screenshot(page.as_uri(), screenshot) == []
    _announce(capsys, screenshot)

    dom, requests = browser.dom(page.as_uri())
    assert requests == []
    assert dom.title == "deploycheck — nba-props-platform · us-west2"
    resources = {f["resource"] for f in report["findings"]}
    rows = [attrs["data-row"] for attrs in dom.having("data-row")]
    assert sorted(rows) == sorted(resources) and len(rows) == 29
    cells = [attrs for tag, attrs in dom.elements if tag == "a" and attrs.get("class", "").startswith("c-")]
    assert len(cells) == len({(f["resource"], f["check"]) for f in report["findings"]})
    assert {attrs["href"][1:] for attrs in cells} <= dom.ids()  # every cell links to a finding on the page
    assert sum(1 for attrs in cells if attrs["class"] == "c-P0") == 3
    assert [tag for tag, _ in dom.elements].count("svg") == 3  # failing by severity, heartbeat docs, job ages
    [form] = [attrs for tag, attrs in dom.elements if tag == "form"]
    assert "hidden" not in form  # the script ran and showed the filters
    assert all("hidden" not in attrs for attrs in dom.having("data-filter"))

    dom, requests = browser.dom(page.as_uri() + "#severity=P0")
    assert requests == []
    [body] = [attrs for tag, attrs in dom.elements if tag == "body"]
    assert body["data-filtered"] == "severity=P0" and "hidden" not in body
    shown = [attrs for attrs in dom.having("data-filter") if "hidden" not in attrs]
    assert shown and {attrs["data-severity"] for attrs in shown} == {"P0"}
    assert len(shown) == sum(1 for f in report["findings"] if f["severity"] == "P0" and f["outcome"] == "fail")

    job = "bdl-boxscores-processor-backfill"
    dom, _ = browser.dom(page.as_uri() + f"?resource={job}&check=stale-jobs")
    assert [attrs["data-row"] for attrs in dom.having("data-row") if "hidden" not in attrs] == [job]
    shown = [attrs for attrs in dom.having("data-filter") if "hidden" not in attrs]
    # The 21 jobs' stale images are one group: its entry stays, with only this job's member in it.
    [entry] = [attrs for attrs in shown if attrs["class"].startswith("entry")]
    assert job in entry["data-resources"].split() and entry["data-check"] == "stale-jobs"
    [member] = [attrs for attrs in shown if attrs["class"] == "member"]
    assert member["data-resources"].split() == [job]


def _fleet() -> tuple[list[Finding], dict]:
    """A small fleet tonight plus what the memory of earlier nights adds (ids, groups, changes, history)."""
    jobs = [f"job-{n:02d}-backfill" for n in range(8)]
    findings = [
        Finding(
            "stale-jobs",
            job,
            Severity.P2,
            Outcome.FAIL,
            f"runs gcr.io/p/{job} (built {150 + n} days ago)",
            {"image_age_days": 150 + n, "expected_age_days": 2},
            f"gcloud run jobs update {job} --image x",
        )
        for n, job in enumerate(jobs)
    ]
    findings += [
        Finding(
            "boot",
            "prediction-worker",
            Severity.P0,
            Outcome.FAIL,
            "ImportError: cannot import name 'monitoring_v3'",
            {},
            "gcloud run services update-traffic prediction-worker --to-revisions=prediction-worker-00013-p2c=100",
        ),
        Finding(
            "heartbeat-docs",
            "processor_heartbeats",
            Severity.P0,
            Outcome.FAIL,
            "1,053 documents",
            {"total": 1053},
            "python bin/cleanup-heartbeat-docs.py",
        ),
        Finding("iam", "nba-scrapers", Severity.P1, Outcome.ERROR, "cannot verify: granted to group:ops", {}),
        Finding("traffic", "nba-scrapers", Severity.P3, Outcome.PASS, "100% on nba-scrapers-00041", {}),
        Finding(
            "stale-jobs",
            "manual-backfill",
            Severity.P2,
            Outcome.WAIVED,
            "runs gcr.io/p/manual",
            {"image_age_days": 90},
            "gcloud run jobs update manual-backfill --image x",
            {
                "reason": "not running",
                "owner": "ops@example.com",
                "expires": "2027-01-31",
                "pattern": "manual-*",
                "line": 140,
                "expired": False,
            },
        ),
    ]
    extra = {
        "changes": {"new": 1, "still": 9, "fixed": 1, "previous": "nightly/report.json"},
        "fixed": [
            {
                "check": "digest",
                "resource": "nba-scrapers",
                "severity": "P1",
                "outcome": "fail",
                "summary": "serving an old digest",
            }
        ],
        "history": [
            {
                "started": f"2026-11-{day}T03:00:00+00:00",
                "failing": {"P0": p0, "P1": 1, "P2": 8, "P3": 0},
                "heartbeat_docs": docs,
                "job_image_age_days": {},
            }
            for day, p0, docs in (("27", 0, 18), ("28", 0, 21), ("29", 1, 240), ("30", 2, 1053))
        ],
    }
    return findings, extra


def test_a_report_with_history_groups_changes_and_waivers_renders_every_part(browser, tmp_path, capsys):
    findings, extra = _fleet()
    report = build_report(
        findings,
        target="gcp",
        inventory="services.yaml",
        project="nba-props-platform",
        region="us-west2",
        started=datetime(2026, 11, 30, 3, tzinfo=timezone.utc),
        exit_status=1,
        selection={"services": ["prediction-worker", "nba-scrapers"], "jobs": []},
        heartbeat_band={"expected_min": 15, "expected_max": 50, "p1_above": 100, "p0_above": 500},
        waivers=[
            {
                "check": "stale-jobs",
                "resources": ["manual-*"],
                "reason": "not running",
                "owner": "ops@example.com",
                "expires": "2027-01-31",
                "matched": 1,
                "expired": False,
            },
            {
                "check": "boot",
                "resources": ["nba-scrapers"],
                "reason": "noise",
                "owner": "ops@example.com",
                "expires": "2027-01-31",
                "matched": 0,
                "expired": False,
            },
        ],
    )
    for n, finding in enumerate(report["findings"]):
        finding["id"] = f"{n:012x}"
        finding["change"] = "new" if finding["check"] == "boot" else "still"
    stale = [f for f in report["findings"] if f["check"] == "stale-jobs" and f["outcome"] == "fail"]
    report["groups"] = [
        {
            "id": "g1",
            "check": "stale-jobs",
            "cause": "stale-image",
            "severity": "P2",
            "outcome": "fail",
            "summary": f"{len(stale)} backfill jobs run old images",
            "remediation": 'for job in ...; do gcloud run jobs update "$job" --image x; done',
            "resources": [f["resource"] for f in stale],
            "finding_ids": [f["id"] for f in stale],
        }
    ]
    report |= extra
    write_rendered(report, tmp_path)
    page = tmp_path / "report.html"
    screenshot = ARTIFACTS / "report-with-history.png"
    assert browser.screenshot(page.as_uri(), screenshot) == []
    _announce(capsys, screenshot)

    dom, requests = browser.dom(page.as_uri() + "#" + stale[3]["id"].join(("f-", "")))
    assert requests == []
    html = page.read_text()
    assert "What changed" in html and "1 fixed since then" in html and "matched nothing" in html
    entries = [attrs for attrs in dom.having("data-filter") if "entry" in attrs.get("class", "")]
    grouped = [
        attrs for attrs in entries if attrs["data-check"] == "stale-jobs" and len(attrs["data-resources"].split()) == 8
    ]
    assert len(grouped) == 1  # the eight jobs' findings are one entry with one command
    open_details = [attrs for tag, attrs in dom.elements if tag == "details" and "open" in attrs]
    assert open_details  # following a link to a grouped finding opens its group
    bars = [
        attrs
        for tag, attrs in dom.elements
        if tag == "rect" and attrs.get("class") == "bar" and attrs["fill"] == "#f6c026"
    ]
    assert len(bars) == 4  # one P2 segment per night
    circles = [attrs for tag, attrs in dom.elements if tag == "circle"]
    assert len(circles) == 4  # one heartbeat count per night

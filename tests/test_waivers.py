"""Waivers: accepted risks from the inventory turn matching failures into "waived" until they
expire; an expired one fails again and says so; one that matched nothing is reported."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from deploycheck.findings import Finding, Outcome, Severity, failed, passed
from deploycheck.inventory import WAIVABLE_CHECKS, WaiverSpec, load_inventory
from deploycheck.waivers import apply_waivers, describe

REPO = Path(__file__).resolve().parent.parent
TODAY = date(2026, 3, 1)
BACKFILL = WaiverSpec(
    "stale-jobs", ["*-backfill"], "not running, no urgency (seed 002)", "platform@example.com", date(2026, 3, 1), 120
)
UNUSED = WaiverSpec("boot", ["nba-phase2-raw-processors"], "known noisy boot", "ops@example.com", date(2026, 6, 1), 126)


def _stale(job: str) -> Finding:
    return failed(
        "stale-jobs",
        job,
        Severity.P2,
        "runs gcr.io/old (built 200 days ago)",
        "gcloud run jobs update ...",
        image_age_days=200,
    )


def test_a_waiver_in_force_waives_matching_failures_through_its_expiry_day():
    findings = [
        _stale("bdl-boxscores-processor-backfill"),
        _stale("manual-job"),
        passed("stale-jobs", "espn-boxscore-processor-backfill", "current"),
    ]
    result, notes = apply_waivers(findings, [BACKFILL, UNUSED], TODAY)
    waived, unmatched, green = result
    assert waived.outcome is Outcome.WAIVED and not waived.failed
    assert waived.summary == findings[0].summary  # the cause is still shown
    assert waived.waiver == {
        "reason": "not running, no urgency (seed 002)",
        "owner": "platform@example.com",
        "expires": "2026-03-01",
        "pattern": "*-backfill",
        "line": 120,
        "expired": False,
    }
    assert waived.to_dict()["outcome"] == "waived" and Finding.from_dict(waived.to_dict()) == waived
    assert unmatched == findings[1] and green == findings[2]
    assert [(note["check"], note["matched"], note["expired"]) for note in notes] == [
        ("stale-jobs", 1, False),
        ("boot", 0, False),
    ]
    assert describe(notes[1]).startswith(
        "waiver boot[nba-phase2-raw-processors] by ops@example.com until 2026-06-01: matched nothing"
    )


def test_an_expired_waiver_fails_the_finding_again_saying_so():
    [finding], [note] = apply_waivers(
        [_stale("bdl-boxscores-processor-backfill")], [BACKFILL], TODAY + timedelta(days=1)
    )
    assert finding.outcome is Outcome.FAIL and finding.failed
    assert finding.summary.endswith(
        "(waiver by platform@example.com expired on 2026-03-01: not running, no urgency (seed 002))"
    )
    assert finding.waiver["expired"] is True
    assert note["matched"] == 1 and note["expired"] is True
    assert "expired on 2026-03-01: 1 finding failing again" in describe(note)


def test_an_unobserved_fact_is_never_waived_and_applying_twice_changes_nothing():
    error = Finding("stale-jobs", "bdl-boxscores-processor-backfill", Severity.P1, Outcome.ERROR, "registry 503", {})
    once, _ = apply_waivers([error, _stale("a-backfill")], [BACKFILL], TODAY)
    assert once[0] == error
    twice, notes = apply_waivers(once, [BACKFILL], TODAY + timedelta(days=30))
    assert twice == once and notes[0]["matched"] == 1  # already waived tonight: not re-judged


def test_the_first_waiver_in_file_order_wins():
    specific = WaiverSpec("stale-jobs", ["a-backfill"], "specific", "x@example.com", date(2026, 1, 1), 110)
    [finding], notes = apply_waivers([_stale("a-backfill")], [specific, BACKFILL], TODAY)
    assert finding.outcome is Outcome.FAIL and "expired on 2026-01-01" in finding.summary
    assert [note["matched"] for note in notes] == [1, 0]


def test_every_check_can_be_waived_and_no_other_name():
    names = set()
    for path in (REPO / "deploycheck_pytest" / "checks").glob("test_*.py"):
        names |= {name.replace("_", "-") for name in re.findall(r"^def test_(\w+)\(", path.read_text(), re.M)}
    assert set(WAIVABLE_CHECKS) == names


def _with_waivers(source: Path, target: Path, text: str) -> Path:
    target.write_text(source.read_text() + "\nwaivers:\n" + text)
    return target


def test_the_real_inventory_takes_a_waiver_with_a_quoted_or_plain_date(tmp_path):
    path = _with_waivers(
        REPO / "services.yaml",
        tmp_path / "services.yaml",
        """\
  - check: stale-jobs
    resources: ['*-backfill']
    reason: not running, no urgency (seed 002)
    owner: platform@example.com
    expires: 2026-06-30
  - check: heartbeat-docs
    resources: [processor_heartbeats]
    reason: cleanup scheduled
    owner: platform@example.com
    expires: '2026-07-01'
""",
    )
    inventory = load_inventory(path)
    assert [(w.check, w.resources, w.expires) for w in inventory.waivers] == [
        ("stale-jobs", ["*-backfill"], date(2026, 6, 30)),
        ("heartbeat-docs", ["processor_heartbeats"], date(2026, 7, 1)),
    ]
    assert inventory.waivers[0].line == path.read_text().splitlines().index("waivers:") + 2


# ---- as a user runs it: the must-show


def _backfill_waiver(expires: date) -> str:
    return f"""\
  - check: stale-jobs
    resources: ['*-backfill']
    reason: not running, no urgency (seed 002)
    owner: platform@example.com
    expires: {expires.isoformat()}
  - check: boot
    resources: [nba-phase2-raw-processors]
    reason: boot noise after the worker fix
    owner: ops@example.com
    expires: {expires.isoformat()}
"""


def test_a_future_waiver_for_the_backfill_jobs_makes_the_nightly_pass_and_an_expired_one_fails_it(suite):
    suite.reuse_sandbox("incident")
    today = datetime.now(timezone.utc).date()
    services = suite.path / "services.yaml"
    original = services.read_text()

    _with_waivers(services, services, _backfill_waiver(today + timedelta(days=30)))
    result = suite.run("-m", "nightly", "--target", "sandbox:incident", "-k", "stale_jobs", "--report-dir", "out")
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, output
    result.assert_outcomes(passed=21)
    report = suite.report()
    stale = [f for f in report["findings"] if f["check"] == "stale-jobs"]
    assert len(stale) == 21 and {f["outcome"] for f in stale} == {"waived"}
    assert {f["waiver"]["pattern"] for f in stale} == {"*-backfill"}
    assert report["summary"]["waived"] == 21 and report["summary"]["fail"] == 0
    assert [(w["check"], w["matched"], w["expired"]) for w in report["waivers"]] == [
        ("stale-jobs", 21, False),
        ("boot", 0, False),
    ]
    assert "0 failed, 0 could not be observed, 21 waived" in output
    assert (
        f"waiver stale-jobs[*-backfill] by platform@example.com until {today + timedelta(days=30)}: "
        f"21 findings waived (not running, no urgency (seed 002))" in output
    )
    assert "waiver boot[nba-phase2-raw-processors] by ops@example.com" in output and "matched nothing" in output

    expired_on = today - timedelta(days=1)
    services.write_text(original)
    _with_waivers(services, services, _backfill_waiver(expired_on))
    result = suite.run("-m", "nightly", "--target", "sandbox:incident", "-k", "stale_jobs", "--report-dir", "out")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=21)
    stale = [f for f in suite.report()["findings"] if f["check"] == "stale-jobs"]
    assert {f["outcome"] for f in stale} == {"fail"}
    assert all(
        f"(waiver by platform@example.com expired on {expired_on}: not running, no urgency (seed 002))" in f["summary"]
        for f in stale
    )
    assert f"expired on {expired_on}: 21 findings failing again" in result.stdout.str()

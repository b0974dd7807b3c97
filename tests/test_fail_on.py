"""--fail-on P0|P1|P2|P3: the lowest severity that fails the run. Failures below it are still
reported (terminal, report.json) but exit 0; a fact not observed (ERROR) always fails; so does
any failure the findings cannot account for."""

from __future__ import annotations

import pytest

from deploycheck.findings import Finding, Outcome, Severity, below_fail_on

# Stale jobs (P2) and orphans (P3) of the incident: the drift checks, red below P1 only.
DRIFT = ("-m", "drift", "--target", "sandbox:incident")


def _failing(report: dict) -> list[dict]:
    return [finding for finding in report["findings"] if finding["outcome"] in ("fail", "error")]


@pytest.mark.parametrize("outcome", list(Outcome))
@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize("fail_on", [None, *Severity])
def test_only_an_observed_failure_less_severe_than_the_threshold_is_below_it(outcome, severity, fail_on):
    finding = Finding("traffic", "svc", severity, outcome, "summary")
    order = list(Severity)
    expected = fail_on is not None and outcome is Outcome.FAIL and order.index(severity) > order.index(fail_on)
    assert below_fail_on(finding, fail_on) is expected


def test_without_fail_on_any_failure_fails_the_run(suite):
    suite.reuse_sandbox("incident")
    result = suite.run(*DRIFT, "--report-dir", "out")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "--fail-on" not in result.stdout.str()
    summary = suite.report()["summary"]
    assert summary["fail_on"] is None and summary["below_fail_on"] == 0


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_failures_below_the_threshold_are_reported_and_exit_0(suite, xdist):
    suite.reuse_sandbox("incident")
    result = suite.run(*DRIFT, "--fail-on", "P1", "--report-dir", "out", *xdist)
    report = suite.report()
    failing = _failing(report)
    assert failing and {finding["severity"] for finding in failing} <= {"P2", "P3"}, failing
    assert {finding["outcome"] for finding in failing} == {"fail"}
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    output = result.stdout.str()
    assert f"{len(failing)} failures below --fail-on P1 do not fail the run" in output
    assert "FAIL  [P2] stale-jobs[" in output and "FAIL  [P3] orphans[" in output  # still told, with the fix
    assert report["summary"]["exit_status"] == 0
    assert report["summary"]["fail_on"] == "P1" and report["summary"]["below_fail_on"] == len(failing)


def test_a_failure_at_the_threshold_fails_the_run_and_the_rest_are_counted_apart(suite):
    suite.reuse_sandbox("incident")
    result = suite.run(*DRIFT, "--fail-on", "p2", "--report-dir", "out")  # any case
    p3 = [finding for finding in _failing(suite.report()) if finding["severity"] == "P3"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(p3) == 1  # the orphan job
    assert "1 failure below --fail-on P2 does not fail the run" in result.stdout.str()
    assert suite.report()["summary"]["exit_status"] == 1


CUSTOM_CHECKS = """
import pytest
from deploycheck.findings import Finding, Outcome, Severity, passed


@pytest.mark.drift
def test_unobservable(verdict):
    verdict(Finding("unobservable", "the-fact", Severity.P3, Outcome.ERROR, "the API answered 503 three times"))


@pytest.mark.drift
def test_broke_after_its_verdict(verdict):
    verdict(passed("broke-after-verdict", "the-fact", "looked fine"))
    raise AssertionError("then the check itself broke")
"""


@pytest.mark.parametrize("check", ["unobservable", "broke_after_its_verdict"])
def test_an_error_or_an_unexplained_failure_fails_the_run_whatever_the_threshold(suite, check):
    suite.reuse_sandbox("incident")
    (suite.path / "checks" / "test_team_checks.py").write_text(CUSTOM_CHECKS)
    result = suite.run(*DRIFT, "--fail-on", "P0", "-k", f"stale_jobs or {check}", "--report-dir", "out")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    below = [finding for finding in _failing(suite.report()) if finding["check"] == "stale-jobs"]
    assert below  # the stale jobs alone would have passed the run
    assert f"{len(below)} failures below --fail-on P0 do not fail the run" in result.stdout.str()


def test_an_unknown_severity_is_a_usage_error(suite):
    result = suite.run(*DRIFT, "--fail-on", "P4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "argument --fail-on: 'P4': expected one of P0, P1, P2, P3" in result.stderr.str()

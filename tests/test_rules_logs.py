"""Log rules and filters: seed-shaped lines in, one finding out, with the command to reproduce."""

from datetime import datetime, timedelta, timezone

from deploycheck.findings import Outcome, Severity
from deploycheck.inventory import HeartbeatLogSpec
from deploycheck.logs import LogLine, pattern_filter, quote, revision_filter
from deploycheck.rules.logs import evaluate_boot, evaluate_heartbeat_log, evaluate_log_visibility

SINCE = datetime(2026, 1, 28, 0, 0, tzinfo=timezone.utc)
SPEC = HeartbeatLogSpec(expected=r"(?:Started|Stopped) heartbeat for p2_nba_raw\.\w+",
                        forbidden=[r"[A-Z]\w*Processor_None_[0-9a-f]+"])


def line(text, revision="svc-00002", severity="INFO", minutes=10):
    return LogLine(SINCE + timedelta(minutes=minutes), severity, text, revision, "projects/p/logs/x")


def boot(lines, serving=("svc-00002",), newest="svc-00002"):
    return evaluate_boot("svc", lines, serving=list(serving), newest=newest, since=SINCE, project="p",
                         scope='resource.labels.service_name="svc"')


def test_boot_error_in_serving_revision_is_p0_quoting_the_line_and_the_command():
    finding = boot([line("Traceback (most recent call last):"),
                    line("ImportError: cannot import name 'firestore' from 'google.cloud'")])
    assert finding.severity is Severity.P0 and finding.failed
    assert "cannot import name 'firestore' from 'google.cloud'" in finding.summary
    assert finding.remediation.startswith("gcloud logging read 'resource.labels.service_name=\"svc\" AND (textPayload=~\"ImportError\"")
    assert finding.remediation.endswith("' --project p --limit 50")


def test_boot_error_only_in_a_newest_revision_without_traffic_is_p1():
    finding = boot([line("Worker failed to boot.", revision="svc-00003")], newest="svc-00003")
    assert finding.severity is Severity.P1 and "newest revision svc-00003 fails at boot" in finding.summary
    assert boot([line("all good")]).outcome is Outcome.PASS


def test_heartbeat_log_old_format_missing_and_good():
    args = dict(serving=["svc-00002"], since=SINCE, project="p", scope="s")
    bad = evaluate_heartbeat_log("svc", SPEC, [line("Started heartbeat for NbacTeamBoxscoreProcessor_None_a7ac21c9")],
                                 **args)
    assert bad.severity is Severity.P1 and "NbacTeamBoxscoreProcessor_None_a7ac21c9" in bad.summary
    silent = evaluate_heartbeat_log("svc", SPEC, [], **args)
    assert silent.failed and "no line matching" in silent.summary
    good = evaluate_heartbeat_log("svc", SPEC, [line("Stopped heartbeat for p2_nba_raw.nbac_schedule")], **args)
    assert good.outcome is Outcome.PASS
    other_revision = evaluate_heartbeat_log("svc", SPEC, [line("Stopped heartbeat for p2_nba_raw.x", revision="old")],
                                            **args)
    assert other_revision.failed  # only the serving revision's lines count


def test_log_visibility():
    blackout = evaluate_log_visibility("svc", None, serving=["svc-00002"], since=SINCE, region="us-west2", project="p")
    assert blackout.severity is Severity.P1 and "gunicorn" in blackout.summary
    assert blackout.remediation.startswith("gcloud run services update svc --update-env-vars GUNICORN_CMD_ARGS=")
    ok = evaluate_log_visibility("svc", line("Booting worker"), serving=["svc-00002"], since=SINCE,
                                 region="us-west2", project="p")
    assert ok.outcome is Outcome.PASS


def test_filters_quote_and_escape_every_value():
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    text = revision_filter("p", 'svc" OR resource.type="x', SINCE, revisions=["r1", "r2"])
    assert 'resource.labels.service_name="svc\\" OR resource.type=\\"x"' in text
    assert 'timestamp>="2026-01-28T00:00:00.000000Z"' in text
    assert 'resource.labels.revision_name=("r1" OR "r2")' in text
    assert pattern_filter([r"a\.b"]) == r'(textPayload=~"a\\.b" OR jsonPayload.message=~"a\\.b")'

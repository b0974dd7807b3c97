"""Log rules and filters: seed-shaped lines in, one finding out, with the command to reproduce."""

from datetime import datetime, timedelta, timezone

from deploycheck.findings import Outcome, Severity
from deploycheck.inventory import HeartbeatLogSpec
from deploycheck.logfacts import BootLogs, HeartbeatLogs
from deploycheck.logs import Listing, LogLine, log_filter, pattern_filter, quote
from deploycheck.rules.logs import evaluate_boot, evaluate_heartbeat_log, evaluate_log_visibility

SINCE = datetime(2026, 1, 28, 0, 0, tzinfo=timezone.utc)
SPEC = HeartbeatLogSpec(
    expected=r"(?:Started|Stopped) heartbeat for p2_nba_raw\.\w+", forbidden=[r"[A-Z]\w*Processor_None_[0-9a-f]+"]
)


def line(text, revision="svc-00002", severity="INFO", minutes=10):
    return LogLine(SINCE + timedelta(minutes=minutes), severity, text, revision, "projects/p/logs/x")


def listing(lines, complete=True, limit=1000):
    return Listing(list(lines), complete, limit)


def boot(lines, serving=("svc-00002",), newest="svc-00002", complete=True, latest="default"):
    latest = (
        {revision: line("Booting worker", revision=revision) for revision in serving} if latest == "default" else latest
    )
    return evaluate_boot(
        "svc",
        BootLogs(listing(lines, complete), latest),
        serving=list(serving),
        newest=newest,
        since=SINCE,
        project="p",
        scope='resource.labels.service_name="svc"',
    )


def heartbeat(forbidden=(), latest=None, complete=True):
    return evaluate_heartbeat_log(
        "svc",
        SPEC,
        HeartbeatLogs(listing(forbidden, complete), latest),
        serving=["svc-00002"],
        since=SINCE,
        project="p",
        scope="s",
    )


def test_boot_error_in_serving_revision_is_p0_quoting_the_line_and_the_command():
    finding = boot(
        [
            line("Traceback (most recent call last):"),
            line("ImportError: cannot import name 'firestore' from 'google.cloud'"),
        ]
    )
    assert finding.severity is Severity.P0 and finding.failed
    assert "cannot import name 'firestore' from 'google.cloud'" in finding.summary
    assert finding.remediation.startswith(
        'gcloud logging read \'resource.labels.service_name="svc" AND (textPayload=~"ImportError"'
    )
    assert finding.remediation.endswith("' --project p --limit 50")


def test_boot_error_only_in_a_newest_revision_without_traffic_is_p1():
    finding = boot([line("Worker failed to boot.", revision="svc-00003")], newest="svc-00003")
    assert finding.severity is Severity.P1 and "newest revision svc-00003 fails at boot" in finding.summary
    assert boot([line("all good")]).outcome is Outcome.PASS


def test_a_cut_listing_proves_presence_never_absence():
    cut = boot([line("Worker failed to boot.", revision="svc-00003")], newest="svc-00003", complete=False)
    assert cut.outcome is Outcome.ERROR
    assert "more than 1,000 boot-error lines" in cut.summary and "raise --max-log-entries" in cut.summary
    found = boot([line("ModuleNotFoundError: No module named 'x'")], complete=False)
    assert found.outcome is Outcome.FAIL and "(at least 1 lines, newest first)" in found.summary
    bad = heartbeat([line("Started heartbeat for NbacTeamBoxscoreProcessor_None_a7ac21c9")], complete=False)
    assert bad.outcome is Outcome.FAIL and "at least 1 lines" in bad.summary


def test_boot_needs_a_line_from_every_serving_revision():
    silent = boot(
        [], serving=("svc-00002", "svc-00001"), latest={"svc-00002": line("Booting worker"), "svc-00001": None}
    )
    assert silent.outcome is Outcome.ERROR and "no log entry at all from svc-00001" in silent.summary
    assert "svc-00002 last logged at 2026-01-28 00:10:00Z" in boot([]).summary


def test_a_returned_line_matching_no_boot_pattern_does_not_count_as_an_error():
    """The rule re-checks with RE2 what the server matched: a server ignoring the filter cannot make
    an ordinary line a boot error."""
    assert boot([line("all good")]).outcome is Outcome.PASS


def test_heartbeat_log_old_format_missing_and_good():
    bad = heartbeat([line("Started heartbeat for NbacTeamBoxscoreProcessor_None_a7ac21c9")])
    assert bad.severity is Severity.P1 and "NbacTeamBoxscoreProcessor_None_a7ac21c9" in bad.summary
    silent = heartbeat()
    assert silent.failed and "no line matching" in silent.summary
    good = heartbeat(latest=line("Stopped heartbeat for p2_nba_raw.nbac_schedule"))
    assert (
        good.outcome is Outcome.PASS
        and "latest heartbeat: 2026-01-28T00:10:00Z INFO svc-00002: Stopped" in good.summary
    )
    other_revision = heartbeat(latest=line("Stopped heartbeat for p2_nba_raw.x", revision="old"))
    assert other_revision.failed  # only the serving revision's lines count


def test_log_visibility():
    blackout = evaluate_log_visibility("svc", None, serving=["svc-00002"], since=SINCE, region="us-west2", project="p")
    assert blackout.severity is Severity.P1 and "gunicorn" in blackout.summary
    assert blackout.remediation.startswith("gcloud run services update svc --update-env-vars GUNICORN_CMD_ARGS=")
    ok = evaluate_log_visibility(
        "svc", line("Booting worker"), serving=["svc-00002"], since=SINCE, region="us-west2", project="p"
    )
    assert ok.outcome is Outcome.PASS


def test_filters_quote_and_escape_every_value():
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    text = log_filter(['svc" OR resource.type="x'], SINCE, region='us" OR "x', revisions=["r1", "r2"])
    assert 'resource.labels.service_name="svc\\" OR resource.type=\\"x"' in text
    assert 'resource.labels.location="us\\" OR \\"x"' in text
    assert 'timestamp>="2026-01-28T00:00:00.000000Z"' in text
    assert 'resource.labels.revision_name=("r1" OR "r2")' in text
    assert pattern_filter([r"a\.b"]) == r'(textPayload=~"a\\.b" OR jsonPayload.message=~"a\\.b")'


def test_one_filter_shape_for_one_service_or_many():
    many = log_filter(["a", 'b"c'], SINCE, region="r", revisions=["a-1", "b-1"], condition="severity=INFO")
    assert many == (
        'resource.type="cloud_run_revision" AND resource.labels.service_name=("a" OR "b\\"c") '
        'AND resource.labels.location="r" AND timestamp>="2026-01-28T00:00:00.000000Z" '
        'AND resource.labels.revision_name=("a-1" OR "b-1") AND severity=INFO'
    )
    one = log_filter(["a"], SINCE, region="r", revisions=("a-1",))
    assert one.endswith(
        'resource.labels.service_name="a" AND resource.labels.location="r" '
        'AND timestamp>="2026-01-28T00:00:00.000000Z" AND resource.labels.revision_name="a-1"'
    )
    assert "revision_name" not in log_filter(["a"], SINCE, region="r")

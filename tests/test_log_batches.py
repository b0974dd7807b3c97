"""deploycheck.logfacts.LogBatch against the Logging stand-in: one listing answers what it provably
holds for many services' revisions, split by resource labels; everything else is asked alone,
and nothing is concluded from a listing cut before the window it would need."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from google.auth.credentials import AnonymousCredentials

from deploycheck.errors import ObservationError
from deploycheck.gcall import CallPolicy
from deploycheck.inventory import HeartbeatLogSpec
from deploycheck.logfacts import LogBatch, LogQuestion, LogScope, batches, settle
from deploycheck.logs import BOOT_ERROR_PATTERNS, LIMIT_OPTION, Listing, LogLine, LogReader
from deploycheck.sandbox.apiserver import ApiState
from deploycheck.sandbox.logstore import revision_entry

from conftest import serving

PROJECT, REGION = "p", "us-west2"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
LIST_CALLS = "POST /v2/entries:list"
HEARTBEAT = HeartbeatLogSpec(expected=r"Started heartbeat for p2_\w+", forbidden=[r"Processor_None_[0-9a-f]{8}"])


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry(
    service: str,
    revision: str,
    minutes_ago: float,
    text: str = "",
    *,
    number: int,
    severity: str = "INFO",
    log: str = "stdout",
    json: dict | None = None,
    region: str = REGION,
) -> dict:
    line = {"severity": severity, "log": log, **({"json": json} if json is not None else {"text": text})}
    return revision_entry(
        project=PROJECT,
        region=region,
        service=service,
        revision=revision,
        timestamp=stamp(minutes_ago),
        insert_id=f"{revision}-{number}",
        line=line,
    )


def scope(service: str, *, since_minutes: float, heartbeat: HeartbeatLogSpec | None = None) -> LogScope:
    return LogScope(
        service, (f"{service}-1",), f"{service}-1", NOW - timedelta(minutes=since_minutes), REGION, heartbeat
    )


@pytest.fixture
def logs():
    """(reader on a stand-in holding `entries`, its call counter) for the entries a test passes."""
    running = []

    def start(entries: list[dict]):
        state = ApiState(resources={}, log_entries=entries)
        context = serving(state)
        url = context.__enter__()
        running.append(context)
        reader = LogReader(PROJECT, AnonymousCredentials(), endpoint=url, policy=CallPolicy(deadline=5))
        running.append(reader)
        return reader, state

    yield start
    for thing in reversed(running):
        thing.close() if isinstance(thing, LogReader) else thing.__exit__(None, None, None)


def quiet_fleet() -> list[dict]:
    """Three quiet services: a boot error in b, an old-format heartbeat in c, INFO lines in all."""
    entries = []
    for _number, service in enumerate(("a", "b", "c")):
        revision = f"{service}-1"
        entries += [
            entry(service, revision, 50, "Booting worker", number=1),
            entry(service, revision, 40, "Started heartbeat for p2_nba_raw.x", number=2),
            entry(service, revision, 5, "", number=3, log="requests"),
        ]
    entries.append(entry("b", "b-1", 30, "ImportError: cannot import name 'firestore'", number=4, severity="ERROR"))
    entries.append(entry("c", "c-1", 20, "Started heartbeat for NbacProcessor_None_a7ac21c9", number=5))
    entries.append(entry("other", "other-1", 10, "ImportError: not ours", number=6, severity="ERROR"))
    return entries


def test_one_listing_answers_every_fact_of_every_quiet_service(logs):
    reader, state = logs(quiet_fleet())
    [batch] = batches(reader, [scope(s, since_minutes=60, heartbeat=HEARTBEAT) for s in ("a", "b", "c")])
    answers = {
        s: {kind: batch.answer(batch.question(s, kind)) for kind in ("boot", "info", "forbidden", "expected")}
        for s in ("a", "b", "c")
    }
    latest = {s: batch.answer(batch.question(s, "latest", f"{s}-1")) for s in ("a", "b", "c")}
    assert state.calls[LIST_CALLS] == 1
    assert [line.text for line in answers["b"]["boot"].lines] == ["ImportError: cannot import name 'firestore'"]
    assert answers["a"]["boot"].complete and answers["a"]["boot"].lines == []  # nothing of b's or other's leaks in
    assert [line.text for line in answers["c"]["forbidden"].lines] == [
        "Started heartbeat for NbacProcessor_None_a7ac21c9"
    ]
    assert answers["a"]["expected"].text == "Started heartbeat for p2_nba_raw.x"
    assert (
        answers["a"]["info"].text == "Started heartbeat for p2_nba_raw.x"
    )  # the newest INFO line that is no request log
    assert all(line.log_name.endswith("%2Frequests") for line in latest.values())  # any line proves logs arrive


def test_lines_of_a_same_named_revision_in_another_region_answer_nothing(logs):
    """The same service deployed to two regions with one --revision-suffix: revisions of the same
    name in both. The other region's boot error and old-format heartbeat are not this one's, and
    its heartbeat does not stand in for a silent one here; batched or asked alone."""
    elsewhere = "europe-west1"
    entries = [
        entry("a", "a-1", 50, "Booting worker", number=1),
        entry(
            "a", "a-1", 30, "ImportError: cannot import name 'firestore'", number=2, severity="ERROR", region=elsewhere
        ),
        entry("a", "a-1", 20, "Started heartbeat for NbacProcessor_None_a7ac21c9", number=3, region=elsewhere),
        entry("a", "a-1", 10, "Started heartbeat for p2_nba_raw.x", number=4, region=elsewhere),
    ]
    reader, _state = logs(entries)
    [batch] = batches(reader, [scope("a", since_minutes=60, heartbeat=HEARTBEAT)])
    for key in batch._questions:
        question = batch.question(*key)
        for answer in (batch.answer(question), batch._alone(question)):
            lines = answer.lines if isinstance(answer, Listing) else [answer] if answer else []
            assert [line.text for line in lines] == (["Booting worker"] if key[1] in ("latest", "info") else []), key
    assert batch.answer(batch.question("a", "boot")).complete


def test_a_batch_reads_one_region(logs):
    reader, _state = logs([])
    here, there = scope("a", since_minutes=60), replace(scope("b", since_minutes=60), region="europe-west1")
    assert [list(batch.scopes) for batch in batches(reader, [here, there])] == [["a"], ["b"]]
    with pytest.raises(ValueError, match="one region"):
        LogBatch(reader, [here, there])


def test_the_answers_are_those_of_each_facts_own_query(logs):
    reader, _state = logs(quiet_fleet())
    [batch] = batches(reader, [scope(s, since_minutes=60, heartbeat=HEARTBEAT) for s in ("a", "b", "c")])
    for key in batch._questions:
        question = batch.question(*key)
        alone = batch._alone(question)
        together = batch.answer(question)
        assert together == alone, key


def test_a_cut_listing_settles_only_windows_that_start_after_its_last_line(logs):
    """b logs 50 lines in its last 10 minutes and starts its window 60 minutes back; a's window
    starts 2 minutes back. With a limit of 20 the shared listing reaches about 4 minutes back:
    all of a's window, not b's."""
    entries = [entry("b", "b-1", 10 * n / 50, f"line {n}", number=n) for n in range(50)]
    entries += [entry("b", "b-1", 55, "ImportError: at boot", number=99, severity="ERROR")]
    entries += [entry("a", "a-1", 1, "a line", number=1)]
    reader, state = logs(entries)
    [batch] = batches(reader, [scope("a", since_minutes=2), scope("b", since_minutes=60)], max_entries=20)
    assert batch.answer(batch.question("a", "boot")) == Listing([], complete=True, limit=20)
    assert state.calls[LIST_CALLS] == 1
    [error] = batch.answer(batch.question("b", "boot")).lines  # not in the shared listing: asked by pattern
    assert error.text == "ImportError: at boot"
    assert state.calls[LIST_CALLS] == 2
    assert batch.answer(batch.question("b", "latest", "b-1")).text == "line 0"  # the newest line was in the first
    assert state.calls[LIST_CALLS] == 2


def test_more_matches_than_the_limit_is_a_cut_listing_not_a_guess(logs):
    entries = [entry("b", "b-1", n / 10, "ModuleNotFoundError: x", number=n, severity="ERROR") for n in range(30)]
    reader, state = logs(entries)
    [batch] = batches(reader, [scope("b", since_minutes=60)], max_entries=10)
    listing = batch.answer(batch.question("b", "boot"))
    assert not listing.complete and len(listing.lines) == 10 and listing.limit == 10
    assert LIMIT_OPTION in listing.cut_note()
    assert state.calls[LIST_CALLS] == 1


def test_a_line_without_application_text_never_matches_a_pattern(logs):
    """`jsonPayload.message=~` does not look at other JSON fields; neither does the local split."""
    entries = [entry("a", "a-1", 3, number=1, json={"detail": "ImportError in a field", "severity": "ERROR"})]
    reader, _ = logs(entries)
    [batch] = batches(reader, [scope("a", since_minutes=60)])
    assert batch.answer(batch.question("a", "boot")).lines == []
    assert batch.answer(batch.question("a", "boot")) == batch._alone(batch.question("a", "boot"))


def test_a_listing_that_cannot_be_read_is_each_facts_error_asked_once(logs):
    reader, state = logs(quiet_fleet())
    state.faults = [
        {
            "method": "POST",
            "path_regex": "^/v2/entries:list",
            "status": 403,
            "message": "Permission 'logging.logEntries.list' denied",
        }
    ]
    reader.policy = CallPolicy(deadline=2)
    [batch] = batches(reader, [scope(s, since_minutes=60) for s in ("a", "b")])
    for service in ("a", "b"):
        with pytest.raises(ObservationError) as caught:
            batch.answer(batch.question(service, "boot"))
        assert str(caught.value).startswith(f"cannot observe the boot-error lines of {service}: permission denied")
        assert caught.value.permission == "logging.logEntries.list"
    assert state.calls[LIST_CALLS] == 1


def test_settle_never_answers_from_a_listing_that_stops_inside_the_window():
    line = LogLine(NOW - timedelta(minutes=1), "INFO", "x", "a-1", "projects/p/logs/x")
    older = LogLine(NOW - timedelta(minutes=30), "INFO", "x", "a-1", "projects/p/logs/x")
    question = LogQuestion("q", scope("a", since_minutes=10), ("a-1",), "", lambda line: line.severity == "ERROR", 5)
    latest = LogQuestion("q", scope("a", since_minutes=10), ("a-1",), "", lambda line: True, None)
    cut_inside = Listing([line], complete=False, limit=1, beyond=line)
    cut_before = Listing([line], complete=False, limit=1, beyond=older)
    assert settle(question, cut_inside) is not None and not isinstance(settle(question, cut_inside), Listing)
    assert settle(question, cut_before) == Listing([], complete=True, limit=5)
    assert settle(latest, cut_inside) == line


def test_batches_keep_filters_short(logs):
    reader, _ = logs([])
    scopes = [
        LogScope(
            f"service-{n:04d}",
            (f"service-{n:04d}-00001-abc",),
            f"service-{n:04d}-00002-def",
            NOW - timedelta(hours=1),
            REGION,
            HEARTBEAT,
        )
        for n in range(200)
    ]
    made = batches(reader, scopes)
    assert sum(len(batch.scopes) for batch in made) == 200 and len(made) >= 8
    assert [s for batch in made for s in batch.scopes.values()] == scopes  # in order, each once
    for batch in made:
        for question in batch._questions.values():
            assert len(question.filter()) < 20_000
    assert BOOT_ERROR_PATTERNS

"""The log facts the checks read, batched across revisions and services.

What the log checks of a service read (its facts, see LogBatch and RevisionLogs):
  boot            the boot-error lines of the serving and newest revisions (up to --max-log-entries)
                  and the latest line of each serving revision (proof that its logs arrive)
  heartbeat-log   the old-format lines (up to --max-log-entries) and the latest expected line
  log-visibility  the latest INFO application line
Each fact has its own bounded, newest-first query, but most are answered together: one listing of
every line of the revisions of one or more services since the earliest window start answers every
fact of a quiet service (one entries.list for the one-service gate), and the facts it leaves open
are asked by pattern, then alone (LogBatch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, TypeVar

from . import re2
from .errors import ObservationError
from .inventory import HeartbeatLogSpec
from .logs import (
    BOOT_ERROR_PATTERNS,
    DEFAULT_MAX_ENTRIES,
    REQUEST_LOG,
    Listing,
    LogLine,
    LogReader,
    log_filter,
    pattern_filter,
    quote,
)

T = TypeVar("T")


class Remember(Protocol):
    """Where a fact is read at most once: `fetch()` on first use, the same answer after."""

    def __call__(self, key: tuple, fetch: Callable[[], T], /) -> T: ...


def _fetch_every_time(key: tuple, fetch: Callable[[], T], /) -> T:
    return fetch()


@dataclass(frozen=True)
class BootLogs:
    errors: Listing  # boot-error lines of the serving and newest revisions, newest first
    latest: dict[str, LogLine | None]  # per serving revision, its latest line in the window: logs arrive


@dataclass(frozen=True)
class HeartbeatLogs:
    forbidden: Listing  # old-format lines of the serving revisions, newest first
    latest_expected: LogLine | None


@dataclass(frozen=True)
class LogScope:
    """One service's revisions whose logs its checks read, since when, and its heartbeat format."""

    service: str
    serving: tuple[str, ...]
    newest: str
    since: datetime
    region: str
    heartbeat: HeartbeatLogSpec | None = None

    @property
    def covered(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.serving, self.newest]))


@dataclass(frozen=True, eq=False)
class LogQuestion:
    """One log fact of one service: the lines matching `condition` in some of its revisions since
    the scope's start (up to `limit`, newest first), or with limit None only the newest of them."""

    what: str
    scope: LogScope
    revisions: tuple[str, ...]
    condition: str  # a filter term ANDed to the revisions' scope; "" asks for every line
    matches: Callable[[LogLine], bool]  # the same condition, judged on a parsed line
    limit: int | None

    def filter(self) -> str:
        return log_filter(
            [self.scope.service],
            self.scope.since,
            region=self.scope.region,
            revisions=self.revisions,
            condition=self.condition,
        )


_UNSETTLED = object()


def settle(question: LogQuestion, listing: Listing) -> object:
    """What a newest-first `listing` of a superset of the question's lines proves about it, or
    _UNSETTLED. A listing cut at its limit holds every line newer than its last one, so it settles
    a question whose window starts after that line; it also settles one whose newest match, or
    more matches than the question's limit, it already holds. Never a guess about the rest."""
    revisions = set(question.revisions)
    since = question.scope.since
    read = [*listing.lines, listing.beyond] if listing.beyond is not None else listing.lines
    matching = [
        line for line in read if line.revision in revisions and line.timestamp >= since and question.matches(line)
    ]
    whole_window = listing.complete or (bool(read) and read[-1].timestamp < since)
    if question.limit is None:
        if matching:
            return matching[0]
        return None if whole_window else _UNSETTLED
    if len(matching) > question.limit:
        return Listing(matching[: question.limit], complete=False, limit=question.limit)
    return Listing(matching, complete=True, limit=question.limit) if whole_window else _UNSETTLED


def _matching_any(patterns: list[str]) -> Callable[[LogLine], bool]:
    compiled = [re2.compile(pattern) for pattern in patterns]
    return lambda line: line.matchable and any(pattern.search(line.text) for pattern in compiled)


class LogBatch:
    """The log facts of one or more services' revisions, read with as few entries.list calls as
    their answers allow, each fact still bounded and fail-closed:

      1. one newest-first listing of every line of all their revisions since the earliest window
         start, up to --max-log-entries: a quiet service's whole window, so every fact of it; of
         a busy one at least its latest lines (proof that its logs arrive);
      2. for the listings of lines the first did not settle (boot errors, old-format heartbeats):
         one listing of the lines matching any of their patterns;
      3. what is still open: the fact's own bounded query (the filters RevisionLogs always used).

    A fact is taken from a shared listing only when that listing provably holds all of it
    (`settle`); lines are split by their resource labels and window, and re-judged locally with
    the same RE2 patterns the filter sent. A listing that could not be read is the error of every
    fact waiting on it, named per fact: asked once, never taken for "no lines"."""

    def __init__(self, reader: LogReader, scopes: list[LogScope], *, max_entries: int = DEFAULT_MAX_ENTRIES):
        regions = {scope.region for scope in scopes}
        if len(regions) != 1:
            raise ValueError(f"a log batch reads one region, not {sorted(regions)}")
        self.reader = reader
        self.region = regions.pop()
        self.max_entries = max_entries
        self.scopes = {scope.service: scope for scope in scopes}
        self._questions = {key: question for scope in scopes for key, question in self._ask(scope).items()}
        self._stages: dict[str, Listing | ObservationError | None] = {}
        self._locks = {"every line": threading.Lock(), "patterns": threading.Lock()}

    def holds(self, scope: LogScope) -> bool:
        return self.scopes.get(scope.service) == scope

    # --- the questions ------------------------------------------------------------------------
    def _ask(self, scope: LogScope) -> dict[tuple, LogQuestion]:
        service, serving = scope.service, scope.serving
        questions: dict[tuple, LogQuestion] = {
            (service, "boot"): LogQuestion(
                f"the boot-error lines of {service}",
                scope,
                scope.covered,
                pattern_filter(BOOT_ERROR_PATTERNS),
                _matching_any(BOOT_ERROR_PATTERNS),
                self.max_entries,
            )
        }
        for revision in serving:
            questions[(service, "latest", revision)] = LogQuestion(
                f"the latest log line of {revision}", scope, (revision,), "", lambda line: True, None
            )
        request_log = f"projects/{self.reader.project}/logs/{REQUEST_LOG}"
        questions[(service, "info")] = LogQuestion(
            f"the INFO logs of {service}",
            scope,
            serving,
            f"severity=INFO AND logName!={quote(request_log)}",
            lambda line: line.severity == "INFO" and line.log_name != request_log,
            None,
        )
        if scope.heartbeat is not None:
            spec = scope.heartbeat
            questions[(service, "forbidden")] = LogQuestion(
                f"the old-format heartbeat lines of {service}",
                scope,
                serving,
                pattern_filter(spec.forbidden),
                _matching_any(spec.forbidden),
                self.max_entries,
            )
            questions[(service, "expected")] = LogQuestion(
                f"the latest heartbeat line of {service}",
                scope,
                serving,
                pattern_filter([spec.expected]),
                _matching_any([spec.expected]),
                None,
            )
        return questions

    def question(self, *key) -> LogQuestion:
        return self._questions[key]

    # --- the answers --------------------------------------------------------------------------
    def answer(self, question: LogQuestion):
        """Listing (limit set) or the newest LogLine / None (limit None)."""
        for stage in ("every line", "patterns"):
            if stage == "patterns" and question.limit is None:
                break
            listing = self._stage(stage)
            if isinstance(listing, ObservationError):
                raise ObservationError(
                    question.what, listing.reason, permission=listing.permission, hint=listing.hint
                ) from listing
            if listing is None:
                continue
            answer = settle(question, listing)
            if answer is not _UNSETTLED:
                return answer
        return self._alone(question)

    def _alone(self, question: LogQuestion):
        allowed = set(question.revisions)
        if question.limit is None:
            return self.reader.latest(question.filter(), what=question.what, allowed_revisions=allowed)
        return self.reader.lines(question.filter(), what=question.what, limit=question.limit, allowed_revisions=allowed)

    def _stage(self, stage: str) -> Listing | ObservationError | None:
        with self._locks[stage]:
            if stage not in self._stages:
                try:
                    self._stages[stage] = self._read_stage(stage)
                except ObservationError as exc:
                    self._stages[stage] = exc
            return self._stages[stage]

    def _read_stage(self, stage: str) -> Listing | None:
        if stage == "every line":
            questions, condition = list(self._questions.values()), ""
        else:
            head = self._stages.get("every line")
            questions = [
                q
                for q in self._questions.values()
                if q.limit is not None and (not isinstance(head, Listing) or settle(q, head) is _UNSETTLED)
            ]
            if not questions:
                return None
            conditions = list(dict.fromkeys(q.condition for q in questions))
            condition = conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"
        services = list(dict.fromkeys(q.scope.service for q in questions))
        revisions = list(dict.fromkeys(r for q in questions for r in q.revisions))
        since = min(q.scope.since for q in questions)
        filter_ = log_filter(services, since, region=self.region, revisions=revisions, condition=condition)
        named = services[0] if len(services) == 1 else f"{len(services)} services ({services[0]}, ...)"
        what = (
            f"the log lines of {named}"
            if stage == "every line"
            else f"the boot-error and old-heartbeat lines of {named}"
        )
        return self.reader.lines(filter_, what=what, limit=self.max_entries, allowed_revisions=set(revisions))


# Cloud Logging refuses filters over 20,000 characters; batches stay well under.
MAX_BATCH_FILTER = 12_000
MAX_BATCH_SERVICES = 25


def batches(reader: LogReader, scopes: list[LogScope], *, max_entries: int = DEFAULT_MAX_ENTRIES) -> list[LogBatch]:
    """Scopes grouped, in order, into LogBatches of one region each whose longest filter stays
    within MAX_BATCH_FILTER."""
    groups: list[list[LogScope]] = []
    for scope in scopes:
        if (
            groups
            and groups[-1][0].region == scope.region
            and len(groups[-1]) < MAX_BATCH_SERVICES
            and _longest_filter([*groups[-1], scope]) <= MAX_BATCH_FILTER
        ):
            groups[-1].append(scope)
        else:
            groups.append([scope])
    return [LogBatch(reader, group, max_entries=max_entries) for group in groups]


def _longest_filter(scopes: list[LogScope]) -> int:
    """The length of a batch's longest filter: its patterns stage asking for every pattern."""
    patterns = [pattern_filter(BOOT_ERROR_PATTERNS)] + [
        pattern_filter(scope.heartbeat.forbidden) for scope in scopes if scope.heartbeat
    ]
    condition = "(" + " OR ".join(dict.fromkeys(patterns)) + ")"
    return len(
        log_filter(
            [s.service for s in scopes],
            min(s.since for s in scopes),
            region=scopes[0].region,
            revisions=[r for s in scopes for r in s.covered],
            condition=condition,
        )
    )


class RevisionLogs:
    """The log facts of one service's revisions in the window since they were created. Each fact
    is read on first use, through `remember` (the session's observation cache) so the three checks
    share them and a failure is asked once, and through the service's LogBatch, so that one
    listing answers what it can for every service of the batch (see LogBatch)."""

    def __init__(
        self,
        reader: LogReader,
        scope: LogScope,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        remember: Remember | None = None,
        batch: LogBatch | None = None,
    ):
        self.reader = reader
        self.log_scope = scope
        self.service, self.newest, self.since = scope.service, scope.newest, scope.since
        self.serving = list(scope.serving)
        self.covered = list(scope.covered)
        self.max_entries = max_entries
        self._remember: Remember = remember or _fetch_every_time
        # The filters of the boot and heartbeat-log checks' gcloud advice.
        self.scope = log_filter([self.service], self.since, region=scope.region, revisions=self.covered)
        self.serving_scope = log_filter([self.service], self.since, region=scope.region, revisions=self.serving)
        if batch is None or not batch.holds(scope) or batch.max_entries != max_entries:
            batch = LogBatch(reader, [scope], max_entries=max_entries)
        self.batch = batch

    def boot(self) -> BootLogs:
        def read() -> BootLogs:
            errors = self.batch.answer(self.batch.question(self.service, "boot"))
            latest = {
                revision: self.batch.answer(self.batch.question(self.service, "latest", revision))
                for revision in self.serving
            }
            return BootLogs(errors, latest)

        return self._remember(("logs", self.service, "boot"), read)

    def heartbeats(self, spec: HeartbeatLogSpec) -> HeartbeatLogs:
        def read() -> HeartbeatLogs:
            batch = self.batch
            if spec != self.log_scope.heartbeat:  # a custom check's own format: a batch of its own
                batch = LogBatch(self.reader, [replace(self.log_scope, heartbeat=spec)], max_entries=self.max_entries)
            return HeartbeatLogs(
                batch.answer(batch.question(self.service, "forbidden")),
                batch.answer(batch.question(self.service, "expected")),
            )

        return self._remember(("logs", self.service, "heartbeats", spec.expected, tuple(spec.forbidden)), read)

    def info_line(self) -> LogLine | None:
        """The latest INFO line of a serving revision that is not a request log."""
        return self._remember(
            ("logs", self.service, "info"), lambda: self.batch.answer(self.batch.question(self.service, "info"))
        )

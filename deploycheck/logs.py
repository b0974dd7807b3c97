"""Cloud Logging reader: the lines a Cloud Run revision wrote, each fact read with its own filter.

Filters are built here and nowhere else, with every value quoted and escaped, so a service name
or a pattern containing a quote can neither break the filter nor widen it. Every filter carries
its own timestamp term (google-cloud-logging's `list_entries` would otherwise add "last 24h").

The pages are driven here, through the client library's own HTTP connection, rather than with
`list_entries`: every page token passes the PageGuard (a repeating token or endless empty pages
end as an error, never as a loop or doubled lines), every request carries the run's timeout
(the client's own is 60 s whatever --deadline says), a listing stops at its limit and says so,
and entries are parsed from the JSON directly (`LogEntry.from_api_repr` builds a Logger per
entry and asks the GCE metadata server twice per line).

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

import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol, TypeVar

from . import re2
from .errors import ObservationError
from .gcall import ApiCounter, CallPolicy, call, pin_environment
from .inventory import HeartbeatLogSpec
from .lazy import MadeOnFirstUse
from .paging import DEFAULT_MAX_EMPTY_PAGES, Page, guarded_pages

DEFAULT_ENDPOINT = "https://logging.googleapis.com"
API = "Cloud Logging entries.list"
REQUEST_LOG = "run.googleapis.com%2Frequests"
MAX_PAGE = 1000  # entries.list refuses a larger pageSize
DEFAULT_MAX_ENTRIES = 1000
LIMIT_OPTION = "--max-log-entries"
BOOT_ERROR_PATTERNS = [
    r"ImportError",
    r"ModuleNotFoundError",
    r"Traceback \(most recent call last\)",
    r"Worker failed to boot",
    r"Container called exit\([1-9][0-9]*\)",
]

T = TypeVar("T")


class Remember(Protocol):
    """Where a fact is read at most once: `fetch()` on first use, the same answer after."""

    def __call__(self, key: tuple, fetch: Callable[[], T], /) -> T: ...


def _fetch_every_time(key: tuple, fetch: Callable[[], T], /) -> T:
    return fetch()


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    severity: str
    text: str
    revision: str
    log_name: str
    payload: str = "text"  # where `text` came from: text (textPayload), message (jsonPayload.message), json, none

    @property
    def matchable(self) -> bool:
        """True when a `textPayload=~` / `jsonPayload.message=~` filter term could match this line."""
        return self.payload in ("text", "message")

    def quoted(self) -> str:
        return f"{self.timestamp:%Y-%m-%dT%H:%M:%SZ} {self.severity} {self.revision}: {self.text[:200]}"


@dataclass(frozen=True)
class Listing:
    """The lines one query matched, in the order asked for. `complete` is False when more matched
    than `limit`: then only the first `limit` are here and absence of anything cannot be concluded."""

    lines: list[LogLine]
    complete: bool
    limit: int
    beyond: LogLine | None = None  # when cut: the first entry past the limit (read to know there is more)

    def cut_note(self) -> str:
        return (
            f"the listing stopped at its limit of {self.limit:,} entries ({LIMIT_OPTION}); "
            f"raise {LIMIT_OPTION} to read them all"
        )


def quote(value: str) -> str:
    """A Logging query string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def revision_filter(
    project: str, service: str, since: datetime, *, region: str, revisions: list[str] | None = None
) -> str:
    # The location term: a service's name and its revisions' names are unique within a region
    # only. The same service deployed to two regions with --revision-suffix (a commit's SHA, say)
    # has revisions of the same names in both, whose lines must not answer for each other.
    terms = [
        'resource.type="cloud_run_revision"',
        f"resource.labels.service_name={quote(service)}",
        f"resource.labels.location={quote(region)}",
        f"timestamp>={quote(_timestamp(since))}",
    ]
    if revisions:
        terms.append("resource.labels.revision_name=(" + " OR ".join(quote(r) for r in revisions) + ")")
    return " AND ".join(terms)


def pattern_filter(patterns: list[str]) -> str:
    """Lines whose text or structured message matches any of the regexes."""
    alternatives = [
        f"{field}=~{quote(pattern)}" for pattern in patterns for field in ("textPayload", "jsonPayload.message")
    ]
    return "(" + " OR ".join(alternatives) + ")"


class LogReader:
    def __init__(
        self,
        project: str,
        credentials,
        *,
        endpoint: str | None = None,
        policy: CallPolicy | None = None,
        max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES,
    ):
        self.project = project
        self.policy = policy or CallPolicy()
        self.calls = ApiCounter()
        self.max_empty_pages = max_empty_pages
        self._client = MadeOnFirstUse(
            functools.partial(_logging_client, project, credentials, (endpoint or DEFAULT_ENDPOINT).rstrip("/"))
        )

    def prepare(self) -> None:
        """Make the client now (importing the client library), if no read has yet."""
        self._client.get()

    def lines(
        self,
        filter_: str,
        *,
        what: str,
        limit: int,
        newest_first: bool = True,
        allowed_revisions: set[str] | None = None,
    ) -> Listing:
        """Entries matching `filter_` in timestamp order (newest first by default), at most `limit`.
        One entry past the limit is asked for, so a listing of exactly `limit` entries is complete."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        found: dict[tuple, LogLine] = {}
        pages = self._pages(
            filter_,
            what=what,
            newest_first=newest_first,
            allowed=allowed_revisions,
            page_size=lambda: min(limit + 1 - len(found), MAX_PAGE),
            # every page that is not empty brings an entry; runs of empty ones are guarded
            max_pages=limit + 1 + 4 * self.max_empty_pages,
        )
        for page in pages:
            for key, line in page.items:
                found.setdefault(key, line)  # the same entry twice (a retried page) counts once
            if len(found) > limit:
                pages.close()
                lines = list(found.values())
                return Listing(lines[:limit], complete=False, limit=limit, beyond=lines[limit])
        return Listing(list(found.values()), complete=True, limit=limit)

    def latest(self, filter_: str, *, what: str, allowed_revisions: set[str] | None = None) -> LogLine | None:
        """The newest entry matching `filter_`, or None: one entry asked for, empty pages followed."""
        pages = self._pages(
            filter_,
            what=what,
            newest_first=True,
            allowed=allowed_revisions,
            page_size=lambda: 1,
            max_pages=self.max_empty_pages + 2,
        )
        for page in pages:
            if page.items:
                pages.close()
                return page.items[0][1]
        return None

    def _pages(
        self,
        filter_: str,
        *,
        what: str,
        newest_first: bool,
        allowed: set[str] | None,
        page_size: Callable[[], int],
        max_pages: int,
    ):
        body = {
            "resourceNames": [f"projects/{self.project}"],
            "filter": filter_,
            "orderBy": "timestamp desc" if newest_first else "timestamp asc",
        }

        def fetch_page(token: str | None) -> Page:
            request = {**body, "pageSize": page_size(), **({"pageToken": token} if token else {})}
            connection = self._client.get()._connection
            raw = call(
                what,
                lambda: connection.api_request(
                    method="POST",
                    path="/entries:list",
                    data=request,
                    expect_json=False,
                    timeout=self.policy.attempt_timeout,
                ),
                policy=self.policy,
                permission="logging.logEntries.list",
                counter=self.calls,
                method="entries.list",
                api="Cloud Logging",
            )
            return parse_page(raw, what=what, allowed_revisions=allowed)

        return guarded_pages(f"{what} ({API})", fetch_page, max_pages=max_pages, max_empty_pages=self.max_empty_pages)

    def close(self) -> None:
        client = self._client.made()
        if client is not None:
            client.close()


def _logging_client(project: str, credentials, endpoint: str):
    # Imported when a reader is first used, not when a check module is collected.
    from google.api_core.client_options import ClientOptions
    from google.cloud import logging as cloud_logging

    client = cloud_logging.Client(
        project=project,
        credentials=credentials,
        _use_grpc=False,
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    pin_environment(client._http, endpoint)
    return client


# --- the wire format --------------------------------------------------------------------------
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def parse_page(raw: bytes | str, *, what: str, allowed_revisions: set[str] | None = None) -> Page:
    """One entries.list response -> Page of ((logName, timestamp, insertId), LogLine), checking
    every field the rules rely on; anything else is an ObservationError naming the API."""

    def bad(problem: str) -> ObservationError:
        return ObservationError(what, f"{API} answered {problem}")

    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad(f"a body that is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not raw.strip():
        raise bad("an empty body instead of JSON")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise bad(
            f"JSON it could not parse ({exc.msg} at line {exc.lineno} column {exc.colno}; "
            f"{len(raw):,} characters: truncated?)"
        ) from None
    if not isinstance(body, dict):
        raise bad(f"a JSON {type(body).__name__}, not an object")
    entries = body.get("entries", [])
    if not isinstance(entries, list):
        raise bad(f"`entries` as a JSON {type(entries).__name__}, not a list")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise bad(f"`nextPageToken` as a JSON {type(token).__name__}, not a string")
    items = []
    for index, entry in enumerate(entries):
        line = _line(entry, index, bad)
        if allowed_revisions is not None and line.revision not in allowed_revisions:
            raise bad(f"entry {index} of revision {line.revision!r}, which the filter excludes")
        items.append(((line.log_name, entry["timestamp"], entry.get("insertId") or f"#{id(entry)}"), line))
    return Page(items, token)


def _line(entry: object, index: int, bad: Callable[[str], ObservationError]) -> LogLine:
    if not isinstance(entry, dict):
        raise bad(f"entry {index} as a JSON {type(entry).__name__}, not an object")
    stamp = entry.get("timestamp")
    moment = None
    if isinstance(stamp, str) and _RFC3339.match(stamp):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            pass
    if moment is None or moment.tzinfo is None:
        raise bad(f"entry {index} without an RFC 3339 timestamp ({stamp!r})")
    resource = entry.get("resource")
    labels = resource.get("labels") if isinstance(resource, dict) else None
    revision = labels.get("revision_name") if isinstance(labels, dict) else None
    if not isinstance(revision, str) or not revision:
        raise bad(f"entry {index} without resource.labels.revision_name")
    severity = entry.get("severity", "DEFAULT")
    log_name = entry.get("logName", "")
    if not isinstance(severity, str) or not isinstance(log_name, str):
        raise bad(f"entry {index} with a severity or logName that is not a string")
    if "textPayload" in entry:
        text, source = entry["textPayload"], "text"
        if not isinstance(text, str):
            raise bad(f"entry {index} with a textPayload that is not a string")
    elif "jsonPayload" in entry:
        payload = entry["jsonPayload"]
        if not isinstance(payload, dict):
            raise bad(f"entry {index} with a jsonPayload that is not an object")
        message = payload.get("message")
        text, source = (
            (message, "message") if isinstance(message, str) else (json.dumps(payload, sort_keys=True), "json")
        )
    else:
        text, source = "", "none"  # request logs and protoPayload entries carry no application text
    return LogLine(
        timestamp=moment.astimezone(timezone.utc),
        severity=severity,
        text=text,
        revision=revision,
        log_name=log_name,
        payload=source,
    )


# --- what the log checks read, batched across revisions and services ---------------------------
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

    def filter(self, project: str) -> str:
        scope = revision_filter(
            project, self.scope.service, self.scope.since, region=self.scope.region, revisions=list(self.revisions)
        )
        return f"{scope} AND {self.condition}" if self.condition else scope


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
            return self.reader.latest(
                question.filter(self.reader.project), what=question.what, allowed_revisions=allowed
            )
        return self.reader.lines(
            question.filter(self.reader.project), what=question.what, limit=question.limit, allowed_revisions=allowed
        )

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
        filter_ = batch_filter(services, revisions, since, condition, region=self.region)
        named = services[0] if len(services) == 1 else f"{len(services)} services ({services[0]}, ...)"
        what = (
            f"the log lines of {named}"
            if stage == "every line"
            else f"the boot-error and old-heartbeat lines of {named}"
        )
        return self.reader.lines(filter_, what=what, limit=self.max_entries, allowed_revisions=set(revisions))


def batch_filter(
    services: list[str], revisions: list[str], since: datetime, condition: str = "", *, region: str
) -> str:
    """Every line of these revisions of these services of one region since `since` (and matching
    `condition`)."""

    def one_of(values: list[str]) -> str:
        return quote(values[0]) if len(values) == 1 else "(" + " OR ".join(quote(v) for v in values) + ")"

    terms = [
        'resource.type="cloud_run_revision"',
        f"resource.labels.service_name={one_of(services)}",
        f"resource.labels.location={quote(region)}",
        f"timestamp>={quote(_timestamp(since))}",
        f"resource.labels.revision_name={one_of(revisions)}",
    ]
    if condition:
        terms.append(condition)
    return " AND ".join(terms)


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
        batch_filter(
            [s.service for s in scopes],
            [r for s in scopes for r in s.covered],
            min(s.since for s in scopes),
            condition,
            region=scopes[0].region,
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
        service: str,
        *,
        region: str,
        serving: list[str],
        newest: str,
        since: datetime,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        heartbeat: HeartbeatLogSpec | None = None,
        remember: Remember | None = None,
        batch: LogBatch | None = None,
    ):
        self.reader = reader
        self.service = service
        self.serving = serving
        self.newest = newest
        self.since = since
        self.max_entries = max_entries
        self._remember: Remember = remember or _fetch_every_time
        self.covered = list(dict.fromkeys([*serving, newest]))
        self.scope = revision_filter(reader.project, service, since, region=region, revisions=self.covered)
        self.serving_scope = revision_filter(reader.project, service, since, region=region, revisions=serving)
        self.log_scope = LogScope(service, tuple(serving), newest, since, region, heartbeat)
        held = batch is not None and batch.holds(self.log_scope) and batch.max_entries == max_entries
        self.batch = (
            batch if batch is not None and held else LogBatch(reader, [self.log_scope], max_entries=max_entries)
        )

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

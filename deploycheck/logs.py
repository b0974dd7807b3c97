"""Cloud Logging reader: the lines Cloud Run revisions wrote, asked for with the filters built here.

Filters are built here and nowhere else, with every value quoted and escaped, so a service name
or a pattern containing a quote can neither break the filter nor widen it. Every filter carries
its own timestamp term (google-cloud-logging's `list_entries` would otherwise add "last 24h").

The pages are driven here, through the client library's own HTTP connection, rather than with
`list_entries`: every page token passes the PageGuard (a repeating token or endless empty pages
end as an error, never as a loop or doubled lines), every request carries the run's timeout
(the client's own is 60 s whatever --deadline says), a listing stops at its limit and says so,
and entries are parsed from the JSON directly (`LogEntry.from_api_repr` builds a Logger per
entry and asks the GCE metadata server twice per line).

What the log checks read, and how one listing answers many of them: deploycheck.logfacts.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import ObservationError
from .gcall import ApiCounter, CallPolicy, call, pin_environment
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


def log_filter(
    services: list[str],
    since: datetime,
    *,
    region: str,
    revisions: list[str] | tuple[str, ...] = (),
    condition: str = "",
) -> str:
    """The lines of these services (and of these of their revisions) in one region since `since`,
    matching `condition` when one is given: the one shape of every filter deploycheck sends."""

    def one_of(values: list[str] | tuple[str, ...]) -> str:
        return quote(values[0]) if len(values) == 1 else "(" + " OR ".join(quote(v) for v in values) + ")"

    # The location term: a service's name and its revisions' names are unique within a region
    # only. The same service deployed to two regions with --revision-suffix (a commit's SHA, say)
    # has revisions of the same names in both, whose lines must not answer for each other.
    terms = [
        'resource.type="cloud_run_revision"',
        f"resource.labels.service_name={one_of(services)}",
        f"resource.labels.location={quote(region)}",
        f"timestamp>={quote(_timestamp(since))}",
    ]
    if revisions:
        terms.append(f"resource.labels.revision_name={one_of(revisions)}")
    if condition:
        terms.append(condition)
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

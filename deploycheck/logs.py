"""Cloud Logging reader: the lines a Cloud Run revision wrote, fetched with one server-side filter.

Filters are built here and nowhere else, with every value quoted and escaped, so a service name
or a pattern containing a quote can neither break the filter nor widen it. Every filter carries
its own timestamp term: without one google-cloud-logging silently adds `timestamp>="now-24h"`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timezone

from google.api_core.client_options import ClientOptions
from google.cloud import logging as cloud_logging

from .gcall import ApiCounter, CallPolicy, call

DEFAULT_ENDPOINT = "https://logging.googleapis.com"
REQUEST_LOG = "run.googleapis.com%2Frequests"
MAX_PAGE = 1000


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    severity: str
    text: str
    revision: str
    log_name: str

    def quoted(self) -> str:
        return f"{self.timestamp:%Y-%m-%dT%H:%M:%SZ} {self.severity} {self.revision}: {self.text[:200]}"


def quote(value: str) -> str:
    """A Logging query string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def revision_filter(project: str, service: str, since: datetime, *, revisions: list[str] | None = None) -> str:
    terms = ['resource.type="cloud_run_revision"', f"resource.labels.service_name={quote(service)}",
             f"timestamp>={quote(_timestamp(since))}"]
    if revisions:
        terms.append("resource.labels.revision_name=(" + " OR ".join(quote(r) for r in revisions) + ")")
    return " AND ".join(terms)


def pattern_filter(patterns: list[str]) -> str:
    """Lines whose text or structured message matches any of the regexes."""
    alternatives = [f"{field}=~{quote(pattern)}" for pattern in patterns
                    for field in ("textPayload", "jsonPayload.message")]
    return "(" + " OR ".join(alternatives) + ")"


class LogReader:
    def __init__(self, project: str, credentials, *, endpoint: str | None = None, policy: CallPolicy | None = None,
                 max_entries: int = 2000):
        self.project = project
        self.policy = policy or CallPolicy()
        self.max_entries = max_entries
        self.calls = ApiCounter()
        self._client = cloud_logging.Client(
            project=project, credentials=credentials, _use_grpc=False,
            client_options=ClientOptions(api_endpoint=(endpoint or DEFAULT_ENDPOINT).rstrip("/")))

    def lines(self, filter_: str, *, what: str, limit: int | None = None) -> list[LogLine]:
        """Every entry matching `filter_`, oldest first, at most `limit` (default max_entries).
        The whole listing is one attempt: a retry starts over, so no page is missed or doubled."""
        limit = limit or self.max_entries

        def fetch() -> list[LogLine]:
            entries = self._client.list_entries(resource_names=[f"projects/{self.project}"], filter_=filter_,
                                                order_by=cloud_logging.ASCENDING, page_size=min(limit, MAX_PAGE),
                                                max_results=limit)
            # islice, not max_results alone: the client's pager asks for the next page before it
            # notices the limit is reached, which costs a call per listing.
            return [_line(entry) for entry in itertools.islice(entries, limit)]

        return call(what, fetch, policy=self.policy, permission="logging.logEntries.list", counter=self.calls,
                    method="entries.list", api="Cloud Logging")

    def close(self) -> None:
        self._client.close()


def _line(entry) -> LogLine:
    payload = entry.payload
    if isinstance(payload, dict):
        text = str(payload.get("message", payload))
    else:
        text = "" if payload is None else str(payload)
    labels = (entry.resource.labels if entry.resource else None) or {}
    return LogLine(timestamp=entry.timestamp, severity=entry.severity or "DEFAULT", text=text,
                   revision=labels.get("revision_name", ""), log_name=entry.log_name or "")


@dataclass(frozen=True)
class RevisionLogs:
    """What the log checks of one service need, read with two queries."""

    since: datetime
    serving: list[str]
    newest: str
    scope: str  # the filter selecting these revisions' lines in the window, without patterns
    lines: list[LogLine]  # lines of the serving and newest revisions matching any wanted pattern
    info_line: LogLine | None  # one INFO application line of a serving revision, if any


def read_revision_logs(reader: LogReader, service: str, *, serving: list[str], newest: str, since: datetime,
                       patterns: list[str]) -> RevisionLogs:
    scope = revision_filter(reader.project, service, since, revisions=list(dict.fromkeys([*serving, newest])))
    lines = reader.lines(f"{scope} AND {pattern_filter(patterns)}", what=f"the logs of {service}")
    info = (f"{revision_filter(reader.project, service, since, revisions=serving)} AND severity=INFO AND "
            f"logName!={quote(f'projects/{reader.project}/logs/{REQUEST_LOG}')}")
    info_lines = reader.lines(info, what=f"the INFO logs of {service}", limit=1)
    return RevisionLogs(since=since, serving=serving, newest=newest, scope=scope, lines=lines,
                        info_line=info_lines[0] if info_lines else None)

"""The Logging stand-in's entries, indexed by revision and time, and its entries.list paging.

Production revisions log tens of thousands of lines a day, so the stand-in must answer a query
over 100,000 entries quickly: entries are kept per (service_name, revision_name), sorted by
(timestamp, insertId), and a query visits only the buckets and the time range its top-level
terms allow (logquery.IndexTerms). The index only narrows: every candidate is still evaluated
with the whole query. Pages are produced lazily in the order asked for, and a page token is the
position after the last entry served, so the next page starts there instead of re-reading.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from . import logquery

Key = tuple[int, str, int]  # (timestamp in ns, insertId, position in the scenario): a total order


@dataclass
class _Bucket:
    keys: list[Key]
    entries: list[dict]

    def between(self, low: Key | None, high: Key | None, *, descending: bool) -> Iterator[tuple[Key, dict]]:
        """Entries with low < key < high (either open), in the order asked for."""
        start = 0 if low is None else bisect.bisect_right(self.keys, low)
        stop = len(self.keys) if high is None else bisect.bisect_left(self.keys, high)
        indexes = range(stop - 1, start - 1, -1) if descending else range(start, stop)
        return ((self.keys[i], self.entries[i]) for i in indexes)


class LogStore:
    def __init__(self, entries: list[dict]):
        by_revision: dict[tuple[str | None, str | None], list[tuple[Key, dict]]] = {}
        for position, entry in enumerate(entries):
            try:
                key = (logquery.instant(entry["timestamp"]), str(entry.get("insertId", "")), position)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"log entry {position} ({entry.get('insertId')!r}) has no valid timestamp: {exc}"
                ) from None
            labels = (entry.get("resource") or {}).get("labels") or {}
            by_revision.setdefault((labels.get("service_name"), labels.get("revision_name")), []).append((key, entry))
        self._buckets: dict[tuple[str | None, str | None], _Bucket] = {}
        # Buckets by revision and by service, so finding a query's buckets costs what it names.
        self._of_revision: dict[str | None, list[tuple[str | None, str | None]]] = {}
        self._of_service: dict[str | None, list[tuple[str | None, str | None]]] = {}
        for name, items in by_revision.items():
            items.sort(key=lambda item: item[0])
            self._buckets[name] = _Bucket([key for key, _ in items], [entry for _, entry in items])
            self._of_service.setdefault(name[0], []).append(name)
            self._of_revision.setdefault(name[1], []).append(name)
        self.size = len(entries)
        self.visited = 0  # entries read by queries, for tests: a query must cost what it returns

    def _candidates(self, terms: logquery.IndexTerms) -> list[_Bucket]:
        if terms.revisions is not None:
            names = [name for revision in terms.revisions for name in self._of_revision.get(revision, ())]
        elif terms.services is not None:
            names = [name for service in terms.services for name in self._of_service.get(service, ())]
        else:
            names = list(self._buckets)
        return [
            self._buckets[name]
            for name in names
            if (terms.services is None or name[0] in terms.services)
            and (terms.revisions is None or name[1] in terms.revisions)
        ]

    def page(
        self, resource_names: list[str], query: logquery.Query, *, descending: bool, after: Key | None, page_size: int
    ) -> tuple[list[dict], Key | None]:
        """Up to page_size matching entries following `after` in the order asked for, and the key
        to continue from if at least one more entry matches (None: this is the last page)."""
        terms = logquery.index_terms(query)
        low = (terms.lower_ns, "", -1) if terms.lower_ns is not None else None
        high = (terms.upper_ns + 1, "", -1) if terms.upper_ns is not None else None
        if after is not None and descending:
            high = after if high is None else min(high, after)
        elif after is not None:
            low = after if low is None else max(low, after)
        streams = [bucket.between(low, high, descending=descending) for bucket in self._candidates(terms)]
        ordered = heapq.merge(*streams, key=lambda item: item[0], reverse=descending)
        logs = tuple(f"{name}/logs/" for name in resource_names)
        matching = (
            (key, entry)
            for key, entry in self._counted(ordered)
            if entry.get("logName", "").startswith(logs) and query.matches(entry)
        )
        taken = list(itertools.islice(matching, page_size + 1))
        page = taken[:page_size]
        more = len(taken) > page_size
        return [entry for _, entry in page], (page[-1][0] if more else None)

    def _counted(self, items: Iterator[tuple[Key, dict]]) -> Iterator[tuple[Key, dict]]:
        for item in items:
            self.visited += 1
            yield item


def page_token(key: Key, listing: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": list(key), "listing": listing}).encode()).decode()


def token_position(token: str, listing: str) -> Key | None:
    """The key a token continues after, or None if it is not a token of this listing."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, token_listing = decoded["after"], decoded["listing"]
        key = (int(after[0]), str(after[1]), int(after[2]))
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return key if token_listing == listing else None


# --- entries as Cloud Run writes them, and production-sized volumes of them ---------------------
def revision_entry(
    *,
    project: str,
    region: str,
    service: str,
    revision: str,
    timestamp: str,
    insert_id: str,
    line: dict,
    resource: dict | None = None,
) -> dict:
    """A LogEntry of a cloud_run_revision from a compact line ({severity, text | json, log, status});
    `resource` may be passed in to share one dict among many entries of the same revision."""
    log = line.get("log", "stdout")
    entry = {
        "logName": f"projects/{project}/logs/run.googleapis.com%2F{log}",
        "resource": resource or revision_resource(project, region, service, revision),
        "timestamp": timestamp,
        "receiveTimestamp": timestamp,
        "severity": line.get("severity", "DEFAULT"),
        "insertId": insert_id,
    }
    if log == "requests":
        entry["httpRequest"] = {
            "requestMethod": "POST",
            "requestUrl": f"https://{service}.run.app/process",
            "status": line.get("status", 200),
            "latency": "0.231s",
        }
    elif "json" in line:
        entry["jsonPayload"] = line["json"]
    else:
        entry["textPayload"] = line.get("text", "")
    return entry


def revision_resource(project: str, region: str, service: str, revision: str) -> dict:
    return {
        "type": "cloud_run_revision",
        "labels": {
            "service_name": service,
            "revision_name": revision,
            "location": region,
            "project_id": project,
            "configuration_name": service,
        },
    }


def generate_volume(spec: dict) -> Iterator[dict]:
    """`count` entries of one revision cycling through `lines` (`{n}` in a text or JSON message
    becomes the entry's number), evenly spread from `from_ns` to `to_ns`: made when the stand-in
    starts, so a scenario says "100,000 heartbeat lines" in five lines of YAML."""
    count, lines = spec["count"], spec["lines"]
    first, last = spec["from_ns"], spec["to_ns"]
    step = (last - first) // max(count - 1, 1)
    resource = revision_resource(spec["project"], spec["region"], spec["service"], spec["revision"])
    for number in range(count):
        line = lines[number % len(lines)]
        if "{n}" in line.get("text", "") or "{n}" in str((line.get("json") or {}).get("message", "")):
            line = _numbered(line, str(number))
        yield revision_entry(
            project=spec["project"],
            region=spec["region"],
            service=spec["service"],
            revision=spec["revision"],
            timestamp=_rfc3339_ns(first + number * step),
            insert_id=f"{spec['id']}-{number:07d}",
            line=line,
            resource=resource,
        )


def _numbered(line: dict, number: str) -> dict:
    if "json" in line:
        return {**line, "json": {**line["json"], "message": str(line["json"]["message"]).replace("{n}", number)}}
    return {**line, "text": line["text"].replace("{n}", number)}


def _rfc3339_ns(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"

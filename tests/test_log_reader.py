"""deploycheck.logs.LogReader against a tiny entries:list server that answers what each test
scripts: the real google-cloud-logging connection underneath, every misbehaviour an error."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials

from deploycheck.errors import ObservationError
from deploycheck.gcall import CallPolicy
from deploycheck.logs import LogReader

REVISION = "svc-00001-abc"


def entry(number: int) -> dict:
    return {
        "logName": "projects/p/logs/run.googleapis.com%2Fstdout",
        "insertId": f"e{number}",
        "timestamp": f"2026-01-28T10:{number // 60:02d}:{number % 60:02d}.123456789Z",
        "severity": "INFO",
        "resource": {"type": "cloud_run_revision", "labels": {"revision_name": REVISION}},
        "textPayload": f"line {number}",
    }


class Script:
    """Answers by page token: {token or "": raw body bytes | dict}; records every request."""

    def __init__(self, pages: dict[str, object]):
        self.pages = pages
        self.requests: list[dict] = []


@pytest.fixture
def scripted():
    scripts: list[Script] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script = scripts[-1]
            script.requests.append(request)
            answer = script.pages.get(request.get("pageToken", ""), {})
            body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    readers = []

    def reader_for(pages: dict[str, object], **options) -> tuple[LogReader, Script]:
        scripts.append(Script(pages))
        reader = LogReader(
            "p",
            AnonymousCredentials(),
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            policy=CallPolicy(deadline=2, attempt_timeout=2),
            **options,
        )
        readers.append(reader)
        return reader, scripts[-1]

    yield reader_for
    for reader in readers:
        reader.close()
    server.shutdown()
    server.server_close()


def test_pages_are_followed_newest_first_with_the_callers_filter(scripted):
    reader, script = scripted(
        {"": {"entries": [entry(3), entry(2)], "nextPageToken": "t1"}, "t1": {"entries": [entry(1)]}}
    )
    listing = reader.lines('resource.type="cloud_run_revision"', what="the lines", limit=10)
    assert listing.complete and [line.text for line in listing.lines] == ["line 3", "line 2", "line 1"]
    assert listing.lines[0].timestamp == datetime(2026, 1, 28, 10, 0, 3, 123456, tzinfo=timezone.utc)
    assert [r.get("pageToken") for r in script.requests] == [None, "t1"]
    assert script.requests[0]["orderBy"] == "timestamp desc" and script.requests[0]["pageSize"] == 11
    assert reader.calls["entries.list"] == 2


def test_a_listing_longer_than_its_limit_says_it_is_cut(scripted):
    reader, script = scripted({"": {"entries": [entry(n) for n in range(3)], "nextPageToken": "more"}})
    listing = reader.lines("f", what="the lines", limit=2)
    assert not listing.complete and len(listing.lines) == 2
    assert "--max-log-entries" in listing.cut_note() and "limit of 2 entries" in listing.cut_note()
    exact = reader.lines("f", what="the lines", limit=3)  # exactly the limit, then nothing: complete
    assert exact.complete and len(exact.lines) == 3 and len(script.requests) == 3


def test_a_repeated_page_is_not_counted_twice_it_is_an_error(scripted):
    reader, script = scripted(
        {"": {"entries": [entry(1)], "nextPageToken": "same"}, "same": {"entries": [entry(1)], "nextPageToken": "same"}}
    )
    with pytest.raises(ObservationError) as caught:
        reader.lines("f", what="the boot-error lines of svc", limit=1000)
    message = str(caught.value)
    assert "the boot-error lines of svc (Cloud Logging entries.list)" in message
    assert "page 2 answered a page token this listing already followed ('same')" in message
    assert len(script.requests) == 2


def test_a_token_cycle_is_an_error(scripted):
    reader, script = scripted(
        {
            "": {"entries": [entry(1)], "nextPageToken": "A"},
            "A": {"entries": [entry(2)], "nextPageToken": "B"},
            "B": {"entries": [entry(3)], "nextPageToken": "A"},
        }
    )
    with pytest.raises(ObservationError, match=r"page 3 answered a page token this listing already followed \('A'\)"):
        reader.lines("f", what="the lines", limit=1000)
    assert len(script.requests) == 3


def test_endless_empty_pages_stop_after_the_bound(scripted):
    pages = {("" if n == 0 else f"t{n}"): {"nextPageToken": f"t{n + 1}"} for n in range(100)}
    reader, script = scripted(pages, max_empty_pages=5)
    with pytest.raises(ObservationError, match="6 pages in a row were empty yet promised more"):
        reader.latest("f", what="the latest line")
    assert len(script.requests) == 6
    # A few empty pages are normal over a long window: followed to the entry behind them.
    pages = {"": {"nextPageToken": "t1"}, "t1": {"nextPageToken": "t2"}, "t2": {"entries": [entry(7)]}}
    reader, _ = scripted(pages, max_empty_pages=5)
    assert reader.latest("f", what="the latest line").text == "line 7"


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"[]", "answered a JSON list, not an object"),
        (b'{"entries": {"a": 1}}', "answered `entries` as a JSON dict, not a list"),
        (b'{"entries": [], "nextPageToken": 7}', "`nextPageToken` as a JSON int, not a string"),
        (b'{"entries": [{"resource": {"labels": {"revision_name": "r"}}}]}', "entry 0 without an RFC 3339 timestamp"),
        (
            b'{"entries": [{"timestamp": "yesterday", "resource": {"labels": {"revision_name": "r"}}}]}',
            "entry 0 without an RFC 3339 timestamp ('yesterday')",
        ),
        (b'{"entries": [{"timestamp": "2026-01-28T10:00:00Z"}]}', "entry 0 without resource.labels.revision_name"),
        (
            b'{"entries": [{"timestamp": "2026-01-28T10:00:00Z", "resource": {"labels": {"revision_name": "r"}}, '
            b'"textPayload": 5}]}',
            "entry 0 with a textPayload that is not a string",
        ),
        (b'{"entries": [' + json.dumps(entry(1)).encode()[:60], "JSON it could not parse"),
        (b'{"entries": ["\xff\xfe"]}', "a body that is not UTF-8"),
        (b"", "an empty body instead of JSON"),
    ],
)
def test_a_malformed_answer_is_an_error_naming_the_api_and_the_problem(scripted, body, problem):
    reader, _ = scripted({"": body})
    with pytest.raises(ObservationError) as caught:
        reader.lines("f", what="the boot-error lines of svc", limit=10)
    assert str(caught.value).startswith(
        "cannot observe the boot-error lines of svc: Cloud Logging entries.list answered"
    )
    assert problem in str(caught.value)


def test_an_entry_of_a_revision_the_filter_excludes_is_an_error(scripted):
    reader, _ = scripted({"": {"entries": [entry(1)]}})
    with pytest.raises(ObservationError, match="entry 0 of revision 'svc-00001-abc', which the filter excludes"):
        reader.lines("f", what="the lines", limit=10, allowed_revisions={"svc-00002-def"})


def test_an_empty_object_is_an_empty_listing(scripted):
    reader, _ = scripted({"": {}})
    assert reader.lines("f", what="the lines", limit=10).lines == []
    assert reader.latest("f", what="the latest line") is None

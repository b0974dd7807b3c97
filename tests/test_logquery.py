"""The Logging query subset the stand-in evaluates, and its entries.list route driven by the
unmodified google-cloud-logging client, exactly as deploycheck.logs uses it."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging
from google.cloud.logging_v2.entries import StructEntry, TextEntry

from deploycheck.errors import InputError
from deploycheck.sandbox.apiserver import ApiState
from deploycheck.sandbox.logquery import SUPPORTED, UnsupportedQuery, instant, parse
from deploycheck.sandbox.logstore import LogStore, generate_volume
from deploycheck.sandbox.scenario import expand_log_volume, load_scenario
from deploycheck.sandbox.timeutil import rfc3339

from conftest import serving

PROJECT = "sandbox-project"
SERVICE = "nba-phase2-raw-processors"
REVISION = f"{SERVICE}-00042-abc"

TEXT_ENTRY = {
    "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstderr",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": SERVICE, "revision_name": REVISION}},
    "timestamp": "2024-05-01T10:00:00.123456789Z",
    "receiveTimestamp": "2024-05-01T10:00:01Z",
    "severity": "ERROR",
    "textPayload": "ImportError: cannot import name 'firestore' from 'google.cloud' (line 12)",
    "labels": {"k8s-pod/app": "worker", "attempt": "3"},
    "insertId": "text-1",
}
JSON_ENTRY = {
    "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": SERVICE, "revision_name": REVISION}},
    "timestamp": "2024-05-01T10:00:02Z",
    "severity": "INFO",
    "jsonPayload": {"message": "Heartbeat nba_phase2_raw_processors ok", "count": 7, "ok": True},
    "insertId": "json-1",
}
REQUEST_ENTRY = {  # no severity: JSON omits the DEFAULT enum value
    "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Frequests",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": SERVICE, "revision_name": REVISION}},
    "timestamp": "2024-05-01T10:00:03Z",
    "httpRequest": {"requestMethod": "POST", "status": 503, "responseSize": "1234"},
    "insertId": "request-1",
}


def matches(filter_: str, entry: dict = TEXT_ENTRY) -> bool:
    return parse(filter_).matches(entry)


def quoted(value: str) -> str:
    """A query string literal, escaped as deploycheck.logs writes it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- operators -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filter_, expected",
    [
        ('resource.type="cloud_run_revision"', True),
        ("resource.type=cloud_run_revision", True),  # an unquoted simple value
        ('resource.type="cloud_run_job"', False),
        ('resource.type="CLOUD_RUN_REVISION"', False),  # = is exact
        ('resource.type!="cloud_run_job"', True),
        ('resource.type!="cloud_run_revision"', False),
        ('resource.labels.revision_name<"nba-phase2-raw-processors-00043"', True),  # strings: lexicographic
        ('resource.labels.revision_name<="nba-phase2-raw-processors-00042-abc"', True),
        ('resource.labels.revision_name>"nba-phase2-raw-processors-00042-abc"', False),
        ('resource.labels.revision_name>="nba-phase2-raw-processors-00041"', True),
        ('textPayload:"IMPORTERROR"', True),  # : is a case-insensitive substring test
        ('textPayload:"monitoring_v3"', False),
        ("textPayload=~\"cannot import name '[a-z_]+'\"", True),  # =~ searches, unanchored
        ('textPayload=~"^ImportError"', True),
        ('textPayload=~"importerror"', False),  # regexes are case-sensitive
        (r'textPayload=~"\\(line \\d+\\)$"', True),  # \\ in the literal is one backslash in the regex
        ('textPayload!~"Traceback"', True),
        ('textPayload!~"ImportError"', False),
        ('labels."k8s-pod/app"=worker', True),  # a quoted path segment
        ("labels.attempt>=3", True),
        ("labels.attempt>10", False),  # a numeric string compares as a number ("3" > "10" as text)
    ],
)
def test_every_operator_on_a_text_entry(filter_, expected):
    assert matches(filter_) is expected


@pytest.mark.parametrize(
    "filter_, expected",
    [
        ("httpRequest.status>=500", True),
        ("httpRequest.status<60", False),  # numerically; as text "503" < "60"
        ("httpRequest.status=503", True),
        ('httpRequest.status="503"', True),
        ("httpRequest.status!=503", False),
        ("httpRequest.responseSize>200", True),  # int64 as a JSON string, still a number ("1234" < "200" as text)
        ("httpRequest.responseSize<=1234", True),
        ('httpRequest.requestMethod="POST"', True),
    ],
)
def test_numbers_compare_numerically(filter_, expected):
    assert matches(filter_, REQUEST_ENTRY) is expected


@pytest.mark.parametrize(
    "filter_, expected",
    [
        ('jsonPayload.message=~"^Heartbeat [a-z0-9_]+ ok$"', True),
        ('jsonPayload.message:"HEARTBEAT"', True),
        ('jsonPayload.message="Heartbeat nba_phase2_raw_processors ok"', True),
        ('jsonPayload:"phase2_raw"', True),  # : on a structure looks into every value inside it
        ("jsonPayload.count>5", True),
        ("jsonPayload.ok=true", True),
        ('jsonPayload=~"Heartbeat"', False),  # a structure is not text
        ('textPayload=~"Heartbeat"', False),
    ],
)
def test_json_payload_fields(filter_, expected):
    assert matches(filter_, JSON_ENTRY) is expected


# --- boolean structure -----------------------------------------------------------------------------
def _labelled(**values: bool) -> dict:
    return {"labels": {name: "1" if value else "0" for name, value in values.items()}}


def test_or_binds_tighter_than_and_as_in_the_real_language():
    # `a OR b AND c` is `(a OR b) AND c` in the Logging query language (AIP-160), not SQL's reading.
    entry = _labelled(a=True, b=False, c=False)
    assert not matches("labels.a=1 OR labels.b=1 AND labels.c=1", entry)
    assert matches("labels.a=1 OR (labels.b=1 AND labels.c=1)", entry)


def test_precedence_follows_the_documented_example_for_every_combination():
    documented = parse("labels.a=1 OR NOT labels.b=1 AND NOT labels.c=1 OR labels.d=1")
    meaning = parse("(labels.a=1 OR (NOT labels.b=1)) AND ((NOT labels.c=1) OR labels.d=1)")
    for a, b, c, d in itertools.product([True, False], repeat=4):
        entry = _labelled(a=a, b=b, c=c, d=d)
        assert documented.matches(entry) is meaning.matches(entry) is ((a or not b) and (not c or d))


def test_adjacent_terms_are_an_implicit_and():
    assert matches("resource.type=cloud_run_revision severity>=ERROR")
    assert not matches("resource.type=cloud_run_revision severity<ERROR")
    entry = _labelled(a=True, b=False, c=False)
    assert not matches("labels.a=1 OR labels.b=1 labels.c=1", entry)  # (a OR b) AND c
    assert matches("labels.a=1 OR labels.b=1 labels.a=1", entry)


@pytest.mark.parametrize(
    "filter_, expected",
    [
        ("NOT severity=INFO", True),
        ("-severity=INFO", True),
        ("NOT severity=ERROR", False),
        ("-severity=ERROR", False),
        ("NOT NOT severity=ERROR", True),
        ("-(severity=ERROR AND textPayload:import)", False),
        ("NOT severity=INFO AND textPayload:import", True),  # NOT binds tightest
        ("(severity=INFO OR severity=ERROR) AND (resource.type=cloud_run_job OR textPayload:firestore)", True),
    ],
)
def test_not_and_the_minus_prefix(filter_, expected):
    assert matches(filter_) is expected


@pytest.mark.parametrize(
    "filter_, expected",
    [
        (f'resource.labels.revision_name=("{SERVICE}-00001-xyz" OR "{REVISION}")', True),
        (f'resource.labels.revision_name=("{SERVICE}-00001-xyz" OR "{SERVICE}-00002-xyz")', False),
        ("severity=(INFO OR ERROR)", True),
        ('textPayload:("importerror" AND "FIRESTORE")', True),
        ('textPayload:("importerror" AND "monitoring_v3")', False),
    ],
)
def test_value_lists(filter_, expected):
    assert matches(filter_) is expected


def test_the_empty_filter_matches_everything():
    assert matches("") and matches("  \n ")


# --- timestamps and severities -------------------------------------------------------------------
@pytest.mark.parametrize(
    "filter_, expected",
    [
        ('timestamp="2024-05-01T10:00:00.123456789Z"', True),
        ('timestamp="2024-05-01T12:00:00.123456789+02:00"', True),  # the same instant in another offset
        ('timestamp="2024-05-01T05:30:00.123456789-04:30"', True),
        ('timestamp>="2024-05-01T12:00:00.123456+0200"', True),  # google-cloud-logging writes +0000
        ('timestamp>"2024-05-01T10:00:00.123456788Z"', True),  # nanoseconds count
        ('timestamp>"2024-05-01T10:00:00.123456789Z"', False),
        ('timestamp<="2024-05-01T10:00:00.123456789Z"', True),
        ('timestamp<"2024-05-01T10:00:00.1234568Z"', True),
        ('timestamp>"2024-05-01T11:00:00+02:00"', True),  # 09:00Z, although "11" > "10" as text
        ('timestamp!="2024-05-01T10:00:00.123456789Z"', False),
        ('receiveTimestamp>"2024-05-01T10:00:00.999999999Z"', True),
        ('timestamp>="2024-05-01T10:00:00Z" AND timestamp<"2024-05-01T10:00:01Z"', True),
    ],
)
def test_timestamps_compare_as_instants(filter_, expected):
    assert matches(filter_) is expected


def test_instant_reads_rfc3339_to_the_nanosecond():
    assert instant("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert instant("1970-01-01T01:00:00+01:00") == 0 == instant("1969-12-31T23:00:00.000000000-0100")
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        instant("2024-02-30T00:00:00Z")


@pytest.mark.parametrize(
    "filter_, entry, expected",
    [
        ("severity>=WARNING", TEXT_ENTRY, True),
        ("severity>INFO", TEXT_ENTRY, True),  # by level: ERROR > INFO, though "ERROR" < "INFO" as text
        ("severity<CRITICAL", TEXT_ENTRY, True),
        ("severity=ERROR", TEXT_ENTRY, True),
        ('severity="ERROR"', TEXT_ENTRY, True),
        ("severity>=ERROR", JSON_ENTRY, False),
        ("severity=DEFAULT", REQUEST_ENTRY, True),  # an entry without severity is DEFAULT
        ("severity<DEBUG", REQUEST_ENTRY, True),
        ("severity>=DEBUG", REQUEST_ENTRY, False),
    ],
)
def test_severities_compare_by_level(filter_, entry, expected):
    assert matches(filter_, entry) is expected


# --- missing fields ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filter_, expected",
    [
        ('jsonPayload.message="x"', False),
        ('jsonPayload.message!="x"', False),  # a missing field never satisfies a comparison ...
        ('jsonPayload.message:"x"', False),
        ('jsonPayload.message=~"."', False),
        ('jsonPayload.message!~"x"', False),
        ("httpRequest.status<500", False),
        ("labels.absent.deeper=1", False),
        ('NOT jsonPayload.message:"x"', True),  # ... but its negation holds
        ("-httpRequest.status>=500", True),
        ("jsonPayload.message:*", False),  # `:*` tests presence
        ("textPayload:*", True),
        ('labels."k8s-pod/app":*', True),
    ],
)
def test_missing_fields(filter_, expected):
    assert matches(filter_) is expected


# --- quotes and escapes -------------------------------------------------------------------------------
def test_a_quote_inside_a_value_cannot_widen_the_match():
    crafted = 'x" OR resource.type:"'
    odd = {**TEXT_ENTRY, "resource": {"type": "cloud_run_revision", "labels": {"service_name": crafted}}}
    query = parse(f"resource.labels.service_name={quoted(crafted)}")
    assert query.matches(odd)
    assert not query.matches(TEXT_ENTRY) and not query.matches(JSON_ENTRY)


def test_escaped_backslashes_and_quotes_are_literal():
    entry = {"textPayload": 'C:\\tmp\\"q"'}
    assert matches(f"textPayload={quoted(entry['textPayload'])}", entry)
    assert matches(r'textPayload:"\\\"q\""', entry)
    assert not matches(r'textPayload="C:\\tmp"', entry)


# --- rejections ----------------------------------------------------------------------------------------
def test_a_rejection_names_the_column_the_text_and_what_is_supported():
    with pytest.raises(UnsupportedQuery) as caught:
        parse('severity>=ERROR AND SEARCH("firestore")')
    assert str(caught.value) == f"unsupported at column 21: 'SEARCH(' is a function ({SUPPORTED})"
    assert (caught.value.line, caught.value.column) == (1, 21)


@pytest.mark.parametrize(
    "filter_, where, message",
    [
        ('SEARCH("firestore")', "column 1", "'SEARCH(' is a function"),
        ("resource.type=cloud_run_revision sample(insertId, 0.1)", "column 34", "'sample(' is a function"),
        ('ip_in_net(httpRequest.remoteIp, "10.0.0.0/8")', "column 1", "'ip_in_net(' is a function"),
        ('"ImportError"', "column 1", """'"ImportError"' is a value without a field (a global restriction)"""),
        ("severity>=ERROR ImportError", "column 17", "'ImportError' is a value without a field"),
        (
            "severity>=ERROR and textPayload:x",
            "column 17",
            "'and' is a value without a field (a global restriction); AND, OR and NOT are upper case",
        ),
        ("(severity>=ERROR OR severity=INFO", "column 1", "'(' is never closed"),
        ("severity>=ERROR)", "column 16", "')' closes no parenthesis"),
        ("()", "column 1", "'()' is an empty group"),
        ('textPayload:"abc', "column 13", """'"abc' opens a string that is never closed"""),
        (r'textPayload="\d"', "column 14", r"""'\d' is not an escape the sandbox knows (only \" and \\)"""),
        ("severity>=ERROR OR", "column 19", "the query ends where a restriction was expected"),
        ("textPayload=", "column 13", "the query ends where a value was expected after '='"),
        ("textPayload=foo*", "column 16", "'*' is not allowed in an unquoted value (quote the value)"),
        ("timestamp>=2024-05-01T00:00:00Z", "column 25", "':' is not allowed in an unquoted value"),
        ('timestamp>="yesterday"', "column 12", """'yesterday' is not an RFC 3339 timestamp"""),
        ('timestamp:"2024"', "column 10", "':' cannot apply to timestamp (use =, !=, <, <=, >, >=)"),
        ("severity>=error", "column 11", "'error' is not a severity (DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR,"),
        ('severity=~"ERR"', "column 9", "'=~' cannot apply to severity"),
        ('textPayload=("a" OR "b" AND "c")', "column 25", "'AND' mixes AND and OR in one value list"),
        ('textPayload=("a" NOT "b")', "column 18", "'NOT' is not AND, OR or ')' inside a value list"),
        ('textPayload!=("a" OR "b")', "column 12", "'!=' cannot take a value list (write NOT field=(...))"),
        ("textPayload=AND", "column 13", "'AND' is an operator where a value was expected"),
        ('jsonPayload.items[0]="x"', "column 18", "'[' cannot follow the field name 'jsonPayload.items'"),
        ('labels.k8s-app="x"', "column 11", "'-' cannot follow the field name 'labels.k8s'"),
        ('textPayload=~"(a)\\\\1"', "column 14", "'\\1' is a backreference, which RE2 lacks"),
        ('textPayload=~"Error(?=:)"', "column 14", "'(?=' is a lookahead in a regular expression, which RE2 lacks"),
        ('textPayload=~"(?!Import)Error"', "column 14", "'(?!' is a negative lookahead"),
        ('textPayload=~"(?<=Import)Error"', "column 14", "'(?<=' is a lookbehind"),
        ('textPayload=~"(?<!Import)Error"', "column 14", "'(?<!' is a negative lookbehind"),
        ('textPayload=~"(?P<x>a)(?P=x)"', "column 14", "'(?P=' is a named backreference"),
        ('textPayload=~"(?>Import)"', "column 14", "'(?>' is an atomic group"),
        ('textPayload=~"a++"', "column 14", "'++' is a possessive quantifier"),
        ('textPayload=~"Error\\\\Z"', "column 14", "'\\Z' is not RE2 syntax"),
        (
            'textPayload=~"[unclosed"',
            "column 14",
            "'[unclosed' is not a valid regular expression: a '[' is never closed",
        ),
        ('resource.type="cloud_run_revision"\n  AND SEARCH("x")', "line 2, column 7", "'SEARCH(' is a function"),
    ],
)
def test_rejections(filter_, where, message):
    with pytest.raises(UnsupportedQuery) as caught:
        parse(filter_)
    assert str(caught.value).startswith(f"unsupported at {where}: {message}")
    assert str(caught.value).endswith(f"({SUPPORTED})")


def test_regex_syntax_shared_with_re2_is_accepted():
    assert matches(r'textPayload=~"(?i)^importerror: cannot import name .(?P<name>\\w+).$"') is False
    assert matches(r'textPayload=~"(?i)^importerror: cannot import name .(?P<name>\\w+). from"')
    assert matches(r'textPayload=~"[\\]a-z]+"')  # an escaped ']' inside a class is no backreference trap
    assert matches(r'textPayload=~"[(?=]line"')  # '(?=' inside a class is three literal characters


# --- the route, through the real google-cloud-logging client ----------------------------------------------
NOW = datetime.now(timezone.utc)


def _revision_entry(
    insert_id: str,
    age: timedelta,
    *,
    text: str | None = None,
    json_message: str | None = None,
    service: str = SERVICE,
    project: str = PROJECT,
    severity: str = "INFO",
) -> dict:
    entry = {
        "logName": f"projects/{project}/logs/run.googleapis.com%2Fstdout",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "service_name": service,
                "revision_name": f"{service}-00042-abc",
                "location": "us-west2",
                "project_id": project,
            },
        },
        "timestamp": rfc3339(NOW - age),
        "receiveTimestamp": rfc3339(NOW - age),
        "severity": severity,
        "insertId": insert_id,
    }
    if json_message is not None:
        entry["jsonPayload"] = {"message": json_message, "processor": "phase2"}
    else:
        entry["textPayload"] = text or f"line {insert_id}"
    return entry


SERVED_ENTRIES = [
    # listed out of order on purpose: the route sorts by timestamp, then insertId
    _revision_entry("e3", timedelta(minutes=30), json_message="Heartbeat phase2 ok"),
    _revision_entry("e1", timedelta(hours=2), text="Booting worker with pid 7"),
    _revision_entry("e5", timedelta(minutes=10), text="Traceback (most recent call last):", severity="ERROR"),
    _revision_entry("e2", timedelta(hours=1)),
    _revision_entry("e4b", timedelta(minutes=20)),
    _revision_entry("e4a", timedelta(minutes=20)),  # same instant as e4b: insertId breaks the tie
    _revision_entry("old", timedelta(hours=30), text="ImportError: cannot import name 'firestore'"),
    _revision_entry("other-service", timedelta(minutes=5), service="prediction-worker"),
    _revision_entry("other-project", timedelta(minutes=5), project="someone-else"),
]
SINCE = f"timestamp>={quoted(rfc3339(NOW - timedelta(days=2)))}"
OF_SERVICE = f'resource.type="cloud_run_revision" AND resource.labels.service_name="{SERVICE}" AND {SINCE}'
LIST_CALLS = "POST /v2/entries:list"


@pytest.fixture(scope="module")
def api():
    state = ApiState(resources={}, log_entries=SERVED_ENTRIES)
    with serving(state) as url:
        yield url, state


@pytest.fixture
def client(api):
    url, state = api
    state.calls.clear()
    logging_client = cloud_logging.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": url}, _use_grpc=False
    )
    yield logging_client
    logging_client.close()


def _ids(entries) -> list[str]:
    return [entry.insert_id for entry in entries]


def test_the_client_pages_through_every_match_in_timestamp_order(api, client):
    _, state = api
    entries = list(
        client.list_entries(
            resource_names=[f"projects/{PROJECT}"],
            filter_=OF_SERVICE,
            order_by=cloud_logging.ASCENDING,
            page_size=2,
            max_results=100,
        )
    )
    assert _ids(entries) == ["old", "e1", "e2", "e3", "e4a", "e4b", "e5"]
    assert state.calls[LIST_CALLS] == 4  # 7 entries, 2 a page


def test_descending_order_and_max_results_stop_early(api, client):
    _, state = api
    entries = list(
        client.list_entries(
            resource_names=[f"projects/{PROJECT}"],
            filter_=OF_SERVICE,
            order_by=cloud_logging.DESCENDING,
            page_size=2,
            max_results=3,
        )
    )
    assert _ids(entries) == ["e5", "e4b", "e4a"]
    assert state.calls[LIST_CALLS] == 2


def test_text_and_json_payloads_come_back_as_the_clients_entry_classes(client):
    by_id = {
        entry.insert_id: entry
        for entry in client.list_entries(
            resource_names=[f"projects/{PROJECT}"], filter_=f'{OF_SERVICE} AND (insertId="e1" OR insertId="e3")'
        )
    }
    text, struct = by_id["e1"], by_id["e3"]
    assert isinstance(text, TextEntry) and text.payload == "Booting worker with pid 7"
    assert isinstance(struct, StructEntry) and struct.payload == {
        "message": "Heartbeat phase2 ok",
        "processor": "phase2",
    }
    assert struct.severity == "INFO" and struct.resource.type == "cloud_run_revision"
    assert struct.resource.labels["revision_name"] == REVISION
    assert struct.timestamp == datetime.fromisoformat(SERVED_ENTRIES[0]["timestamp"][:26] + "+00:00")


def test_a_regex_group_over_both_payload_kinds(client):
    pattern_group = '(textPayload=~"^Traceback" OR jsonPayload.message=~"^Heartbeat [a-z0-9]+ ok$")'
    entries = client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=f"{OF_SERVICE} AND {pattern_group}")
    assert sorted(_ids(entries)) == ["e3", "e5"]


def test_entries_of_other_projects_stay_out_unless_named(client):
    mine = client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=SINCE)
    both = client.list_entries(resource_names=[f"projects/{PROJECT}", "projects/someone-else"], filter_=SINCE)
    assert "other-project" not in _ids(mine)
    assert "other-project" in _ids(both)


def test_a_rejected_filter_is_a_bad_request_carrying_the_parsers_message(client):
    with pytest.raises(exceptions.BadRequest) as caught:
        list(
            client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=f'{OF_SERVICE} AND SEARCH("firestore")')
        )
    assert "unsupported at column" in caught.value.message
    assert "'SEARCH(' is a function" in caught.value.message


def test_the_client_silently_adds_a_24h_window_to_a_filter_without_timestamp(client, monkeypatch):
    """google-cloud-logging appends ` AND timestamp>="<now-24h as %Y-%m-%dT%H:%M:%S.%f+0000>"` when the
    text "timestamp" appears nowhere in the filter; the stand-in evaluates that term like the service:
    the 30-hour-old ImportError drops out. Because OR binds tighter than AND, the appended term
    restricts the whole OR group, not just its last alternative."""
    sent_filters = []
    send = client._connection.api_request

    def recording(**request):
        sent_filters.append(request["data"]["filter"])
        return send(**request)

    monkeypatch.setattr(client._connection, "api_request", recording)
    mine = 'insertId="old" OR insertId="e1"'
    entries = list(client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=mine))
    assert re.fullmatch(
        re.escape(mine) + r' AND timestamp>="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000"', sent_filters[0]
    )
    assert _ids(entries) == ["e1"]

    # Any mention of "timestamp", even inside a value, turns the default off.
    entries = list(
        client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=f'{mine} OR textPayload:"timestamp"')
    )
    assert sent_filters[1] == f'{mine} OR textPayload:"timestamp"'
    assert _ids(entries) == ["old", "e1"]


# --- the route's own rules, over plain HTTP ---------------------------------------------------------------
def _post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v2/entries:list", json=body, timeout=5)


def test_no_match_answers_an_empty_object(api):
    url, _ = api
    response = _post(url, {"resourceNames": [f"projects/{PROJECT}"], "filter": 'insertId="nothing"'})
    assert response.status_code == 200 and response.json() == {}


def test_the_default_page_is_50_and_a_token_continues_only_its_own_listing(api):
    url, _ = api
    first = _post(url, {"resourceNames": [f"projects/{PROJECT}"], "filter": OF_SERVICE, "pageSize": 3}).json()
    assert [e["insertId"] for e in first["entries"]] == ["old", "e1", "e2"]
    rest = _post(
        url, {"resourceNames": [f"projects/{PROJECT}"], "filter": OF_SERVICE, "pageToken": first["nextPageToken"]}
    ).json()
    assert [e["insertId"] for e in rest["entries"]] == ["e3", "e4a", "e4b", "e5"] and "nextPageToken" not in rest
    foreign = _post(
        url, {"resourceNames": [f"projects/{PROJECT}"], "filter": SINCE, "pageToken": first["nextPageToken"]}
    )
    assert foreign.status_code == 400 and "pageToken" in foreign.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"filter": SINCE}, "resourceNames is required"),
        ({"resourceNames": [f"projects/{PROJECT}"], "pageSize": 1001}, "pageSize must be between 1 and 1000"),
        ({"resourceNames": [f"projects/{PROJECT}"], "pageSize": -1}, "pageSize must be between 1 and 1000"),
        ({"resourceNames": [f"projects/{PROJECT}"], "orderBy": "severity desc"}, "orderBy must be"),
        ({"resourceNames": [f"projects/{PROJECT}"], "pageToken": "not-a-token"}, "pageToken"),
        ({"resourceNames": [f"projects/{PROJECT}"], "filter": "a=1 and b=2"}, "unsupported at column 5"),
    ],
)
def test_invalid_requests_are_invalid_argument(api, body, message):
    url, _ = api
    response = _post(url, body)
    error = response.json()["error"]
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


# --- the store: an index that only narrows, position tokens, generated volume --------------------------------
STORE_FILTERS = [
    "",
    OF_SERVICE,
    f'resource.labels.service_name="{SERVICE}" AND resource.labels.revision_name=("{SERVICE}-00042-abc" OR "x")',
    f'resource.labels.revision_name="{SERVICE}-00042-abc" AND timestamp<={quoted(SERVED_ENTRIES[4]["timestamp"])}',
    f"timestamp>={quoted(SERVED_ENTRIES[0]['timestamp'])} AND timestamp<={quoted(SERVED_ENTRIES[4]['timestamp'])}",
    f"timestamp>{quoted(SERVED_ENTRIES[0]['timestamp'])} AND timestamp<{quoted(SERVED_ENTRIES[4]['timestamp'])}",
    f'resource.labels.service_name="{SERVICE}" OR resource.labels.service_name="prediction-worker"',
    f'NOT resource.labels.service_name="{SERVICE}"',
    f'{OF_SERVICE} AND (textPayload=~"^Traceback" OR textPayload=~"worker" OR jsonPayload.message=~"ok$")',
    f'resource.labels.service_name="{SERVICE}" AND resource.labels.service_name="prediction-worker"',
    f'resource.labels.service_name=("{SERVICE}" OR "prediction-worker") AND severity>=INFO',
    f'resource.labels.revision_name=("{SERVICE}-00042-abc" OR "prediction-worker-00014-xvg")',
]


@pytest.mark.parametrize("filter_", STORE_FILTERS, ids=[f"filter{n}" for n in range(len(STORE_FILTERS))])
@pytest.mark.parametrize("descending", [False, True])
def test_the_indexed_store_pages_exactly_what_a_full_scan_finds(filter_, descending):
    store = LogStore(SERVED_ENTRIES)
    query = parse(filter_)
    names = [f"projects/{PROJECT}", "projects/someone-else"]
    expected = sorted(
        (e for e in SERVED_ENTRIES if query.matches(e)),
        key=lambda e: (instant(e["timestamp"]), e["insertId"]),
        reverse=descending,
    )
    served, after = [], None
    for _ in range(len(SERVED_ENTRIES) + 1):
        page, after = store.page(names, query, descending=descending, after=after, page_size=2)
        served += page
        if after is None:
            break
    assert [e["insertId"] for e in served] == [e["insertId"] for e in expected]


def test_descending_pages_continue_through_tokens_over_http(api):
    url, _ = api
    body = {"resourceNames": [f"projects/{PROJECT}"], "filter": OF_SERVICE, "orderBy": "timestamp desc", "pageSize": 3}
    first = _post(url, body).json()
    rest = _post(url, {**body, "pageToken": first["nextPageToken"], "pageSize": 10}).json()
    assert [e["insertId"] for e in first["entries"] + rest["entries"]] == ["e5", "e4b", "e4a", "e3", "e2", "e1", "old"]


def test_a_log_volume_is_made_at_start_from_a_few_lines_of_scenario(tmp_path):
    (tmp_path / "scenario.yaml").write_text(f"""\
log_volume:
  - service: {SERVICE}
    revision: 00042-abc
    count: 5
    from: now-4m
    to: now
    lines:
      - {{severity: INFO, text: "Started heartbeat for p2_nba_raw.x"}}
      - {{severity: INFO, json: {{message: "batch {{n}}"}}}}
      - {{log: requests}}
""")
    scenario = load_scenario(str(tmp_path), project=PROJECT, region="us-west2", now=NOW)
    [spec] = expand_log_volume(scenario)
    entries = list(generate_volume(spec))
    assert [e.get("textPayload") or (e.get("jsonPayload") or {}).get("message") for e in entries] == [
        "Started heartbeat for p2_nba_raw.x",
        "batch 1",
        None,
        "Started heartbeat for p2_nba_raw.x",
        "batch 4",
    ]
    assert entries[2]["httpRequest"]["status"] == 200
    assert {e["resource"]["labels"]["revision_name"] for e in entries} == {REVISION}
    stamps = [instant(e["timestamp"]) for e in entries]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] == 4 * 60 * 10**9
    assert len({e["insertId"] for e in entries}) == 5


@pytest.mark.parametrize(
    "item, message",
    [
        ("{service: s, revision: r, count: 0, lines: [{text: x}]}", "log_volume[0].count: expected a positive integer"),
        ("{service: s, revision: r, count: 3, lines: []}", "log_volume[0].lines: expected a non-empty list"),
        ("{service: s, count: 3, lines: [{text: x}]}", "log_volume[0]: missing revision"),
        ("{service: s, revision: r, count: 3, from: now, to: now-1h, lines: [{text: x}]}", "`to`"),
    ],
)
def test_a_bad_log_volume_is_refused_naming_the_field(tmp_path, item, message):
    (tmp_path / "scenario.yaml").write_text(f"log_volume:\n  - {item}\n")
    scenario = load_scenario(str(tmp_path), project=PROJECT, region="us-west2", now=NOW)
    with pytest.raises(InputError) as caught:
        expand_log_volume(scenario)
    assert "scenario.yaml: " in str(caught.value) and message in str(caught.value)


def test_a_query_costs_what_it_names_not_the_store_size():
    """1,000 revisions of 1,000 services, 20 entries each: a query reads only its revisions' entries."""
    start = instant("2026-01-01T00:00:00Z")
    entries = [
        {
            "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
            "insertId": f"{s}-{n}",
            "timestamp": rfc3339(datetime.fromtimestamp((start + n * 10**9) / 10**9, timezone.utc)),
            "severity": "INFO",
            "textPayload": f"line {n}",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {"service_name": f"svc-{s:04d}", "revision_name": f"svc-{s:04d}-00001-aaa"},
            },
        }
        for s in range(1000)
        for n in range(20)
    ]
    store = LogStore(entries)
    names = [f"projects/{PROJECT}"]

    def read(filter_: str) -> tuple[int, int]:
        before = store.visited
        page, _ = store.page(names, parse(filter_), descending=True, after=None, page_size=1000)
        return len(page), store.visited - before

    assert read('resource.labels.service_name="svc-0007" AND resource.labels.revision_name="svc-0007-00001-aaa"') == (
        20,
        20,
    )
    # Revisions of several services in one query (a batched read): their entries, nothing else.
    assert read(
        'resource.labels.revision_name=("svc-0001-00001-aaa" OR "svc-0500-00001-aaa" OR '
        '"svc-0999-00001-aaa") AND textPayload=~"line 1[0-9]"'
    ) == (30, 60)
    assert read('resource.labels.service_name=("svc-0002" OR "svc-0003")') == (40, 40)
    assert read('resource.labels.service_name="svc-0004" AND timestamp>="2026-01-01T00:00:15Z"') == (5, 5)
    assert read('resource.labels.revision_name="nobody"') == (0, 0)

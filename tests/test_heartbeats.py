"""HeartbeatReader against the real Firestore emulator, and against a scripted gRPC server for the
failures the emulator cannot produce (a denied read, a stream that breaks half-way)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from concurrent import futures
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.firestore_v1.types import Document, RunQueryRequest, RunQueryResponse, Value

from deploycheck.errors import ObservationError, PermissionDeniedError
from deploycheck.gcall import CallPolicy
from deploycheck.heartbeats import FIELDS, HeartbeatDoc, HeartbeatReader
from deploycheck.sandbox import firestore_process
from deploycheck.sandbox.firestore_process import FirestoreEmulator, seed_documents
from deploycheck.sandbox.needs import SandboxUnavailable

PROJECT = "nba-props-platform"
NOW = datetime(2026, 2, 1, 12, 0, 30, 123456, tzinfo=timezone.utc)
BENCH = Path(__file__).resolve().parent.parent / "bench" / "heartbeats.py"
# Refused connections fail at once, so a short deadline keeps the failure tests quick.
SHORT_POLICY = CallPolicy(deadline=2.0, attempt_timeout=2.0, initial=0.05, maximum=0.2)


@pytest.fixture(scope="module")
def firestore(tmp_path_factory):
    """One emulator for the module; each test writes its own collection."""
    with FirestoreEmulator(tmp_path_factory.mktemp("firestore")) as running:
        yield running


def scan(host: str, collection: str, policy: CallPolicy | None = None):
    with HeartbeatReader(PROJECT, AnonymousCredentials(), emulator_host=host, policy=policy) as reader:
        return reader.scan(collection)


def test_scan_returns_every_document_with_its_fields_and_problems(firestore):
    seed_documents(
        firestore.host,
        PROJECT,
        "scan",
        [
            (
                "p2_nba_raw.nbac_team_boxscore",
                {
                    "processor_name": "p2_nba_raw.nbac_team_boxscore",
                    "last_heartbeat": NOW,
                    "status": "completed",
                    "run_id": "r1",
                },
            ),
            (
                "NbacTeamBoxscoreProcessor_None_a7ac21c9",
                {
                    "processor_name": "NbacTeamBoxscoreProcessor",
                    "last_heartbeat": NOW - timedelta(days=140),
                    "status": "running",
                    "run_id": "r2",
                },
            ),
            (
                "ProcessorName_2026-01-31_abc123",
                {"processor_name": "ProcessorName", "last_heartbeat": NOW, "status": None},
            ),
            ("PlayerGameSummaryProcessor", {"processor_name": "PlayerGameSummaryProcessor", "status": "completed"}),
            (
                "MLFeatureStoreProcessor",
                {"processor_name": 7, "last_heartbeat": "2026-02-01T12:00:00Z", "status": "completed"},
            ),
        ],
    )

    result = scan(firestore.host, "scan")

    assert result.collection == "scan" and result.requests == 1
    # NOW is timezone-aware: equal datetimes prove the reader returns aware UTC timestamps.
    assert {doc.id: doc for doc in result.documents} == {
        "p2_nba_raw.nbac_team_boxscore": HeartbeatDoc(
            "p2_nba_raw.nbac_team_boxscore", "p2_nba_raw.nbac_team_boxscore", NOW, "completed", ()
        ),
        "NbacTeamBoxscoreProcessor_None_a7ac21c9": HeartbeatDoc(
            "NbacTeamBoxscoreProcessor_None_a7ac21c9",
            "NbacTeamBoxscoreProcessor",
            NOW - timedelta(days=140),
            "running",
            (),
        ),
        "ProcessorName_2026-01-31_abc123": HeartbeatDoc(
            "ProcessorName_2026-01-31_abc123", "ProcessorName", NOW, None, ("status is null, not a string",)
        ),
        "PlayerGameSummaryProcessor": HeartbeatDoc(
            "PlayerGameSummaryProcessor",
            "PlayerGameSummaryProcessor",
            None,
            "completed",
            ("last_heartbeat is missing",),
        ),
        "MLFeatureStoreProcessor": HeartbeatDoc(
            "MLFeatureStoreProcessor",
            None,
            None,
            "completed",
            ("processor_name is an integer, not a string", "last_heartbeat is a string, not a timestamp"),
        ),
    }


def test_field_mask_keeps_unread_fields_out_of_the_result_and_off_the_wire(firestore):
    big = "x" * 300_000
    seed_documents(
        firestore.host,
        PROJECT,
        "masked",
        [
            (
                "p2_nba_raw.nbac_gamebook",
                {
                    "processor_name": "p2_nba_raw.nbac_gamebook",
                    "last_heartbeat": NOW,
                    "status": "completed",
                    "details": big,
                },
            ),
        ],
    )
    stored = httpx.get(
        f"http://{firestore.host}/v1/projects/{PROJECT}/databases/(default)/documents/masked/p2_nba_raw.nbac_gamebook",
        headers={"Authorization": "Bearer owner"},
    ).json()
    assert stored["fields"]["details"]["stringValue"] == big  # the field is there to be left out

    result = scan(firestore.host, "masked")

    assert [doc.id for doc in result.documents] == ["p2_nba_raw.nbac_gamebook"]
    assert {field.name for field in dataclasses.fields(HeartbeatDoc)} == {"id", *FIELDS, "problems"}
    assert result.response_bytes < 1_000, "the 300 kB field was transferred: the field mask was not applied"


def test_seeding_2000_documents_reads_back_2000(firestore):
    documents = [
        (
            f"NbacTeamBoxscoreProcessor_None_{index:08x}",
            {"processor_name": "NbacTeamBoxscoreProcessor", "last_heartbeat": NOW, "status": "completed"},
        )
        for index in range(2000)
    ]

    assert seed_documents(firestore.host, PROJECT, "flood", documents) == 2000
    result = scan(firestore.host, "flood")

    assert len(result.documents) == 2000 and result.requests == 1
    assert {doc.id for doc in result.documents} == {doc_id for doc_id, _ in documents}


def live_process_group(pgid: int) -> dict[int, str]:
    """pid -> command name of every process of the group that still runs. Zombies are dead: killed
    grandchildren are re-parented to PID 1, and reaping them is its business, not ours."""
    members = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue  # exited while we looked
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, _parent, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members[int(stat_path.parent.name)] = name
    return members


@pytest.mark.parametrize("launcher", ["java", "gcloud"])
def test_stop_leaves_no_process_and_later_reads_fail_closed_in_time(tmp_path, monkeypatch, launcher):
    if launcher == "gcloud":  # the fallback, whose launcher leaves java behind when only it is killed
        monkeypatch.setattr(firestore_process, "_JAR_IN_SDK", Path("no-such-emulator.jar"))
    emulator = FirestoreEmulator(tmp_path).start()
    try:
        assert emulator.launcher == launcher
        assert "java" in live_process_group(emulator.pid).values()
    finally:
        pgid = emulator.pid
        emulator.stop()
    emulator.stop()  # idempotent

    assert live_process_group(pgid) == {}
    began = time.monotonic()
    with pytest.raises(ObservationError, match=f"could not reach Firestore at {emulator.host}"):
        scan(emulator.host, "processor_heartbeats", SHORT_POLICY)
    assert time.monotonic() - began < SHORT_POLICY.deadline + 1.0


def test_emulator_that_cannot_start_names_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(firestore_process, "_JVM_FLAGS", ("-XX:NoSuchJvmOption",))

    with pytest.raises(RuntimeError, match="exited with code") as failure:
        FirestoreEmulator(tmp_path).start()

    assert str(tmp_path / "firestore.log") in str(failure.value)
    assert "NoSuchJvmOption" in str(failure.value)  # the log's tail comes with it


def test_missing_java_says_what_to_install(tmp_path, monkeypatch):
    real_which = firestore_process.shutil.which
    monkeypatch.setattr(firestore_process.shutil, "which", lambda name: None if name == "java" else real_which(name))

    with pytest.raises(SandboxUnavailable, match="apt-get install openjdk-17-jre-headless"):
        FirestoreEmulator(tmp_path).start()


# A scripted Firestore: the real RunQuery wire protocol, answers chosen by the test.


def heartbeat_response(doc_id: str) -> RunQueryResponse:
    return RunQueryResponse(
        document=Document(
            name=f"projects/{PROJECT}/databases/(default)/documents/processor_heartbeats/{doc_id}",
            fields={"processor_name": Value(string_value=doc_id), "last_heartbeat": Value(timestamp_value=NOW)},
        )
    )


@contextmanager
def scripted_firestore(*answers):
    """Serves RunQuery; call N gets answers[N]: (doc ids to stream, then the status code to end with or None)."""
    requests: list[RunQueryRequest] = []

    def run_query(request, context):
        requests.append(request)
        doc_ids, status = answers[min(len(requests), len(answers)) - 1]
        for doc_id in doc_ids:
            yield heartbeat_response(doc_id)
        if status is not None:
            context.abort(status, f"scripted {status.name}")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "google.firestore.v1.Firestore",
                {
                    "RunQuery": grpc.unary_stream_rpc_method_handler(
                        run_query,
                        request_deserializer=RunQueryRequest.deserialize,
                        response_serializer=RunQueryResponse.serialize,
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", requests
    finally:
        server.stop(grace=None)


def test_the_query_asks_for_the_field_mask_on_one_collection():
    with scripted_firestore((["p2_nba_raw.nbac_team_boxscore"], None)) as (host, requests):
        result = scan(host, "processor_heartbeats")

    assert [doc.id for doc in result.documents] == ["p2_nba_raw.nbac_team_boxscore"]
    (request,) = requests
    assert request.parent == f"projects/{PROJECT}/databases/(default)/documents"
    assert [field.field_path for field in request.structured_query.select.fields] == list(FIELDS)
    assert [source.collection_id for source in request.structured_query.from_] == ["processor_heartbeats"]


def test_permission_denied_names_the_missing_permission():
    with (
        scripted_firestore(([], grpc.StatusCode.PERMISSION_DENIED)) as (host, _),
        pytest.raises(PermissionDeniedError) as denied,
    ):
        scan(host, "processor_heartbeats", SHORT_POLICY)

    assert denied.value.permission == "datastore.entities.list"
    assert "datastore.entities.list" in str(denied.value)


def test_a_stream_broken_half_way_is_read_again_from_the_start():
    with scripted_firestore(
        (["A_None_1", "A_None_2"], grpc.StatusCode.UNAVAILABLE), (["A_None_1", "A_None_2", "A_None_3"], None)
    ) as (host, requests):
        result = scan(host, "processor_heartbeats", SHORT_POLICY)

    assert [doc.id for doc in result.documents] == ["A_None_1", "A_None_2", "A_None_3"]
    assert result.requests == len(requests) == 2
    assert not requests[1].structured_query.start_at  # restarted, not resumed after A_None_2


def test_a_stream_that_fails_half_way_is_an_error_not_a_short_list():
    with (
        scripted_firestore((["A_None_1", "A_None_2"], grpc.StatusCode.ABORTED)) as (host, _),
        pytest.raises(ObservationError, match="Firestore collection processor_heartbeats"),
    ):
        scan(host, "processor_heartbeats", SHORT_POLICY)


def test_bench_runs_one_streamed_query():
    run = subprocess.run([sys.executable, str(BENCH), "--docs", "300"], capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(figures) >= {"docs", "seconds", "requests", "seed_seconds", "emulator_start_seconds"}
    assert figures["docs"] == 300 and figures["requests"] == 1

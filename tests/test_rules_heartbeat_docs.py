"""heartbeat-docs rule over seed-shaped collections: counts, bad ids grouped, stale and missing."""

from datetime import datetime, timedelta, timezone

from deploycheck.findings import Outcome, Severity
from deploycheck.heartbeats import HeartbeatDoc
from deploycheck.inventory import load_inventory
from deploycheck.rules.heartbeat_docs import CLEANUP, evaluate_heartbeat_docs

from conftest import REPO

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
INVENTORY = load_inventory(REPO / "services.yaml")
SPEC = INVENTORY.heartbeats
EXPECTED = {p: s.name for s in INVENTORY.services for p in s.processors}


def doc(doc_id, *, age=timedelta(minutes=10), name=None, problems=()):
    return HeartbeatDoc(
        id=doc_id, processor_name=name or doc_id, last_heartbeat=NOW - age, status="completed", problems=tuple(problems)
    )


def healthy_docs():
    return [doc(name) for name in EXPECTED]


def evaluate(docs):
    return evaluate_heartbeat_docs("processor_heartbeats", docs, SPEC, expected=EXPECTED, now=NOW)


def test_healthy_collection_passes():
    [finding] = evaluate(healthy_docs())
    assert finding.outcome is Outcome.PASS


def test_seed_002_proliferation_is_p0_with_bad_ids_grouped_and_the_cleanup_command():
    bad = [
        doc(f"NbacTeamBoxscoreProcessor_None_{i:08x}", name="NbacTeamBoxscoreProcessor", age=timedelta(days=150))
        for i in range(1029)
    ]
    bad += [
        doc(f"PlayerGameSummaryProcessor_2026-01-{20 + i}_abc", name="PlayerGameSummaryProcessor") for i in range(6)
    ]
    findings = evaluate(healthy_docs() + [doc("AsyncUpcomingTeamGameContextProcessor"), doc("p2_nba_raw.extra")] + bad)
    by_severity = {f.severity: f for f in findings}
    count = by_severity[Severity.P0]
    assert "1,053 documents" in count.summary and count.remediation == CLEANUP
    ids = by_severity[Severity.P2]
    assert "1,035 of 1,053 document ids are in an old format" in ids.summary
    assert "1,029 matches /_None_/" in ids.summary and "6 matches /_20\\d\\d/" in ids.summary
    assert "most written by NbacTeamBoxscoreProcessor 1,029" in ids.summary
    undeclared = by_severity[Severity.P3]
    assert "AsyncUpcomingTeamGameContextProcessor" in undeclared.summary


def test_stale_missing_and_unreadable_heartbeats_are_each_red():
    docs = healthy_docs()
    docs = [d for d in docs if d.id != "PlayerGameSummaryProcessor"]
    docs = [doc(d.id, age=timedelta(hours=30)) if d.id == "PlayerDailyCacheProcessor" else d for d in docs]
    docs = [
        doc(d.id, problems=["last_heartbeat is a string, not a timestamp"]) if d.id == "MLFeatureStoreProcessor" else d
        for d in docs
    ]
    summaries = " | ".join(f.summary for f in evaluate(docs) if f.failed)
    assert (
        "no heartbeat document for 1 declared processor(s): PlayerGameSummaryProcessor "
        "(nba-phase3-analytics-processors)" in summaries
    )
    assert "PlayerDailyCacheProcessor (30.0h ago)" in summaries
    assert "MLFeatureStoreProcessor (last_heartbeat is a string, not a timestamp)" in summaries


def test_an_empty_collection_is_red_not_green():
    findings = evaluate([])
    assert all(f.failed for f in findings)
    assert any("only 0 documents" in f.summary for f in findings)

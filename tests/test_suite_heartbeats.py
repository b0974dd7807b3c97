"""heartbeat-docs run as a user runs it, against the real Firestore emulator the sandbox seeds."""

from __future__ import annotations

import re
import textwrap

from conftest import findings_for

COLLECTION = "processor_heartbeats"


def test_incident_collection_is_p0_with_the_seed_counts_and_bad_ids_grouped(suite):
    suite.reuse_sandbox("incident")
    result = suite.run("-m", "nightly", "-k", "heartbeat", "--target", "sandbox:incident", "--report-dir", "out")
    assert result.ret == 1
    findings = findings_for(suite.report(), "heartbeat-docs", COLLECTION)
    by_severity = {f["severity"]: f for f in findings}
    assert by_severity["P0"]["summary"].startswith("1,053 documents")
    assert "1,035 of 1,053 document ids are in an old format" in by_severity["P2"]["summary"]
    assert by_severity["P2"]["evidence"]["bad_by_reason"] == {"matches /_None_/": 1029, "matches /_20\\d\\d/": 6}
    assert "cleanup-heartbeat-docs.py" in by_severity["P0"]["remediation"]
    # The shared sandbox may have been up for minutes: the age grows from 30.0h with it.
    assert re.search(r"PlayerDailyCacheProcessor \(30\.[0-9]h ago\)", by_severity["P1"]["summary"])


def test_healthy_collection_passes(suite):
    suite.reuse_sandbox("healthy")
    result = suite.run("-m", "nightly", "-k", "heartbeat", "--target", "sandbox:healthy", "-v")
    assert result.ret == 0, result.stdout.str()
    assert f"checks/test_heartbeats.py::test_heartbeat_docs[{COLLECTION}] PASSED" in result.stdout.str()


def test_emulator_down_is_an_error_not_a_pass(suite, tmp_path):
    with suite.sandbox_without("firestore", tmp_path / "sb"):
        result = suite.run("-m", "nightly", "-k", "heartbeat", "--target", "sandbox:healthy", "--deadline", "3")
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    assert "could not reach Firestore" in result.stdout.str()


def test_wrongly_typed_heartbeat_is_red(suite, tmp_path):
    scenario = tmp_path / "typed"
    scenario.mkdir()
    docs = "\n".join(
        f'    - {{id: "{name}", fields: {{processor_name: "{name}", last_heartbeat: now-5m}}}}'
        for name in ("p2_nba_raw.bdl_live_boxscores", "p2_nba_raw.bdl_player_boxscores")
    )
    (scenario / "scenario.yaml").write_text(
        textwrap.dedent("""\
        firestore:
          processor_heartbeats:
            - {id: PlayerDailyCacheProcessor, fields: {processor_name: PlayerDailyCacheProcessor, last_heartbeat: "yesterday"}}
        """)
        + docs
        + "\n"
    )
    result = suite.run("-m", "nightly", "-k", "heartbeat", "--target", f"sandbox:{scenario}", "--report-dir", "out")
    assert result.ret == 1
    summaries = " | ".join(f["summary"] for f in suite.report()["findings"])
    assert "PlayerDailyCacheProcessor (last_heartbeat is a string, not a timestamp)" in summaries

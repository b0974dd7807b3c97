"""deploycheck report merge: shard reports become one run's report, or a refusal that says why."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deploycheck.__main__ import main as deploycheck_main
from deploycheck.errors import InputError
from deploycheck.findings import Finding, Outcome, Severity
from deploycheck.report.json_report import build_report, write_report
from deploycheck.report.merge import merge_reports

STARTED = datetime(2026, 2, 1, 3, 15, tzinfo=timezone.utc)


def finding(check: str, resource: str, outcome: Outcome = Outcome.PASS) -> Finding:
    return Finding(check, resource, Severity.P1, outcome, f"{check} of {resource}", {}, None, check)


def shard_report(
    directory: Path,
    index: int,
    count: int,
    findings: list[Finding],
    *,
    run: str = "r1",
    inventory: str = "abc",
    exit_status: int = 0,
    started: datetime = STARTED,
) -> Path:
    report = build_report(
        findings,
        target="sandbox:incident",
        inventory="services.yaml",
        started=started,
        exit_status=exit_status,
        selection={"services": [], "jobs": []},
        project="p",
        region="r",
    )
    report["shard"] = {
        "index": index,
        "count": count,
        "from": f"--shard {index}/{count}",
        "run": run,
        "run_from": "DEPLOYCHECK_RUN_ID",
        "inventory_sha256": inventory,
        "selection": {"markexpr": "", "keyword": "", "services": [], "jobs": [], "expect_commit": None},
    }
    write_report(report, directory)
    return directory


def two_shards(tmp_path: Path, **second) -> list[Path]:
    return [
        shard_report(tmp_path / "a", 1, 2, [finding("traffic", "svc-a"), finding("orphans", "p/r")]),
        shard_report(
            tmp_path / "b",
            2,
            2,
            [finding("traffic", "svc-b", Outcome.FAIL)],
            exit_status=1,
            started=STARTED + timedelta(seconds=5),
            **second,
        ),
    ]


def test_the_shards_findings_make_one_report(tmp_path):
    merged = merge_reports(two_shards(tmp_path))
    assert sorted((f["check"], f["resource"], f["outcome"]) for f in merged["findings"]) == [
        ("orphans", "p/r", "pass"),
        ("traffic", "svc-a", "pass"),
        ("traffic", "svc-b", "fail"),
    ]
    summary = merged["summary"]
    assert (summary["total"], summary["pass"], summary["fail"], summary["exit_status"]) == (3, 2, 1, 1)
    assert summary["started"] == STARTED.isoformat()
    assert [group["finding_ids"] for group in merged["groups"]] == [
        [f["id"] for f in merged["findings"] if f["outcome"] == "fail"]
    ]
    assert merged["shard"]["merged"] == 2 and merged["shard"]["count"] == 2


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"run": "r2"}, "shard run differs: 'r1' in "),
        ({"inventory": "def"}, "shard inventory_sha256 differs"),
    ],
)
def test_shards_of_different_runs_or_inventories_are_refused(tmp_path, change, problem):
    with pytest.raises(InputError, match="these are not the shards of one run") as caught:
        merge_reports(two_shards(tmp_path, **change))
    assert problem in str(caught.value)


def test_a_missing_or_repeated_shard_is_refused(tmp_path):
    first, second = two_shards(tmp_path)
    with pytest.raises(InputError, match=r"shard 2/2 is missing"):
        merge_reports([first])
    with pytest.raises(InputError, match=r"shard 1/2 is given twice: .*/a, .*/a"):
        merge_reports([first, first, second])


def test_a_finding_two_shards_report_is_refused(tmp_path):
    first = shard_report(tmp_path / "a", 1, 2, [finding("orphans", "p/r")])
    second = shard_report(tmp_path / "b", 2, 2, [finding("orphans", "p/r")])
    with pytest.raises(InputError, match=r"orphans\[p/r\] is reported by two shards"):
        merge_reports([first, second])


def test_a_report_without_a_shard_record_or_of_a_shard_that_could_not_start_is_refused(tmp_path):
    plain = tmp_path / "plain"
    write_report(
        build_report([], target="gcp", inventory="services.yaml", started=STARTED, exit_status=0, selection={}), plain
    )
    with pytest.raises(InputError, match="has no shard record"):
        merge_reports([plain])
    broken = shard_report(tmp_path / "broken", 1, 1, [])
    report = json.loads((broken / "report.json").read_text())
    report["error"] = "--target gcp needs Application Default Credentials"
    (broken / "report.json").write_text(json.dumps(report))
    with pytest.raises(InputError, match="could not start"):
        merge_reports([broken])


def test_the_command_writes_every_report_and_exits_with_the_runs_verdict(tmp_path, capsys):
    shards = two_shards(tmp_path)
    out = tmp_path / "merged"
    assert deploycheck_main(["report-merge", *map(str, shards), "--out", str(out)]) == 1
    assert sorted(path.name for path in out.iterdir()) == ["report.html", "report.json", "report.md", "report.txt"]
    assert "merged 2 shards: 2 passed, 1 failed" in capsys.readouterr().out
    assert deploycheck_main(["report-merge", str(shards[0]), "--out", str(tmp_path / "refused")]) == 4
    assert "shard 2/2 is missing" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()

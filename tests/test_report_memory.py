"""Pure functions of the report's memory: ids, new/still/fixed, history, groups and their loops."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from deploycheck.errors import InputError
from deploycheck.findings import Finding, Outcome, Severity, failed, passed
from deploycheck.report.groups import group_findings
from deploycheck.report.json_report import build_report, write_report
from deploycheck.report.memory import (
    PreviousReport,
    classify,
    history_entry,
    history_name,
    load_history,
    load_previous,
    prune_history,
)

LAST_NIGHT = "2026-01-31T03:00:00+00:00"
TONIGHT = "2026-02-01T03:00:00+00:00"


def stale(job: str, days: int = 170) -> Finding:
    return failed(
        "stale-jobs",
        job,
        Severity.P2,
        f"runs an image built {days} days ago",
        f"gcloud run jobs update {job} --image r/phase2@sha256:aa --region us-west2 --project p",
        cause="stale-image",
        image_age_days=days,
    )


def as_dicts(findings):
    return [f.to_dict() for f in findings]


def test_the_id_ignores_wording_numbers_and_severity_but_not_the_cause():
    a = stale("job-a", 170)
    b = failed("stale-jobs", "job-a", Severity.P1, "another wording, 171 days", None, cause="stale-image")
    assert a.id == b.id and len(a.id) == 12 and int(a.id, 16) >= 0
    assert a.id != failed("stale-jobs", "job-a", Severity.P2, "x", None, cause="legacy-registry").id
    assert a.id != stale("job-b").id
    # No cause given: the check's id is the cause.
    assert passed("digest", "svc", "ok").to_dict()["cause"] == "digest"


def test_classify_new_still_since_and_fixed_only_where_tonight_observed_it():
    previous = PreviousReport(
        "last.json",
        LAST_NIGHT,
        [
            {**stale("job-a").to_dict(), "since": "2026-01-01T03:00:00+00:00"},
            stale("job-b").to_dict(),  # fixed tonight
            stale("job-c").to_dict(),  # not checked tonight (--job selection)
            stale("job-d").to_dict(),  # tonight: cannot tell
            passed("stale-jobs", "job-e", "ok").to_dict(),
        ],
    )
    tonight = as_dicts(
        [
            stale("job-a"),
            passed("stale-jobs", "job-b", "ok"),
            Finding("stale-jobs", "job-d", Severity.P1, Outcome.ERROR, "registry 503", cause="unobserved"),
            stale("job-e"),
        ]
    )
    changes, fixed = classify(tonight, previous, TONIGHT)
    by_resource = {f["resource"]: f for f in tonight}
    assert by_resource["job-a"]["change"] == "still" and by_resource["job-a"]["since"] == "2026-01-01T03:00:00+00:00"
    assert by_resource["job-e"]["change"] == "new" and by_resource["job-e"]["since"] == TONIGHT
    assert by_resource["job-d"]["change"] == "new"  # the error itself is new
    assert "change" not in by_resource["job-b"]
    assert [f["resource"] for f in fixed] == ["job-b"] and fixed[0]["change"] == "fixed"
    assert changes == {
        "new": 2,
        "still": 1,
        "fixed": 1,
        "unchecked": 2,
        "previous": "last.json",
        "previous_started": LAST_NIGHT,
    }


def test_a_previous_report_without_ids_still_compares(tmp_path):
    old = {
        "summary": {"started": LAST_NIGHT},
        "findings": [{k: v for k, v in stale("job-a").to_dict().items() if k not in ("id", "cause")}],
    }
    (tmp_path / "report.json").write_text(json.dumps(old))
    previous = load_previous(tmp_path / "report.json")
    [finding] = previous.findings
    assert finding["id"] == Finding("stale-jobs", "job-a", Severity.P2, Outcome.FAIL, "", cause="stale-jobs").id


def test_previous_directory_takes_the_newest_report_and_bad_input_names_file_and_line(tmp_path):
    for started in (LAST_NIGHT, TONIGHT, "2026-01-15T03:00:00+00:00"):
        (tmp_path / history_name(started)).write_text(json.dumps({"summary": {"started": started}, "findings": []}))
    assert load_previous(tmp_path).started == TONIGHT
    assert load_previous(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None) is None
    (tmp_path / "broken.json").write_text('{"summary": {\n "started": 1,\n')
    with pytest.raises(InputError, match=r"broken\.json:3:1: not JSON"):
        load_previous(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"summary": {"started": "x"}, "findings": [{"check": "a"}]}')
    with pytest.raises(InputError, match=r"other\.json: findings\[0\] lacks check, resource or outcome"):
        load_previous(tmp_path / "other.json")
    with pytest.raises(InputError, match="no such file or directory"):
        load_previous(tmp_path / "missing.json")


def test_history_is_written_by_night_pruned_oldest_first_and_summarised(tmp_path):
    started = datetime(2026, 2, 1, 3, 0, tzinfo=timezone.utc)
    for night in range(4):
        report = build_report(
            [stale("job-a", 170 + night), passed("heartbeat-docs", "c", "ok", total=1053 - night)],
            target="gcp",
            inventory="s.yaml",
            started=started.replace(day=1 + night),
            exit_status=1,
            selection={},
        )
        write_report(report, tmp_path, name=history_name(report["summary"]["started"]))
    (tmp_path / "notes.json").write_text("{}")  # not ours: never pruned, never read
    removed = prune_history(tmp_path, keep=3)
    assert [p.name for p in removed] == ["report-20260201T030000Z.json"]
    entries, unreadable = load_history(tmp_path)
    assert unreadable == [] and [e["started"][:10] for e in entries] == ["2026-02-02", "2026-02-03", "2026-02-04"]
    assert entries[-1] == {
        "started": "2026-02-04T03:00:00+00:00",
        "failing": {"P0": 0, "P1": 0, "P2": 1, "P3": 0},
        "heartbeat_docs": 1050,
        "job_image_age_days": {"job-a": 173},
    }
    assert (tmp_path / "notes.json").exists()


def test_history_entry_counts_unknown_outcomes_as_failing_and_waived_apart():
    report = {
        "summary": {"started": TONIGHT},
        "findings": [
            {"check": "x", "resource": "a", "severity": "P1", "outcome": "waived"},
            {"check": "x", "resource": "b", "severity": "P1", "outcome": "something-new"},
        ],
    }
    assert history_entry(report)["failing"] == {"P0": 0, "P1": 1, "P2": 0, "P3": 0}


def test_one_group_per_cause_and_remedy_with_a_loop_that_runs_in_bash():
    findings = as_dicts(
        [
            stale("job-a"),
            stale("job-b"),
            stale("job c'quoted"),
            failed(
                "digest",
                "svc-1",
                Severity.P1,
                "moved",
                "gcloud run deploy svc-1 --image r/svc-1@sha256:1",
                cause="tag-not-rolled-out",
            ),
            failed(
                "digest",
                "svc-2",
                Severity.P1,
                "moved",
                "gcloud run deploy svc-2 --image r/svc-2@sha256:2",
                cause="tag-not-rolled-out",
            ),
            passed("stale-jobs", "job-d", "ok"),
        ]
    )
    groups = group_findings(findings)
    assert [(g["check"], len(g["resources"])) for g in groups] == [("digest", 1), ("digest", 1), ("stale-jobs", 3)]
    [jobs] = [g for g in groups if g["check"] == "stale-jobs"]
    assert sorted(jobs["finding_ids"]) == sorted(f["id"] for f in findings[:3])
    assert jobs["resources"] == ["job c'quoted", "job-a", "job-b"]
    # Run the loop for real, with gcloud standing in as a function that prints its arguments.
    run = subprocess.run(
        ["bash", "-c", "gcloud() { printf '%s|' \"$@\"; echo; }\n" + jobs["remediation"]],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.splitlines() == [
        f"run|jobs|update|{job}|--image|r/phase2@sha256:aa|--region|us-west2|--project|p|"
        for job in ("job c'quoted", "job-a", "job-b")
    ]


def test_a_name_inside_single_quotes_still_expands_in_the_loop():
    query = "gcloud logging read 'resource.labels.service_name=\"{}\" AND severity>=ERROR' --project p"
    findings = as_dicts(
        [
            failed("boot", name, Severity.P0, "boom", query.format(name), cause="boot-error")
            for name in ("svc-a", "svc-b")
        ]
    )
    [group] = group_findings(findings)
    run = subprocess.run(
        ["bash", "-c", "gcloud() { printf '%s|' \"$@\"; echo; }\n" + group["remediation"]],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.splitlines() == [
        f'logging|read|resource.labels.service_name="{name}" AND severity>=ERROR|--project|p|'
        for name in ("svc-a", "svc-b")
    ]


def test_a_finding_as_a_dict_holds_every_field_and_shares_nothing_it_can_change():
    from dataclasses import asdict

    from deploycheck.findings import Finding, Outcome, Severity

    finding = Finding(
        "code",
        "svc",
        Severity.P1,
        Outcome.FAIL,
        "missing",
        {"files": [{"path": "/app/x.py", "lines": [1, 2]}], "digest": "sha256:ab"},
        "redeploy",
        cause="code-missing",
        waiver={"id": "w1", "until": "2026-12-31"},
    )
    data = finding.to_dict()
    assert data == {**asdict(finding), "severity": "P1", "outcome": "fail", "id": finding.id}
    data["evidence"]["files"][0]["lines"].append(3)
    data["waiver"]["until"] = "2099-01-01"
    assert finding.evidence["files"][0]["lines"] == [1, 2] and finding.waiver["until"] == "2026-12-31"

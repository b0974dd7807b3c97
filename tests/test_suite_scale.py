"""The suite at scale, run as a user runs it: the gate's API calls, shards merged into one run's
report, and xdist workers that each keep whole resources and conclude what one process does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict

import httpx

from deploycheck_pytest.distribute import partition

from conftest import registry_requests

PHASE2 = "nba-phase2-raw-processors"
GOOGLE_API = re.compile(r"^(GET|POST) /(v1|v2|v3)/")


def findings_by_id(report: dict) -> dict[str, str]:
    ids = [f["id"] for f in report["findings"]]
    assert len(ids) == len(set(ids)), "a finding twice in one report"
    return {f["id"]: f["outcome"] for f in report["findings"]}


def test_the_gate_of_one_service_makes_at_most_eight_google_api_calls(suite):
    """services.get, its revisions.list (serving and newest revision in it), projects.get and the
    project's getIamPolicy, roles.get per role that can decide its requirements, and one
    entries.list that holds the quiet service's whole log window. Firestore is not read by the gate."""
    info = suite.reuse_sandbox("healthy")
    httpx.delete(f"{info.api_url}/_sandbox/calls").raise_for_status()
    result = suite.run("-m", "postdeploy", "--service", PHASE2, "--target", "sandbox:healthy", "--report-dir", "out")
    assert result.ret == 0, result.stdout.str()
    checks = {f["check"] for f in suite.report()["findings"]}
    assert checks >= {
        "traffic",
        "rollout",
        "digest",
        "commit",
        "code",
        "iam",
        "boot",
        "heartbeat-log",
        "log-visibility",
    }
    calls = {
        route: count
        for route, count in httpx.get(f"{info.api_url}/_sandbox/calls").json()["calls"].items()
        if GOOGLE_API.match(route)
    }
    assert sum(calls.values()) <= 8, calls
    assert calls["POST /v2/entries:list"] == 1, calls


def test_four_shards_merged_give_the_findings_of_one_run(suite, monkeypatch):
    """Shards 1 and 2 from --shard, 3 and 4 from the variables a Cloud Run job's tasks get: the same
    split. Each finding is in exactly one shard; the project-wide checks are in shard 1."""
    suite.reuse_sandbox("incident")
    whole = suite.run("--target", "sandbox:incident", "--report-dir", "whole", "-p", "no:randomly")
    assert whole.ret == 1
    monkeypatch.setenv("DEPLOYCHECK_RUN_ID", "nightly-2026-02-01")
    for number in (1, 2):
        suite.run("--target", "sandbox:incident", "--report-dir", f"shard{number}", "--shard", f"{number}/4")
    for index in (2, 3):
        monkeypatch.setenv("CLOUD_RUN_TASK_INDEX", str(index))
        monkeypatch.setenv("CLOUD_RUN_TASK_COUNT", "4")
        suite.run("--target", "sandbox:incident", "--report-dir", f"shard{index + 1}")
    monkeypatch.delenv("CLOUD_RUN_TASK_INDEX")
    monkeypatch.delenv("CLOUD_RUN_TASK_COUNT")
    shards = [suite.report(f"shard{number}") for number in (1, 2, 3, 4)]
    assert [shard["shard"]["index"] for shard in shards] == [1, 2, 3, 4]
    assert all(shard["findings"] for shard in shards)  # the incident fleet fills every shard
    merge = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploycheck",
            "report-merge",
            *(str(suite.path / f"shard{number}") for number in (1, 2, 3, 4)),
            "--out",
            str(suite.path / "merged"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert merge.returncode == 1, merge.stderr  # the incident is red: the merged run says so
    merged = suite.report("merged")
    assert findings_by_id(merged) == findings_by_id(suite.report("whole"))
    assert sum(len(shard["findings"]) for shard in shards) == len(merged["findings"])
    project_wide = {"orphans", "heartbeat-docs"}
    assert {f["check"] for f in shards[0]["findings"]} >= project_wide
    assert not any(f["check"] in project_wide for shard in shards[1:] for f in shard["findings"])
    for name in ("report.md", "report.txt", "report.html"):
        assert (suite.path / "merged" / name).stat().st_size > 0


def test_xdist_workers_keep_whole_resources_and_conclude_as_one_process(suite):
    suite.reuse_sandbox("incident")
    one = suite.run("--target", "sandbox:incident", "--report-dir", "one", "-p", "no:randomly")
    two = suite.run("--target", "sandbox:incident", "--report-dir", "two", "-n", "2", "-v", "-p", "no:randomly")
    assert one.ret == two.ret == 1
    assert findings_by_id(suite.report("two")) == findings_by_id(suite.report("one"))
    workers = defaultdict(set)
    for line in two.stdout.lines:
        match = re.match(r"\[(gw\d+)\].* (?:PASSED|FAILED|ERROR) \S+::\w+\[(.+?)\]", line)
        if match:
            workers[match[2]].add(match[1])
    assert len(workers) > 10 and {worker for both in workers.values() for worker in both} == {"gw0", "gw1"}
    split = {resource: sorted(both) for resource, both in workers.items() if len(both) > 1}
    assert split == {}, f"resources checked on both workers: {split}"


def test_a_job_is_checked_beside_the_service_whose_image_it_runs(suite, tmp_path):
    """Two workers read no manifest twice: a job that runs a service's image is on that
    service's worker, so the tag is asked for and the image read in one process."""
    info = suite.reuse_sandbox("healthy")
    manifests = {}
    for workers in ("1", "2"):
        before = registry_requests(info, ("GET", "HEAD"), "/manifests/")
        result = suite.run(
            "-m",
            "postdeploy or nightly",
            "--target",
            "sandbox:healthy",
            "--report-dir",
            f"out-{workers}",
            "--cache-dir",
            str(tmp_path / f"cache-{workers}"),
            "-n",
            workers,
        )
        assert result.ret == 0, result.stdout.str()[-2000:]
        manifests[workers] = registry_requests(info, ("GET", "HEAD"), "/manifests/") - before
    assert manifests["1"] > 0
    assert manifests["2"] == manifests["1"]


def test_an_empty_shard_has_nothing_to_do_and_says_so(suite):
    """More shards than resources: a shard the split left empty exits 0 and still writes its report."""
    suite.reuse_sandbox("healthy")
    empty = (partition(PHASE2, 64, "shard") + 1) % 64 + 1  # 1-based, not phase2's
    result = suite.run(
        "-m",
        "postdeploy",
        "--service",
        PHASE2,
        "--target",
        "sandbox:healthy",
        "--shard",
        f"{empty}/64",
        "--report-dir",
        "out",
    )
    assert result.ret == 0, result.stdout.str()
    report = suite.report()
    assert report["findings"] == [] and report["shard"]["index"] == empty and report["shard"]["count"] == 64
    assert json.dumps(report["shard"]["selection"]["services"]) == json.dumps([PHASE2])

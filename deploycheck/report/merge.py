"""Shard reports -> one report: `deploycheck report merge DIR... --out DIR`.

Each shard of a sharded run (`pytest --shard K/N`, or a Cloud Run job's tasks) writes its own
report.json with a `shard` record: K and N, the run it belongs to (DEPLOYCHECK_RUN_ID, or the id
the CI engine gives every shard of one run: CLOUD_RUN_EXECUTION, GITHUB_RUN_ID, BUILD_ID,
CI_PIPELINE_ID), the sha256 of the inventory and the selection (-m, -k, --service, --job,
--expect-commit, target, project, region). The merge refuses, naming the directories, shards
that disagree on any of those, a shard missing or given twice, a shard that could not start, or
a finding that two shards both report: a merged report must be one run's findings, all of them,
once. The merged report.json/md/txt/html are written by the same writers as a run's.

Each shard classified its findings against --previous itself (new / still / fixed): the merged
report keeps those marks and adds up the counts. Trends (--history) are per run, not per shard:
give --history to no shard; keep the merged report.json instead.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from ..errors import InputError
from ..findings import Finding
from .groups import group_findings
from .json_report import _base_report, write_report
from .memory import read_report
from .render import write_rendered

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 4
# What every shard of one run has in common; a difference means they are not one run's shards.
SAME_RUN_FIELDS = ("count", "run", "inventory_sha256", "selection")
SAME_SUMMARY_FIELDS = ("target",)


def _shard_of(directory: Path, report: dict) -> dict:
    if report.get("error"):
        raise InputError(
            f"{directory}: this shard could not start ({report['error'].splitlines()[0]}); rerun it before merging"
        )
    shard = report.get("shard")
    if (
        not isinstance(shard, dict)
        or not isinstance(shard.get("index"), int)
        or not isinstance(shard.get("count"), int)
    ):
        raise InputError(
            f"{directory}/report.json has no shard record: it was not written by a run with --shard K/N "
            "(or CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT)"
        )
    return shard


def _differences(reports: list[tuple[Path, dict]]) -> list[str]:
    """Each field on which the shards disagree, with every value and its directories."""
    problems = []
    for field in SAME_RUN_FIELDS + SAME_SUMMARY_FIELDS + ("project", "region"):
        values: dict[str, list[str]] = {}
        for directory, report in reports:
            if field in SAME_RUN_FIELDS:
                value = report["shard"].get(field)
            elif field in SAME_SUMMARY_FIELDS:
                value = report["summary"].get(field)
            else:
                value = report.get(field)
            values.setdefault(repr(value), []).append(str(directory))
        if len(values) > 1:
            listed = "; ".join(f"{value} in {', '.join(dirs)}" for value, dirs in values.items())
            problems.append(f"{'shard ' if field in SAME_RUN_FIELDS else ''}{field} differs: {listed}")
    return problems


def merge_reports(directories: list[Path]) -> dict:
    """The report of the run the shards in `directories` together make; InputError if they do not."""
    if not directories:
        raise InputError("no shard directory given")
    reports = []
    for directory in directories:
        report = read_report(directory / "report.json")
        _shard_of(directory, report)
        reports.append((directory, report))
    problems = _differences(reports)
    if problems:
        raise InputError("these are not the shards of one run:\n  " + "\n  ".join(problems))
    count = reports[0][1]["shard"]["count"]
    by_index: dict[int, list[Path]] = {}
    for directory, report in reports:
        by_index.setdefault(report["shard"]["index"], []).append(directory)
    twice = {index: dirs for index, dirs in by_index.items() if len(dirs) > 1}
    missing = [index for index in range(1, count + 1) if index not in by_index]
    outside = [index for index in by_index if not 1 <= index <= count]
    if twice or missing or outside:
        lines = [
            f"shard {index}/{count} is given twice: {', '.join(map(str, dirs))}"
            for index, dirs in sorted(twice.items())
        ]
        lines += [f"shard {index}/{count} is missing" for index in missing]
        lines += [f"shard {index} is not one of 1..{count}" for index in sorted(outside)]
        raise InputError("the shards do not make one whole run:\n  " + "\n  ".join(lines))
    reports.sort(key=lambda pair: pair[1]["shard"]["index"])
    findings, seen = [], {}
    for directory, report in reports:
        for finding in report["findings"]:
            where = (finding["check"], finding["resource"])
            if where in seen and seen[where] != directory:
                raise InputError(
                    f"{finding['check']}[{finding['resource']}] is reported by two shards ({seen[where]} "
                    f"and {directory}): the shards did not split the run"
                )
            seen[where] = directory
            findings.append(finding)
    return _merged(reports, findings)


def _merged(reports: list[tuple[Path, dict]], findings: list[dict]) -> dict:
    first = reports[0][1]
    summaries = [report["summary"] for _, report in reports]
    started = min(summary["started"] for summary in summaries)
    summary = _base_report(
        [Finding.from_dict(f) for f in findings],
        target=first["summary"]["target"],
        inventory=first["summary"]["inventory"],
        started=datetime.fromisoformat(started),
        exit_status=_exit_status([s.get("exit_status") for s in summaries], findings),
        selection=first["summary"]["selection"],
    )["summary"]
    summary["finished"] = max(s.get("finished") or started for s in summaries)
    merged = {
        "findings": findings,
        "summary": summary,
        "project": first.get("project"),
        "region": first.get("region"),
        "waivers": _waivers([report.get("waivers") or [] for _, report in reports]),
        "heartbeat_band": next((r.get("heartbeat_band") for _, r in reports if r.get("heartbeat_band")), None),
        "changes": _changes([report.get("changes") for _, report in reports]),
        "fixed": [finding for _, report in reports for finding in report.get("fixed") or []],
        "groups": group_findings(findings),
        "history": [],
        "shard": {
            **{key: first["shard"].get(key) for key in SAME_RUN_FIELDS},
            "merged": len(reports),
            "directories": [str(directory) for directory, _ in reports],
        },
    }
    return merged


def _exit_status(statuses: list[int | None], findings: list[dict]) -> int:
    """1 when anything is not green; an interrupted or broken shard's own status wins over that."""
    broken = [status for status in statuses if status not in (0, 1, 5, None)]
    if broken:
        return max(broken)
    return EXIT_FAILED if any(f["outcome"] in ("fail", "error") for f in findings) or 1 in statuses else EXIT_OK


def _waivers(per_shard: list[list[dict]]) -> list[dict]:
    """One note per waiver (by its inventory line), its matches added up over the shards."""
    notes: dict[object, dict] = {}
    for shard_notes in per_shard:
        for note in shard_notes:
            key = (note.get("check"), note.get("line"))
            if key in notes:
                notes[key] = {**notes[key], "matched": notes[key].get("matched", 0) + note.get("matched", 0)}
            else:
                notes[key] = dict(note)
    return list(notes.values())


def _changes(per_shard: list[dict | None]) -> dict | None:
    present = [changes for changes in per_shard if changes]
    if not present:
        return None
    totals = Counter()
    for changes in present:
        totals.update({key: changes.get(key, 0) for key in ("new", "still", "fixed", "unchecked")})
    return {**present[0], **dict(totals)}


def write_merged(report: dict, directory: Path) -> Path:
    path = write_report(report, directory)
    write_rendered(report, directory)
    return path


# --- command line -------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "shards", nargs="+", type=Path, metavar="DIR", help="the --report-dir of each shard (each holds a report.json)"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="where the merged report.json, report.md, report.txt and report.html go",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """0: merged, every finding green; 1: merged, something failed or could not be observed; 4: refused."""
    try:
        report = merge_reports(list(args.shards))
        path = write_merged(report, args.out)
    except InputError as exc:
        print(f"deploycheck report merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"deploycheck report merge: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summary = report["summary"]
    print(
        f"merged {len(args.shards)} shards: {summary['pass']} passed, {summary['fail']} failed, "
        f"{summary['error']} could not be observed -> {path}"
    )
    return summary["exit_status"]


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(
        argparse.ArgumentParser(prog="deploycheck report merge", description=__doc__.splitlines()[0])
    )
    return run(parser.parse_args(argv))

"""Memory across nights: last night's report classifies tonight's findings as new, still failing
(since when) or fixed, and a bounded history directory keeps the nights that trends are drawn from.

Fixed is a claim about tonight's observation, so it is made only when tonight looked at the same
check and resource and could observe it (no ERROR there): a service left out with --service, or a
check that could not read its fact tonight, leaves last night's failure "unchecked", never fixed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..findings import Severity, finding_id

MAX_REPORT_BYTES = 64 * 1024 * 1024
PASS = "pass"
NOT_FAILING = (PASS, "waived")
HISTORY_NAME = re.compile(r"^report-(\d{8}T\d{6}(?:\.\d+)?Z)\.json$")


@dataclass(frozen=True)
class PreviousReport:
    path: str
    started: str
    findings: list[dict]


def is_failing(finding: dict) -> bool:
    """Anything but a pass is not green; a waived finding is counted apart, not as failing."""
    return finding.get("outcome") not in NOT_FAILING


def _identified(finding: dict) -> dict:
    """Reports written before ids existed still compare: the id is derived the same way."""
    if finding.get("id"):
        return finding
    cause = finding.get("cause") or finding["check"]
    return {**finding, "cause": cause, "id": finding_id(finding["check"], finding["resource"], cause)}


def read_report(path: Path) -> dict:
    """One report.json, whole and well-formed, or an InputError naming the file and the fault."""
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise InputError(f"{path}: {size:,} bytes, more than a report.json can be ({MAX_REPORT_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it as a report.json ({exc})") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    findings = report.get("findings") if isinstance(report, dict) else None
    started = report.get("summary", {}).get("started") if isinstance(report, dict) else None
    if not isinstance(findings, list) or not isinstance(started, str):
        raise InputError(f"{path}: not a deploycheck report.json (expected findings[] and summary.started)")
    for index, finding in enumerate(findings):
        if not isinstance(finding, dict) or not all(
            isinstance(finding.get(k), str) for k in ("check", "resource", "outcome")
        ):
            raise InputError(f"{path}: findings[{index}] lacks check, resource or outcome")
    return report


def load_previous(path: Path) -> PreviousReport | None:
    """`path` is a report.json, or a directory of them (e.g. --history's): the newest one by its
    start time. An empty directory is a first night: None."""
    if path.is_dir():
        reports = [(read_report(candidate), candidate) for candidate in sorted(path.glob("*.json"))]
        if not reports:
            return None
        report, path = max(reports, key=lambda pair: pair[0]["summary"]["started"])
    elif path.exists():
        report = read_report(path)
    else:
        raise InputError(f"{path}: no such file or directory")
    return PreviousReport(str(path), report["summary"]["started"], [_identified(f) for f in report["findings"]])


def classify(findings: list[dict], previous: PreviousReport | None, started: str) -> tuple[dict, list[dict]]:
    """Mark tonight's failing findings "new" or "still" (with "since"); return the change counts
    and last night's failures that tonight observed fixed."""
    before = {f["id"]: f for f in (previous.findings if previous else []) if is_failing(f)}
    for finding in findings:
        if not is_failing(finding):
            continue
        earlier = before.get(finding["id"])
        finding["change"] = "still" if earlier else "new"
        finding["since"] = (earlier.get("since") or previous.started) if earlier and previous else started
    failing_now = {f["id"] for f in findings if is_failing(f)}
    observed = {(f["check"], f["resource"]) for f in findings}
    unobserved = {(f["check"], f["resource"]) for f in findings if f.get("outcome") == "error"}
    fixed, unchecked = [], 0
    for finding_id_, earlier in before.items():
        if finding_id_ in failing_now:
            continue
        where = (earlier["check"], earlier["resource"])
        if where in observed and where not in unobserved:
            fixed.append({**earlier, "change": "fixed"})
        else:
            unchecked += 1
    changes = {
        "new": sum(1 for f in findings if f.get("change") == "new"),
        "still": sum(1 for f in findings if f.get("change") == "still"),
        "fixed": len(fixed),
        "unchecked": unchecked,
        "previous": previous.path if previous else None,
        "previous_started": previous.started if previous else None,
    }
    return changes, fixed


# --- history: one report.json per night, bounded ------------------------------------------------
def history_entry(report: dict) -> dict:
    """What the trends draw from one night: failing findings by severity, the heartbeat document
    count, and each job's image age."""
    failing = {severity.value: 0 for severity in Severity}
    heartbeat_docs = None
    ages: dict[str, int] = {}
    for finding in report["findings"]:
        if is_failing(finding) and finding.get("severity") in failing:
            failing[finding["severity"]] += 1
        evidence = finding.get("evidence") or {}
        if finding["check"] == "heartbeat-docs" and isinstance(evidence.get("total"), int):
            heartbeat_docs = evidence["total"]
        if finding["check"] == "stale-jobs" and isinstance(evidence.get("image_age_days"), int):
            ages[finding["resource"]] = evidence["image_age_days"]
    return {
        "started": report["summary"]["started"],
        "failing": failing,
        "heartbeat_docs": heartbeat_docs,
        "job_image_age_days": dict(sorted(ages.items())),
    }


def history_name(started: str) -> str:
    """report-20260201T031500Z.json: names sort as the nights do."""
    stamp = started.replace("-", "").replace(":", "").replace("+0000", "Z")
    stamp = re.sub(r"\+00:?00$", "Z", stamp)
    stamp = stamp if stamp.endswith("Z") else stamp + "Z"
    return f"report-{stamp}.json"


def history_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if HISTORY_NAME.match(path.name))


def load_history(directory: Path) -> tuple[list[dict], list[dict]]:
    """Entries of the nights kept in `directory`, oldest first, and the files that could not be
    read (named with why: a trend with a silent gap would mislead)."""
    entries, unreadable = [], []
    for path in history_files(directory):
        try:
            entries.append(history_entry(read_report(path)))
        except InputError as exc:
            unreadable.append({"path": str(path), "why": str(exc)})
    return entries, unreadable


def prune_history(directory: Path, keep: int) -> list[Path]:
    """Delete the oldest nights beyond `keep`; only files this module named are touched."""
    files = history_files(directory)
    doomed = files[: max(0, len(files) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed

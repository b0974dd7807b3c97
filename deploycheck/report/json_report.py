"""report.json: every finding of the run plus a summary CI and humans can read."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..findings import Finding, Outcome
from ..redact import redact_data
from .groups import group_findings
from .memory import PreviousReport, classify, history_entry

REPORT_FIELDS = ("id", "check", "resource", "cause", "severity", "outcome", "summary", "remediation", "evidence")


def build_report(
    findings: list[Finding],
    *,
    target: str,
    inventory: str,
    started: datetime,
    exit_status: int | None,
    selection: dict,
    project: str | None = None,
    region: str | None = None,
    waivers: list[dict] | None = None,
    heartbeat_band: dict | None = None,
    previous: PreviousReport | None = None,
    compare: bool = False,
    history: list[dict] | None = None,
    history_keep: int = 30,
    not_configured: list[dict] | None = None,
) -> dict:
    """`compare`: --previous was given (`previous` is None on a first night: everything is new).
    `history`: earlier nights' entries, oldest first; tonight's is appended and the list bounded.
    `not_configured`: checks the inventory gives nothing to hold an entry to ({check, resource, test,
    reason}); they did not run, so they are neither findings nor counted as passed."""
    report = _base_report(
        findings, target=target, inventory=inventory, started=started, exit_status=exit_status, selection=selection
    )
    report["not_configured"] = list(not_configured or [])
    report["summary"]["not_configured"] = len(report["not_configured"])
    report["project"], report["region"] = project, region
    report["waivers"], report["heartbeat_band"] = waivers or [], heartbeat_band
    report["changes"], report["fixed"] = None, []
    if compare:
        report["changes"], report["fixed"] = classify(report["findings"], previous, report["summary"]["started"])
    report["groups"] = group_findings(report["findings"])
    report["history"] = []
    if history is not None:
        report["history"] = [*history, history_entry(report)][-history_keep:]
    return report


def _report_entry(finding: Finding) -> dict:
    data = finding.to_dict()
    return {key: data[key] for key in REPORT_FIELDS} | ({"waiver": finding.waiver} if finding.waiver else {})


def _base_report(
    findings: list[Finding], *, target: str, inventory: str, started: datetime, exit_status: int | None, selection: dict
) -> dict:
    outcomes = Counter(f.outcome.value for f in findings)
    by_check: dict[str, Counter] = {}
    for finding in findings:
        by_check.setdefault(finding.check, Counter())[finding.outcome.value] += 1
    worst = sorted((f for f in findings if f.failed), key=lambda f: (f.severity.value, f.check, f.resource))
    return {
        "findings": [_report_entry(finding) for finding in findings],
        "summary": {
            "target": target,
            "inventory": inventory,
            "selection": selection,
            "started": started.isoformat(),
            "finished": datetime.now(timezone.utc).isoformat(),
            "exit_status": exit_status,
            "total": len(findings),
            "pass": outcomes.get(Outcome.PASS.value, 0),
            "fail": outcomes.get(Outcome.FAIL.value, 0),
            "error": outcomes.get(Outcome.ERROR.value, 0),
            "waived": outcomes.get(Outcome.WAIVED.value, 0),
            "by_check": {check: dict(counts) for check, counts in sorted(by_check.items())},
            "worst_severity": worst[0].severity.value if worst else None,
        },
    }


def write_report(report: dict, directory: Path, name: str = "report.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = path.with_name(f".{name}.{os.getpid()}")
    tmp.write_text(json.dumps(redact_data(report), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def cannot_start_report(
    error: str, *, target: str, inventory: str, started: datetime, project: str | None = None, region: str | None = None
) -> dict:
    """What a run that stopped before any check writes, so last night's report cannot pose as tonight's."""
    report = build_report(
        [],
        target=target,
        inventory=inventory,
        started=started,
        exit_status=4,
        selection={},
        project=project,
        region=region,
    )
    report["error"] = error
    report["started"] = started.isoformat()
    return report

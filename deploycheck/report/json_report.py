"""report.json: every finding of the run plus a summary CI and humans can read."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..findings import Finding, Outcome
from ..redact import redact_data

REPORT_FIELDS = ("check", "resource", "severity", "outcome", "summary", "remediation", "evidence")


def build_report(findings: list[Finding], *, target: str, inventory: str, started: datetime,
                 exit_status: int | None, selection: dict, project: str | None = None, region: str | None = None,
                 waivers: list[dict] | None = None, heartbeat_band: dict | None = None) -> dict:
    outcomes = Counter(f.outcome.value for f in findings)
    by_check: dict[str, Counter] = {}
    for finding in findings:
        by_check.setdefault(finding.check, Counter())[finding.outcome.value] += 1
    worst = sorted((f for f in findings if f.failed), key=lambda f: (f.severity.value, f.check, f.resource))
    return {
        "project": project,
        "region": region,
        "findings": [{key: finding.to_dict()[key] for key in REPORT_FIELDS}
                     | ({"waiver": finding.waiver} if finding.waiver else {}) for finding in findings],
        "waivers": waivers or [],
        "heartbeat_band": heartbeat_band,
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


def write_report(report: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    tmp = path.with_name(f".report.json.{os.getpid()}")
    tmp.write_text(json.dumps(redact_data(report), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path

"""What report.html shows, computed from the report dict: the fleet grid, the findings (grouped
when the report has groups), what changed, waivers and the charts. Every key beyond `findings` and
`summary` is optional: a report without memory, groups or history still renders, with less."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ..inventory import WAIVABLE_CHECKS
from . import charts

SEVERITIES = ["P0", "P1", "P2", "P3"]
RED = ("fail", "error")
# Worst first: red by severity (at one severity, unobserved before failing: it may hide anything),
# then waived, then passed.
_STATE_RANK = {"error": 0, "fail": 0, "waived": 1, "pass": 2}


def anchor(finding: dict) -> str:
    """The finding's id (report.json's stable id when present) as an HTML id."""
    ident = (
        finding.get("id")
        or hashlib.sha256("|".join((finding["check"], finding["resource"], finding["summary"])).encode()).hexdigest()[
            :12
        ]
    )
    return f"f-{ident}"


def _rank(finding: dict) -> tuple:
    severity = SEVERITIES.index(finding["severity"]) if finding["severity"] in SEVERITIES else 0
    return (
        _STATE_RANK.get(finding["outcome"], 0),
        severity,
        finding["outcome"] != "error",
        finding["check"],
        finding["resource"],
    )


def _cell_state(finding: dict) -> tuple[str, str]:
    """CSS class and the short label a cell prints (colour is never the only signal)."""
    outcome = finding["outcome"]
    if outcome == "fail":
        return finding["severity"], finding["severity"]
    if outcome == "error":
        return "error", "?"
    if outcome == "waived":
        return "waived", "w"
    if outcome == "pass":
        return "pass", "✓"
    return "error", outcome[:1]


def _checks(findings: list[dict]) -> list[str]:
    present = {f["check"] for f in findings}
    known = [check for check in WAIVABLE_CHECKS if check in present]
    return known + sorted(present - set(known))


def _resources(findings: list[dict], selection: dict) -> list[str]:
    """Services, then jobs, in inventory order, then whatever else findings are about."""
    present = {f["resource"] for f in findings}
    ordered = [name for name in [*selection.get("services", []), *selection.get("jobs", [])] if name in present]
    return ordered + sorted(present - set(ordered))


def fleet_grid(findings: list[dict], selection: dict) -> dict:
    checks = _checks(findings)
    cells: dict[tuple[str, str], list[dict]] = {}
    for finding in findings:
        cells.setdefault((finding["resource"], finding["check"]), []).append(finding)
    rows = []
    for resource in _resources(findings, selection):
        row: list[dict[str, str] | None] = []
        for check in checks:
            members = sorted(cells.get((resource, check), []), key=_rank)
            if not members:
                row.append(None)
                continue
            state, label = _cell_state(members[0])
            title = "\n".join(f"{f['severity']} {f['outcome']}: {f['summary']}"[:300] for f in members)
            row.append(
                {
                    "state": state,
                    "label": label + (f"×{len(members)}" if len(members) > 1 else ""),
                    "href": f"#{anchor(members[0])}",
                    "title": f"{check} · {resource}\n{title}",
                }
            )
        rows.append({"resource": resource, "cells": row})
    return {"checks": checks, "rows": rows}


def red_entries(findings: list[dict], groups: list[dict] | None) -> list[dict]:
    """What is wrong, one entry per cause: a report group of two or more red findings becomes one
    expandable entry; every other red finding stands alone."""
    red = [f for f in findings if f["outcome"] in RED]
    by_id = {f["id"]: f for f in red if f.get("id")}
    entries: list[dict[str, Any]] = []
    grouped: set[int] = set()
    for group in groups or []:
        members = sorted((by_id[i] for i in group.get("finding_ids", []) if i in by_id), key=_rank)
        if len(members) < 2:
            continue
        grouped |= {id(f) for f in members}
        entries.append(
            {"group": group, "members": members, "lead": members[0], "resources": [f["resource"] for f in members]}
        )
    for finding in red:
        if id(finding) not in grouped:
            entries.append({"group": None, "members": [finding], "lead": finding, "resources": [finding["resource"]]})
    return sorted(entries, key=lambda entry: _rank(entry["lead"]))


def _night_label(started: str | None) -> str:
    if not started:
        return "?"
    try:
        return datetime.fromisoformat(started).strftime("%m-%d")
    except (TypeError, ValueError):
        return str(started or "?")


def _tonight_docs(findings: list[dict]) -> int | None:
    return next(
        (
            f["evidence"]["total"]
            for f in findings
            if f["check"] == "heartbeat-docs" and isinstance(f.get("evidence", {}).get("total"), int)
        ),
        None,
    )


def chart_data(report: dict) -> dict:
    """The three charts; with no history, tonight alone (one bar, one point) is what there is."""
    findings = report["findings"]
    history = report.get("history") or []
    if history:
        nights = [
            {
                "label": _night_label(night.get("started")),
                "failing": night.get("failing") or {},
                "docs": night.get("heartbeat_docs"),
            }
            for night in history
        ]
    else:
        failing = {s: sum(1 for f in findings if f["outcome"] in RED and f["severity"] == s) for s in SEVERITIES}
        nights = [{"label": "tonight", "failing": failing, "docs": _tonight_docs(findings)}]
    jobs = [
        {
            "job": f["resource"],
            "days": f.get("evidence", {}).get("image_age_days"),
            "outcome": f["outcome"],
            "expected_days": f.get("evidence", {}).get("expected_age_days"),
        }
        for f in findings
        if f["check"] == "stale-jobs"
    ]
    return {
        "nights": len(nights),
        "has_history": bool(history),
        "failing": charts.failing_per_night(nights),
        "heartbeats": charts.heartbeat_documents(nights, report.get("heartbeat_band")),
        "job_ages": charts.job_image_ages(jobs),
    }


def html_view(report: dict) -> dict:
    findings = sorted(report["findings"], key=_rank)
    summary = report["summary"]
    project, region = report.get("project"), report.get("region")
    place = " · ".join(part for part in (project, region) if part) or summary["target"]
    changes = report.get("changes") or None
    return {
        "title": f"deploycheck — {place}",
        "anchor": anchor,
        "grid": fleet_grid(findings, summary.get("selection") or {}),
        "entries": red_entries(findings, report.get("groups")),
        "grouped": bool(report.get("groups")),
        "waived": [f for f in findings if f["outcome"] == "waived"],
        "waiver_notes": report.get("waivers") or [],
        "passed": [f for f in findings if f["outcome"] == "pass"],
        "changes": changes,
        "new": [f for f in findings if f.get("change") == "new"] if changes else [],
        "fixed": report.get("fixed") or [],
        "charts": chart_data(report),
        "filter_options": {
            "severity": [s for s in SEVERITIES if any(f["severity"] == s for f in findings if f["outcome"] in RED)],
            "check": _checks([f for f in findings if f["outcome"] != "pass"]),
            "resource": sorted({f["resource"] for f in findings if f["outcome"] != "pass"}),
        },
        "counts": {"waived": sum(1 for f in findings if f["outcome"] == "waived")},
        "not_configured": not_configured_rows(report.get("not_configured") or []),
    }


def not_configured_rows(not_configured: list[dict]) -> list[dict]:
    """One row per check and reason, with the resources it names."""
    rows: dict[tuple[str, str], dict] = {}
    for entry in not_configured:
        row = rows.setdefault(
            (entry["check"], entry["reason"]), {"check": entry["check"], "reason": entry["reason"], "resources": []}
        )
        row["resources"].append(entry["resource"])
    return list(rows.values())

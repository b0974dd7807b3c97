"""Accepted risks: the inventory's `waivers` turn matching failures into "waived" until they expire.

A nightly that stays red for a known, accepted reason trains people to ignore it (seed 002 left 21
backfill jobs on old images: "not running, no urgency"). A waiver holds through its `expires` day
(inclusive); from the next day the finding fails again and its summary says the waiver expired.
Only FAIL is waived: an ERROR means the fact was not observed, and no waiver accepts an unknown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fnmatch import fnmatchcase

from .findings import Finding, Outcome
from .inventory.specs import WaiverSpec


def matching_waiver(finding: Finding, waivers: list[WaiverSpec]) -> tuple[WaiverSpec, str] | None:
    """The first waiver (in file order) for the finding's check with a pattern matching its resource."""
    for waiver in waivers:
        if waiver.check != finding.check:
            continue
        pattern = next((pattern for pattern in waiver.resources if fnmatchcase(finding.resource, pattern)), None)
        if pattern is not None:
            return waiver, pattern
    return None


def _waived(finding: Finding, waivers: list[WaiverSpec], today: date) -> Finding:
    if finding.outcome is not Outcome.FAIL or finding.waiver is not None:
        return finding
    match = matching_waiver(finding, waivers)
    if match is None:
        return finding
    waiver, pattern = match
    expired = today > waiver.expires
    record = {
        "reason": waiver.reason,
        "owner": waiver.owner,
        "expires": waiver.expires.isoformat(),
        "pattern": pattern,
        "line": waiver.line,
        "expired": expired,
    }
    if not expired:
        return replace(finding, outcome=Outcome.WAIVED, waiver=record)
    return replace(
        finding,
        waiver=record,
        summary=f"{finding.summary} (waiver by {waiver.owner} expired on "
        f"{waiver.expires.isoformat()}: {waiver.reason})",
    )


def waiver_notes(findings: list[Finding], waivers: list[WaiverSpec], today: date) -> list[dict]:
    """One note per waiver: how many findings it matched (waived, or failing again once expired).
    A waiver that matched nothing is worth knowing: the risk it accepted may be gone."""
    notes = []
    for waiver in waivers:
        matched = sum(1 for f in findings if f.waiver and f.check == waiver.check and f.waiver["line"] == waiver.line)
        notes.append(
            {
                "check": waiver.check,
                "resources": list(waiver.resources),
                "reason": waiver.reason,
                "owner": waiver.owner,
                "expires": waiver.expires.isoformat(),
                "line": waiver.line,
                "matched": matched,
                "expired": today > waiver.expires,
            }
        )
    return notes


def apply_waivers(findings: list[Finding], waivers: list[WaiverSpec], today: date) -> tuple[list[Finding], list[dict]]:
    """Findings with the waivers applied, and one note per waiver. Findings already carrying a
    waiver are kept as they are, so applying twice changes nothing."""
    result = [_waived(finding, waivers, today) for finding in findings]
    return result, waiver_notes(result, waivers, today)


def describe(note: dict) -> str:
    """One line for the terminal and the text reports."""
    scope = f"{note['check']}[{', '.join(note['resources'])}]"
    state = f"expired on {note['expires']}" if note["expired"] else f"until {note['expires']}"
    matched = (
        f"{note['matched']} finding{'s' if note['matched'] != 1 else ''}"
        if note["matched"]
        else "matched nothing (the failure it accepted is gone: remove it?)"
    )
    verb = "failing again" if note["expired"] and note["matched"] else ("waived" if note["matched"] else "")
    return f"waiver {scope} by {note['owner']} {state}: {matched}{' ' + verb if verb else ''} ({note['reason']})"

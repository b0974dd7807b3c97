"""Rollback first: when what serves is broken, the first fix is all traffic back to the last
revision that was ready before it (seeds 000, 004), then the command that shows why."""

from __future__ import annotations

from dataclasses import dataclass

from .. import remedies
from ..cloudrun import RevisionState

READY = "CONDITION_SUCCEEDED"


@dataclass(frozen=True)
class RevisionListing:
    """The service's revisions, or why they could not be listed: only the fix depends on them, so
    a failed listing changes the advice, never the verdict."""

    revisions: tuple[RevisionState, ...] | None
    error: str = ""


def last_ready_before(listing: RevisionListing, failing: list[str]) -> str | None:
    """The newest ready revision created before the oldest failing one, itself not failing."""
    if not listing.revisions:
        return None
    created = [r.create_time for r in listing.revisions if r.name in failing and r.create_time]
    before = min(created) if created else None
    candidates = [
        (r.create_time, r.name)
        for r in listing.revisions
        if r.ready_state == READY
        and r.name not in failing
        and r.create_time is not None
        and (before is None or r.create_time < before)
    ]
    return max(candidates, key=lambda created_name: created_name[0])[1] if candidates else None


def rollback_first(
    service: str, listing: RevisionListing, failing: list[str], why: str, *, region: str, project: str
) -> str:
    """The rollback command, then `why` (the command that shows the cause), one per line."""
    target = last_ready_before(listing, failing)
    if target:
        return f"{remedies.rollback_traffic(service, target, region, project)}\n{why}"
    reason = (
        f"the revisions could not be listed ({listing.error})"
        if listing.error
        else "no ready revision older than the failing one"
    )
    return (
        f"# roll back to the last revision that was ready ({reason}): find it with\n"
        f"{remedies.list_revisions(service, region, project)}\n{why}"
    )

"""Which built-in checks an inventory configures, entry by entry.

Only `project`, `region` and the services / jobs are required, so a team's first inventory may
say nothing about heartbeats, code patterns, roles or commits. A check with nothing to hold an
entry to is *not configured* for it: the run deselects it and lists it, with the reason, in the
terminal and the reports. It is never passed (it proved nothing) and never silently dropped (a
reader would take the silence for green).
"""

from __future__ import annotations

from .specs import Inventory, JobSpec, ServiceSpec

HEARTBEATS_SECTION = (
    "no `heartbeats:` section in the inventory (collection, id_pattern, count, max_age_hours) "
    "saying which Firestore documents to read"
)


def unconfigured_reason(
    check: str, entry: ServiceSpec | JobSpec | None, inventory: Inventory, *, expect_commit: str | None
) -> str | None:
    """Why `check` has nothing to hold `entry` to (None for project-wide checks), or None when it
    is configured. Checks not named here (traffic, rollout, digest, boot, log-visibility, stale-jobs,
    orphans) need nothing beyond the entry itself."""
    if check == "heartbeat-docs":
        return HEARTBEATS_SECTION if inventory.heartbeats is None else None
    if isinstance(entry, ServiceSpec):
        if check == "heartbeat-log" and entry.heartbeat_log is None:
            return "no `heartbeat_log` (expected / forbidden line formats) for this service"
        if check == "iam" and not entry.service_account and not entry.roles:
            return "no `service_account` and no `roles` for this service"
        if check == "code" and not entry.code:
            return "no `code` patterns for this service"
        if check == "commit" and not expect_commit and not entry.commit_declared:
            # Without an expectation the check could only say "some commit runs": it would pass whatever runs.
            return "no --expect-commit, and no `commit_label`, `commit_env` or `service_commit_labels` for this service"
    if isinstance(entry, JobSpec) and check == "code" and not entry.code:
        return "no `code` patterns for this job (nor for the service it runs)"
    return None

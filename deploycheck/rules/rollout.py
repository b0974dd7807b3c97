"""rollout: the newest revision finished rolling out and is ready, and the service says so too.

A newest revision that failed is P0 (the deploy is broken). A newest revision that is ready while
the service's terminal condition is CONDITION_FAILED is P1, quoting the service's message: the
last update was refused after (or without) that revision, so what runs is not what was deployed.
"""

from __future__ import annotations

from typing import Any

from .. import remedies
from ..cloudrun import RevisionState, ServiceState
from ..findings import Finding, Severity, failed, passed

CHECK = "rollout"
READY = "CONDITION_SUCCEEDED"
FAILED = "CONDITION_FAILED"


def rollout_settled(service: ServiceState, newest: RevisionState | None) -> bool:
    """True once there is nothing left to wait for: the newest revision is ready or has failed."""
    if service.reconciling or service.observed_generation < service.generation:
        return False
    return newest is not None and newest.ready_state in (READY, FAILED)


def evaluate_rollout(service: ServiceState, newest: RevisionState, *, waited_s: float | None, project: str) -> Finding:
    name = service.name
    evidence: dict[str, Any] = {
        "newest_revision": newest.name,
        "ready_state": newest.ready_state,
        "generation": service.generation,
        "observed_generation": service.observed_generation,
        "waited_s": waited_s,
    }
    if newest.ready_state == READY and not service.reconciling:
        if service.terminal_state == FAILED:
            evidence["terminal_condition"] = {"state": service.terminal_state, "message": service.terminal_message}
            return failed(
                CHECK,
                name,
                Severity.P1,
                f"newest revision {newest.name} is ready but the service's Ready condition failed: "
                f"{service.terminal_message or 'no message'}",
                remedies.read_revision_errors(name, newest.name, project),
                cause="update-refused",
                **evidence,
            )
        return passed(CHECK, name, f"newest revision {newest.name} is ready", **evidence)
    if newest.ready_state == FAILED:
        return failed(
            CHECK,
            name,
            Severity.P0,
            f"newest revision {newest.name} failed to become ready: {newest.ready_message or 'no message'}",
            remedies.read_revision_errors(name, newest.name, project),
            cause="revision-failed",
            **evidence,
        )
    waited = f" after waiting {waited_s:.0f}s" if waited_s else ""
    return failed(
        CHECK,
        name,
        Severity.P1,
        f"rollout of {newest.name} has not finished{waited} (state {newest.ready_state}, "
        f"reconciling={service.reconciling})",
        remedies.wait_for_rollout(name),
        cause="rollout-unfinished",
        **evidence,
    )

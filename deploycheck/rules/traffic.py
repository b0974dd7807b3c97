"""traffic: all traffic on the latest ready revision, and the newest revision is that one.

A service whose terminal (Ready) condition is CONDITION_FAILED is red for that reason, quoting
the condition's message, whatever latestReadyRevision says: P0 when nothing serves (no ready
revision, or no traffic on any), P1 when an older ready revision still serves, because users are
answered but the last update (a revision that failed, or a change refused before any revision
was made, e.g. a service account that does not exist) did not take effect. A newest revision
that failed is also the rollout check's P0: that check judges the deploy, this one what serves.
"""

from __future__ import annotations

from typing import Any

from .. import remedies
from ..cloudrun import ServiceState
from ..findings import Finding, Severity, failed, passed
from .rollback import RevisionListing, rollback_first

CHECK = "traffic"
FAILED = "CONDITION_FAILED"


def evaluate_traffic(
    service: ServiceState, *, region: str, project: str, revisions: RevisionListing | None = None
) -> list[Finding]:
    """With `revisions`, a service that nothing can serve is fixed by a rollback first."""
    name = service.name
    findings: list[Finding] = []
    to_latest = remedies.update_traffic_to_latest(name, region, project)
    evidence: dict[str, Any] = {
        "latest_ready_revision": service.latest_ready_revision,
        "latest_created_revision": service.latest_created_revision,
        "traffic": [f"{s.revision or '?'}={s.percent}%" + (f" tag={s.tag}" if s.tag else "") for s in service.traffic],
    }

    condition_failed = service.terminal_state == FAILED
    if condition_failed:
        evidence["terminal_condition"] = {"state": service.terminal_state, "message": service.terminal_message}
    why = f": {service.terminal_message or 'no message'}" if condition_failed else ""
    serving = [share for share in service.traffic if share.percent > 0]
    if not service.latest_ready_revision or (condition_failed and not serving):
        nothing = "no ready revision" if not service.latest_ready_revision else "no traffic on any revision"
        fix = remedies.read_revision_errors(name, service.latest_created_revision, project)
        if revisions is not None:
            fix = rollback_first(
                name, revisions, [service.latest_created_revision], fix, region=region, project=project
            )
        findings.append(
            failed(
                CHECK,
                name,
                Severity.P0,
                f"the service has {nothing}: nothing can serve{why}",
                fix,
                cause="nothing-serves",
                **evidence,
            )
        )
        return findings

    if condition_failed and service.latest_created_revision == service.latest_ready_revision:
        # Nothing newer failed to start, so the refusal happened before any revision was made.
        findings.append(
            failed(
                CHECK,
                name,
                Severity.P1,
                f"the service's Ready condition failed{why}; its last update did not take effect and "
                f"{service.latest_ready_revision} still serves",
                f"gcloud run services describe {name} --region {region} --project {project} "
                "--format='yaml(status.conditions)'",
                cause="update-refused",
                **evidence,
            )
        )

    total = sum(share.percent for share in service.traffic)
    if total != 100:
        findings.append(
            failed(
                CHECK,
                name,
                Severity.P1,
                f"traffic statuses add up to {total}%, not 100%: the service is mid-update or misconfigured",
                to_latest,
                cause="traffic-total",
                **evidence,
            )
        )

    elsewhere = {
        share.revision: share.percent
        for share in service.traffic
        if share.percent > 0 and share.revision != service.latest_ready_revision
    }
    if elsewhere:
        shares = ", ".join(f"{revision} {percent}%" for revision, percent in elsewhere.items())
        findings.append(
            failed(
                CHECK,
                name,
                Severity.P1,
                f"traffic is not all on the latest ready revision {service.latest_ready_revision}: {shares}",
                to_latest,
                cause="traffic-not-on-latest",
                **evidence,
            )
        )

    if service.latest_created_revision and service.latest_created_revision != service.latest_ready_revision:
        findings.append(
            failed(
                CHECK,
                name,
                Severity.P1,
                f"the newest revision {service.latest_created_revision} is not ready "
                f"({service.terminal_message or service.terminal_state}); traffic stays on {service.latest_ready_revision}",
                remedies.read_revision_errors(name, service.latest_created_revision, project),
                cause="newest-not-ready",
                **evidence,
            )
        )

    for share in service.traffic:
        if share.tag and share.percent == 0 and share.revision != service.latest_ready_revision:
            findings.append(
                failed(
                    CHECK,
                    name,
                    Severity.P3,
                    f"tag {share.tag!r} still routes to old revision {share.revision} (reachable at its tag URL)",
                    remedies.remove_traffic_tag(name, share.tag, region, project),
                    cause=f"stale-tag-{share.tag}",
                    **evidence,
                )
            )

    if not findings:
        findings.append(
            passed(CHECK, name, f"100% of traffic on {service.latest_ready_revision}, the newest revision", **evidence)
        )
    return findings

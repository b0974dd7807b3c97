"""traffic: all traffic on the latest ready revision, and the newest revision is that one."""

from __future__ import annotations

from ..cloudrun import ServiceState
from ..findings import Finding, Severity, failed, passed
from .. import remedies

CHECK = "traffic"


def evaluate_traffic(service: ServiceState, *, region: str, project: str) -> list[Finding]:
    name = service.name
    findings: list[Finding] = []
    to_latest = remedies.update_traffic_to_latest(name, region, project)
    evidence = {"latest_ready_revision": service.latest_ready_revision,
                "latest_created_revision": service.latest_created_revision,
                "traffic": [f"{s.revision or '?'}={s.percent}%" + (f" tag={s.tag}" if s.tag else "") for s in service.traffic]}

    if not service.latest_ready_revision:
        findings.append(failed(CHECK, name, Severity.P0, "the service has no ready revision: nothing can serve",
                               remedies.read_revision_errors(name, service.latest_created_revision, project), **evidence))
        return findings

    total = sum(share.percent for share in service.traffic)
    if total != 100:
        findings.append(failed(CHECK, name, Severity.P1, f"traffic statuses add up to {total}%, not 100%: "
                               "the service is mid-update or misconfigured", to_latest, **evidence))

    elsewhere = {share.revision: share.percent for share in service.traffic
                 if share.percent > 0 and share.revision != service.latest_ready_revision}
    if elsewhere:
        shares = ", ".join(f"{revision} {percent}%" for revision, percent in elsewhere.items())
        findings.append(failed(CHECK, name, Severity.P1,
                               f"traffic is not all on the latest ready revision {service.latest_ready_revision}: {shares}",
                               to_latest, **evidence))

    if service.latest_created_revision and service.latest_created_revision != service.latest_ready_revision:
        findings.append(failed(
            CHECK, name, Severity.P1,
            f"the newest revision {service.latest_created_revision} is not ready "
            f"({service.terminal_message or service.terminal_state}); traffic stays on {service.latest_ready_revision}",
            remedies.read_revision_errors(name, service.latest_created_revision, project), **evidence))

    for share in service.traffic:
        if share.tag and share.percent == 0 and share.revision != service.latest_ready_revision:
            findings.append(failed(
                CHECK, name, Severity.P3,
                f"tag {share.tag!r} still routes to old revision {share.revision} (reachable at its tag URL)",
                remedies.remove_traffic_tag(name, share.tag, region, project), **evidence))

    if not findings:
        findings.append(passed(CHECK, name, f"100% of traffic on {service.latest_ready_revision}, the newest revision",
                               **evidence))
    return findings

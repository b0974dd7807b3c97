"""iam: the account the serving revision runs as holds every permission of each role the inventory
requires (seed 000: prediction-worker lacked roles/datastore.user and its heartbeats failed
silently for days).

A requirement is met by permissions, not by role names, as Google decides it: roles/editor or
roles/datastore.owner hold every permission of roles/datastore.user, and a grant on a folder or
the organisation above the project applies to the project. What cannot be decided from the
allow policies is said, not guessed: a conditional grant (the condition may not hold at the time
of the call) and a grant to a group, domain or principal set (membership is not visible here)
end as ERROR "cannot verify" when they are the only way the account could hold what is missing.
Deny policies are not read: a permission an allow policy grants is taken as held.
"""

from __future__ import annotations

from typing import Any

from ..findings import Finding, Outcome, Severity, failed, passed
from ..iam import PolicyHierarchy, Role, applies_to, is_indirect

CHECK = "iam"
SHOWN_PERMISSIONS = 8  # a summary names this many missing permissions; evidence has them all


def _grant(project: str, account: str, role: str) -> str:
    return f"gcloud projects add-iam-policy-binding {project} --member=serviceAccount:{account} --role={role}"


def evaluate_iam(
    service: str,
    *,
    running_as: str,
    expected_account: str | None,
    required_roles: list[str],
    hierarchy: PolicyHierarchy,
    roles: dict[str, Role],
    region: str,
) -> list[Finding]:
    """`roles` must hold every role of iam.roles_to_read(hierarchy, running_as, required_roles)."""
    project = hierarchy.project
    evidence: dict[str, Any] = {"service_account": running_as, "required_roles": required_roles}
    if not running_as:
        return [
            Finding(
                CHECK,
                service,
                Severity.P1,
                Outcome.ERROR,
                "the serving revision reports no service account: its roles cannot be checked",
                evidence,
                cause="no-account",
            )
        ]
    findings: list[Finding] = []
    if expected_account and expected_account != running_as:
        findings.append(
            failed(
                CHECK,
                service,
                Severity.P1,
                f"runs as {running_as}, the inventory expects {expected_account}",
                f"gcloud run services update {service} --service-account {expected_account} "
                f"--region {region} --project {project}",
                cause="wrong-account",
                **evidence,
            )
        )
    held, sources = _held_permissions(hierarchy, roles, running_as)
    met = []
    for required in required_roles:
        needed = roles[required].permissions
        if not needed:
            findings.append(
                _unverifiable(
                    service,
                    f"the required role {required} grants no permission (deleted or disabled)",
                    evidence,
                    cause=f"role-{required}",
                )
            )
            continue
        missing = needed - held
        if not missing:
            via = sorted({source for permission in needed for source in sources[permission]})
            met.append(f"{required} (through {', '.join(via)})")
            continue
        findings.append(
            _missing(
                service,
                required,
                missing,
                hierarchy,
                roles,
                running_as,
                {**evidence, "missing_permissions": sorted(missing)},
            )
        )
    if not findings:
        findings.append(
            passed(
                CHECK,
                service,
                f"{running_as} holds every permission of {'; '.join(met) or 'no required role'}",
                **evidence,
            )
        )
    return findings


def _held_permissions(
    hierarchy: PolicyHierarchy, roles: dict[str, Role], account: str
) -> tuple[frozenset[str], dict[str, set[str]]]:
    """Permissions certainly granted to the account, and for each the grants it comes from."""
    sources: dict[str, set[str]] = {}
    for resource, binding in hierarchy.grants():
        if binding.condition is None and any(applies_to(m, account) for m in binding.members):
            for permission in roles[binding.role].granted_permissions:
                sources.setdefault(permission, set()).add(f"{binding.role} on {resource}")
    return frozenset(sources), sources


def _missing(
    service: str,
    required: str,
    missing: frozenset[str],
    hierarchy: PolicyHierarchy,
    roles: dict[str, Role],
    account: str,
    evidence: dict,
) -> Finding:
    """FAIL when no grant could supply some missing permission; ERROR when uncertain grants could
    supply all of them."""
    uncertain: list[str] = []
    could_supply: set[str] = set()
    for resource, binding in hierarchy.grants():
        role = roles.get(binding.role)  # absent: granted only to others, so it cannot matter
        supplies = role.granted_permissions & missing if role else frozenset()
        if not supplies:
            continue
        if binding.condition is not None and any(applies_to(m, account) for m in binding.members):
            uncertain.append(
                f"{binding.role} is granted to {account} on {resource} only under the condition `{binding.condition}`"
            )
            could_supply |= supplies
        indirect = [m for m in binding.members if is_indirect(m)]
        if indirect:
            uncertain.append(
                f"{binding.role} on {resource} is granted to {', '.join(indirect)}, "
                "whose membership is not visible here"
            )
            could_supply |= supplies
    certainly_missing = missing - could_supply
    if not certainly_missing:
        return _unverifiable(
            service,
            f"{account} lacks {len(missing)} permission(s) of {required} unless " + "; or ".join(uncertain),
            evidence,
            cause=f"role-{required}",
        )
    # The required role's own service first: datastore.entities.create says more than appengine.applications.get.
    own = required.rsplit("/", 1)[-1].split(".")[0] + "."
    shown = ", ".join(sorted(certainly_missing, key=lambda p: (not p.startswith(own), p))[:SHOWN_PERMISSIONS])
    more = (
        f" and {len(certainly_missing) - SHOWN_PERMISSIONS} more" if len(certainly_missing) > SHOWN_PERMISSIONS else ""
    )
    return failed(
        CHECK,
        service,
        Severity.P1,
        f"{account} lacks {required} on project {hierarchy.project}: no grant gives it "
        f"{shown}{more} (what it needs fails, often silently: seed 000's heartbeats)",
        _grant(hierarchy.project, account, required),
        cause=f"role-{required}",
        **evidence,
    )


def _unverifiable(service: str, why: str, evidence: dict, *, cause: str) -> Finding:
    # Guessing would be a false green or a false red; say what could not be seen instead.
    return Finding(CHECK, service, Severity.P2, Outcome.ERROR, f"cannot verify: {why}", evidence, cause=cause)

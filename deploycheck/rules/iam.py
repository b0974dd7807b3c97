"""iam: the account the serving revision runs as holds every role the inventory requires (seed
000: prediction-worker lacked roles/datastore.user and its heartbeats failed silently for days)."""

from __future__ import annotations

from ..findings import Finding, Outcome, Severity, failed, passed
from ..iam import ProjectPolicy

CHECK = "iam"
INDIRECT_PREFIXES = ("group:", "domain:", "principalSet:")


def _grant(project: str, account: str, role: str) -> str:
    return (f"gcloud projects add-iam-policy-binding {project} "
            f"--member=serviceAccount:{account} --role={role}")


def evaluate_iam(service: str, *, running_as: str, expected_account: str | None, required_roles: list[str],
                 policy: ProjectPolicy, region: str) -> list[Finding]:
    project = policy.project
    evidence = {"service_account": running_as, "required_roles": required_roles}
    if not running_as:
        return [Finding(CHECK, service, Severity.P1, Outcome.ERROR,
                        "the serving revision reports no service account: its roles cannot be checked", evidence)]
    findings: list[Finding] = []
    if expected_account and expected_account != running_as:
        findings.append(failed(CHECK, service, Severity.P1,
                               f"runs as {running_as}, the inventory expects {expected_account}",
                               f"gcloud run services update {service} --service-account {expected_account} "
                               f"--region {region} --project {project}", **evidence))
    member = f"serviceAccount:{running_as}"
    held = policy.roles_of(member)
    custom = sorted(role for role in held if role.startswith(("projects/", "organizations/")))
    for role in required_roles:
        binding = held.get(role)
        if binding is not None and binding.condition is None:
            continue
        if binding is not None:
            findings.append(_unverifiable(service, f"{role} is granted to {running_as} only under the condition "
                                                   f"`{binding.condition}`", evidence))
            continue
        via = [m for b in policy.bindings if b.role == role for m in b.members if m.startswith(INDIRECT_PREFIXES)]
        if via:
            findings.append(_unverifiable(service, f"{role} is not granted to {running_as} directly, only to "
                                                   f"{', '.join(via)}, whose membership is not visible here", evidence))
        elif custom:
            findings.append(_unverifiable(service, f"{role} is not granted to {running_as}; its custom roles "
                                                   f"{', '.join(custom)} may or may not hold the same permissions",
                                          evidence))
        else:
            findings.append(failed(CHECK, service, Severity.P1,
                                   f"{running_as} lacks {role} on project {project} "
                                   "(what it needs fails, often silently: seed 000's heartbeats)",
                                   _grant(project, running_as, role), **evidence))
    if not findings:
        findings.append(passed(CHECK, service, f"{running_as} holds {', '.join(required_roles) or 'no required role'}",
                               **evidence))
    return findings


def _unverifiable(service: str, why: str, evidence: dict) -> Finding:
    # Guessing would be a false green or a false red; say what could not be seen instead.
    return Finding(CHECK, service, Severity.P2, Outcome.ERROR, f"cannot verify: {why}", evidence)

"""One fix per cause: failing findings with the same check, cause, outcome and remedy (the command
with the resource's own name taken out) become one entry listing the resources, with one command
that fixes them all (seed 002 updated its 21 backfill jobs with one loop)."""

from __future__ import annotations

import hashlib
import re
import shlex

from ..findings import Severity
from .memory import is_failing

PLACEHOLDER = "\x00resource\x00"
LOOP_VARIABLE = "name"
SEVERITY_ORDER = [severity.value for severity in Severity]


def _name_pattern(resource: str) -> re.Pattern:
    # The resource as a whole word of the command: not inside an image path or a revision name.
    return re.compile(rf"(?<![\w./@=-]){re.escape(resource)}(?![\w./@-])")


def remedy_template(remediation: str | None, resource: str) -> str | None:
    if not remediation:
        return None
    return _name_pattern(resource).sub(PLACEHOLDER, remediation)


def shell_substitute(template: str, variable: str) -> str:
    """The template with each placeholder replaced by the shell variable, quoted as its place in
    the command needs: inside '...' the quote is closed around it, or it would not expand."""
    out, quote, index = [], "", 0
    while index < len(template):
        if template.startswith(PLACEHOLDER, index):
            out.append({"'": f"'\"${{{variable}}}\"'", '"': f"${{{variable}}}"}.get(quote, f'"${{{variable}}}"'))
            index += len(PLACEHOLDER)
            continue
        char = template[index]
        if char == "\\" and quote != "'" and index + 1 < len(template):
            out.append(template[index : index + 2])
            index += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        out.append(char)
        index += 1
    return "".join(out)


def _one_for_all(template: str, resources: list[str]) -> str:
    """The command that fixes every resource: a shell loop when the remedy is one gcloud command
    per resource, else the remedy with NAME for each of them."""
    if PLACEHOLDER not in template:
        return template
    if template.startswith("gcloud ") and "\n" not in template:
        names = " ".join(shlex.quote(resource) for resource in resources)
        body = shell_substitute(template, LOOP_VARIABLE)
        return f"for {LOOP_VARIABLE} in {names}; do\n  {body}\ndone"
    return f"for each of the {len(resources)} listed, with NAME its name: " + template.replace(PLACEHOLDER, "NAME")


def _severity_rank(finding: dict) -> int:
    severity = finding.get("severity")
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def group_findings(findings: list[dict]) -> list[dict]:
    """Groups of the failing findings, worst first; a finding alone is a group of one."""
    buckets: dict[tuple, list[dict]] = {}
    for finding in findings:
        if not is_failing(finding):
            continue
        template = remedy_template(finding.get("remediation"), finding["resource"])
        key = (finding["check"], finding.get("cause") or finding["check"], finding["outcome"], template)
        buckets.setdefault(key, []).append(finding)
    groups = []
    for (check, cause, outcome, template), members in buckets.items():
        members.sort(key=lambda f: (_severity_rank(f), f["resource"]))
        resources = list(dict.fromkeys(f["resource"] for f in members))
        first = members[0]
        if len(members) == 1:
            summary, remediation = first["summary"], first.get("remediation")
        else:
            summary = f"{len(resources)} resources, {cause}; e.g. {first['resource']}: {first['summary']}"
            remediation = _one_for_all(template, resources) if template else None
        group = {
            "id": hashlib.sha256(f"{check}|{cause}|{outcome}|{template}".encode()).hexdigest()[:12],
            "check": check,
            "cause": cause,
            "severity": first["severity"],
            "outcome": outcome,
            "summary": summary,
            "remediation": remediation,
            "resources": resources,
            "finding_ids": [f["id"] for f in members],
        }
        if remediation and remediation.startswith(f"for {LOOP_VARIABLE} in "):
            # The loop's body alone, for a report too small to list every name (report.md).
            group["command_each"] = shell_substitute(template, LOOP_VARIABLE)
        changes = [f["change"] for f in members if "change" in f]
        if changes:
            group["changes"] = {"new": changes.count("new"), "still": changes.count("still")}
            group["since"] = min(f["since"] for f in members if "since" in f)
        groups.append(group)
    groups.sort(
        key=lambda g: (_severity_rank(g), g["outcome"] != "error", -len(g["resources"]), g["check"], g["resources"][0])
    )
    return groups

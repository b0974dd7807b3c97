"""Findings: what a rule concluded about one resource, with the command that fixes it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from .redact import redact, redact_data


class Severity(str, Enum):
    """As the platform's daily check uses them: P0 page now ... P3 tidy up."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    WAIVED = "waived"  # a FAIL an inventory waiver accepts until its expiry: shown, counted apart, not failing


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str
    severity: Severity
    outcome: Outcome
    summary: str
    evidence: dict = field(default_factory=dict)
    remediation: str | None = None
    # What is wrong, as a short slug ("stale-image"): with check and resource it names the finding
    # across nights, whatever its wording or numbers say tonight. Empty means the check's id.
    cause: str = ""
    waiver: dict | None = None  # the waiver that matched (deploycheck.waivers), in force or expired

    def __post_init__(self) -> None:
        if not self.cause:
            object.__setattr__(self, "cause", self.check)
        # Whatever a server echoed into a summary or evidence, no credential leaves in a finding.
        object.__setattr__(self, "summary", redact(self.summary))
        object.__setattr__(self, "remediation", redact(self.remediation) if self.remediation else self.remediation)
        object.__setattr__(self, "evidence", redact_data(self.evidence))

    @property
    def failed(self) -> bool:
        return self.outcome in (Outcome.FAIL, Outcome.ERROR)

    @property
    def id(self) -> str:
        return finding_id(self.check, self.resource, self.cause)

    def to_dict(self) -> dict:
        # Field by field rather than dataclasses.asdict, which deep-copies through copy.deepcopy:
        # a nightly report serialises thousands of findings, and this is most of its cost.
        return {
            "check": self.check,
            "resource": self.resource,
            "severity": self.severity.value,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "evidence": _copied(self.evidence),
            "remediation": self.remediation,
            "cause": self.cause,
            "waiver": _copied(self.waiver),
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(
            check=data["check"],
            resource=data["resource"],
            severity=Severity(data["severity"]),
            outcome=Outcome(data["outcome"]),
            summary=data["summary"],
            evidence=data.get("evidence") or {},
            remediation=data.get("remediation"),
            waiver=data.get("waiver"),
            cause=data.get("cause") or "",
        )

    def one_line(self) -> str:
        text = f"[{self.severity.value}] {self.check} {self.resource}: {self.summary}"
        if self.remediation and self.failed:
            text += f"\n    fix: {self.remediation}"
        return text


def _copied(value):
    """A copy of nested dicts, lists and tuples (leaves shared): what the caller may change freely."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(item) for item in value)
    return value


def finding_id(check: str, resource: str, cause: str) -> str:
    """12 hex characters, the same every night for the same check, resource and cause."""
    return hashlib.sha256(f"{check}|{resource}|{cause}".encode()).hexdigest()[:12]


def passed(
    check: str, resource: str, summary: str, severity: Severity = Severity.P3, *, cause: str = "", **evidence
) -> Finding:
    return Finding(check, resource, severity, Outcome.PASS, summary, evidence, cause=cause)


def failed(
    check: str, resource: str, severity: Severity, summary: str, remediation: str | None, *, cause: str = "", **evidence
) -> Finding:
    return Finding(check, resource, severity, Outcome.FAIL, summary, evidence, remediation, cause)


def below_fail_on(finding: Finding, fail_on: Severity | str | None) -> bool:
    """A failure that does not fail the run under `--fail-on`: an observed FAIL less severe than
    the threshold. An ERROR (a fact not observed) never is: nobody knows how bad it is."""
    if fail_on is None or finding.outcome is not Outcome.FAIL:
        return False
    order = list(Severity)
    return order.index(finding.severity) > order.index(Severity(fail_on))

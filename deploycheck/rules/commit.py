"""commit: the running image was built from the expected commit; commit labels tell the truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import remedies
from ..findings import Finding, Severity, failed, passed

CHECK = "commit"
MIN_SHA_PREFIX = 7


@dataclass(frozen=True)
class CommitEvidence:
    """Where a running image says which commit it was built from."""

    image_labels: dict[str, str]
    image_annotations: dict[str, str]
    revision_env: dict[str, str]


def running_commit(evidence: CommitEvidence, *, label: str, env: str | None) -> tuple[str | None, str]:
    """(commit, where it came from) — image label first, then manifest annotation, then env var."""
    if evidence.image_labels.get(label):
        return evidence.image_labels[label], f"image label {label}"
    if evidence.image_annotations.get(label):
        return evidence.image_annotations[label], f"manifest annotation {label}"
    if env and evidence.revision_env.get(env):
        return evidence.revision_env[env], f"container env {env}"
    return None, ""


def same_commit(a: str, b: str) -> bool:
    a, b = a.strip().lower(), b.strip().lower()
    if min(len(a), len(b)) < MIN_SHA_PREFIX:
        return a == b
    return a.startswith(b) or b.startswith(a)


def evaluate_commit(
    service: str,
    *,
    evidence: CommitEvidence,
    label: str,
    env: str | None,
    service_labels: dict[str, str],
    claim_labels: list[str],
    expect_commit: str | None,
    tag_commit: str | None,
    tag_image: str,
    pinned_tag_image: str,
    region: str,
    project: str,
) -> list[Finding]:
    commit, source = running_commit(evidence, label=label, env=env)
    findings: list[Finding] = []
    facts: dict[str, Any] = {
        "running_commit": commit,
        "source": source,
        "expect_commit": expect_commit,
        "service_labels": {k: service_labels[k] for k in claim_labels if k in service_labels},
        "tag_commit": tag_commit,
    }

    if commit is None:
        findings.append(
            failed(
                CHECK,
                service,
                Severity.P1 if expect_commit else Severity.P3,
                f"the running image carries no {label} label (nor annotation{', nor env ' + env if env else ''}): "
                f"no one can tell which commit is live"
                + (f", so {expect_commit} cannot be proven" if expect_commit else ""),
                f"rebuild with `docker build --label {label}=$(git rev-parse HEAD) ...`, then "
                + remedies.deploy_image(service, tag_image, region, project),
                cause="no-commit-label",
                **facts,
            )
        )
    elif expect_commit and not same_commit(commit, expect_commit):
        if tag_commit and same_commit(tag_commit, expect_commit):
            fix = remedies.deploy_image(service, pinned_tag_image, region, project)
            where = f"; {tag_image} has it but was never rolled out"
        else:
            fix = f"build and push commit {expect_commit} to {tag_image}, then " + remedies.deploy_image(
                service, tag_image, region, project
            )
            where = f"; {tag_image} is at {tag_commit or 'an unlabelled commit'} too"
        findings.append(
            failed(
                CHECK,
                service,
                Severity.P1,
                f"running commit {commit[:12]} ({source}), expected {expect_commit}{where}",
                fix,
                cause="unexpected-commit",
                **facts,
            )
        )

    for key in claim_labels:
        claimed = service_labels.get(key)
        if claimed and commit and not same_commit(claimed, commit):
            findings.append(
                failed(
                    CHECK,
                    service,
                    Severity.P3,
                    f"service label {key}={claimed} claims a commit, but the running image is {commit[:12]}: "
                    "the label misleads whoever reads it",
                    remedies.update_service_labels(service, {key: commit[:8]}, region, project),
                    cause=f"stale-label-{key}",
                    **facts,
                )
            )

    if not findings and commit is not None:  # no commit found is a finding above
        what = f"expected {expect_commit}" if expect_commit else "no --expect-commit given"
        findings.append(passed(CHECK, service, f"running commit {commit[:12]} ({source}); {what}", **facts))
    return findings

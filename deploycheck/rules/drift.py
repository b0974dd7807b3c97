"""Drift between the inventory and the project: jobs on stale images (seed 001: 21 backfill jobs
ran months-old gcr.io images), and services or jobs that one side knows and the other does not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import remedies
from ..cloudrun import JobState
from ..findings import Finding, Severity, failed, passed
from ..imageref import ImageRef

UNUSED_AFTER_DAYS = 90


def _age_days(created: str | datetime | None, now: datetime) -> int | None:
    if not created:
        return None
    moment = created if isinstance(created, datetime) else datetime.fromisoformat(created)
    return max(0, (now - moment).days)


def evaluate_stale_job(
    job: JobState,
    *,
    image: ImageRef,
    digest: str,
    created: str | None,
    expected: ImageRef,
    expected_digest: str,
    expected_created: str | None,
    legacy_registries: list[str],
    now: datetime,
    region: str,
    project: str,
) -> list[Finding]:
    age = _age_days(created, now)
    last_run = _age_days(job.last_execution_time, now)
    evidence: dict[str, Any] = {
        "image": str(image),
        "digest": digest,
        "image_age_days": age,
        "expected": str(expected),
        "expected_digest": expected_digest,
        "expected_age_days": _age_days(expected_created, now),
        "last_execution": job.last_execution,
        "last_execution_days_ago": last_run,
    }
    fix = remedies.update_job_image(job.name, f"{expected.repository}@{expected_digest}", region, project)
    when = f"last ran {last_run} days ago" if last_run is not None else "never ran"
    unused = (
        " (unused for months: update it before its next run, or delete it)"
        if last_run is None or last_run > UNUSED_AFTER_DAYS
        else ""
    )
    legacy = next(
        (registry for registry in legacy_registries if image.host == registry or image.host.endswith("." + registry)),
        None,
    )
    if not legacy and digest == expected_digest:
        return [passed("stale-jobs", job.name, f"runs {expected}'s current digest {digest[:19]}…; {when}", **evidence)]
    problems = []
    if legacy:
        problems.append(f"runs {image} from the legacy registry {legacy}, not {expected.repository}")
    if digest != expected_digest:
        built = f"built {age} days ago" if age is not None else "build time unknown"
        problems.append(f"runs {digest[:19]}… ({built}), not {expected}'s {expected_digest[:19]}…")
    # One cause per remedy: a new digest fixes both, so a stale image on gcr.io is a stale image.
    cause = "stale-image" if digest != expected_digest else "legacy-registry"
    return [
        failed("stale-jobs", job.name, Severity.P2, "; ".join([*problems, when]) + unused, fix, cause=cause, **evidence)
    ]


def evaluate_orphans(
    scope: str,
    *,
    deployed_services: list[str],
    deployed_jobs: list[str],
    declared_services: list[str],
    declared_jobs: list[str],
    region: str,
    project: str,
) -> list[Finding]:
    findings: list[Finding] = []
    for kind, deployed, declared in (
        ("service", deployed_services, declared_services),
        ("job", deployed_jobs, declared_jobs),
    ):
        unknown = sorted(set(deployed) - set(declared))
        missing = sorted(set(declared) - set(deployed))
        plural = f"{kind}s"
        if unknown:
            delete = f"gcloud run {plural} delete {unknown[0]} --region {region} --project {project}"
            findings.append(
                failed(
                    "orphans",
                    scope,
                    Severity.P3,
                    f"{len(unknown)} deployed {plural} nobody declared: {', '.join(unknown)}",
                    f"declare them in services.yaml, or delete: {delete}",
                    cause=f"undeclared-{plural}",
                    unknown=unknown,
                )
            )
        if missing and not deployed:
            # Nothing at all is rarer than drift: say so, an empty answer or the wrong project looks just like it.
            findings.append(
                failed(
                    "orphans",
                    scope,
                    Severity.P2,
                    f"{plural}.list answered an empty list for {project}/{region}, yet the inventory "
                    f"declares {len(missing)} {plural}: {', '.join(missing)} (wrong project or region, "
                    "or all of them deleted?)",
                    f"gcloud run {plural} list --region {region} --project {project}",
                    cause=f"empty-{plural}-listing",
                    missing=missing,
                )
            )
        elif missing:
            findings.append(
                failed(
                    "orphans",
                    scope,
                    Severity.P2,
                    f"{len(missing)} declared {plural} not deployed in {region}: {', '.join(missing)}",
                    "remove them from services.yaml, or deploy them",
                    cause=f"missing-{plural}",
                    missing=missing,
                )
            )
    if not findings:
        findings.append(
            passed(
                "orphans",
                scope,
                f"{len(deployed_services)} services and {len(deployed_jobs)} jobs deployed, exactly the inventory's",
            )
        )
    return findings

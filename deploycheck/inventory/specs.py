"""What the rest of deploycheck reads from an inventory: frozen specs with defaults merged, images
resolved to full references, pattern names replaced by the patterns; and the errors of a bad file."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from ..errors import InputError
from ..imageref import ImageRef


@dataclass(frozen=True)
class InventoryIssue:
    file: str
    line: int  # 1-based; 0 when the problem has no position (unreadable file)
    column: int
    field: str  # e.g. services[0].image; empty for problems of the file as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InventoryError(InputError):
    """Everything wrong with an inventory file, one line per issue, sorted by position."""

    def __init__(self, issues: list[InventoryIssue]):
        self.issues = sorted(issues, key=lambda issue: (issue.line, issue.column, issue.field))
        super().__init__(self.issues)  # args = (issues,) so the error pickles (pytest-xdist) intact

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


@dataclass(frozen=True)
class CodePattern:
    """A file that must exist in the image, and regexes its text must / must not contain.

    Each regex is searched by RE2 (deploycheck.re2) in the whole file text in multi-line mode, so `^`
    and `$` match at line boundaries (e.g. `^from google\\.cloud import monitoring_v3` = a module-level import).
    """

    name: str
    path: str  # absolute and normalised, e.g. /app/shared/monitoring/processor_heartbeat.py
    must_contain: list[str]
    must_not_contain: list[str]


@dataclass(frozen=True)
class HeartbeatLogSpec:
    """`expected`: some log line of the serving revision must match it (RE2 search).
    `forbidden`: no log line may match any of these (RE2 search)."""

    expected: str
    forbidden: list[str]


@dataclass(frozen=True)
class HeartbeatSpec:
    """The Firestore heartbeat collection. A good document id matches `id_pattern` in full
    (RE2 fullmatch) and none of `bad_id_patterns` (RE2 search). The document count is healthy in
    [expected_min, expected_max], P1 above `p1_above`, P0 above `p0_above`."""

    collection: str
    id_pattern: str
    bad_id_patterns: list[str]
    expected_min: int
    expected_max: int
    p1_above: int
    p0_above: int
    max_age_hours: float


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: ImageRef  # full reference with the expected tag (or digest) applied
    service_account: str | None  # None: the inventory does not say which account it runs as
    roles: list[str]  # IAM roles the service account must hold
    code: list[CodePattern]
    commit_label: str  # OCI label of the image that carries the source commit
    commit_env: str | None  # env var in the container that carries the commit, if any
    service_commit_labels: list[str]  # Cloud Run service labels that claim a commit
    heartbeat_log: HeartbeatLogSpec | None  # None: the service logs no heartbeats
    processors: list[str]  # heartbeat processor names this service writes
    line: int  # where the entry starts in the inventory file
    region: str = ""  # where it runs: its own `region`, else the inventory's
    own_region: bool = False  # the entry names its region itself (--region does not move it)
    # The inventory says something about commits (commit_label, commit_env or service_commit_labels, in the
    # entry or its defaults); without it and without --expect-commit the commit check has nothing to hold.
    commit_declared: bool = True


@dataclass(frozen=True)
class JobSpec:
    name: str
    runs: str | None  # the service whose image the job must run ...
    image: ImageRef | None  # ... or, when it runs no service's image, its own expected image
    code: list[CodePattern]
    line: int
    region: str = ""  # where it runs: its own `region`, else the inventory's
    own_region: bool = False


@dataclass(frozen=True)
class WaiverSpec:
    """An accepted risk: FAIL findings of `check` on a resource matching one of `resources`
    (fnmatch globs, case-sensitive) are waived through the `expires` day (inclusive)."""

    check: str
    resources: list[str]
    reason: str
    owner: str
    expires: date
    line: int  # where the entry starts in the inventory file


@dataclass(frozen=True)
class Inventory:
    source: Path
    project: str
    region: str
    registry: str | None  # where relative image names were resolved; the expected registry
    legacy_registries: list[str]
    services: list[ServiceSpec]
    jobs: list[JobSpec]
    heartbeats: HeartbeatSpec | None  # None: no `heartbeats:` section, heartbeat-docs is not configured
    patterns: dict[str, CodePattern]
    waivers: list[WaiverSpec] = field(default_factory=list)

    def with_overrides(self, *, project: str | None = None, region: str | None = None) -> Inventory:
        """The inventory as run with --project / --region: the top-level values replaced, and every
        entry that does not name its own region moved to the new one."""
        if not project and not region:
            return self
        region = region or self.region

        def moved(entry):
            return entry if entry.own_region else replace(entry, region=region)

        return replace(
            self,
            project=project or self.project,
            region=region,
            services=[moved(spec) for spec in self.services],
            jobs=[moved(spec) for spec in self.jobs],
        )

    def regions(self) -> list[str]:
        """Every region the inventory's entries run in, the top-level one first."""
        entries: list[ServiceSpec | JobSpec] = [*self.services, *self.jobs]
        return list(dict.fromkeys([self.region, *(spec.region for spec in entries)]))

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(f"service {name!r} is not in {self.source}")

    def job(self, name: str) -> JobSpec:
        for spec in self.jobs:
            if spec.name == name:
                return spec
        raise KeyError(f"job {name!r} is not in {self.source}")

    def service_names(self) -> list[str]:
        return [spec.name for spec in self.services]

    def job_names(self) -> list[str]:
        return [spec.name for spec in self.jobs]

    def job_image(self, job: JobSpec) -> ImageRef:
        """The image the job must run: the image of the service it runs, or its own."""
        if job.runs:
            return self.service(job.runs).image
        if job.image is None:  # load_inventory refuses such a job
            raise ValueError(f"job {job.name!r} names neither a service nor an image")
        return job.image

    def legacy_registry_of(self, image: ImageRef) -> str | None:
        """The entry of legacy_registries the image lives under, or None."""
        return legacy_registry_among(image, self.legacy_registries)


def legacy_registry_among(image: ImageRef, legacy_registries: list[str]) -> str | None:
    return next(
        (
            prefix
            for prefix in legacy_registries
            if image.repository == prefix or image.repository.startswith(prefix + "/")
        ),
        None,
    )

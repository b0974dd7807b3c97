"""Cross-references (runs -> service, code -> pattern, unique names, processor ids) are checked and
the specs built, on the parts of the document that pass the schema on their own."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from .. import re2
from ..imageref import ImageRef, ImageRefError
from .messages import did_you_mean
from .schema import (
    Defaults,
    FileModel,
    HeartbeatsEntry,
    InventoryFile,
    JobEntry,
    JobSettings,
    PatternEntry,
    ServiceEntry,
    ServiceSettings,
    WaiverEntry,
)
from .specs import CodePattern, HeartbeatLogSpec, JobSpec, ServiceSpec, WaiverSpec, legacy_registry_among
from .yamlread import Loc, Positions

# Docker's rule: the first path component is a registry host only if it looks like one.
_HOST_LIKE = re.compile(r"^(?:localhost|[^/]*[.:][^/]*)$")
_FALLBACK_TAG = "latest"
_FALLBACK_COMMIT_LABEL = "org.opencontainers.image.revision"
_Container = TypeVar("_Container", dict, list)

WAIVABLE_CHECKS = {
    "traffic": "service",
    "rollout": "service",
    "digest": "service",
    "commit": "service",
    "boot": "service",
    "heartbeat-log": "service",
    "log-visibility": "service",
    "iam": "service",
    "code": "service or job",
    "stale-jobs": "job",
    "heartbeat-docs": "heartbeat collection",
    "orphans": "project/region scope",
}
"""Every check id (tests/test_waivers.py keeps it equal to the built-in checks) and what its findings are about."""


def _valid(model: type[FileModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


_INVALID = object()


def _valid_section(data: dict, name: str, absent: Any) -> Any:
    """One top-level section validated alone exactly as InventoryFile validates it (pydantic's
    assignment validator runs the field's own schema); `absent` if missing, _INVALID if invalid."""
    if name not in data:
        return absent
    holder = InventoryFile.model_construct()
    try:
        InventoryFile.__pydantic_validator__.validate_assignment(holder, name, data[name])
    except ValidationError:
        return _INVALID
    return getattr(holder, name)


def _is_relative(image: str) -> bool:
    return "/" not in image or not _HOST_LIKE.match(image.split("/", 1)[0])


@dataclass
class Parts:
    """The parts of the document that pass the schema on their own, entries with their indexes.

    Cross-references are checked on these, so they are reported together with schema errors
    elsewhere in the file. Names are collected from the raw document: a reference to an entry
    that merely has a schema error is not reported as unknown as well.
    """

    registry: str | None
    legacy_registries: list[str]
    defaults: Defaults
    heartbeats: HeartbeatsEntry | None  # None: absent or invalid, processor names are not checked against it
    heartbeats_declared: bool  # the document has a `heartbeats:` key (valid or not)
    patterns: dict[str, PatternEntry]
    services: list[tuple[int, ServiceEntry]]
    jobs: list[tuple[int, JobEntry]]
    waivers: list[tuple[int, WaiverEntry]]
    pattern_names: list[str]
    service_names: list[str]
    job_names: list[str]
    region: str | None  # the top-level region, None if invalid
    empty_at: Loc | None  # where to say that neither a service nor a job is declared; None: some are (or invalid)
    scopes: list[str] | None  # PROJECT/REGION of each region entries run in (orphans' resources); None if unknown

    @classmethod
    def of(cls, data: Any) -> Parts | None:
        """None when the document is no mapping, or registry, legacy_registries or defaults is
        invalid: every entry depends on those, so cross-checks would only guess."""
        if not isinstance(data, dict):
            return None
        registry = _valid_section(data, "registry", None)
        legacy_registries = _valid_section(data, "legacy_registries", [])
        defaults = _valid_section(data, "defaults", Defaults())
        if _INVALID in (registry, legacy_registries, defaults):
            return None
        heartbeats = _valid_section(data, "heartbeats", None)
        raw_patterns = _raw_section(data, "patterns", dict)
        raw_services = _raw_section(data, "services", list)
        raw_jobs = _raw_section(data, "jobs", list)
        raw_waivers = _raw_section(data, "waivers", list)
        project, region = (_valid_section(data, name, _INVALID) for name in ("project", "region"))
        return cls(
            registry=registry,
            legacy_registries=legacy_registries,
            defaults=defaults,
            heartbeats=None if heartbeats is _INVALID else heartbeats,
            heartbeats_declared="heartbeats" in data,
            patterns={name: entry for name, raw in raw_patterns.items() if (entry := _valid(PatternEntry, raw))},
            services=[(index, entry) for index, raw in enumerate(raw_services) if (entry := _valid(ServiceEntry, raw))],
            jobs=[(index, entry) for index, raw in enumerate(raw_jobs) if (entry := _valid(JobEntry, raw))],
            waivers=[(index, entry) for index, raw in enumerate(raw_waivers) if (entry := _valid(WaiverEntry, raw))],
            pattern_names=[str(name) for name in raw_patterns],
            service_names=_names(raw_services),
            job_names=_names(raw_jobs),
            region=None if region is _INVALID else region,
            empty_at=_empty_at(data),
            scopes=None
            if _INVALID in (project, region)
            else [
                f"{project}/{name}" for name in dict.fromkeys([region, *_regions(raw_services), *_regions(raw_jobs)])
            ],
        )


def _raw_section(data: dict, name: str, kind: type[_Container]) -> _Container:
    """The section as written when it has the right kind, else an empty one."""
    value = data.get(name)
    return value if isinstance(value, kind) else kind()


def _names(raw_entries: list) -> list[str]:
    return [raw["name"] for raw in raw_entries if isinstance(raw, dict) and isinstance(raw.get("name"), str)]


def _empty_at(data: dict) -> Loc | None:
    """The empty `services: []` / `jobs: []` (or the document) when neither lists an entry; None when
    one does, or when either is not a list (the schema error says so already)."""
    sections = [name for name in ("services", "jobs") if name in data]
    if any(not isinstance(data[name], list) or data[name] for name in sections):
        return None
    return (sections[0],) if sections else ()


def _regions(raw_entries: list) -> list[str]:
    return [raw["region"] for raw in raw_entries if isinstance(raw, dict) and isinstance(raw.get("region"), str)]


_SERVICE_DEFAULTS: Loc = ("defaults", "service")
_JOB_DEFAULTS: Loc = ("defaults", "job")


class Resolver:
    """Checks cross-references and builds the specs; `report` collects every problem."""

    def __init__(self, parts: Parts, positions: Positions, report: Callable[[Loc, str], None]):
        self.parts = parts
        self.positions = positions
        self.report = report
        self.service_defaults = parts.defaults.service or ServiceSettings()
        self.job_defaults = parts.defaults.job or JobSettings()
        self.patterns = {
            name: CodePattern(name, entry.path, list(entry.must_contain), list(entry.must_not_contain))
            for name, entry in parts.patterns.items()
        }

    def resolve(self) -> tuple[list[ServiceSpec], list[JobSpec]]:
        self._check_something_declared()
        self._check_code_references()
        self._check_runs_references()
        self._check_unique("service", self.parts.services)
        self._check_unique("job", self.parts.jobs)
        self._check_processors()
        services = [spec for index, entry in self.parts.services if (spec := self._service(index, entry))]
        service_code = {spec.name: spec.code for spec in services}
        jobs = [self._job(index, entry, service_code) for index, entry in self.parts.jobs]
        return services, jobs

    # ---- checks

    def _check_something_declared(self) -> None:
        if self.parts.empty_at is not None:
            self.report(
                self.parts.empty_at,
                "the inventory declares no service and no job: nothing to check "
                "(expected `services:` or `jobs:` with at least one entry, each a mapping with `name`)",
            )

    def _check_code_references(self) -> None:
        sources: list[tuple[Loc, ServiceSettings | JobSettings]] = [
            (_SERVICE_DEFAULTS, self.service_defaults),
            (_JOB_DEFAULTS, self.job_defaults),
        ]
        sources += [(("services", index), entry) for index, entry in self.parts.services]
        sources += [(("jobs", index), entry) for index, entry in self.parts.jobs]
        known = self.parts.pattern_names
        for path, settings in sources:
            for position, name in enumerate(settings.code or []):
                if name not in known:
                    self.report(
                        path + ("code", position),
                        f"unknown pattern {name!r}{did_you_mean(name, known)} "
                        f"(expected one of the names under `patterns`: {', '.join(known) or 'none defined'})",
                    )

    def _check_runs_references(self) -> None:
        sources = [(_JOB_DEFAULTS, self.job_defaults)] + [(("jobs", index), entry) for index, entry in self.parts.jobs]
        known = self.parts.service_names
        for path, settings in sources:
            if settings.runs is not None and settings.runs not in known:
                self.report(
                    path + ("runs",),
                    f"unknown service {settings.runs!r}{did_you_mean(settings.runs, known)} "
                    f"(expected one of the services: {', '.join(known) or 'none defined'})",
                )

    def _check_unique(self, kind: str, entries: Sequence[tuple[int, ServiceEntry | JobEntry]]) -> None:
        section = f"{kind}s"
        first_lines: dict[str, int] = {}
        for index, entry in entries:
            path = (section, index, "name")
            if entry.name in first_lines:
                self.report(
                    path,
                    f"duplicate {kind} name {entry.name!r}, first defined at line "
                    f"{first_lines[entry.name]} (expected each {kind} once)",
                )
            else:
                first_lines[entry.name] = self.positions.value(path)[0]

    def _check_processors(self) -> None:
        heartbeats = self.parts.heartbeats
        first_lines: dict[str, int] = {}
        for index, entry in self.parts.services:
            for position, name in enumerate(entry.processors):
                path = ("services", index, "processors", position)
                if name in first_lines:
                    self.report(
                        path,
                        f"processor {name!r} is already listed at line {first_lines[name]} "
                        f"(expected each processor under one service)",
                    )
                first_lines.setdefault(name, self.positions.value(path)[0])
                if not self.parts.heartbeats_declared:
                    self.report(
                        path,
                        f"processor {name!r} is declared, but there is no `heartbeats:` section saying "
                        "which Firestore collection holds its documents (expected a top-level "
                        "heartbeats section, or no processors)",
                    )
                    break
                if heartbeats is None:
                    continue
                if not re2.compile(heartbeats.id_pattern).fullmatch(name):
                    self.report(
                        path,
                        f"processor {name!r} does not match heartbeats.id_pattern "
                        f"{heartbeats.id_pattern!r} (expected a good heartbeat document id)",
                    )
                for bad in heartbeats.bad_id_patterns:
                    if re2.compile(bad).search(name):
                        self.report(
                            path,
                            f"processor {name!r} matches heartbeats.bad_id_patterns {bad!r} "
                            f"(expected a good heartbeat document id)",
                        )

    def waivers(self) -> list[WaiverSpec]:
        """The waivers whose check exists and whose every resource pattern names something that
        check looks at: a typo would otherwise waive nothing, silently, until someone wonders."""
        specs: list[WaiverSpec] = []
        first_lines: dict[tuple[str, str], int] = {}
        for index, entry in self.parts.waivers:
            path = ("waivers", index)
            line = self.positions.key(path)[0]
            if entry.check not in WAIVABLE_CHECKS:
                known = sorted(WAIVABLE_CHECKS)
                self.report(
                    path + ("check",),
                    f"unknown check {entry.check!r}{did_you_mean(entry.check, known)} "
                    f"(expected one of: {', '.join(known)})",
                )
                continue
            candidates = self._resources_of(entry.check)
            for position, pattern in enumerate(entry.resources):
                key = (entry.check, pattern)
                if key in first_lines:
                    self.report(
                        path + ("resources", position),
                        f"{entry.check} on {pattern!r} is already waived at line {first_lines[key]} "
                        f"(expected each check and resource waived once)",
                    )
                first_lines.setdefault(key, line)
                if candidates is not None and not fnmatch.filter(candidates, pattern):
                    kind = WAIVABLE_CHECKS[entry.check]
                    example = f", e.g. {candidates[0]}" if candidates else ""
                    self.report(
                        path + ("resources", position),
                        f"{pattern!r} matches no {kind} of the inventory that {entry.check} checks "
                        f"(expected a {kind} name or a glob matching some{example})",
                    )
            specs.append(
                WaiverSpec(
                    entry.check, list(entry.resources), entry.reason.strip(), entry.owner.strip(), entry.expires, line
                )
            )
        return specs

    def _resources_of(self, check: str) -> list[str] | None:
        """The resource ids the check's findings carry; None when the section they come from is invalid."""
        kind = WAIVABLE_CHECKS[check]
        if kind == "heartbeat collection":
            return [self.parts.heartbeats.collection] if self.parts.heartbeats else None
        if kind == "project/region scope":
            return self.parts.scopes
        return (self.parts.service_names if "service" in kind else []) + (self.parts.job_names if "job" in kind else [])

    # ---- specs

    @staticmethod
    def _inherited(name: str, entry: FileModel, defaults: FileModel, fallback: Any) -> Any:
        """The entry's own value (null included), else the default's, else `fallback`."""
        if name in entry.model_fields_set:
            return getattr(entry, name)
        if name in defaults.model_fields_set:
            return getattr(defaults, name)
        return fallback

    def _code(self, names: list[str] | None) -> list[CodePattern]:
        return [self.patterns[name] for name in names or [] if name in self.patterns]

    def _image(self, text: str, text_path: Loc, tag: str, explicit_tag_path: Loc | None) -> ImageRef | None:
        """`text` made a full reference with `tag` applied unless it has its own tag or digest;
        `explicit_tag_path` is where the entry itself set `tag`, which then conflicts with one."""
        registry = self.parts.registry
        if _is_relative(text):
            if registry is None:
                self.report(
                    text_path,
                    f"relative image {text!r} needs a top-level `registry` "
                    f"(expected registry: HOST/PATH, or a full HOST/PATH[:TAG] here)",
                )
                return None
            text = f"{registry}/{text}"
        try:
            image = ImageRef.parse(text)
        except ImageRefError as exc:
            self.report(text_path, str(exc))
            return None
        if image.tag is None and image.digest is None:
            image = image.with_tag(tag)
        elif explicit_tag_path:
            self.report(
                explicit_tag_path,
                f"tag given twice: {image} already has a tag or digest (expected either `tag:` or a tag in `image:`)",
            )
        legacy = legacy_registry_among(image, self.parts.legacy_registries)
        if legacy:
            self.report(
                text_path,
                f"image {image} is in legacy registry {legacy!r} "
                f"(expected {registry or 'a registry not listed in legacy_registries'})",
            )
        return image

    def _service(self, index: int, entry: ServiceEntry) -> ServiceSpec | None:
        """None when its image is invalid (reported)."""
        path = ("services", index)

        def inherited(name: str, fallback: Any) -> Any:
            return self._inherited(name, entry, self.service_defaults, fallback)

        tag = inherited("tag", _FALLBACK_TAG)
        explicit_tag_path = path + ("tag",) if "tag" in entry.model_fields_set else None
        if entry.image is None:
            image = self._image(entry.name, path + ("name",), tag, explicit_tag_path)
        else:
            image = self._image(entry.image, path + ("image",), tag, explicit_tag_path)
        if image is None:
            return None
        heartbeat_log = inherited("heartbeat_log", None)
        commit_keys = ("commit_label", "commit_env", "service_commit_labels")
        return ServiceSpec(
            name=entry.name,
            image=image,
            service_account=inherited("service_account", None),
            roles=list(inherited("roles", [])),
            code=self._code(inherited("code", [])),
            commit_label=inherited("commit_label", _FALLBACK_COMMIT_LABEL),
            commit_env=inherited("commit_env", None),
            service_commit_labels=list(inherited("service_commit_labels", [])),
            heartbeat_log=HeartbeatLogSpec(heartbeat_log.expected, list(heartbeat_log.forbidden))
            if heartbeat_log
            else None,
            processors=list(entry.processors),
            line=self.positions.key(path)[0],
            region=entry.region or self.parts.region or "",
            own_region=entry.region is not None,
            commit_declared=any(
                key in entry.model_fields_set or key in self.service_defaults.model_fields_set for key in commit_keys
            ),
        )

    def _job(self, index: int, entry: JobEntry, service_code: dict[str, list[CodePattern]]) -> JobSpec:
        path = ("jobs", index)
        runs, image = None, None
        if entry.image is not None:
            if "runs" in entry.model_fields_set:
                self.report(
                    path + ("image",),
                    "a job runs either a service's image or its own (expected `runs:` or `image:`, not both)",
                )
            image = self._image(entry.image, path + ("image",), _FALLBACK_TAG, None)
        else:
            runs = self._inherited("runs", entry, self.job_defaults, None)
            if runs is None:
                self.report(
                    path,
                    "the job names no image (expected `runs: SERVICE`, `image: IMAGE`, or `runs` under defaults.job)",
                )
        code_names = self._inherited("code", entry, self.job_defaults, None)
        if code_names is not None:
            code = self._code(code_names)
        else:
            code = list(service_code.get(runs, [])) if runs is not None else []
        return JobSpec(
            name=entry.name,
            runs=runs,
            image=image,
            code=code,
            line=self.positions.key(path)[0],
            region=entry.region or self.parts.region or "",
            own_region=entry.region is not None,
        )

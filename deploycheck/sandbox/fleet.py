"""Generated fleets: hundreds of services and jobs from one scenario key, and the inventory that
matches them, so the whole suite (and the benchmarks) can run against a production-sized project.

    fleet:
      services: 500     # svc-0001 ...: each its own image, REGISTRY/svc-NNNN:latest, two revisions,
                        # one heartbeat processor, a Firestore heartbeat document and its logs
      jobs: 500         # job-0001 ...: job i runs service i (round robin), at its current digest
      log_lines: 20     # entries per logging revision (boot, startup, heartbeats, request logs)
      failures:         # deliberate, deterministic failures spread over the fleet (default none)
        boot_error: 2       # the serving revision logged an ImportError traceback at boot
        traffic_pinned: 2   # all traffic pinned to the previous revision; the newest one idles
        stale_job: 2        # the job runs an older image of its service's repository

Every image is distinct (its own app layer and config, so its own digest, as in a real fleet
where each service builds its own image); they share a base layer. A fleet without failures is
green against `fleet_inventory(...)`: every check passes.

`write_fleet(directory, services=N, jobs=M)` writes scenario.yaml and the matching services.yaml
into a directory, ready for `--target sandbox:DIRECTORY --inventory DIRECTORY/services.yaml`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError

FAILURE_KINDS = {
    "boot_error": "services whose serving revision logged an ImportError traceback at boot",
    "traffic_pinned": "services whose traffic is pinned to the previous revision",
    "stale_job": "jobs that run an older image of their service's repository",
}
_KEYS = {"services", "jobs", "log_lines", "failures"}
_COMMON = Path(__file__).parent / "scenarios" / "_common"
HEARTBEAT_FILE = "/app/shared/monitoring/processor_heartbeat.py"
RUNNER = "fleet-runner@{project}.iam.gserviceaccount.com"
COLLECTION = "processor_heartbeats"
# As the NBA inventory says them (seeds 001/002): the formats a heartbeat line and document id take.
HEARTBEAT_EXPECTED = r"(?:Started|Stopped) heartbeat for \S+"
HEARTBEAT_FORBIDDEN = [r"[A-Z]\w*Processor_None_[0-9a-f]+", r"[A-Z]\w*Processor_20\d\d-\d\d-\d\d_"]


@dataclass(frozen=True)
class Fleet:
    services: int
    jobs: int
    log_lines: int = 20
    failures: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, section: object, where: str) -> Fleet:
        if not isinstance(section, dict):
            raise InputError(f"{where}: fleet: expected a mapping like {{services: 500, jobs: 500}}")
        unknown = set(section) - _KEYS
        if unknown:
            raise InputError(
                f"{where}: fleet: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
            )
        counts = {}
        for key, default, low in (("services", None, 1), ("jobs", 0, 0), ("log_lines", 20, 1)):
            value = section.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(f"{where}: fleet.{key}: expected an integer >= {low}, got {value!r}")
            counts[key] = value
        failures = section.get("failures") or {}
        if not isinstance(failures, dict):
            raise InputError(f"{where}: fleet.failures: expected a mapping of failure kind to count")
        for kind, count in failures.items():
            if kind not in FAILURE_KINDS:
                raise InputError(f"{where}: fleet.failures.{kind}: unknown; known: {', '.join(FAILURE_KINDS)}")
            pool = counts["jobs"] if kind == "stale_job" else counts["services"]
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= pool:
                raise InputError(f"{where}: fleet.failures.{kind}: expected an integer from 0 to {pool}, got {count!r}")
        if failures.get("boot_error", 0) + failures.get("traffic_pinned", 0) > counts["services"]:
            raise InputError(
                f"{where}: fleet.failures: boot_error + traffic_pinned exceed the {counts['services']} services"
            )
        return cls(counts["services"], counts["jobs"], counts["log_lines"], dict(failures))

    # --- names -----------------------------------------------------------------------------------
    @property
    def _width(self) -> int:
        return max(4, len(str(max(self.services, self.jobs))))

    def service_name(self, index: int) -> str:
        return f"svc-{index + 1:0{self._width}d}"

    def job_name(self, index: int) -> str:
        return f"job-{index + 1:0{self._width}d}"

    def processor(self, index: int) -> str:
        return f"Svc{index + 1:0{self._width}d}Processor"

    def runs(self, job_index: int) -> int:
        return job_index % self.services

    def failing(self, kind: str) -> set[int]:
        """Indexes of the resources that fail this way: spread evenly over the fleet; a service pinned
        to its previous revision is never one that also failed at boot."""
        count = self.failures.get(kind, 0)
        pool = self.jobs if kind == "stale_job" else self.services
        taken = self.failing("boot_error") if kind == "traffic_pinned" else set()
        offset = 1 if kind == "traffic_pinned" else 0
        chosen: set[int] = set()
        for position in range(count):
            index = ((position * pool) // count + offset) % pool
            while index in taken or index in chosen:
                index = (index + 1) % pool
            chosen.add(index)
        return chosen


def _commit(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


def _suffix(name: str, number: int) -> str:
    return f"{number:05d}-{hashlib.sha256(f'{name}/{number}'.encode()).hexdigest()[:3]}"


def registry(project: str, region: str) -> str:
    return f"{region}-docker.pkg.dev/{project}/fleet"


def expand(fleet: Fleet, *, project: str, region: str) -> dict:
    """The scenario sections (images, services, jobs, iam_policy, firestore, log_volume) of the fleet."""
    repo_root = registry(project, region)
    runner = RUNNER.format(project=project)
    heartbeat_code = (_COMMON / "processor_heartbeat_fixed.py").read_text(encoding="utf-8")
    base_files = {"/usr/lib/fleet/runtime.txt": "fleet base image: python 3.11 runtime\n" * 64}
    booting, pinned, stale = fleet.failing("boot_error"), fleet.failing("traffic_pinned"), fleet.failing("stale_job")
    images: dict[str, dict] = {}
    services: dict[str, dict] = {}
    log_volume: list[dict] = []
    documents: list[dict] = []
    for index in range(fleet.services):
        name, processor = fleet.service_name(index), fleet.processor(index)
        commit = _commit(project, name)
        images[name] = _image(f"{repo_root}/{name}", name, commit, ["latest"], "now-2h", base_files, heartbeat_code)
        older, newest = _suffix(name, 1), _suffix(name, 2)
        services[name] = {
            "image": f"{repo_root}/{name}:latest",
            "service_account": runner,
            "labels": {"commit-sha": commit[:8], "managed-by": "fleet"},
            "revisions": [
                {"suffix": older, "image": name, "created": "now-3h"},
                {"suffix": newest, "image": name, "created": "now-90m"},
            ],
        }
        if index in pinned:
            services[name]["traffic"] = [{"revision": older, "percent": 100}]
        lines = _log_lines(processor, boot_error=index in booting)
        log_volume.append(
            {
                "service": name,
                "revision": newest,
                "count": fleet.log_lines,
                "from": "now-85m",
                "to": "now-2m",
                "lines": lines,
            }
        )
        if index in pinned:  # the serving (older) revision logs too, from its own creation
            log_volume.append(
                {
                    "service": name,
                    "revision": older,
                    "count": fleet.log_lines,
                    "from": "now-175m",
                    "to": "now-2m",
                    "lines": lines,
                }
            )
        documents.append(
            {
                "id": processor,
                "fields": {
                    "processor_name": processor,
                    "last_heartbeat": f"now-{index % 50 + 1}m",
                    "status": "completed",
                    "run_id": commit[:12],
                },
            }
        )
    jobs: dict[str, dict] = {}
    for index in range(fleet.jobs):
        name, service = fleet.job_name(index), fleet.service_name(fleet.runs(index))
        image_key = service
        if index in stale:
            image_key = f"{name}-old-image"
            old_commit = _commit(project, service, "old", name)
            images[image_key] = _image(
                f"{repo_root}/{service}", service, old_commit, [], "now-120d", base_files, heartbeat_code
            )
        jobs[name] = {
            "image": image_key,
            "service_account": runner,
            "created": "now-1d",
            "executions": [{"created": "now-20h", "succeeded": True}],
        }
    return {
        "images": images,
        "services": services,
        "jobs": jobs,
        "log_volume": log_volume,
        "iam_policy": {
            "bindings": [
                {"role": "roles/datastore.user", "members": [f"serviceAccount:{runner}"]},
                {"role": "roles/logging.logWriter", "members": [f"serviceAccount:{runner}"]},
            ]
        },
        "firestore": {COLLECTION: documents},
    }


def _image(
    repository: str, service: str, commit: str, tags: list[str], created: str, base_files: dict, heartbeat_code: str
) -> dict:
    return {
        "repository": repository,
        "tags": tags,
        "created": created,
        "bulk": True,
        "labels": {
            "org.opencontainers.image.revision": commit,
            "org.opencontainers.image.source": "https://github.com/example/fleet",
        },
        "env": ["PYTHONUNBUFFERED=1", f"COMMIT_SHA={commit}"],
        "base_files": base_files,
        "files": {HEARTBEAT_FILE: heartbeat_code, "/app/service.txt": f"{service} {commit}\n"},
    }


def _log_lines(processor: str, *, boot_error: bool) -> list[dict]:
    lines = [
        {"severity": "INFO", "text": "Booting worker with pid: 7"},
        {"severity": "INFO", "json": {"message": "Application startup complete", "severity": "INFO"}},
        {"severity": "INFO", "text": f"Started heartbeat for {processor}"},
        {"log": "requests", "severity": "INFO", "status": 200},
        {"severity": "INFO", "text": f"Stopped heartbeat for {processor}"},
    ]
    if boot_error:
        lines[:0] = [
            {"severity": "ERROR", "log": "stderr", "text": "Traceback (most recent call last):"},
            {
                "severity": "ERROR",
                "log": "stderr",
                "text": "ImportError: cannot import name 'firestore' from 'google.cloud' (unknown location)",
            },
        ]
    return lines


def inventory(fleet: Fleet, *, project: str, region: str) -> dict:
    """The services.yaml (as data) that declares exactly this fleet, as its team would write it."""
    documents = fleet.services
    return {
        "project": project,
        "region": region,
        "registry": registry(project, region),
        "legacy_registries": ["gcr.io"],
        "patterns": {
            "heartbeat-doc-id": {
                "path": HEARTBEAT_FILE,
                "must_contain": [r"return self\.processor_name"],
                "must_not_contain": [r"f[\"']\{(?:self\.)?processor_name\}_\{"],
            }
        },
        "defaults": {
            "service": {
                "tag": "latest",
                "service_account": RUNNER.format(project=project),
                "roles": ["roles/datastore.user"],
                "code": ["heartbeat-doc-id"],
                "commit_label": "org.opencontainers.image.revision",
                "service_commit_labels": ["commit-sha"],
                "heartbeat_log": {"expected": HEARTBEAT_EXPECTED, "forbidden": HEARTBEAT_FORBIDDEN},
            },
        },
        "heartbeats": {
            "collection": COLLECTION,
            "id_pattern": r"^[A-Z][A-Za-z0-9]*Processor$",
            "bad_id_patterns": ["_None_", r"_20\d\d"],
            "count": {
                "expected_min": documents,
                "expected_max": documents + max(5, documents // 10),
                "p1_above": 2 * documents + 10,
                "p0_above": 10 * documents + 50,
            },
            "max_age_hours": 2,
        },
        "services": [
            {"name": fleet.service_name(index), "processors": [fleet.processor(index)]}
            for index in range(fleet.services)
        ],
        "jobs": [
            {"name": fleet.job_name(index), "runs": fleet.service_name(fleet.runs(index))}
            for index in range(fleet.jobs)
        ],
    }


def inventory_yaml(fleet: Fleet, *, project: str, region: str) -> str:
    header = (
        f"# Generated by deploycheck.sandbox.fleet: {fleet.services} services, {fleet.jobs} jobs"
        + (f", failures {fleet.failures}" if fleet.failures else "")
        + ".\n"
    )
    return header + yaml.safe_dump(inventory(fleet, project=project, region=region), sort_keys=False, width=120)


def write_fleet(
    directory: Path,
    *,
    services: int,
    jobs: int,
    log_lines: int = 20,
    failures: dict | None = None,
    project: str = "fleet-project",
    region: str = "us-central1",
) -> tuple[Path, Path]:
    """A scenario directory holding scenario.yaml (the `fleet:` key) and the matching services.yaml;
    returns (scenario directory, inventory path)."""
    section = {
        "services": services,
        "jobs": jobs,
        "log_lines": log_lines,
        **({"failures": failures} if failures else {}),
    }
    fleet = Fleet.parse(section, str(directory / "scenario.yaml"))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "scenario.yaml").write_text(
        "# A generated fleet; the matching inventory is services.yaml next to this file.\n"
        + yaml.safe_dump({"project": project, "region": region, "fleet": section}, sort_keys=False),
        encoding="utf-8",
    )
    inventory_path = directory / "services.yaml"
    inventory_path.write_text(inventory_yaml(fleet, project=project, region=region), encoding="utf-8")
    return directory, inventory_path

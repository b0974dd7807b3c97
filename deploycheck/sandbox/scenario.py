"""Sandbox scenarios: data describing a stand-in project, expanded to the real APIs' JSON.

A scenario is a directory holding `scenario.yaml` (rendered with Jinja2 first, so a list of
21 jobs can be a loop). Built-in scenarios live next to this file; any directory can be given
by path. Sections:

  project, region       the stand-in project (defaults: the inventory's)
  images                images to build in Python and push to the local registry, in order
                        (a later push of the same tag moves it, as `docker push` does); layers
                        bottom-up: `base_layer_bytes` of random data, `base_files`, `files`;
                        or `oci_layout: DIR` to push an OCI image layout as it is
  services, jobs        compact Cloud Run resources, expanded to v2 REST JSON here (a service's
                        `rollout_after: N` keeps its newest revision rolling out for N seconds;
                        `region:` places one outside the scenario's region)
  resources             captured resources: v2 REST JSON, or what `gcloud run services|revisions|jobs describe
                        --format=json` prints (v1: Knative Service/Revision, run.googleapis.com/v1 Job),
                        inline or as {file: PATH} (one payload or a list); checked and served as v2
                        (knative.py); a payload of another kind or shape is refused with the reason
  iam_policy            the project's IAM policy ({bindings: [{role, members, condition?}]})
  ancestors             the folders and organisation above the project, nearest first, each
                        {name: folders/N | organizations/N, iam_policy?}
  custom_roles          roles.get answers for custom roles ({name: projects/P/roles/ID, permissions,
                        stage?, deleted?}); predefined roles come from iam_roles/
  firestore             documents to seed into the Firestore emulator ({collection: [{id, fields}]})
  logs                  Cloud Logging entries of revisions ({service, revision, at, severity, text | json,
                        log: stdout|stderr|requests}), or LogEntry JSON under `entries` verbatim
  faults                fault proxies to put in front of backends ({api|registry|firestore: [rule, ...]},
                        rules as in faultrules.py); a backend listed with no rules gets an idle proxy
                        that tests reconfigure live
  log_volume            production-sized logs, made when the stand-in starts: [{service, revision,
                        count, from, to, lines: [compact lines as in `logs`, `{n}` = the entry's number]}]
                        gives `count` entries cycling through `lines`, evenly spread from `from` to `to`
  fleet                 a generated fleet ({services: N, jobs: M, log_lines, failures}, see fleet.py):
                        its images, services, jobs, IAM bindings, heartbeat documents and logs are
                        added to the sections above; fleet.inventory() is the matching services.yaml

Compact resources name images by their key in `images`; the expansion fills in what the real
API reports (containerStatuses[].imageDigest, latestReadyRevision, trafficStatuses, ...).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ..errors import InputError
from . import fleet as fleets
from .apiserver import LATER_KEY
from .faultrules import parse_scenario_faults
from .knative import captured_resources
from .logquery import instant
from .logstore import revision_entry
from .state import BUILTIN_DIR, scenario_dir
from .timeutil import RELATIVE_TIME, resolve_time, rfc3339

READY, FAILED = "CONDITION_SUCCEEDED", "CONDITION_FAILED"


@dataclass
class ImageSpec:
    key: str
    repository: str
    tags: list[str]
    created: datetime
    labels: dict[str, str]
    annotations: dict[str, str]
    env: list[str]
    files: dict[str, bytes]
    base_files: dict[str, bytes] = field(default_factory=dict)
    base_layer_bytes: int = 0
    oci_layout: Path | None = None
    bulk: bool = False  # written into the registry's storage before it starts (registry_storage.py)


@dataclass
class Scenario:
    name: str
    directory: Path
    project: str
    region: str
    images: list[ImageSpec]
    services: dict[str, dict]
    jobs: dict[str, dict]
    resources: list[dict]
    iam_bindings: list[dict]
    firestore: dict[str, list[tuple[str, dict]]]
    logs: list[dict]
    now: datetime
    faults: dict[str, list] = field(default_factory=dict)
    ancestors: list[dict] = field(default_factory=list)
    custom_roles: list[dict] = field(default_factory=list)
    log_volume: list[dict] = field(default_factory=list)
    fleet: fleets.Fleet | None = None


def load_scenario(name_or_path: str, *, project: str, region: str, now: datetime | None = None) -> Scenario:
    directory = scenario_dir(name_or_path)
    now = now or datetime.now(timezone.utc)
    path = directory / "scenario.yaml"
    try:
        # Scenarios may import shared definitions from the built-in directory (_common/*.j2).
        loader = jinja2.FileSystemLoader([str(directory), str(BUILTIN_DIR)])
        environment = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        text = environment.from_string(path.read_text(encoding="utf-8")).render(project=project, region=region)
        data = yaml.safe_load(text) or {}
    except (jinja2.TemplateError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    project = data.get("project", project)
    region = data.get("region", region)
    fleet = fleets.Fleet.parse(data["fleet"], str(path)) if data.get("fleet") is not None else None
    if fleet is not None:
        data = _with_fleet(data, fleets.expand(fleet, project=project, region=region), path)
    images = [_image_spec(key, spec, directory, now) for key, spec in (data.get("images") or {}).items()]
    return Scenario(
        name=directory.name,
        directory=directory,
        project=project,
        region=region,
        images=images,
        services=data.get("services") or {},
        jobs=data.get("jobs") or {},
        resources=captured_resources(
            data.get("resources") or [], directory=directory, source=path, project=project, region=region
        ),
        iam_bindings=(data.get("iam_policy") or {}).get("bindings") or [],
        firestore=_firestore_documents(data.get("firestore") or {}, now),
        logs=data.get("logs") or [],
        now=now,
        faults=parse_scenario_faults(data.get("faults"), str(path)),
        log_volume=data.get("log_volume") or [],
        fleet=fleet,
        **_iam_hierarchy(data, path),
    )


def _with_fleet(data: dict, generated: dict, path: Path) -> dict:
    """The scenario's own sections with the fleet's added; a name in both is an error, not a silent pick."""
    merged = dict(data)
    for key in ("images", "services", "jobs"):
        own = data.get(key) or {}
        clash = sorted(set(own) & set(generated[key]))
        if clash:
            raise InputError(f"{path}: {key}: {', '.join(clash[:5])} also generated by `fleet`; rename them")
        merged[key] = {**own, **generated[key]}
    merged["log_volume"] = [*(data.get("log_volume") or []), *generated["log_volume"]]
    collections = dict(data.get("firestore") or {})
    for name, documents in generated["firestore"].items():
        collections[name] = [*(collections.get(name) or []), *documents]
    merged["firestore"] = collections
    policy = dict(data.get("iam_policy") or {})
    policy["bindings"] = [*(policy.get("bindings") or []), *generated["iam_policy"]["bindings"]]
    merged["iam_policy"] = policy
    return merged


def _firestore_documents(collections: dict, now: datetime) -> dict[str, list[tuple[str, dict]]]:
    """{collection: [{id, fields}]} -> {collection: [(id, fields)]}. A field written as a relative
    time ("now-30m") or a YAML timestamp becomes a timestamp; any other string stays a string."""

    def value(field):
        if isinstance(field, datetime) or (isinstance(field, str) and RELATIVE_TIME.match(field)):
            return resolve_time(field, now)
        return field

    return {
        name: [(str(doc["id"]), {k: value(v) for k, v in (doc.get("fields") or {}).items()}) for doc in docs]
        for name, docs in collections.items()
    }


def _files(spec: dict | None, directory: Path) -> dict[str, bytes]:
    """{path: "inline text" | {file: relative/path} | {text: "..."}} -> {path: bytes}"""
    files = {}
    for path, content in (spec or {}).items():
        if isinstance(content, str):
            files[path] = content.encode()
        elif "file" in content:
            files[path] = (directory / content["file"]).read_bytes()
        else:
            files[path] = content["text"].encode()
    return files


def _image_spec(key: str, spec: dict, directory: Path, now: datetime) -> ImageSpec:
    layout = spec.get("oci_layout")
    return ImageSpec(
        key=key,
        repository=spec["repository"],
        tags=list(spec.get("tags") or []),
        created=resolve_time(spec.get("created", "now"), now),
        labels={k: str(v) for k, v in (spec.get("labels") or {}).items()},
        annotations={k: str(v) for k, v in (spec.get("annotations") or {}).items()},
        env=list(spec.get("env") or []),
        files=_files(spec.get("files"), directory),
        base_files=_files(spec.get("base_files"), directory),
        base_layer_bytes=int(spec.get("base_layer_bytes") or 0),
        oci_layout=(directory / layout) if layout else None,
        bulk=bool(spec.get("bulk")),
    )


def _iam_hierarchy(data: dict, path: Path) -> dict:
    """`ancestors` and `custom_roles`, checked: a typo here would silently change what IAM grants."""
    ancestors = data.get("ancestors") or []
    for index, ancestor in enumerate(ancestors):
        name = ancestor.get("name", "") if isinstance(ancestor, dict) else ""
        last = index == len(ancestors) - 1
        if not re.fullmatch(r"folders/\d+" + (r"|organizations/\d+" if last else ""), str(name)):
            raise InputError(
                f"{path}: ancestors[{index}].name {name!r}: expected folders/N"
                + (" or organizations/N" if last else " (only the last ancestor may be an organisation)")
            )
    roles = data.get("custom_roles") or []
    for index, role in enumerate(roles):
        name = role.get("name", "") if isinstance(role, dict) else ""
        if not re.fullmatch(r"(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+", str(name)):
            raise InputError(
                f"{path}: custom_roles[{index}].name {name!r}: expected projects/P/roles/ID or organizations/N/roles/ID"
            )
    return {"ancestors": ancestors, "custom_roles": roles}


def expand_iam_policies(scenario: Scenario) -> dict[str, dict]:
    """Each policy (the project's, its ancestors') as getIamPolicy returns it; a resource without
    one has no policy to read."""
    bindings_of = {f"projects/{scenario.project}": scenario.iam_bindings}
    bindings_of.update({a["name"]: (a.get("iam_policy") or {}).get("bindings") or [] for a in scenario.ancestors})
    policies = {}
    for resource, bindings in bindings_of.items():
        if bindings or resource != f"projects/{scenario.project}":
            etag = hashlib.sha256(repr(bindings).encode()).digest()[:8]
            policies[resource] = {
                "version": 3,
                "etag": base64.b64encode(etag).decode(),
                "bindings": copy.deepcopy(bindings),
            }
    return policies


def expand_iam_resources(scenario: Scenario) -> dict[str, dict]:
    """Resource Manager v3 projects/folders/organizations and IAM v1 custom roles, keyed by the
    name they are read under (the project by id, as `projects.get` accepts it)."""
    chain = [a["name"] for a in scenario.ancestors]
    number = str(int(hashlib.sha256(scenario.project.encode()).hexdigest(), 16))[:12]
    resources = {
        f"projects/{scenario.project}": {
            "name": f"projects/{number}",
            "projectId": scenario.project,
            "state": "ACTIVE",
            "displayName": scenario.project,
            **({"parent": chain[0]} if chain else {}),
        }
    }
    for index, name in enumerate(chain):
        resources[name] = {
            "name": name,
            "state": "ACTIVE",
            "displayName": f"{name.split('/')[0][:-1]} {index}",
            **({"parent": chain[index + 1]} if index + 1 < len(chain) else {}),
        }
    for role in scenario.custom_roles:
        resources[role["name"]] = {
            "name": role["name"],
            "title": role["name"].rsplit("/", 1)[-1],
            "stage": role.get("stage", "GA"),
            "etag": "BwYAAAAAAAA=",
            **({"includedPermissions": list(role["permissions"])} if role.get("permissions") else {}),
            **({"deleted": True} if role.get("deleted") else {}),
        }
    return resources


def expand_log_entries(scenario: Scenario) -> list[dict]:
    """Scenario log lines as Cloud Logging v2 LogEntry JSON of cloud_run_revision resources."""
    entries = []
    for index, line in enumerate(scenario.logs):
        if "entry" in line:
            entries.append(copy.deepcopy(line["entry"]))
            continue
        service = line["service"]
        entries.append(
            revision_entry(
                project=scenario.project,
                region=line.get("region") or scenario.region,
                service=service,
                revision=f"{service}-{line['revision']}",
                timestamp=rfc3339(resolve_time(line.get("at", "now"), scenario.now)),
                insert_id=f"{index:06x}{_uid(service, str(index))[:8]}",
                line=copy.deepcopy(line),
            )
        )
    return entries


def expand_log_volume(scenario: Scenario) -> list[dict]:
    """`log_volume` checked and with its times resolved; the stand-in makes the entries at start
    (logstore.generate_volume), so the state file stays small."""
    specs = []
    for index, item in enumerate(scenario.log_volume):
        where = f"{scenario.directory / 'scenario.yaml'}: log_volume[{index}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a mapping with service, revision, count, from, to, lines")
        missing = [key for key in ("service", "revision", "count", "lines") if key not in item]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}")
        count, lines = item["count"], item["lines"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InputError(f"{where}.count: expected a positive integer, got {count!r}")
        if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
            raise InputError(f"{where}.lines: expected a non-empty list of lines like {{severity: INFO, text: '...'}}")
        first, last = (
            resolve_time(item.get(key, default), scenario.now) for key, default in (("from", "now-24h"), ("to", "now"))
        )
        if last < first:
            raise InputError(f"{where}: `to` ({rfc3339(last)}) is before `from` ({rfc3339(first)})")
        service = str(item["service"])
        specs.append(
            {
                "id": f"volume{index}",
                "project": scenario.project,
                "region": scenario.region,
                "service": service,
                "revision": f"{service}-{item['revision']}",
                "count": count,
                "lines": copy.deepcopy(lines),
                "from_ns": instant(rfc3339(first)),
                "to_ns": instant(rfc3339(last)),
            }
        )
    return specs


# --- expansion to Cloud Run admin v2 REST JSON ------------------------------------------------


def _uid(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _condition(ready: bool | None, when: str, message: str = "") -> dict:
    condition = {"type": "Ready", "lastTransitionTime": when}
    if ready is None:
        condition["state"] = "CONDITION_RECONCILING"
    else:
        condition["state"] = READY if ready else FAILED
    if message:
        condition["message"] = message
    return condition


def expand_resources(scenario: Scenario, pushed: dict[str, str]) -> list[dict]:
    """All Cloud Run resources of the scenario as v2 JSON; `pushed` maps image key -> digest."""

    def image_ref(name: str) -> tuple[str, str | None]:
        """(reference as the deployer gave it, resolved HOST/PATH@digest) for an image key or literal."""
        for image in scenario.images:
            if image.key == name:
                resolved = f"{image.repository}@{pushed[image.key]}"
                return resolved, resolved
        return name, None

    def parent(spec: dict) -> str:
        # A compact resource may name its own region, as an inventory entry may.
        return f"projects/{scenario.project}/locations/{spec.get('region') or scenario.region}"

    resources = []
    for service_name, spec in scenario.services.items():
        resources.extend(_expand_service(scenario, parent(spec), service_name, spec, image_ref))
    for job_name, spec in scenario.jobs.items():
        resources.extend(_expand_job(scenario, parent(spec), job_name, spec, image_ref))
    resources.extend(copy.deepcopy(scenario.resources))
    return resources


def _expand_service(scenario: Scenario, parent: str, name: str, spec: dict, image_ref) -> list[dict]:
    """`rollout_after: N` makes the newest revision reconcile for N seconds after the sandbox
    starts, then become ready: each resource that changes carries its later self under
    LATER_KEY, which the API stand-in serves once the time has come."""
    after_s = spec.get("rollout_after")
    if after_s is None:
        return _expand_service_now(scenario, parent, name, spec, image_ref)
    revisions = [dict(rev) for rev in spec.get("revisions") or []]
    rolling = {**spec, "revisions": revisions[:-1] + [{**revisions[-1], "ready": None}]} if revisions else spec
    settled = {**spec, "revisions": revisions[:-1] + [{**revisions[-1], "ready": True}]} if revisions else spec
    now = _expand_service_now(scenario, parent, name, rolling, image_ref)
    later = {r["name"]: r for r in _expand_service_now(scenario, parent, name, settled, image_ref)}
    for resource in now:
        if later[resource["name"]] != resource:
            resource[LATER_KEY] = {"after_s": float(after_s), "resource": later[resource["name"]]}
    return now


def _expand_service_now(scenario: Scenario, parent: str, name: str, spec: dict, image_ref) -> list[dict]:
    full_name = f"{parent}/services/{name}"
    region = parent.split("/")[3]
    revisions = spec.get("revisions") or []
    if not revisions:
        raise InputError(f"scenario {scenario.name}: service {name} has no revisions")
    out = []
    created_times = []
    for rev in revisions:
        rev_name = f"{name}-{rev['suffix']}"
        created = rfc3339(resolve_time(rev.get("created", "now"), scenario.now))
        created_times.append(created)
        deployed_as, resolved = image_ref(rev["image"])
        container_image = deployed_as if rev.get("pinned") else spec.get("image", deployed_as)
        ready = rev.get("ready", True)
        revision = {
            "name": f"{full_name}/revisions/{rev_name}",
            "uid": _uid(full_name, rev_name),
            "generation": "1",
            "labels": {"cloud.googleapis.com/location": region, **(rev.get("labels") or {})},
            "annotations": {},
            "createTime": created,
            "updateTime": created,
            "launchStage": "GA",
            "service": full_name,
            "scaling": {"minInstanceCount": 0, "maxInstanceCount": 100},
            "timeout": "300s",
            "serviceAccount": rev.get("service_account", spec.get("service_account", "")),
            "containers": [
                {
                    "name": "app",
                    "image": container_image,
                    "env": [{"name": k, "value": str(v)} for k, v in (rev.get("env") or spec.get("env") or {}).items()],
                    "ports": [{"name": "http1", "containerPort": 8080}],
                }
            ],
            "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
            "reconciling": ready is None,
            "conditions": [_condition(ready, created, rev.get("message", ""))],
            "observedGeneration": "1",
            "logUri": f"https://console.cloud.google.com/logs/viewer?project={scenario.project}",
            "etag": f'"{_uid(rev_name)[:12]}"',
        }
        if resolved and ready is not None and not rev.get("no_digest"):
            revision["containerStatuses"] = [{"name": "app", "imageDigest": resolved}]
        out.append(revision)

    short_names = [f"{name}-{rev['suffix']}" for rev in revisions]
    ready_names = [n for n, rev in zip(short_names, revisions, strict=True) if rev.get("ready", True) is True]
    latest_created = short_names[-1]
    latest_ready = ready_names[-1] if ready_names else ""
    traffic_spec = spec.get("traffic") or [{"latest": True, "percent": 100}]
    traffic, statuses = [], []
    for target in traffic_spec:
        if target.get("latest"):
            traffic.append({"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": target["percent"]})
            statuses.append({"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": target["percent"]})
        else:
            revision_name = f"{name}-{target['revision']}"
            entry = {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": revision_name}
            if target.get("percent"):
                entry["percent"] = target["percent"]
            if target.get("tag"):
                entry["tag"] = target["tag"]
            traffic.append(entry)
            status = dict(entry)
            if target.get("tag"):
                status["uri"] = f"https://{target['tag']}---{name}-756957797294.{region}.run.app"
            statuses.append(status)
    newest_ready = revisions[-1].get("ready", True)
    generation = str(len(revisions))
    service: dict[str, Any] = {
        "name": full_name,
        "uid": _uid(full_name),
        "generation": generation,
        "labels": {k: str(v) for k, v in (spec.get("labels") or {}).items()},
        "annotations": {},
        "createTime": created_times[0],
        "updateTime": created_times[-1],
        "creator": "deployer@nba-props-platform.iam.gserviceaccount.com",
        "lastModifier": "deployer@nba-props-platform.iam.gserviceaccount.com",
        "ingress": "INGRESS_TRAFFIC_ALL",
        "launchStage": "GA",
        "template": {
            "serviceAccount": spec.get("service_account", ""),
            "containers": [{"name": "app", "image": spec.get("image") or out[-1]["containers"][0]["image"]}],
            "maxInstanceRequestConcurrency": 80,
        },
        "traffic": traffic,
        "observedGeneration": generation,
        "terminalCondition": _condition(
            True if newest_ready is True else newest_ready, created_times[-1], revisions[-1].get("message", "")
        ),
        "conditions": [],
        "latestReadyRevision": f"{full_name}/revisions/{latest_ready}" if latest_ready else "",
        "latestCreatedRevision": f"{full_name}/revisions/{latest_created}",
        "trafficStatuses": statuses,
        "uri": f"https://{name}-756957797294.{region}.run.app",
        "reconciling": newest_ready is None,
        "etag": f'"{_uid(full_name, generation)[:12]}"',
    }
    # The API resolves LATEST to the latest ready revision when it reports statuses.
    for status in service["trafficStatuses"]:
        if status["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST":
            status["revision"] = latest_ready
    return [_merge(service, spec.get("raw") or {}), *out]


def _expand_job(scenario: Scenario, parent: str, name: str, spec: dict, image_ref) -> list[dict]:
    full_name = f"{parent}/jobs/{name}"
    deployed_as, _ = image_ref(spec["image"])
    created = rfc3339(resolve_time(spec.get("created", "now"), scenario.now))
    executions: list[dict[str, Any]] = []
    for index, execution in enumerate(spec.get("executions") or [], start=1):
        started = rfc3339(resolve_time(execution.get("created", "now"), scenario.now))
        succeeded = execution.get("succeeded", True)
        exec_name = f"{name}-{execution.get('suffix', f'{index:05d}'[-5:])}"
        executions.append(
            {
                "name": f"{full_name}/executions/{exec_name}",
                "uid": _uid(full_name, exec_name),
                "generation": "1",
                "createTime": started,
                "startTime": started,
                "completionTime": started,
                "launchStage": "GA",
                "job": name,
                "parallelism": 1,
                "taskCount": 1,
                "template": {"containers": [{"image": deployed_as}], "maxRetries": 3, "timeout": "600s"},
                "conditions": [
                    {"type": "Completed", "state": READY if succeeded else FAILED, "lastTransitionTime": started}
                ],
                "succeededCount": 1 if succeeded else 0,
                "failedCount": 0 if succeeded else 1,
                "observedGeneration": "1",
                "etag": f'"{_uid(exec_name)[:12]}"',
            }
        )
    job: dict[str, Any] = {
        "name": full_name,
        "uid": _uid(full_name),
        "generation": "1",
        "labels": {k: str(v) for k, v in (spec.get("labels") or {}).items()},
        "createTime": created,
        "updateTime": created,
        "creator": "deployer@nba-props-platform.iam.gserviceaccount.com",
        "launchStage": "GA",
        "template": {
            "taskCount": 1,
            "template": {
                "containers": [{"name": "job", "image": deployed_as}],
                "maxRetries": 3,
                "timeout": "600s",
                "serviceAccount": spec.get("service_account", ""),
            },
        },
        "observedGeneration": "1",
        "terminalCondition": {"type": "Ready", "state": READY, "lastTransitionTime": created},
        "executionCount": len(executions),
        "reconciling": False,
        "etag": f'"{_uid(full_name)[:12]}"',
    }
    if executions:
        last = executions[-1]
        job["latestCreatedExecution"] = {
            "name": last["name"].rsplit("/", 1)[-1],
            "createTime": last["createTime"],
            "completionTime": last["completionTime"],
            "completionStatus": "EXECUTION_SUCCEEDED" if last["succeededCount"] else "EXECUTION_FAILED",
        }
    return [_merge(job, spec.get("raw") or {}), *executions]


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged

"""Captured Cloud Run resources in a scenario: v2 REST JSON, and what `gcloud run services|revisions|
jobs describe --format=json` prints (the Cloud Run admin v1 API: Knative-shaped `serving.knative.dev/v1`
Service and Revision, `run.googleapis.com/v1` Job), so a team can replay its own incident from output
it captured. Each payload is checked for the shape the checks rely on and turned into the v2 JSON the
API stand-in serves; a payload of another kind or shape is refused naming the file, the resource and
what was expected.

v1 and v2 describe the same resources in different words:

  v1 (Knative)                                   v2 (REST)
  metadata.name, .labels, .creationTimestamp      name (projects/P/locations/R/...), labels, createTime
  metadata.labels[cloud.googleapis.com/location]  the R in the name
  spec.template.spec.containers, serviceAccountName   template.containers, template.serviceAccount
  spec.traffic / status.traffic                   traffic / trafficStatuses ({type, revision, percent, tag})
  status.latestReadyRevisionName, ...Created...   latestReadyRevision, latestCreatedRevision (full names)
  status.conditions {type, status: True|False|Unknown}   terminalCondition / conditions {type, state}
  Revision status.imageDigest, containerStatuses  containerStatuses [{name, imageDigest}]
  Revision metadata.labels[serving.knative.dev/service]  service (full name)
  Job spec.template.spec.template.spec            template.template (containers, maxRetries, timeout, ...)
  Job status.executionCount, latestCreatedExecution   executionCount, latestCreatedExecution
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..cloudrun import revision_shape_problems
from ..errors import InputError

SERVING_V1 = "serving.knative.dev/v1"
RUN_V1 = "run.googleapis.com/v1"
KNOWN_V1_KINDS = {(SERVING_V1, "Service"), (SERVING_V1, "Revision"), (RUN_V1, "Job")}
EXPECTED_KINDS = (
    f"a {SERVING_V1} Service or Revision, or a {RUN_V1} Job (what `gcloud run services|revisions|"
    "jobs describe --format=json` prints), or Cloud Run v2 REST JSON (a `name` projects/P/locations/R/...)"
)
# System labels and annotations v1 shows that v2 keeps in fields of their own (or drops).
SYSTEM_PREFIXES = (
    "cloud.googleapis.com/",
    "run.googleapis.com/",
    "serving.knative.dev/",
    "client.knative.dev/",
    "autoscaling.knative.dev/",
    "networking.knative.dev/",
)
LOCATION_LABEL = "cloud.googleapis.com/location"
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
V2_NAME_RE = re.compile(
    r"^projects/[^/]+/locations/[^/]+/(?P<collection>services|jobs)/(?P<parent>[^/]+)"
    r"(?:/(?P<child_collection>revisions|executions|tasks)/(?P<child>[^/]+))?$"
)
CONDITION_STATES = {"True": "CONDITION_SUCCEEDED", "False": "CONDITION_FAILED", "Unknown": "CONDITION_RECONCILING"}
COMPLETION_STATUSES = {
    "EXECUTION_SUCCEEDED",
    "EXECUTION_FAILED",
    "EXECUTION_RUNNING",
    "EXECUTION_PENDING",
    "EXECUTION_CANCELLED",
}


class Refused(Exception):
    """What is wrong with one payload, and what was expected (turned into an InputError with its place)."""


def captured_resources(items: Any, *, directory: Path, source: Path, project: str, region: str) -> list[dict]:
    """The scenario's `resources:` list as v2 JSON. An item is a payload (v1 or v2), a list of them
    (`gcloud ... list --format=json`), or `{file: PATH}` naming a JSON or YAML file (relative to the
    scenario directory) that holds either."""
    if not isinstance(items, list):
        raise InputError(f"{source}: resources: expected a list of Cloud Run resources, got {type(items).__name__}")
    converted = []
    for index, item in enumerate(items):
        where = f"{source}: resources[{index}]"
        if isinstance(item, dict) and set(item) == {"file"}:
            path = directory / str(item["file"])
            payload, where = _read_payload_file(path, where), str(path)
        else:
            payload = item
        payloads = payload if isinstance(payload, list) else [payload]
        for position, one in enumerate(payloads):
            place = f"{where}[{position}]" if isinstance(payload, list) else where
            try:
                converted.append(to_v2(one, project=project, region=region))
            except Refused as exc:
                raise InputError(f"{place}: {exc}") from None
    return converted


def _read_payload_file(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)  # `--format=yaml` output, or a JSON file with a syntax error
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: neither JSON nor YAML: {exc}") from None


def to_v2(payload: Any, *, project: str, region: str) -> dict:
    """One payload as v2 JSON, checked; Refused says why not."""
    if not isinstance(payload, dict):
        raise Refused(f"a {type(payload).__name__}, not a resource (expected {EXPECTED_KINDS})")
    if "apiVersion" in payload or "kind" in payload:
        kind = (payload.get("apiVersion"), payload.get("kind"))
        if kind not in KNOWN_V1_KINDS:
            raise Refused(f"{kind[0]} {kind[1]} is not a resource the sandbox replays (expected {EXPECTED_KINDS})")
        reader = _V1(payload, kind)
        converted = {"Service": reader.service, "Revision": reader.revision, "Job": reader.job}[kind[1]](
            project, region
        )
    elif isinstance(payload.get("name"), str) and payload["name"].startswith("projects/"):
        converted = payload
    else:
        raise Refused(
            f"neither Cloud Run v1 (no apiVersion and kind) nor v2 (no name projects/P/locations/R/...) "
            f"(expected {EXPECTED_KINDS})"
        )
    problems = v2_shape_problems(converted)
    if problems:
        what = "v2 payload" if converted is payload else f"{payload.get('kind')} as converted to v2"
        raise Refused(f"the {what} {converted.get('name', '?')!r} cannot be served: {'; '.join(problems)}")
    return converted


def v2_shape_problems(resource: dict) -> list[str]:
    """What the checks would trip over in a v2 resource (empty: nothing)."""
    match = V2_NAME_RE.match(str(resource.get("name", "")))
    if not match:
        return [
            f"name {resource.get('name')!r} is not projects/P/locations/R/(services|jobs)/NAME[/revisions|executions/NAME]"
        ]
    collection, child = match.group("collection"), match.group("child_collection")
    if child == "revisions":
        return revision_shape_problems(resource, match.group("child"))
    if child:
        return []  # executions and tasks: the checks read only the job's own summary of them
    template = resource.get("template")
    if collection == "jobs":
        template = template.get("template") if isinstance(template, dict) else None
    containers = template.get("containers") if isinstance(template, dict) else None
    where = "template.template.containers" if collection == "jobs" else "template.containers"
    if not isinstance(containers, list) or not containers:
        return [f"{where} lists no containers (expected at least one, with an image)"]
    return [
        f"{where}[{index}] has no image"
        for index, container in enumerate(containers)
        if not isinstance(container, dict) or not isinstance(container.get("image"), str) or not container["image"]
    ]


class _V1:
    """Reads one v1 payload, refusing on the first field the checks need that is missing or wrong."""

    def __init__(self, payload: dict, kind: tuple[str, str]):
        self.payload = payload
        self.kind = f"{kind[0]} {kind[1]}"
        self.name = ""
        metadata = self._mapping(payload, "metadata", "the resource's metadata (name, labels, creationTimestamp)")
        name = metadata.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise self._fail(
                "metadata.name",
                f"{name!r} is not a Cloud Run name",
                "lowercase letters, digits and hyphens, starting with a letter",
            )
        self.name = name
        self.metadata = metadata
        self.labels = self._string_map(metadata, "labels", "metadata.labels")
        self.annotations = self._string_map(metadata, "annotations", "metadata.annotations")

    # --- field readers ---------------------------------------------------------------------------
    def _fail(self, path: str, problem: str, expected: str) -> Refused:
        named = f"{self.kind} {self.name!r}" if self.name else self.kind
        return Refused(f"{named}: {path} {problem} (expected {expected})")

    def _mapping(self, node: Any, key: str, expected: str, path: str | None = None, required: bool = True) -> dict:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self._fail(path or key, "is missing" if value is None else f"is a {type(value).__name__}", expected)
        return value

    def _string_map(self, node: dict, key: str, path: str) -> dict[str, str]:
        value = node.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(path, "is not a mapping of strings", "key: value strings")
        return dict(value)

    def _time(self, value: Any, path: str, required: bool = False) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise self._fail(
                path,
                "is missing" if value is None else f"is a {type(value).__name__}",
                "an RFC 3339 timestamp, e.g. 2025-12-30T05:02:11.123456Z",
            )
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self._fail(path, f"{value!r} is not a timestamp", "an RFC 3339 timestamp") from None
        return value

    def _int(self, value: Any, path: str, default: int = 0) -> int:
        if value is None:
            return default
        # gcloud prints some counts as strings and JSON numbers may come back as floats (1.0).
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._fail(path, f"{value!r} is not a number", "a whole number") from None
        if number != int(number) or isinstance(value, bool):
            raise self._fail(path, f"{value!r} is not a whole number", "a whole number")
        return int(number)

    def _containers(self, spec: dict, path: str) -> list[dict]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise self._fail(
                path,
                "is missing" if containers is None else "lists no container",
                "the containers the revision runs, each with an image",
            )
        out = []
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not isinstance(container.get("image"), str) or not container["image"]:
                raise self._fail(f"{path}[{index}].image", "is missing", "the container's image reference")
            out.append(_container(container, index))
        return out

    def _conditions(self, status: dict, path: str) -> list[dict]:
        conditions = status.get("conditions") or []
        if not isinstance(conditions, list):
            raise self._fail(path, "is not a list", "a list of {type, status, message}")
        out = []
        for index, condition in enumerate(conditions):
            where = f"{path}[{index}]"
            if not isinstance(condition, dict) or not isinstance(condition.get("type"), str):
                raise self._fail(f"{where}.type", "is missing", "a condition type, e.g. Ready")
            given = condition.get("status")
            state = CONDITION_STATES.get(given) if isinstance(given, str) else None
            if state is None:
                raise self._fail(f"{where}.status", f"is {condition.get('status')!r}", "True, False or Unknown")
            converted = {"type": condition["type"], "state": state}
            if condition.get("message"):
                converted["message"] = str(condition["message"])
            when = self._time(condition.get("lastTransitionTime"), f"{where}.lastTransitionTime")
            if when:
                converted["lastTransitionTime"] = when
            out.append(converted)
        return out

    def _region(self, default: str) -> str:
        return self.labels.get(LOCATION_LABEL) or default

    def _user(self, mapping: dict[str, str]) -> dict[str, str]:
        return {key: value for key, value in mapping.items() if not key.startswith(SYSTEM_PREFIXES)}

    def _status(self) -> dict:
        return self._mapping(
            self.payload,
            "status",
            "what `describe` prints, status included (this looks like a spec "
            "for `gcloud run ... replace`, which says nothing about what runs)",
        )

    # --- the three kinds -------------------------------------------------------------------------
    def service(self, project: str, default_region: str) -> dict:
        spec = self._mapping(self.payload, "spec", "the service's spec (template, traffic)")
        template = self._mapping(spec, "template", "the revision template", "spec.template")
        template_spec = self._mapping(template, "spec", "the revision template's spec", "spec.template.spec")
        template_meta = self._mapping(template, "metadata", "", "spec.template.metadata", required=False)
        status = self._status()
        region = self._region(default_region)
        full = f"projects/{project}/locations/{region}/services/{self.name}"
        created = self._time(self.metadata.get("creationTimestamp"), "metadata.creationTimestamp", required=True)
        conditions = self._conditions(status, "status.conditions")
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        if ready is None:
            raise self._fail("status.conditions", "has no Ready condition", "the service's Ready condition")
        latest_created = status.get("latestCreatedRevisionName")
        if not isinstance(latest_created, str) or not latest_created:
            raise self._fail("status.latestCreatedRevisionName", "is missing", "the newest revision's name")
        latest_ready = status.get("latestReadyRevisionName") or ""
        generation = self._int(self.metadata.get("generation"), "metadata.generation", 1)
        observed = self._int(status.get("observedGeneration"), "status.observedGeneration", generation)
        template_out: dict[str, Any] = {"containers": self._containers(template_spec, "spec.template.spec.containers")}
        if template_spec.get("serviceAccountName"):
            template_out["serviceAccount"] = str(template_spec["serviceAccountName"])
        if template_meta.get("name"):
            template_out["revision"] = str(template_meta["name"])
        service = {
            "name": full,
            "uid": str(self.metadata.get("uid", "")),
            "generation": str(generation),
            "labels": self._user(self.labels),
            "annotations": self._user(self.annotations),
            "createTime": created,
            "updateTime": ready.get("lastTransitionTime", created),
            "creator": self.annotations.get("serving.knative.dev/creator", ""),
            "lastModifier": self.annotations.get("serving.knative.dev/lastModifier", ""),
            "launchStage": "GA",
            "template": template_out,
            "traffic": self._traffic(spec.get("traffic"), "spec.traffic", statuses=False),
            "observedGeneration": str(observed),
            "terminalCondition": ready,
            "conditions": [c for c in conditions if c["type"] != "Ready"],
            "latestReadyRevision": f"{full}/revisions/{latest_ready}" if latest_ready else "",
            "latestCreatedRevision": f"{full}/revisions/{latest_created}",
            "trafficStatuses": self._traffic(status.get("traffic"), "status.traffic", statuses=True),
            "uri": str(status.get("url") or (status.get("address") or {}).get("url") or ""),
            "reconciling": ready["state"] == "CONDITION_RECONCILING" or observed != generation,
        }
        if not service["trafficStatuses"]:
            raise self._fail("status.traffic", "is empty", "where traffic goes, e.g. [{revisionName, percent}]")
        return service

    def _traffic(self, targets: Any, path: str, *, statuses: bool) -> list[dict]:
        if targets is None:
            return []
        if not isinstance(targets, list):
            raise self._fail(path, "is not a list", "a list of {revisionName | latestRevision, percent, tag}")
        out = []
        for index, target in enumerate(targets):
            where = f"{path}[{index}]"
            if not isinstance(target, dict):
                raise self._fail(where, "is not a mapping", "{revisionName | latestRevision, percent, tag}")
            latest = target.get("latestRevision") is True
            revision = target.get("revisionName")
            if not latest and not (isinstance(revision, str) and revision):
                raise self._fail(
                    where, "names no revision and is not latestRevision", "revisionName or latestRevision: true"
                )
            converted: dict[str, Any] = {
                "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" if latest else "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
            }
            if revision and (statuses or not latest):
                converted["revision"] = revision
            percent = self._int(target.get("percent"), f"{where}.percent")
            if not 0 <= percent <= 100:
                raise self._fail(f"{where}.percent", f"is {percent}", "0 to 100")
            if percent:
                converted["percent"] = percent
            if target.get("tag"):
                converted["tag"] = str(target["tag"])
            if statuses and target.get("url"):
                converted["uri"] = str(target["url"])
            out.append(converted)
        return out

    def revision(self, project: str, default_region: str) -> dict:
        spec = self._mapping(self.payload, "spec", "the revision's spec (containers, serviceAccountName)")
        status = self._status()
        service = self.labels.get("serving.knative.dev/service")
        if not service:
            raise self._fail(
                "metadata.labels",
                "has no serving.knative.dev/service",
                "the service the revision belongs to, as `describe` prints it",
            )
        region = self._region(default_region)
        service_full = f"projects/{project}/locations/{region}/services/{service}"
        containers = self._containers(spec, "spec.containers")
        created = self._time(self.metadata.get("creationTimestamp"), "metadata.creationTimestamp", required=True)
        conditions = self._conditions(status, "status.conditions")
        if not any(c["type"] == "Ready" for c in conditions):
            raise self._fail("status.conditions", "has no Ready condition", "the revision's Ready condition")
        revision = {
            "name": f"{service_full}/revisions/{self.name}",
            "uid": str(self.metadata.get("uid", "")),
            "generation": str(self._int(self.metadata.get("generation"), "metadata.generation", 1)),
            "labels": self._user(self.labels),
            "annotations": self._user(self.annotations),
            "createTime": created,
            "updateTime": created,
            "launchStage": "GA",
            "service": service_full,
            "serviceAccount": str(spec.get("serviceAccountName") or ""),
            "containers": containers,
            "conditions": conditions,
            "observedGeneration": str(self._int(status.get("observedGeneration"), "status.observedGeneration", 1)),
            "reconciling": any(c["type"] == "Ready" and c["state"] == "CONDITION_RECONCILING" for c in conditions),
        }
        digests = self._digests(status, containers)
        if digests:
            revision["containerStatuses"] = digests
        if status.get("logUrl"):
            revision["logUri"] = str(status["logUrl"])
        return revision

    def _digests(self, status: dict, containers: list[dict]) -> list[dict]:
        """v1 reports the resolved digest as status.imageDigest (the first container) and, with
        several containers, status.containerStatuses[{name, imageDigest}]."""
        listed = status.get("containerStatuses")
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
                raise self._fail("status.containerStatuses", "is not a list of mappings", "[{name, imageDigest}]")
            return [
                {"name": str(item.get("name", "")), "imageDigest": str(item["imageDigest"])}
                for item in listed
                if item.get("imageDigest")
            ]
        digest = status.get("imageDigest")
        if digest is None:
            return []
        if not isinstance(digest, str) or "sha256:" not in digest:
            raise self._fail("status.imageDigest", f"is {digest!r}", "HOST/PATH@sha256:... as the API resolved it")
        return [{"name": containers[0]["name"], "imageDigest": digest}]

    def job(self, project: str, default_region: str) -> dict:
        spec = self._mapping(self.payload, "spec", "the job's spec (template)")
        execution = self._mapping(spec, "template", "the execution template", "spec.template")
        execution_spec = self._mapping(execution, "spec", "the execution template's spec", "spec.template.spec")
        task = self._mapping(execution_spec, "template", "the task template", "spec.template.spec.template")
        task_spec = self._mapping(
            task, "spec", "the task template's spec (containers)", "spec.template.spec.template.spec"
        )
        status = self._status()
        region = self._region(default_region)
        full = f"projects/{project}/locations/{region}/jobs/{self.name}"
        created = self._time(self.metadata.get("creationTimestamp"), "metadata.creationTimestamp", required=True)
        conditions = self._conditions(status, "status.conditions")
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        timeout = task_spec.get("timeoutSeconds")
        task_out = {
            "containers": self._containers(task_spec, "spec.template.spec.template.spec.containers"),
            "maxRetries": self._int(task_spec.get("maxRetries"), "spec.template.spec.template.spec.maxRetries", 3),
            "serviceAccount": str(task_spec.get("serviceAccountName") or ""),
        }
        if timeout is not None:
            task_out["timeout"] = f"{self._int(timeout, 'spec.template.spec.template.spec.timeoutSeconds')}s"
        job = {
            "name": full,
            "uid": str(self.metadata.get("uid", "")),
            "generation": str(self._int(self.metadata.get("generation"), "metadata.generation", 1)),
            "labels": self._user(self.labels),
            "annotations": self._user(self.annotations),
            "createTime": created,
            "updateTime": created,
            "creator": self.annotations.get("serving.knative.dev/creator", ""),
            "launchStage": "GA",
            "template": {
                "taskCount": self._int(execution_spec.get("taskCount"), "spec.template.spec.taskCount", 1),
                "parallelism": self._int(execution_spec.get("parallelism"), "spec.template.spec.parallelism"),
                "template": task_out,
            },
            "observedGeneration": str(self._int(status.get("observedGeneration"), "status.observedGeneration", 1)),
            "conditions": [c for c in conditions if c["type"] != "Ready"],
            "executionCount": self._int(status.get("executionCount"), "status.executionCount"),
            "reconciling": bool(ready and ready["state"] == "CONDITION_RECONCILING"),
        }
        if ready:
            job["terminalCondition"] = ready
        latest = status.get("latestCreatedExecution")
        if latest is not None:
            job["latestCreatedExecution"] = self._execution_reference(latest)
        return job

    def _execution_reference(self, latest: Any) -> dict:
        path = "status.latestCreatedExecution"
        if not isinstance(latest, dict) or not isinstance(latest.get("name"), str) or not latest["name"]:
            raise self._fail(f"{path}.name", "is missing", "the execution's name")
        reference = {"name": latest["name"]}
        for v1_key, v2_key in (("creationTimestamp", "createTime"), ("completionTimestamp", "completionTime")):
            when = self._time(latest.get(v1_key), f"{path}.{v1_key}")
            if when:
                reference[v2_key] = when
        if latest.get("completionStatus") in COMPLETION_STATUSES:
            reference["completionStatus"] = latest["completionStatus"]
        return reference


def _container(container: dict, index: int) -> dict:
    """A v1 container in v2 words: env values from secrets become valueSource.secretKeyRef."""
    out: dict[str, Any] = {"name": str(container.get("name") or f"container-{index}"), "image": container["image"]}
    for key in ("command", "args"):
        if isinstance(container.get(key), list):
            out[key] = [str(item) for item in container[key]]
    env = []
    for item in container.get("env") or []:
        if not isinstance(item, dict) or "name" not in item:
            continue
        secret = (
            ((item.get("valueFrom") or {}).get("secretKeyRef") or {}) if isinstance(item.get("valueFrom"), dict) else {}
        )
        if secret:
            env.append(
                {
                    "name": item["name"],
                    "valueSource": {
                        "secretKeyRef": {
                            "secret": str(secret.get("name", "")),
                            "version": str(secret.get("key", "latest")),
                        }
                    },
                }
            )
        else:
            env.append({"name": item["name"], "value": str(item.get("value", ""))})
    if env:
        out["env"] = env
    ports = [
        {"name": str(port.get("name", "http1")), "containerPort": int(float(port["containerPort"]))}
        for port in container.get("ports") or []
        if isinstance(port, dict) and "containerPort" in port
    ]
    if ports:
        out["ports"] = ports
    return out

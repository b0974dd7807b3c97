"""Cloud Run admin v2 reader: services, revisions, jobs, executions as observed state.

Services, jobs and executions go through the google-cloud-run client (REST transport, so the
sandbox stand-in and run.googleapis.com are spoken to the same way). Revisions are read as raw
JSON: google-cloud-run's Revision message has no `containerStatuses`, and its REST transport
drops unknown fields, which would lose the digest the revision actually runs (DESIGN "Facts").
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ObservationError
from .gcall import ApiCounter, CallPolicy, call, pin_environment, raise_for_status, transport_session
from .imageref import DIGEST_RE, ImageRef, ImageRefError, digest_of
from .lazy import MadeOnFirstUse
from .paging import Page, guarded_pages

DEFAULT_ENDPOINT = "https://run.googleapis.com"
API = "Cloud Run"
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 1000  # 100,000 resources in one region: far past Cloud Run's quotas


@dataclass(frozen=True)
class TrafficShare:
    revision: str
    percent: int
    tag: str = ""
    latest: bool = False


@dataclass(frozen=True)
class ServiceState:
    name: str
    uri: str
    generation: int
    observed_generation: int
    reconciling: bool
    latest_ready_revision: str
    latest_created_revision: str
    traffic: tuple[TrafficShare, ...]
    labels: dict[str, str]
    template_image: str
    terminal_state: str
    terminal_message: str
    template_service_account: str = ""  # the account the template names; "" for the default compute account

    @property
    def serving_revisions(self) -> list[str]:
        """Revisions that receive a share of traffic, largest share first."""
        shares: dict[str, int] = {}
        for share in self.traffic:
            if share.percent > 0:
                shares[share.revision] = shares.get(share.revision, 0) + share.percent
        return sorted(shares, key=lambda name: -shares[name])


@dataclass(frozen=True)
class ContainerState:
    name: str
    image: str
    digest: str | None  # what the revision runs; None when the API reported no digest


@dataclass(frozen=True)
class RevisionState:
    name: str
    service: str
    create_time: datetime | None
    containers: tuple[ContainerState, ...]
    ready_state: str
    ready_message: str
    service_account: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def container_for(self, repository: str) -> ContainerState | None:
        """The container running an image of `repository` (HOST/PATH), if any."""
        for container in self.containers:
            try:
                if ImageRef.parse(container.image).repository == repository:
                    return container
            except ImageRefError:
                continue
        return None


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name else ""


def _timestamp(value) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))  # 3.11 takes "Z" and nanoseconds (truncated)


def _condition_state(condition) -> str:
    from google.cloud import run_v2

    state = condition.state if condition else 0
    return run_v2.Condition.State(state).name if isinstance(state, int) else str(state)


def revision_shape_problems(data: object, expected_name: str | None = None) -> list[str]:
    """What is wrong with a Revision payload for the rules to trust it (empty: nothing)."""
    if not isinstance(data, dict):
        return [f"the body is {type(data).__name__}, not a JSON object"]
    problems = []
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append("it has no name")
    elif expected_name and _short(name) != expected_name:
        problems.append(f"it is named {_short(name)!r}, not {expected_name!r}")
    containers = data.get("containers")
    if not isinstance(containers, list) or not containers:
        problems.append("it lists no containers")
    else:
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not isinstance(container.get("image"), str) or not container["image"]:
                problems.append(f"containers[{index}] has no image")
            elif not _printable(container["image"]):
                problems.append(f"containers[{index}].image {container['image']!r} has characters no image name has")
    for key in ("containerStatuses", "conditions"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append(f"{key} is not a list of objects")
    for key in ("service", "serviceAccount", "createTime"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"{key} is not a string")
    if isinstance(data.get("createTime"), str):
        try:
            _timestamp(data["createTime"])
        except ValueError:
            problems.append(f"createTime {data['createTime']!r} is not a timestamp")
    return problems


def _printable(text: str) -> bool:
    return text.isprintable() and "\ufffd" not in text


def parse_revision(data: dict) -> RevisionState:
    """A v2 Revision JSON (as the REST API sends it) -> RevisionState, digests resolved per DESIGN.

    The caller has checked `revision_shape_problems(data)` is empty."""
    statuses = {status.get("name", ""): status.get("imageDigest", "") for status in data.get("containerStatuses", [])}
    containers = []
    for index, container in enumerate(data.get("containers", [])):
        image = container.get("image", "")
        digest = digest_of(image) if "@" in image else None
        if digest is None:
            reported = statuses.get(container.get("name", ""), "")
            if not reported and len(statuses) == 1 and len(data.get("containers", [])) == 1:
                reported = next(iter(statuses.values()))
            digest = digest_of(reported) if reported else None
        containers.append(ContainerState(name=container.get("name", f"container-{index}"), image=image, digest=digest))
    ready: dict = next((c for c in data.get("conditions", []) if c.get("type") == "Ready"), {})
    env = {
        item["name"]: item.get("value", "")
        for c in data.get("containers", [])
        for item in c.get("env", [])
        if "name" in item
    }
    return RevisionState(
        name=_short(data.get("name", "")),
        service=_short(data.get("service", "")),
        create_time=_timestamp(data.get("createTime")),
        containers=tuple(containers),
        ready_state=ready.get("state", "STATE_UNSPECIFIED"),
        ready_message=ready.get("message", ""),
        service_account=data.get("serviceAccount", ""),
        env=env,
        labels=dict(data.get("labels", {})),
    )


@dataclass(frozen=True)
class JobState:
    name: str
    image: str  # the template's image reference as deployed: jobs carry no resolved digest
    service_account: str
    labels: dict[str, str]
    create_time: datetime | None
    update_time: datetime | None
    execution_count: int
    last_execution: str
    last_execution_time: datetime | None


def _clients_first(method):
    """Make the reader's clients (importing the client library) before the method's calls start:
    a call's --deadline must time the exchange, not an import on a busy machine."""

    @functools.wraps(method)
    def reading(self, *args, **kwargs):
        self._clients.get()
        return method(self, *args, **kwargs)

    return reading


class CloudRunReader:
    """Read-only access to one project's Cloud Run resources in one region."""

    def __init__(
        self, project: str, region: str, credentials, *, endpoint: str | None = None, policy: CallPolicy | None = None
    ):
        self.project = project
        self.region = region
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.policy = policy or CallPolicy()
        self.calls = ApiCounter()
        self._clients = MadeOnFirstUse(functools.partial(_RunClients.make, credentials, self.endpoint))

    def prepare(self) -> None:
        """Make the clients now (importing the client library), if no read has yet."""
        self._clients.get()

    @property
    def _run(self) -> _RunClients:
        """The clients, made on first use (deploycheck.lazy): the reader is handed out at once."""
        return self._clients.get()

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @_clients_first
    def service(self, name: str) -> ServiceState:
        return _service_state(self._get("service", name, self._run.services.get_service))

    @_clients_first
    def job(self, name: str) -> JobState:
        return _job_state(self._get("job", name, self._run.jobs.get_job))

    def _get(self, kind: str, name: str, get) -> Any:
        """services.get / jobs.get of `name`, checked to answer for that resource."""
        full_name = f"{self.parent}/{kind}s/{name}"
        what = f"Cloud Run {kind} {name}"
        resource = call(
            what,
            lambda: get(name=full_name, retry=None, timeout=self.policy.attempt_timeout),
            policy=self.policy,
            permission=f"run.{kind}s.get",
            counter=self.calls,
            method=f"{kind}s.get",
            api=API,
        )
        _require_identity(resource.name, full_name, f"{kind}s.get", what)
        return resource

    def service_names(self) -> list[str]:
        """Every service in the region: one list call per page of 100, not one call per name."""
        return [
            name
            for name, _ in self._listed(
                "services", self._run.services.list_services, self._run.run_v2.ListServicesRequest
            )
        ]

    def job_names(self) -> list[str]:
        return [name for name, _ in self._listed("jobs", self._run.jobs.list_jobs, self._run.run_v2.ListJobsRequest)]

    def services(self) -> list[ServiceState]:
        """Every service in the region as services.get would answer each (template, traffic,
        labels, conditions): one list call per page, no get per service."""
        return [
            _service_state(item)
            for _, item in self._listed(
                "services", self._run.services.list_services, self._run.run_v2.ListServicesRequest
            )
        ]

    def jobs(self) -> list[JobState]:
        """Every job in the region as jobs.get would answer each (template image, executions)."""
        return [
            _job_state(item)
            for _, item in self._listed("jobs", self._run.jobs.list_jobs, self._run.run_v2.ListJobsRequest)
        ]

    @_clients_first
    def _listed(self, kind: str, list_method, request_type) -> list[tuple[str, object]]:
        """(short name, item) of one collection, page by page, through the page guard; a nameless
        item, or one outside the region's collection, is an error; an item listed twice counts once."""
        what = f"the Cloud Run {kind} of the region"
        method = f"{kind}.list"
        prefix = f"{self.parent}/{kind}/"

        def fetch_page(token: str | None) -> Page:
            request = request_type(parent=self.parent, page_size=LIST_PAGE_SIZE, page_token=token or "")
            # The pager's first page is the response of this one request; the guard follows the tokens.
            response = call(
                what,
                lambda: next(iter(list_method(request=request, retry=None, timeout=self.policy.attempt_timeout).pages)),
                policy=self.policy,
                permission=f"run.{method}",
                counter=self.calls,
                method=method,
                api=API,
            )
            items = []
            for item in getattr(response, kind):
                if not item.name.startswith(prefix) or not item.name[len(prefix) :] or "/" in item.name[len(prefix) :]:
                    raise ObservationError(
                        what, f"{API} {method} listed an item named {item.name!r}, not one of {prefix}"
                    )
                items.append((_short(item.name), item))
            return Page(items, response.next_page_token)

        pages = guarded_pages(f"{what} ({API} {method})", fetch_page, max_pages=MAX_LIST_PAGES)
        return list({name: (name, item) for page in pages for name, item in page.items}.values())

    @_clients_first
    def revision_json(self, service: str, revision: str) -> dict:
        name = f"{self.parent}/services/{service}/revisions/{revision}"
        what = f"Cloud Run revision {revision}"

        data = call(
            what,
            lambda: self._get_json(name),
            policy=self.policy,
            permission="run.revisions.get",
            counter=self.calls,
            method="revisions.get",
            api=API,
        )
        problems = revision_shape_problems(data, revision)
        if problems or not isinstance(data, dict):  # (a body that is no object is a problem too)
            raise ObservationError(
                what, f"{API} revisions.get answered a revision the checks cannot trust: {'; '.join(problems)}"
            )
        return data

    def revisions(self, service: str) -> list[RevisionState]:
        """Every revision of the service (revisions.list, page by page through the page guard)."""
        return self._revisions(service, f"the revisions of Cloud Run service {service}").get(service, [])

    def all_revisions(self) -> dict[str, list[RevisionState]]:
        """Every revision of every service in the region, by service: revisions.list with the
        API's "-" wildcard for the service, one call per page instead of one listing per service."""
        return self._revisions("-", "the revisions of the region's Cloud Run services")

    @_clients_first
    def _revisions(self, service: str, what: str) -> dict[str, list[RevisionState]]:
        parent = f"{self.parent}/services/{service}"
        prefix = f"{self.parent}/services/"

        def fetch_page(token: str | None) -> Page:
            params = {"pageSize": LIST_PAGE_SIZE, **({"pageToken": token} if token else {})}
            data = call(
                what,
                lambda: self._get_json(f"{parent}/revisions", params),
                policy=self.policy,
                permission="run.revisions.list",
                counter=self.calls,
                method="revisions.list",
                api=API,
            )
            if not isinstance(data, dict) or not isinstance(data.get("revisions", []), list):
                raise ObservationError(what, f"{API} revisions.list answered something that is not a listing")
            items = []
            for item in data.get("revisions", []):
                problems = revision_shape_problems(item)
                owner = _owning_service(item.get("name") if isinstance(item, dict) else None, prefix)
                if not problems and (owner is None or service not in ("-", owner)):
                    problems = [
                        f"it is named {item.get('name')!r}, not a revision of "
                        f"{prefix}{'*' if service == '-' else service}"
                    ]
                if problems:
                    raise ObservationError(
                        what, f"{API} revisions.list listed a revision the checks cannot trust: {'; '.join(problems)}"
                    )
                items.append((owner, parse_revision(item)))
            return Page(items, data.get("nextPageToken"))

        pages = guarded_pages(f"{what} ({API} revisions.list)", fetch_page, max_pages=MAX_LIST_PAGES)
        by_service: dict[str, dict[str, RevisionState]] = {}
        for page in pages:
            for owner, revision in page.items:
                by_service.setdefault(owner, {})[revision.name] = revision  # listed twice counts once
        return {owner: list(revisions.values()) for owner, revisions in by_service.items()}

    def _get_json(self, resource: str, params: dict | None = None) -> object:
        """GET /v2/RESOURCE as raw JSON (the gapic messages drop containerStatuses, see DESIGN)."""
        response = raise_for_status(
            self._run.session.get(f"{self.endpoint}/v2/{resource}", params=params, timeout=self.policy.attempt_timeout)
        )
        # Strict UTF-8: a corrupted byte must not become U+FFFD inside an image name.
        return json.loads(response.content.decode("utf-8"))

    def revision(self, service: str, revision: str) -> RevisionState:
        return parse_revision(self.revision_json(service, revision))

    def close(self) -> None:
        made = self._clients.made()
        if made is not None:
            made.session.close()
            made.services.transport.close()
            made.jobs.transport.close()


@dataclass(frozen=True)
class _RunClients:
    run_v2: Any  # the module: its request and message types
    services: Any
    jobs: Any
    session: Any  # revisions as raw JSON (containerStatuses)

    @classmethod
    def make(cls, credentials, endpoint: str) -> _RunClients:
        # Imported when a reader is first used, not when a check module is collected.
        from google.api_core.client_options import ClientOptions
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import run_v2

        options = ClientOptions(api_endpoint=endpoint)
        made = cls(
            run_v2=run_v2,
            services=run_v2.ServicesClient(transport="rest", credentials=credentials, client_options=options),
            jobs=run_v2.JobsClient(transport="rest", credentials=credentials, client_options=options),
            session=AuthorizedSession(credentials),
        )
        for session in (made.session, transport_session(made.services), transport_session(made.jobs)):
            pin_environment(session, endpoint)
        return made


def _owning_service(name: object, prefix: str) -> str | None:
    """projects/P/locations/L/services/S/revisions/R -> S (None: not a revision name under prefix)."""
    if not isinstance(name, str) or not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].split("/")
    return parts[0] if len(parts) == 3 and parts[1] == "revisions" and parts[0] and parts[2] else None


def _require_identity(answered: str, asked: str, method: str, what: str) -> None:
    """An answer about another resource, or about none (`{}`), is not an answer."""
    if answered != asked:
        shown = f"one named {answered!r}" if answered else "an object without a name (an empty answer)"
        raise ObservationError(what, f"{API} {method} answered {shown}, not {asked}")


def _service_state(service) -> ServiceState:
    """A v2 Service message (services.get's answer, or an item of services.list) -> ServiceState."""
    from google.cloud import run_v2

    traffic = []
    for status in service.traffic_statuses:
        latest = status.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
        revision = status.revision or (_short(service.latest_ready_revision) if latest else "")
        traffic.append(TrafficShare(revision=revision, percent=status.percent, tag=status.tag, latest=latest))
    condition = service.terminal_condition
    return ServiceState(
        name=_short(service.name),
        uri=service.uri,
        generation=service.generation,
        observed_generation=service.observed_generation,
        reconciling=service.reconciling,
        latest_ready_revision=_short(service.latest_ready_revision),
        latest_created_revision=_short(service.latest_created_revision),
        traffic=tuple(traffic),
        labels=dict(service.labels),
        template_image=service.template.containers[0].image if service.template.containers else "",
        terminal_state=_condition_state(condition),
        terminal_message=condition.message if condition else "",
        template_service_account=service.template.service_account,
    )


def _job_state(job) -> JobState:
    containers = job.template.template.containers
    latest = job.latest_created_execution
    return JobState(
        name=_short(job.name),
        image=containers[0].image if containers else "",
        service_account=job.template.template.service_account,
        labels=dict(job.labels),
        create_time=job.create_time or None,
        update_time=job.update_time or None,
        execution_count=job.execution_count,
        last_execution=latest.name if latest else "",
        last_execution_time=(latest.create_time or None) if latest else None,
    )


def require_digest(revision: RevisionState, container: ContainerState) -> str:
    """The digest a container runs, or an ERROR: re-resolving the tag is exactly the bug we detect."""
    if container.digest and DIGEST_RE.match(container.digest):
        return container.digest
    raise ObservationError(
        f"the image digest revision {revision.name} runs",
        f"container {container.name!r} image {container.image!r} is not digest-pinned and the API reported no "
        f"containerStatuses[].imageDigest (the tag is not re-resolved: that would hide the drift this check looks for)",
    )


@dataclass(frozen=True)
class ServingImage:
    """What one serving revision runs for the inventory's image repository."""

    revision: RevisionState
    container: ContainerState | None  # None: no container of that repository in the revision
    digest: str | None

    @property
    def repository_image(self) -> str:
        return self.container.image if self.container else ", ".join(c.image for c in self.revision.containers)


def serving_image(revision: RevisionState, repository: str) -> ServingImage:
    container = revision.container_for(repository)
    if container is None:
        return ServingImage(revision, None, None)
    return ServingImage(revision, container, require_digest(revision, container))

"""What this process checks, and the reads that serve many of its resources at once.

The checks run one after another, but the facts they need are known once collection is done
(the items this process runs: all of them, its shard's, or its xdist worker's share, see
deploycheck_pytest.distribute). The Fleet uses that to read with fewer calls and hide latency:

- list instead of get: when this process checks more services (jobs) than the region's listing
  has pages, one services.list (jobs.list) per page answers every services.get (jobs.get), and
  revisions.list with the "-" wildcard answers every service's revisions; otherwise each
  resource is read by name (the one-service gate: services.get, then its revisions.list, which
  holds the serving and newest revisions). A name the listing does not hold is read by name.
- log queries batched across services (deploycheck.logfacts.LogBatch), over every service this
  process checks, in batches of bounded filter length;
- read ahead: the facts of every resource are requested on a bounded pool of background threads
  (ObservationCache.prefetch) in the order the check modules need them, while the checks run.

Every fact still goes through the ObservationCache under one key, by one code path (the fixtures
in observe.py call the same methods), so a check reads the same fact whichever thread read it,
and a failure is the same error for every check that needs it. With --wait, or under an xdist
--dist mode whose share is unknown in advance, nothing is read ahead or batched across services.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from deploycheck.cloudrun import LIST_PAGE_SIZE, JobState, RevisionState, ServiceState, serving_image
from deploycheck.errors import DeploycheckError, ObservationError
from deploycheck.inventory import Inventory, JobSpec, ServiceSpec
from deploycheck.logfacts import LogBatch, LogScope, RevisionLogs, batches
from deploycheck.observations import ObservationCache

from .distribute import keeps_on_worker, worker_share

SERVICE_FACTS = {
    "service_state",
    "newest_revision",
    "serving_revisions",
    "serving_revision",
    "service_revisions",
    "serving_images",
    "image_digest",
}


def expected_pages(count: int) -> int:
    """Pages a listing of `count` resources takes (at least one)."""
    return max(1, -(-count // LIST_PAGE_SIZE))


def resources_of(items: list[pytest.Item], kind: str) -> list:
    """The inventory entries (ServiceSpec or JobSpec) these items check, in order, once each."""
    found: dict[str, object] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        entry = callspec.params.get(kind) if callspec else None
        if entry is not None:
            found.setdefault(entry.name, entry)
    return list(found.values())


class Fleet:
    def __init__(
        self,
        *,
        config: pytest.Config,
        items: list[pytest.Item] | None,
        observations: ObservationCache,
        cloudrun_in,
        inventory: Inventory,
        wait: bool,
    ):
        self.config = config
        self.observations = observations
        self.cloudrun_in = cloudrun_in  # region -> CloudRunReader
        self.inventory = inventory
        self.wait = wait
        self.items = items  # None: not known in advance (see module docstring)
        self.services: list[ServiceSpec] = resources_of(items or [], "service")
        self.jobs: list[JobSpec] = resources_of(items or [], "job")
        known = items is not None
        self._list_services = {
            region: known
            and not wait
            and sum(1 for s in self.services if s.region == region)
            > expected_pages(sum(1 for s in inventory.services if s.region == region))
            for region in {s.region for s in self.services}
        }
        self._list_jobs = {
            region: known
            and sum(1 for j in self.jobs if j.region == region)
            > expected_pages(sum(1 for j in inventory.jobs if j.region == region))
            for region in {j.region for j in self.jobs}
        }
        self.batch_logs = known and not wait

    @classmethod
    def for_session(cls, config: pytest.Config, session_items: list[pytest.Item], **readers) -> Fleet:
        share = worker_share(config)
        if hasattr(config, "workerinput") and share is None:
            items = None  # xdist hands this worker tests as it goes: its share is not known
        else:
            items = [item for item in session_items if share is None or keeps_on_worker(item, share)]
        return cls(config=config, items=items, **readers)

    def lists_services(self, region: str) -> bool:
        return self._list_services.get(region, False)

    def lists_jobs(self, region: str) -> bool:
        return self._list_jobs.get(region, False)

    # --- Cloud Run ------------------------------------------------------------------------------
    def listed_services(self, region: str) -> list[ServiceState]:
        """services.list of the region, once; when this process lists that region's services, each
        listed service is also the answer to its services.get (else each is read by name)."""
        return self._listed(region, "service", lambda: self.cloudrun_in(region).services(), self.lists_services)

    def listed_jobs(self, region: str) -> list[JobState]:
        return self._listed(region, "job", lambda: self.cloudrun_in(region).jobs(), self.lists_jobs)

    def _listed(self, region: str, kind: str, read_all, lists: Callable[[str], bool]) -> list:
        def read() -> list:
            listed = read_all()
            if lists(region):
                for state in listed:
                    self.observations.prime((kind, region, state.name), state)
            return listed

        return self.observations.get((f"{kind}s.list", region), read)

    def deployed(self, region: str) -> dict[str, list[str]]:
        return {
            "services": [state.name for state in self.listed_services(region)],
            "jobs": [state.name for state in self.listed_jobs(region)],
        }

    def service(self, region: str, name: str) -> ServiceState:
        if self.lists_services(region):
            self.listed_services(region)
        return self.observations.get(("service", region, name), lambda: self.cloudrun_in(region).service(name))

    def job(self, region: str, name: str) -> JobState:
        if self.lists_jobs(region):
            self.listed_jobs(region)
        return self.observations.get(("job", region, name), lambda: self.cloudrun_in(region).job(name))

    def revisions(self, region: str, service: str) -> list[RevisionState]:
        """Every revision of the service: from the region-wide listing when services are listed,
        else its own revisions.list. Either is read after the service itself, so it holds every
        revision the service names (see revision())."""
        if self.lists_services(region):
            self.listed_services(region)

            def read_all() -> dict[str, list[RevisionState]]:
                listed = self.cloudrun_in(region).all_revisions()
                for owner, revisions in listed.items():
                    self.observations.prime(("revisions", region, owner), revisions)
                return listed

            self.observations.get(("revisions.list", region, "-"), read_all)
            return self.observations.get(("revisions", region, service), lambda: [])  # listed none: it has none
        if not self.wait:
            self.service(region, service)
        return self.observations.get(
            ("revisions", region, service), lambda: self.cloudrun_in(region).revisions(service)
        )

    def revision(self, region: str, service: str, name: str) -> RevisionState:
        """One revision the service names (serving or newest), as its listing holds it. A listing
        read after the service that lacks it is an incomplete answer, an error; only a service
        read by name after the region's listing (created since) has its revisions read by name."""

        def read() -> RevisionState:
            listed = next((revision for revision in self.revisions(region, service) if revision.name == name), None)
            if listed is not None:
                return listed
            if self.wait or (
                self.lists_services(region) and not any(state.name == service for state in self.listed_services(region))
            ):
                return self.cloudrun_in(region).revision(service, name)  # newer than the listing
            raise ObservationError(
                f"revision {name} of {service}",
                f"Cloud Run revisions.list answered no revision named {name}, though the "
                f"service, read before the listing, names it: the listing is incomplete",
            )

        return self.observations.get(("revision", region, service, name), read)

    def newest_revision(self, region: str, state: ServiceState) -> RevisionState:
        name = state.latest_created_revision
        if not name:
            raise ObservationError(f"the newest revision of {state.name}", "the service reports none")
        return self.revision(region, state.name, name)

    def serving_revisions(self, region: str, state: ServiceState) -> list[RevisionState]:
        names = state.serving_revisions
        if not names:
            raise ObservationError(f"the serving revision of {state.name}", "no revision receives traffic")
        return [self.revision(region, state.name, name) for name in names]

    # --- logs -------------------------------------------------------------------------------------
    def log_scope(self, spec: ServiceSpec) -> LogScope:
        """The service's revisions whose logs its checks read, and since when (read once)."""

        def scope() -> LogScope:
            state = self.service(spec.region, spec.name)
            serving = self.serving_revisions(spec.region, state)
            newest = self.newest_revision(spec.region, state)
            hours = self.config.getoption("--log-window")
            now = datetime.now(timezone.utc)
            revisions = [*serving, newest]
            undated = [r.name for r in revisions if not r.create_time]
            if undated and hours is None:
                raise ObservationError(
                    f"the log window of {spec.name}",
                    f"revision {', '.join(undated)} reports no createTime, so nothing says since "
                    "when its logs must be read; pass --log-window HOURS",
                )
            created = min((r.create_time for r in revisions if r.create_time), default=now)
            since = created if hours is None else max(created, now - timedelta(hours=hours))
            return LogScope(
                spec.name, tuple(r.name for r in serving), newest.name, since, spec.region, spec.heartbeat_log
            )

        return self.observations.get(("log-scope", spec.region, spec.name), scope)

    def revision_logs(self, spec: ServiceSpec, log_reader) -> RevisionLogs:
        scope = self.log_scope(spec)
        max_entries = self.config.getoption("--max-log-entries")
        batch = self._log_batches(log_reader, max_entries).get((spec.region, spec.name)) if self.batch_logs else None
        return RevisionLogs(log_reader, scope, max_entries=max_entries, remember=self.observations.get, batch=batch)

    def _log_batches(self, log_reader, max_entries: int) -> dict[tuple[str, str], LogBatch]:
        """Every service of this process whose log scope could be read, batched by region (once)."""

        def plan() -> dict[tuple[str, str], LogBatch]:
            planned: dict[tuple[str, str], LogBatch] = {}
            for region in dict.fromkeys(spec.region for spec in self.services):
                scopes = []
                for spec in self.services:
                    if spec.region != region or spec.name not in self._log_checked:
                        continue
                    try:
                        scopes.append(self.log_scope(spec))
                    except DeploycheckError:
                        continue  # its checks meet the error themselves
                for batch in batches(log_reader, scopes, max_entries=max_entries):
                    planned.update({(region, service): batch for service in batch.scopes})
            return planned

        return self.observations.get(("log-batches",), plan)

    @functools.cached_property
    def _log_checked(self) -> set[str]:
        """The services whose log facts a check of this process reads."""
        return {
            entry.name
            for entry in resources_of([i for i in self.items or [] if "revision_logs" in _fixturenames(i)], "service")
        }

    # --- reading ahead ------------------------------------------------------------------------------
    def read_ahead(self, request: pytest.FixtureRequest) -> None:
        """Ask for every fact this process's checks will need on the observation cache's
        background threads, in the order the check modules need them, the regional listings
        ahead of all else.

        The Google client libraries are imported here, one after another, each just before the
        reads that need it are asked for, so each import runs while the reads asked for before it
        wait for the network; imported side by side they would slow one another down, and the
        first Cloud Run call (the head of the longest chain of reads) with them. The checks
        start only once every import is done: an import changes the interpreter's shared tables
        (modules, loggers, warning filters) that pytest walks around every test, and under load
        the two met ("dictionary changed size")."""
        if self.items is None or self.wait:
            return
        needs = {name for item in self.items for name in _fixturenames(item)}

        def wanted(*names: str) -> bool:
            return bool(needs.intersection(names))

        submit = self.observations.prefetch
        # The image reads are asked for first: they need no Google API (the tag names the image;
        # the running digest is mostly the same one) and are the longest waits. Those still
        # waiting for a thread when the listings are asked for let the listings pass (first=True).
        registry = (
            _reader(request, "registry")
            if wanted("tag_digest", "running_image_config", "job_image_digest", "job_expected_digest")
            else None
        )
        if registry is not None:
            for spec in self.services:
                submit(functools.partial(self._image_facts, spec, registry))
        if wanted("running_code", "tag_code") and self.config.getoption("--image-source") == "registry":
            reader = _reader(request, "image_reader")
            if reader is not None and registry is not None:
                for spec in self.services:
                    if spec.code:
                        submit(functools.partial(self._code_facts, spec, registry, reader))
        regions = dict.fromkeys([*(spec.region for spec in self.services), *(spec.region for spec in self.jobs)])
        for region in regions:
            self.cloudrun_in(region).prepare()
        # A listing answers every check of its region: ahead of the hundreds of image reads.
        for region in dict.fromkeys(spec.region for spec in self.services):
            if self.lists_services(region):
                first = next(spec.name for spec in self.services if spec.region == region)
                submit(functools.partial(self.revisions, region, first), first=True)  # both listings
        for region in dict.fromkeys(spec.region for spec in self.jobs):
            if self.lists_jobs(region):
                submit(functools.partial(self.listed_jobs, region), first=True)
        for scope in _params(self.items, "project_scope", needing="deployed"):
            region = scope.rsplit("/", 1)[-1]
            submit(functools.partial(self.deployed, region), first=True)
        for spec in self.services:
            submit(functools.partial(self._service_facts, spec), first=not self.lists_services(spec.region))
        collections = _params(self.items, "heartbeat_collection", needing="heartbeat_scan")
        heartbeats = _reader(request, "heartbeat_reader") if collections else None
        if heartbeats is not None:
            for collection in collections:
                submit(
                    functools.partial(
                        self.observations.get,
                        ("heartbeats", collection),
                        functools.partial(heartbeats.scan, collection),
                    )
                )
        iam = _reader(request, "iam") if wanted("iam_roles", "iam_hierarchy") else None
        if iam is not None:
            from .fixtures.observe import iam_policy_of

            iam.prepare()
            # The project's policy needs no answer from projects.get (which names the folders above).
            submit(functools.partial(iam_policy_of, iam, self.observations, f"projects/{iam.project}"), first=True)
            for spec in self.services:
                if spec.roles:
                    submit(functools.partial(self._iam_facts, spec, iam))
        for job in self.jobs:
            if registry is not None:
                submit(functools.partial(self._job_facts, job, registry))
            elif wanted("job_state"):
                submit(functools.partial(self.job, job.region, job.name))
        log_reader = _reader(request, "log_reader") if wanted("revision_logs") else None
        if log_reader is not None:
            log_reader.prepare()
            for spec in self.services:
                if spec.name in self._log_checked:
                    submit(functools.partial(self._log_facts, spec, log_reader))

    def _service_facts(self, spec: ServiceSpec) -> None:
        state = self.service(spec.region, spec.name)
        self.serving_revisions(spec.region, state)
        self.newest_revision(spec.region, state)
        self.revisions(spec.region, spec.name)

    def _image_facts(self, spec: ServiceSpec, registry) -> None:
        from .fixtures.observe import image_config, resolved_digest

        tag = resolved_digest(registry, self.observations, spec.image)
        image_config(registry, self.observations, spec.image.with_digest(tag))
        running = self._running_digest(spec)
        if running:
            image_config(registry, self.observations, spec.image.with_digest(running))

    def _running_digest(self, spec: ServiceSpec) -> str | None:
        state = self.service(spec.region, spec.name)
        return serving_image(self.serving_revisions(spec.region, state)[0], spec.image.repository).digest

    def _code_facts(self, spec: ServiceSpec, registry, reader) -> None:
        from .fixtures.images import _paths, _read
        from .fixtures.observe import resolved_digest

        paths = _paths(spec.code)
        _read(
            reader,
            self.observations,
            spec.image.with_digest(resolved_digest(registry, self.observations, spec.image)),
            paths,
        )
        running = self._running_digest(spec)
        if running:
            _read(reader, self.observations, spec.image.with_digest(running), paths)

    def _iam_facts(self, spec: ServiceSpec, iam) -> None:
        from deploycheck.iam import roles_to_read

        from .fixtures.observe import iam_hierarchy_of, iam_role_of

        hierarchy = iam_hierarchy_of(iam, self.observations)
        serving = self.serving_revisions(spec.region, self.service(spec.region, spec.name))[0]
        for name in roles_to_read(hierarchy, serving.service_account, list(spec.roles)):
            # Each role on a thread of its own: roles.get answers one role a call.
            self.observations.prefetch(functools.partial(iam_role_of, iam, self.observations, name))

    def _job_facts(self, spec: JobSpec, registry) -> None:
        from deploycheck.imageref import ImageRef

        from .fixtures.observe import image_config, resolved_digest

        expected = self.inventory.job_image(spec)
        expected_digest = resolved_digest(registry, self.observations, expected)
        image_config(registry, self.observations, expected.with_digest(expected_digest))
        image = ImageRef.parse(self.job(spec.region, spec.name).image)
        digest = resolved_digest(registry, self.observations, image)
        image_config(registry, self.observations, image.with_digest(digest))

    def _log_facts(self, spec: ServiceSpec, log_reader) -> None:
        logs = self.revision_logs(spec, log_reader)
        logs.boot()
        if spec.heartbeat_log:
            logs.heartbeats(spec.heartbeat_log)
        logs.info_line()


def _params(items: list[pytest.Item], name: str, *, needing: str) -> list[str]:
    """The values of parameter `name` of the items that use fixture `needing`, once each."""
    values = (
        getattr(item, "callspec", None) and item.callspec.params.get(name)  # type: ignore[attr-defined]  # checked by getattr
        for item in items
        if needing in _fixturenames(item)
    )
    return list(dict.fromkeys(value for value in values if value))


def _reader(request: pytest.FixtureRequest, name: str):
    """A session fixture's reader, or None when it cannot be made here (its checks will say why)."""
    try:
        return request.getfixturevalue(name)
    except (DeploycheckError, pytest.FixtureLookupError):
        return None


def _fixturenames(item: pytest.Item) -> list[str]:
    """The fixtures a test function uses (a non-function item uses none)."""
    return list(getattr(item, "fixturenames", ()))

"""What this process checks, and the reads that serve many of its resources at once.

The checks run one after another, but the facts they need are known once collection is done
(the items this process runs: all of them, its shard's, or its xdist worker's share, see
deploycheck_pytest.distribute). The Fleet uses that to read with fewer calls and hide latency:

- list instead of get: when this process checks more services (jobs) than the region's listing
  has pages, one services.list (jobs.list) per page answers every services.get (jobs.get), and
  revisions.list with the "-" wildcard answers every service's revisions; otherwise each
  resource is read by name (the one-service gate: services.get, then its revisions.list, which
  holds the serving and newest revisions). A name the listing does not hold is read by name.
- log queries batched across services (deploycheck.logs.LogBatch), over every service this
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
from datetime import datetime, timedelta, timezone

import pytest

from deploycheck.cloudrun import LIST_PAGE_SIZE, JobState, RevisionState, ServiceState, serving_image
from deploycheck.errors import DeploycheckError, ObservationError
from deploycheck.inventory import Inventory, JobSpec, ServiceSpec
from deploycheck.logs import LogBatch, LogScope, RevisionLogs, batches
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
        cloudrun,
        inventory: Inventory,
        wait: bool,
    ):
        self.config = config
        self.observations = observations
        self.cloudrun = cloudrun
        self.inventory = inventory
        self.wait = wait
        self.items = items  # None: not known in advance (see module docstring)
        known = items is not None
        self.services: list[ServiceSpec] = resources_of(items or [], "service")
        self.jobs: list[JobSpec] = resources_of(items or [], "job")
        self.list_services = known and not wait and len(self.services) > expected_pages(len(inventory.services))
        self.list_jobs = known and len(self.jobs) > expected_pages(len(inventory.jobs))
        self.batch_logs = known and not wait

    @classmethod
    def for_session(cls, config: pytest.Config, session_items: list[pytest.Item], **readers) -> Fleet:
        share = worker_share(config)
        if hasattr(config, "workerinput") and share is None:
            items = None  # xdist hands this worker tests as it goes: its share is not known
        else:
            items = [item for item in session_items if share is None or keeps_on_worker(item, share)]
        return cls(config=config, items=items, **readers)

    # --- Cloud Run ------------------------------------------------------------------------------
    def listed_services(self) -> list[ServiceState]:
        """services.list, once; each listed service is also the answer to its services.get."""

        def read() -> list[ServiceState]:
            services = self.cloudrun.services()
            for state in services:
                self.observations.prime(("service", state.name), state)
            return services

        return self.observations.get(("services.list",), read)

    def listed_jobs(self) -> list[JobState]:
        def read() -> list[JobState]:
            jobs = self.cloudrun.jobs()
            for state in jobs:
                self.observations.prime(("job", state.name), state)
            return jobs

        return self.observations.get(("jobs.list",), read)

    def deployed(self) -> dict[str, list[str]]:
        return {
            "services": [state.name for state in self.listed_services()],
            "jobs": [state.name for state in self.listed_jobs()],
        }

    def service(self, name: str) -> ServiceState:
        if self.list_services:
            self.listed_services()
        return self.observations.get(("service", name), lambda: self.cloudrun.service(name))

    def job(self, name: str) -> JobState:
        if self.list_jobs:
            self.listed_jobs()
        return self.observations.get(("job", name), lambda: self.cloudrun.job(name))

    def revisions(self, service: str) -> list[RevisionState]:
        """Every revision of the service: from the region-wide listing when services are listed,
        else its own revisions.list."""
        if self.list_services:

            def read_all() -> dict[str, list[RevisionState]]:
                listed = self.cloudrun.all_revisions()
                for owner, revisions in listed.items():
                    self.observations.prime(("revisions", owner), revisions)
                return listed

            self.observations.get(("revisions.list", "-"), read_all)
            return self.observations.get(("revisions", service), lambda: [])  # listed none: it has none
        return self.observations.get(("revisions", service), lambda: self.cloudrun.revisions(service))

    def revision(self, service: str, name: str) -> RevisionState:
        """One revision: as its service's listing holds it, else read by name (created after the listing)."""

        def read() -> RevisionState:
            listed = next((revision for revision in self.revisions(service) if revision.name == name), None)
            return listed or self.cloudrun.revision(service, name)

        return self.observations.get(("revision", service, name), read)

    def newest_revision(self, state: ServiceState) -> RevisionState:
        name = state.latest_created_revision
        if not name:
            raise ObservationError(f"the newest revision of {state.name}", "the service reports none")
        return self.revision(state.name, name)

    def serving_revisions(self, state: ServiceState) -> list[RevisionState]:
        names = state.serving_revisions
        if not names:
            raise ObservationError(f"the serving revision of {state.name}", "no revision receives traffic")
        return [self.revision(state.name, name) for name in names]

    # --- logs -------------------------------------------------------------------------------------
    def log_scope(self, spec: ServiceSpec) -> LogScope:
        """The service's revisions whose logs its checks read, and since when (read once)."""

        def scope() -> LogScope:
            state = self.service(spec.name)
            serving = self.serving_revisions(state)
            newest = self.newest_revision(state)
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
            return LogScope(spec.name, tuple(r.name for r in serving), newest.name, since, spec.heartbeat_log)

        return self.observations.get(("log-scope", spec.name), scope)

    def revision_logs(self, spec: ServiceSpec, log_reader) -> RevisionLogs:
        scope = self.log_scope(spec)
        max_entries = self.config.getoption("--max-log-entries")
        batch = self._log_batches(log_reader, max_entries).get(spec.name) if self.batch_logs else None
        return RevisionLogs(
            log_reader,
            spec.name,
            serving=list(scope.serving),
            newest=scope.newest,
            since=scope.since,
            max_entries=max_entries,
            heartbeat=scope.heartbeat,
            remember=self.observations.get,
            batch=batch,
        )

    def _log_batches(self, log_reader, max_entries: int) -> dict[str, LogBatch]:
        """Every service of this process whose log scope could be read, batched (once)."""

        def plan() -> dict[str, LogBatch]:
            scopes = []
            for spec in self.services:
                if spec.name not in self._log_checked:
                    continue
                try:
                    scopes.append(self.log_scope(spec))
                except DeploycheckError:
                    continue  # its checks meet the error themselves
            return {
                scope.service: batch
                for batch in batches(log_reader, scopes, max_entries=max_entries)
                for scope in batch.scopes.values()
            }

        return self.observations.get(("log-batches",), plan)

    @functools.cached_property
    def _log_checked(self) -> set[str]:
        """The services whose log facts a check of this process reads."""
        return {
            entry.name
            for entry in resources_of([i for i in self.items or [] if "revision_logs" in i.fixturenames], "service")
        }

    # --- reading ahead ------------------------------------------------------------------------------
    def read_ahead(self, request: pytest.FixtureRequest) -> None:
        """Ask for every fact this process's checks will need, in the order the check modules
        need them, on the observation cache's background threads."""
        if self.items is None or self.wait:
            return
        needs = {name for item in self.items for name in item.fixturenames}

        def wanted(*names: str) -> bool:
            return bool(needs.intersection(names))

        submit = self.observations.prefetch
        if self.list_services:
            submit(self.listed_services)
            submit(lambda: self.revisions(self.services[0].name))
        if self.list_jobs or wanted("deployed"):
            submit(self.listed_jobs)
        if wanted("deployed"):
            submit(self.listed_services)
        for spec in self.services:
            submit(lambda spec=spec: self._service_facts(spec))
        registry = (
            _reader(request, "registry")
            if wanted("tag_digest", "running_image_config", "job_image_digest", "job_expected_digest")
            else None
        )
        if registry is not None:
            for spec in self.services:
                submit(lambda spec=spec: self._image_facts(spec, registry))
        if wanted("running_code", "tag_code") and self.config.getoption("--image-source") == "registry":
            reader = _reader(request, "image_reader")
            if reader is not None and registry is not None:
                for spec in self.services:
                    if spec.code:
                        submit(lambda spec=spec: self._code_facts(spec, registry, reader))
        if wanted("heartbeat_scan"):
            heartbeats = _reader(request, "heartbeat_reader")
            if heartbeats is not None:
                collection = self.inventory.heartbeats.collection
                submit(lambda: self.observations.get(("heartbeats", collection), lambda: heartbeats.scan(collection)))
        iam = _reader(request, "iam") if wanted("iam_roles", "iam_hierarchy") else None
        if iam is not None:
            for spec in self.services:
                if spec.roles:
                    submit(lambda spec=spec: self._iam_facts(spec, iam))
        if registry is not None:
            for spec in self.jobs:
                submit(lambda spec=spec: self._job_facts(spec, registry))
        log_reader = _reader(request, "log_reader") if wanted("revision_logs") else None
        if log_reader is not None:
            for spec in self.services:
                if spec.name in self._log_checked:
                    submit(lambda spec=spec: self._log_facts(spec, log_reader))

    def _service_facts(self, spec: ServiceSpec) -> None:
        state = self.service(spec.name)
        self.serving_revisions(state)
        self.newest_revision(state)
        self.revisions(spec.name)

    def _image_facts(self, spec: ServiceSpec, registry) -> None:
        from .fixtures.observe import image_config, resolved_digest

        tag = resolved_digest(registry, self.observations, spec.image)
        image_config(registry, self.observations, spec.image.with_digest(tag))
        running = self._running_digest(spec)
        if running:
            image_config(registry, self.observations, spec.image.with_digest(running))

    def _running_digest(self, spec: ServiceSpec) -> str | None:
        state = self.service(spec.name)
        main = serving_image(self.serving_revisions(state)[0], spec.image.repository)
        return main.digest

    def _code_facts(self, spec: ServiceSpec, registry, reader) -> None:
        from .fixtures.images import _paths, _read
        from .fixtures.observe import resolved_digest

        paths = _paths(spec.code)
        running = self._running_digest(spec)
        if running:
            _read(reader, self.observations, spec.image.with_digest(running), paths)
        _read(
            reader,
            self.observations,
            spec.image.with_digest(resolved_digest(registry, self.observations, spec.image)),
            paths,
        )

    def _iam_facts(self, spec: ServiceSpec, iam) -> None:
        from .fixtures.observe import iam_roles_of

        hierarchy = self.observations.get(("iam-hierarchy", iam.project), iam.hierarchy)
        serving = self.serving_revisions(self.service(spec.name))[0]
        iam_roles_of(spec, serving, hierarchy, iam, self.observations)

    def _job_facts(self, spec: JobSpec, registry) -> None:
        from deploycheck.imageref import ImageRef

        from .fixtures.observe import image_config, resolved_digest

        expected = self.inventory.job_image(spec)
        expected_digest = resolved_digest(registry, self.observations, expected)
        image_config(registry, self.observations, expected.with_digest(expected_digest))
        image = ImageRef.parse(self.job(spec.name).image)
        digest = resolved_digest(registry, self.observations, image)
        image_config(registry, self.observations, image.with_digest(digest))

    def _log_facts(self, spec: ServiceSpec, log_reader) -> None:
        logs = self.revision_logs(spec, log_reader)
        logs.boot()
        if spec.heartbeat_log:
            logs.heartbeats(spec.heartbeat_log)
        logs.info_line()


def _reader(request: pytest.FixtureRequest, name: str):
    """A session fixture's reader, or None when it cannot be made here (its checks will say why)."""
    try:
        return request.getfixturevalue(name)
    except (DeploycheckError, pytest.FixtureLookupError):
        return None

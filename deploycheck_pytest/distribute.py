"""Which checks this process runs: `--shard K/N` across machines, and under pytest-xdist a fixed
share of the resources per worker, every check of one resource on one worker.

Both split by resource, with a stable hash of its id (the test id's parameter: the service or job
name, or the project-wide scope), so a resource's checks share one process's observations and the
split is the same on every machine and every night. A job that runs a service's image (`runs:`)
is split with that service: both ask for the same tag and read the same image, once, in one
process, instead of once in each.

- `--shard K/N` (1-based; or CLOUD_RUN_TASK_INDEX (0-based) and CLOUD_RUN_TASK_COUNT when the
  option is absent, as a Cloud Run job with N tasks sets them) keeps the resources whose hash
  falls in shard K and deselects the rest. The project-wide checks (orphans, heartbeat-docs) and
  any check of no resource run in shard 1 only, so the shards' reports add up to exactly one
  run's findings (`deploycheck report merge` refuses a finding twice).
- With `-n N` (xdist's default `--dist load`), the ResourceScheduling below sends each worker
  its share of the resources up front, by a second hash independent of the shard's. A worker
  therefore knows what it will check before it starts (deploycheck_pytest.fleet reads ahead and
  batches for exactly that), and no fact is fetched by two workers. An explicit other --dist
  (loadgroup, loadfile, worksteal, ...) is honoured as given.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARD_KEY = pytest.StashKey["Shard | None"]()
RUNS_KEY = pytest.StashKey[dict[str, str]]()
SHARDED_AWAY_KEY = pytest.StashKey[int]()
PROJECT_WIDE_PARAMS = ("project_scope", "heartbeat_collection")
RESOURCE_PARAMS = ("service", "job")
TASK_INDEX_ENV, TASK_COUNT_ENV = "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"
_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def resource_key(nodeid: str) -> str:
    """The resource a test id checks: its parameter id (`checks/test_cloudrun.py::test_traffic[svc]`
    -> `svc`); a test without parameters is a resource of its own. xdist's `@group` suffix is ignored."""
    nodeid = nodeid.rsplit("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
    if nodeid.endswith("]") and "[" in nodeid:
        return nodeid[nodeid.index("[") + 1 : -1]
    return nodeid


def split_key(nodeid: str, runs: Mapping[str, str]) -> str:
    """What a test id is split by: its resource, or for a job that runs a service's image, that
    service (`runs`: job name -> service name, from runs_of). A test id names a resource, not its
    kind, and the xdist scheduler has only test ids: a service that shares its name with such a
    job goes along too, the same in every process."""
    resource = resource_key(nodeid)
    return runs.get(resource, resource)


def runs_of(config: pytest.Config) -> dict[str, str]:
    """Job name -> the service whose image it runs, from the run's inventory (once per process)."""
    runs = config.stash.get(RUNS_KEY, None)
    if runs is None:
        from .fixtures.plugin import SESSION_KEY

        session = config.stash.get(SESSION_KEY, None)
        if session is None:  # no inventory (yet): nothing to keep, so that a later call reads it
            return {}
        runs = config.stash[RUNS_KEY] = {job.name: job.runs for job in session.inventory.jobs if job.runs}
    return runs


def partition(key: str, count: int, purpose: str) -> int:
    """0..count-1 for `key`, the same on every machine (no PYTHONHASHSEED), independent per purpose."""
    digest = hashlib.sha256(f"{purpose}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def is_project_wide(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return True
    params = callspec.params
    return not any(params.get(name) is not None for name in RESOURCE_PARAMS)


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int
    source: str  # where it came from, for messages

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def keeps(self, item: pytest.Item) -> bool:
        if is_project_wide(item):
            return self.index == 0
        return partition(split_key(item.nodeid, runs_of(item.config)), self.count, "shard") == self.index


def parse_shard(option: str | None, environ: Mapping[str, str] | None = None) -> Shard | None:
    """--shard K/N (1-based), else CLOUD_RUN_TASK_INDEX (0-based) / CLOUD_RUN_TASK_COUNT, else None."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    if option is not None:
        match = _SHARD_RE.fullmatch(option)
        if not match:
            raise pytest.UsageError(f"--shard {option!r}: expected K/N, e.g. --shard 2/4 (the second of four shards)")
        number, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= number <= count:
            raise pytest.UsageError(f"--shard {option}: K must be between 1 and N, and N at least 1")
        return Shard(number - 1, count, f"--shard {option}")
    index, count_text = env.get(TASK_INDEX_ENV), env.get(TASK_COUNT_ENV)
    if index is None and count_text is None:
        return None
    if (
        index is None
        or count_text is None
        or not index.isdigit()
        or not count_text.isdigit()
        or not 0 <= int(index) < int(count_text)
    ):
        raise pytest.UsageError(
            f"{TASK_INDEX_ENV}={index!r} and {TASK_COUNT_ENV}={count_text!r}: expected a task index "
            f"0..N-1 and a task count N (as a Cloud Run job sets them), or pass --shard K/N"
        )
    return Shard(int(index), int(count_text), f"{TASK_INDEX_ENV}={index} {TASK_COUNT_ENV}={count_text}")


def shard_of(config: pytest.Config) -> Shard | None:
    return config.stash.get(SHARD_KEY, None)


# The id a CI engine gives every shard of one run, in the order they are looked for.
RUN_ID_VARIABLES = ("DEPLOYCHECK_RUN_ID", "CLOUD_RUN_EXECUTION", "GITHUB_RUN_ID", "BUILD_ID", "CI_PIPELINE_ID")


def shard_record(config: pytest.Config) -> dict | None:
    """What report.json says about the shard, so that `deploycheck report merge` can refuse shards
    of different runs, inventories or selections, and a shard missing or given twice."""
    shard = shard_of(config)
    if shard is None:
        return None
    variable = next((name for name in RUN_ID_VARIABLES if os.environ.get(name)), None)
    run = os.environ[variable] if variable else None  # (a re-run of one failed shard job keeps its run's id)
    from .fixtures.plugin import session_of

    session = session_of(config)
    try:
        inventory = hashlib.sha256(Path(session.inventory.source).read_bytes()).hexdigest()
    except OSError:
        inventory = None
    return {
        "index": shard.index + 1,
        "count": shard.count,
        "from": shard.source,
        "run": run,
        "run_from": variable,
        "inventory_sha256": inventory,
        "selection": {
            "markexpr": config.option.markexpr or "",
            "keyword": config.option.keyword or "",
            "services": list(config.getoption("--service")),
            "jobs": list(config.getoption("--job")),
            "expect_commit": config.getoption("--expect-commit"),
        },
    }


# --- the pytest hooks (registered in a deploycheck run) ------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.stash[SHARD_KEY] = parse_shard(config.getoption("--shard"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = shard_of(config)
    if shard is None:
        return
    elsewhere = [item for item in items if not shard.keeps(item)]
    config.stash[SHARDED_AWAY_KEY] = len(elsewhere)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if shard.keeps(item)]


def pytest_report_header(config: pytest.Config) -> str | None:
    shard = shard_of(config)
    return f"deploycheck shard {shard} ({shard.source})" if shard else None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A shard that the split left without a resource has nothing to check: that is its whole job,
    # not "nothing selected" (exit 5, which would fail a CI matrix cell for no reason).
    if session.config.stash.get(SHARDED_AWAY_KEY, 0) and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


# --- xdist: each worker its share of the resources -------------------------------------------------
def worker_share(config: pytest.Config) -> tuple[int, int] | None:
    """(index, count) of this xdist worker when the ResourceScheduling split the run, else None."""
    workerinput = getattr(config, "workerinput", None)
    if not workerinput or not workerinput.get("deploycheck_by_resource"):
        return None
    return int(str(workerinput["workerid"]).removeprefix("gw")), int(workerinput["workercount"])


def keeps_on_worker(item: pytest.Item, share: tuple[int, int]) -> bool:
    index, count = share
    return partition(split_key(item.nodeid, runs_of(item.config)), count, "worker") == index


def _by_resource(config: pytest.Config) -> bool:
    return config.getvalue("dist") == "load" and bool(config.getvalue("tx"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    node.workerinput["deploycheck_by_resource"] = _by_resource(node.config)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not _by_resource(config):
        return None
    from .scheduling import ResourceScheduling  # xdist's scheduler classes, only when xdist runs

    return ResourceScheduling(config, log)

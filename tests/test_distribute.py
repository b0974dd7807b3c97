"""Splitting a run by resource: --shard K/N (or a Cloud Run job's task variables) and xdist's workers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deploycheck_pytest.distribute import Shard, parse_shard, partition, resource_key, split_key


def test_a_test_id_names_its_resource():
    assert resource_key("checks/test_cloudrun.py::test_traffic[nba-scrapers]") == "nba-scrapers"
    assert (
        resource_key("checks/test_drift.py::test_orphans[nba-props-platform/us-west2]") == "nba-props-platform/us-west2"
    )
    assert resource_key("checks/test_cloudrun.py::test_traffic[nba-scrapers]@group") == "nba-scrapers"
    assert resource_key("checks/test_custom.py::test_fleet_wide") == "checks/test_custom.py::test_fleet_wide"


def test_a_job_that_runs_a_services_image_is_split_with_that_service():
    runs = {"backfill": "processor"}
    assert split_key("checks/test_jobs.py::test_code[backfill]", runs) == "processor"
    assert split_key("checks/test_cloudrun.py::test_traffic[processor]", runs) == "processor"
    assert split_key("checks/test_jobs.py::test_code[own-image-job]", runs) == "own-image-job"


def test_the_split_is_the_same_everywhere_and_spreads_the_fleet():
    names = [f"service-{number:04d}" for number in range(1000)]
    shards = [partition(name, 4, "shard") for name in names]
    assert shards == [partition(name, 4, "shard") for name in names]  # no PYTHONHASHSEED in it
    assert all(200 <= shards.count(index) <= 300 for index in range(4))
    # Workers split by another hash: the resources of one shard still spread over the workers.
    in_first_shard = [name for name, shard in zip(names, shards, strict=True) if shard == 0]
    assert {partition(name, 2, "worker") for name in in_first_shard} == {0, 1}


@pytest.mark.parametrize(
    "option, environ, expected",
    [
        ("2/4", {}, Shard(1, 4, "--shard 2/4")),
        (" 1 / 1 ", {}, Shard(0, 1, "--shard  1 / 1 ")),
        (
            None,
            {"CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_TASK_COUNT": "4"},
            Shard(3, 4, "CLOUD_RUN_TASK_INDEX=3 CLOUD_RUN_TASK_COUNT=4"),
        ),
        (
            "1/2",
            {"CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_TASK_COUNT": "4"},
            Shard(0, 2, "--shard 1/2"),
        ),  # the option wins
        (None, {}, None),
    ],
)
def test_the_shard_comes_from_the_option_or_the_task_variables(option, environ, expected):
    assert parse_shard(option, environ) == expected


@pytest.mark.parametrize(
    "option, environ, message",
    [
        ("0/4", {}, "K must be between 1 and N"),
        ("5/4", {}, "K must be between 1 and N"),
        ("2", {}, "expected K/N"),
        (None, {"CLOUD_RUN_TASK_INDEX": "4", "CLOUD_RUN_TASK_COUNT": "4"}, "expected a task index 0..N-1"),
        (None, {"CLOUD_RUN_TASK_INDEX": "1"}, "CLOUD_RUN_TASK_COUNT=None"),
    ],
)
def test_a_shard_that_makes_no_sense_is_a_usage_error(option, environ, message):
    with pytest.raises(pytest.UsageError, match=message):
        parse_shard(option, environ)


class _Gateway:
    def __init__(self, number: int):
        self.id = f"gw{number}"


class _Worker:
    """What the scheduler uses of xdist's WorkerController: its gateway id, and what it is sent."""

    def __init__(self, number: int):
        self.gateway = _Gateway(number)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices):
        self.sent.extend(indices)

    def shutdown(self):
        self.shutting_down = True


class _Config:
    """What the scheduler reads of the controller's config: two popen workers."""

    option = SimpleNamespace(loadscopereorder=True)
    stash = pytest.Stash()  # no deploycheck session: no job runs a service's image

    def getvalue(self, name):
        assert name == "tx"
        return ["popen", "popen"]


def test_the_controller_counts_pending_tests_as_they_complete_not_by_walking_the_fleet():
    """xdist's scope scheduler recounts a worker's whole workload after every report (quadratic
    in the fleet); ResourceScheduling keeps the count, and it must stay the count a walk gives."""
    from xdist.scheduler import LoadScopeScheduling

    from deploycheck_pytest.scheduling import ResourceScheduling

    collection = [f"checks/test_{check}.py::test_{check}[svc-{n}]" for n in range(40) for check in ("a", "b", "c")]
    scheduler = ResourceScheduling(_Config())
    workers = [_Worker(0), _Worker(1)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    assert sorted(workers[0].sent + workers[1].sent) == list(range(len(collection)))
    walks = 0
    original = LoadScopeScheduling._pending_of

    def walk(self, workload):
        nonlocal walks
        walks += 1
        return original(self, workload)

    LoadScopeScheduling._pending_of = walk
    try:
        for worker in workers:
            for done, index in enumerate(worker.sent, start=1):
                scheduler.mark_test_complete(worker, index)
                assert scheduler._pending_of(scheduler.assigned_work[worker]) == len(worker.sent) - done
                assert original(scheduler, scheduler.assigned_work[worker]) == len(worker.sent) - done
        assert scheduler.tests_finished and not scheduler.has_pending
    finally:
        LoadScopeScheduling._pending_of = original
    assert walks <= len(workers), "the pending count was walked again after it was counted"

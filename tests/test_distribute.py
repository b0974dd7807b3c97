"""Splitting a run by resource: --shard K/N (or a Cloud Run job's task variables) and xdist's workers."""

from __future__ import annotations

import pytest

from deploycheck_pytest.distribute import Shard, parse_shard, partition, resource_key


def test_a_test_id_names_its_resource():
    assert resource_key("checks/test_cloudrun.py::test_traffic[nba-scrapers]") == "nba-scrapers"
    assert (
        resource_key("checks/test_drift.py::test_orphans[nba-props-platform/us-west2]") == "nba-props-platform/us-west2"
    )
    assert resource_key("checks/test_cloudrun.py::test_traffic[nba-scrapers]@group") == "nba-scrapers"
    assert resource_key("checks/test_custom.py::test_fleet_wide") == "checks/test_custom.py::test_fleet_wide"


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

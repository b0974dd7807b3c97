"""The session cache: one fetch per fact, failures remembered, nothing new once the budget is spent."""

import pytest

from deploycheck.errors import ObservationError
from deploycheck.observations import ObservationCache


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_fact_is_fetched_once_and_failures_are_remembered():
    cache = ObservationCache()
    calls = []
    assert cache.get(("service", "a"), lambda: calls.append("a") or 1) == 1
    assert cache.get(("service", "a"), lambda: calls.append("again") or 2) == 1
    assert calls == ["a"]

    def broken():
        calls.append("broken")
        raise ObservationError("service b", "503 after retries")

    for _ in range(3):
        with pytest.raises(ObservationError, match="503 after retries"):
            cache.get(("service", "b"), broken)
    assert calls.count("broken") == 1


def test_after_the_budget_nothing_new_is_fetched():
    clock = FakeClock()
    cache = ObservationCache(budget_s=10, clock=clock)
    assert cache.get(("tag", "x"), lambda: "sha256:1") == "sha256:1"
    clock.now = 10.5
    assert cache.get(("tag", "x"), lambda: "never asked") == "sha256:1"  # already known: still served
    with pytest.raises(ObservationError, match=r"--budget of 10s is spent"):
        cache.get(("tag", "y"), lambda: pytest.fail("fetched after the budget"))

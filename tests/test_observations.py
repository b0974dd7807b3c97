"""The session cache: one fetch per fact, failures remembered, nothing new once the budget is spent."""

import threading

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


def test_a_fact_being_read_is_waited_for_not_read_twice():
    cache = ObservationCache(read_ahead=2)
    started, release = threading.Event(), threading.Event()
    reads = []

    def slow():
        reads.append("slow")
        started.set()
        assert release.wait(10)
        return "value"

    cache.prefetch(lambda: cache.get(("service", "a"), slow))
    assert started.wait(10)
    waiter = threading.Thread(target=lambda: reads.append(cache.get(("service", "a"), lambda: "second read")))
    waiter.start()
    release.set()
    waiter.join(10)
    assert cache.get(("service", "a"), lambda: "third read") == "value"
    assert reads == ["slow", "value"]
    cache.close()


def test_a_failure_met_while_reading_ahead_is_the_same_error_for_the_check():
    cache = ObservationCache(read_ahead=1)
    done = threading.Event()

    def denied():
        raise ObservationError("service a", "permission denied")

    cache.prefetch(lambda: cache.get(("service", "a"), denied))
    cache.prefetch(done.set)
    assert done.wait(10)
    with pytest.raises(ObservationError, match="permission denied"):
        cache.get(("service", "a"), lambda: pytest.fail("read again after a remembered failure"))
    cache.close()


def test_a_defect_met_while_reading_ahead_is_read_again_by_the_check():
    """Not an observation (a bug, or a race in a library): the check reads the fact itself and
    shows what happens there, instead of inheriting a background thread's accident."""
    cache = ObservationCache(read_ahead=1)
    done = threading.Event()
    cache.prefetch(lambda: cache.get(("service", "a"), lambda: {}["missing"]))
    cache.prefetch(done.set)
    assert done.wait(10)
    assert cache.get(("service", "a"), lambda: "read by the check") == "read by the check"
    cache.close()


def test_facts_learnt_from_a_listing_are_not_read_again():
    cache = ObservationCache()
    cache.prime(("service", "a"), "from the listing")
    cache.prime(("service", "a"), "a later listing does not replace it")
    assert cache.knows(("service", "a")) and not cache.knows(("service", "b"))
    assert cache.get(("service", "a"), lambda: pytest.fail("read by name")) == "from the listing"


def test_a_first_read_goes_ahead_of_the_reads_already_waiting():
    cache = ObservationCache(read_ahead=1)
    busy, release, done = threading.Event(), threading.Event(), threading.Event()
    order = []

    def hold():
        busy.set()
        assert release.wait(10)

    cache.prefetch(hold)
    assert busy.wait(10)  # the one thread is taken: what follows waits in the queue
    for number in range(3):
        cache.prefetch(lambda number=number: order.append(f"image {number}"))
    cache.prefetch(lambda: order.append("listing"), first=True)
    cache.prefetch(lambda: order.append("policy"), first=True)
    cache.prefetch(done.set)
    release.set()
    assert done.wait(10)
    assert order == ["listing", "policy", "image 0", "image 1", "image 2"]
    cache.close()

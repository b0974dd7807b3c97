"""Per-session cache of observed facts, under the run's time budget, read ahead on a few threads.

Each fact is fetched at most once and shared by every check that needs it; a failure is cached
too, so a dead API is asked once, not once per check. Once the run's budget is spent no new
fact is fetched: the checks still waiting ERROR with that reason instead of running on.

Independent facts can be read ahead (`prefetch`) on a bounded pool of background threads while
the checks run one after another: a check that needs a fact being read waits for that read
instead of starting a second one. The reads themselves keep their discipline (deploycheck.gcall:
each call's deadline, the run's budget), so a background read ends as surely as one in the
foreground. The pool's threads are daemons and `close()` drops what has not started: a read
still running when the session ends cannot hold the process.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from .errors import ObservationError

T = TypeVar("T")

_STOP, _FIRST, _IN_TURN = range(3)  # the read-ahead queue's priorities


class _Fact(Future):
    read_ahead = False
    """The fact is being read by a read-ahead thread (a defect there is re-read by the check)."""


class ObservationCache:
    def __init__(
        self, *, budget_s: float | None = None, clock: Callable[[], float] = time.monotonic, read_ahead: int = 0
    ):
        self._clock = clock
        self._budget_s = budget_s
        self._deadline = clock() + budget_s if budget_s is not None else None
        self._facts: dict[tuple, _Fact] = {}
        self._lock = threading.Lock()
        self._read_ahead = read_ahead
        self._pending: queue.PriorityQueue | None = None
        self._order = itertools.count()  # first come, first served within a priority
        self._threads: list[threading.Thread] = []
        self._closed = False

    # --- reading ----------------------------------------------------------------------------
    def get(self, key: tuple, fetch: Callable[[], T]) -> T:
        """The fact under `key`: cached, being read by another thread (then waited for), or read now."""
        while True:
            with self._lock:
                known = self._facts.get(key)
                mine = known is None
                if known is None:
                    fact = self._facts[key] = _Fact()
                    fact.read_ahead = self._reading_ahead()
                else:
                    fact = known
            if mine:
                self._read(key, fact, fetch)
            try:
                return fact.result()
            except ObservationError:
                raise
            except BaseException:
                if fact.read_ahead and not self._reading_ahead():
                    continue  # a defect met while reading ahead: read it here, where it is the check's to show
                raise

    def _reading_ahead(self) -> bool:
        return threading.current_thread() in self._threads

    def prime(self, key: tuple, value: object) -> None:
        """Record a fact learnt as part of another answer (a service from a listing), unless known."""
        with self._lock:
            if key not in self._facts:
                fact = self._facts[key] = _Fact()
                fact.set_result(value)

    def knows(self, key: tuple) -> bool:
        with self._lock:
            return key in self._facts

    def _read(self, key: tuple, fact: Future, fetch: Callable[[], T]) -> None:
        if self._deadline is not None and self._clock() >= self._deadline:
            fact.set_exception(
                ObservationError(
                    " ".join(map(str, key)), f"the run's --budget of {self._budget_s:g}s is spent before it was read"
                )
            )
            return
        try:
            fact.set_result(fetch())
        except ObservationError as exc:
            fact.set_exception(exc)
        except BaseException as exc:
            # Not an observation but a defect: not remembered, so the check that needs the fact
            # reads it again itself and fails with the traceback where it belongs.
            with self._lock:
                self._facts.pop(key, None)
            fact.set_exception(exc)

    # --- reading ahead ----------------------------------------------------------------------
    def prefetch(self, task: Callable[[], object], *, first: bool = False) -> None:
        """Run `task` (which reads facts through get()) on a background thread; with read_ahead=0
        nothing is read ahead and the checks read as they go. A task's failure stays in the
        facts it was reading: the check that needs one meets it there. A `first` task goes
        ahead of every other one still waiting (a listing that every check needs, not the
        hundredth image read)."""
        if self._read_ahead <= 0 or self._closed:
            return
        with self._lock:
            if self._pending is None:
                self._pending = queue.PriorityQueue()
                for number in range(self._read_ahead):
                    thread = threading.Thread(target=self._work, name=f"deploycheck-read-ahead-{number}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._pending.put((_FIRST if first else _IN_TURN, next(self._order), task))

    def _work(self) -> None:
        while True:
            assert self._pending is not None  # workers start only after the queue exists
            _, _, task = self._pending.get()
            if task is None or self._closed:
                return
            try:
                task()
            except BaseException:
                pass

    def close(self) -> None:
        """Start nothing more in the background (reads already running finish on daemon threads)."""
        self._closed = True
        if self._pending is not None:
            for _ in self._threads:
                self._pending.put((_STOP, next(self._order), None))

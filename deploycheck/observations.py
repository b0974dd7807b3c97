"""Per-session cache of observed facts, under the run's time budget.

Each fact is fetched at most once and shared by every check that needs it; a failure is cached
too, so a dead API is asked once, not once per check. Once the run's budget is spent no new
fact is fetched: the checks still waiting ERROR with that reason instead of running on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ObservationError

T = TypeVar("T")


class ObservationCache:
    def __init__(self, *, budget_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._budget_s = budget_s
        self._deadline = clock() + budget_s if budget_s is not None else None
        self._values: dict[tuple, tuple[bool, Any]] = {}  # (True, value) or (False, ObservationError)

    def get(self, key: tuple, fetch: Callable[[], T]) -> T:
        if key not in self._values:
            if self._deadline is not None and self._clock() >= self._deadline:
                error = ObservationError(" ".join(map(str, key)),
                                         f"the run's --budget of {self._budget_s:g}s is spent before it was read")
                self._values[key] = (False, error)
            else:
                try:
                    self._values[key] = (True, fetch())
                except ObservationError as exc:
                    self._values[key] = (False, exc)
        ok, value = self._values[key]
        if not ok:
            raise value
        return value

"""A value made when it is first needed, once, by whichever thread needs it first.

The Google client libraries take a good part of a second to import. A reader that builds its
client on first use can be handed out at once; whoever holds it decides when the import happens
(the fleet's read-ahead: just before it asks for the reads that need that client, while the
reads asked for before wait for the network), instead of before any read has begun."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class MadeOnFirstUse(Generic[T]):
    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def made(self) -> T | None:
        """The value if it was made (for closing it), else None: nothing is made to be closed."""
        with self._lock:
            return self._value

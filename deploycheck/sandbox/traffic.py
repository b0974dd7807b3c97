"""What passed through a fault proxy: requests by method and endpoint, and bytes answered.

Benchmarks count at the sandbox side, where nothing the product does can hide a call: the API
stand-in counts its own calls (/_sandbox/calls), and a proxy counts what it forwards for the
registry (manifests, blobs) and the Firestore emulator (gRPC methods).
"""

from __future__ import annotations

import re
import threading
from collections import Counter

# Registry paths name repositories of any depth: count by endpoint kind, not by repository.
_REGISTRY_ENDPOINT = re.compile(r"^/v2/.+/(manifests|blobs|tags)/")


def endpoint(path: str) -> str:
    """`/v2/REPO/manifests/REF` -> `manifests`; a gRPC method stays itself; anything else is its path
    with the resource ids of Google's REST paths (`/v2/projects/ID/locations/ID/...`) collapsed to `*`."""
    match = _REGISTRY_ENDPOINT.match(path)
    if match:
        return match.group(1)
    if path.startswith("/google."):
        return path
    segments = path.split("/")  # ["", "v2", "projects", ID, "locations", ID, ...]
    return "/".join("*" if i >= 3 and i % 2 == 1 else seg for i, seg in enumerate(segments))


class Traffic:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.bytes_out = 0

    def request(self, method: str, path: str) -> None:
        with self._lock:
            self.requests[f"{method} {endpoint(path)}"] += 1

    def sent(self, size: int) -> None:
        with self._lock:
            self.bytes_out += size

    def describe(self) -> dict:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "bytes": self.bytes_out,
            }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_out = 0


class CountingWriter:
    """A handler's wfile that adds what it writes (heads included: bytes on the wire) to a Traffic."""

    def __init__(self, inner, traffic: Traffic):
        self._inner, self._traffic = inner, traffic

    def write(self, data) -> int:
        written = self._inner.write(data)
        self._traffic.sent(len(data))
        return written

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name):
        return getattr(self._inner, name)

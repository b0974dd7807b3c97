"""A content-addressed cache of verified registry blobs (`DIR/sha256/<hex>`), shared by processes.

Blobs are immutable by digest, so a cached blob is as good as the registry's copy, provided it
is verified: nothing unverified is ever stored, and a file that no longer hashes to its name
(disk corruption, a truncated copy, tampering) is deleted on read and fetched again.

Writers put a complete blob in a temp file in the same directory and os.replace() it into
place, so concurrent pytest-xdist workers and concurrent runs never see a partial file; two
writers of one digest both write identical bytes and the last rename wins.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from deploycheck.imageref import DIGEST_RE

_CHUNK = 1024 * 1024
_TEMP_PREFIX = ".partial-"


class CorruptCacheEntry(Exception):
    """A cached blob did not hash to its digest; it has been deleted."""


def default_cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deploycheck" / "blobs"


class BlobCache:
    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_directory()
        self.bytes_served = 0
        """Blob bytes handed out from disk by this instance (verified or not yet verified)."""

    def path_for(self, digest: str) -> Path:
        if not DIGEST_RE.match(digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        return self.directory / "sha256" / digest.removeprefix("sha256:")

    def get(self, digest: str, *, max_bytes: int) -> bytes | None:
        """The whole blob if it is cached, fits `max_bytes` and verifies; else None."""
        path = self.path_for(digest)
        try:
            if path.stat().st_size > max_bytes:
                return None
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self._evict(path)
            return None
        self.bytes_served += len(data)
        return data

    def contains(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        """Stream a cached blob; raises CorruptCacheEntry after the last chunk if it does not verify.

        Like RegistryClient.iter_blob, what the chunks said is unverified until the end.
        Raises FileNotFoundError at the first chunk if the blob is not cached.
        """
        path = self.path_for(digest)
        hasher = hashlib.sha256()
        with open(path, "rb") as blob:
            while chunk := blob.read(_CHUNK):
                hasher.update(chunk)
                self.bytes_served += len(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            self._evict(path)
            raise CorruptCacheEntry(f"cached blob {path} does not hash to {digest}; deleted it")

    def put(self, digest: str, data: bytes) -> None:
        """Store `data` if it hashes to `digest`; silently refuses anything else."""
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return
        with self.writer(digest) as sink:
            sink.write(data)

    @contextmanager
    def writer(self, digest: str) -> Iterator[IO[bytes]]:
        """A file to write a blob into; kept only if the block ends normally and the bytes verify."""
        final = self.path_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=final.parent, prefix=_TEMP_PREFIX)
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as sink:
                hashing = _HashingWriter(sink)
                yield hashing
            if hashing.digest() == digest:
                os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)

    def _evict(self, path: Path) -> None:
        path.unlink(missing_ok=True)


class _HashingWriter:
    def __init__(self, sink: IO[bytes]):
        self._sink = sink
        self._hasher = hashlib.sha256()

    def write(self, chunk: bytes) -> int:
        self._hasher.update(chunk)
        return self._sink.write(chunk)

    def digest(self) -> str:
        return "sha256:" + self._hasher.hexdigest()

"""A content-addressed cache of verified registry data (`DIR/sha256/<hex>`), shared by processes.

What it holds, and only once verified:
  - whole blobs (manifests, configs, layers read to their end) that hash to their digest;
  - eStargz pieces, content-addressed as well: a TOC under the digest the manifest's annotation
    names, each chunk (decompressed) under its TOC chunkDigest;
  - documents derived from a verified blob (`DIR/<kind>/<hex>`, e.g. a layer's listing and the
    file contents read from it), so a warm read decompresses nothing a cold read already did.
    They carry their own sha256 against disk corruption; like the installed code, they trust
    whoever may write the cache directory.
A layer read only in part is never stored, nor anything derived from it: a gzip prefix cannot be
checked against the blob digest (sha256 needs every byte), and keeping it would turn "as the
registry sent it just now" into "whatever the disk holds". So a default-mode warm read of such a
layer reads its prefix again; a --verify-layers read (or an eStargz layer) leaves what makes the
next read cost 0 bytes.

Blobs are immutable by digest, so a cached blob is as good as the registry's copy, provided it
is verified: a file that no longer hashes to its name (disk corruption, a truncated copy,
tampering) is deleted on read and fetched again.

Writers put a complete blob in a temp file in the same directory and os.replace() it into
place, so concurrent pytest-xdist workers and concurrent runs never see a partial file; two
writers of one digest both write identical bytes and the last rename wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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
        except OSError:  # not cached, or a cache directory that cannot be read: a miss either way
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self._evict(path)
            return None
        self.bytes_served += len(data)
        return data

    def stream(self, digest: str) -> Iterator[bytes] | None:
        """The cached blob as chunks, or None if it is not cached (or cannot be read).

        Raises CorruptCacheEntry after the last chunk (having deleted the file) if the bytes do
        not hash to `digest`: like RegistryClient.iter_blob, the chunks are unverified until then.
        """
        path = self.path_for(digest)
        try:
            blob = open(path, "rb")  # noqa: SIM115 (the generator below closes it)
        except OSError:
            return None
        return self._verified_chunks(blob, path, digest)

    def _verified_chunks(self, blob: IO[bytes], path: Path, digest: str) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        with blob:
            while chunk := blob.read(_CHUNK):
                hasher.update(chunk)
                self.bytes_served += len(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            self._evict(path)
            raise CorruptCacheEntry(f"cached blob {path} does not hash to {digest}; deleted it")

    def get_document(self, kind: str, digest: str) -> dict | None:
        """The JSON document of `kind` stored for blob `digest`, if present and intact."""
        path = self._document_path(kind, digest)
        try:
            checksum, _, body = path.read_bytes().partition(b"\n")
        except OSError:
            return None
        if hashlib.sha256(body).hexdigest().encode() != checksum:
            self._evict(path)
            return None
        try:
            document = json.loads(body)
        except ValueError:
            self._evict(path)
            return None
        return document if isinstance(document, dict) else None

    def put_document(self, kind: str, digest: str, document: dict) -> None:
        """Store a document derived from the verified blob `digest` (best effort, atomic)."""
        path = self._document_path(kind, digest)
        body = json.dumps(document, separators=(",", ":")).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        except OSError:
            return
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
            os.replace(temp, path)
        except OSError:
            temp.unlink(missing_ok=True)

    def _document_path(self, kind: str, digest: str) -> Path:
        if not kind.replace("-", "_").isidentifier():
            raise ValueError(f"{kind!r} is not a document kind")
        return self.directory / kind / self.path_for(digest).name

    def put(self, digest: str, data: bytes) -> None:
        """Store `data` if it hashes to `digest`; anything else is silently not stored."""
        with self.writer(digest) as sink:
            sink.write(data)

    @contextmanager
    def writer(self, digest: str) -> Iterator[BlobSink]:
        """A sink to write a blob into; kept only if the block ends normally and the bytes verify.

        The cache is best effort: when the directory cannot be written or the disk fills up,
        writes are dropped and the blob is not kept, and the caller does not notice.
        """
        final = self.path_for(digest)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=final.parent, prefix=_TEMP_PREFIX)
        except OSError:
            yield BlobSink(None)
            return
        temp = Path(temp_name)
        sink = BlobSink(os.fdopen(handle, "wb"))
        try:
            yield sink
            sink.commit(temp, final, digest)
        finally:
            sink.discard()
            temp.unlink(missing_ok=True)

    def _evict(self, path: Path) -> None:
        path.unlink(missing_ok=True)


class BlobSink:
    """Hashes everything written; writes it to `file` while the file takes writes."""

    def __init__(self, file: IO[bytes] | None):
        self._file = file
        self._hasher = hashlib.sha256()

    def write(self, chunk: bytes) -> int:
        self._hasher.update(chunk)
        if self._file is not None:
            try:
                self._file.write(chunk)
            except OSError:
                self.discard()
        return len(chunk)

    def commit(self, temp: Path, final: Path, digest: str) -> None:
        """Move the complete temp file into place if what was written hashes to `digest`."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.close()
            if "sha256:" + self._hasher.hexdigest() == digest:
                os.replace(temp, final)
        except OSError:
            pass  # not cached; nothing else is lost

    def discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

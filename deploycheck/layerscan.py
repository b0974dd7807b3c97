"""Reading one layer's tar stream: decompress as bytes arrive, index members, stop when told.

Every read is bounded: by the image read's deadline and the decompressed bytes it may inflate
(`ReadBudget`, so a gzip bomb stops at --max-decompressed-bytes), and each kept file by
--max-file-bytes.
"""

from __future__ import annotations

import gzip
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

from deploycheck.errors import ObservationError
from deploycheck.imageview import LayerIndex, member_path
from deploycheck.registry import DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, Descriptor

if TYPE_CHECKING:
    from deploycheck.images import ImageLimits

GZIP_LAYERS = frozenset(
    {
        OCI_LAYER_GZIP,
        DOCKER_LAYER_GZIP,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
_ZSTD_LAYERS = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
_TAR_LAYERS = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
    }
)


class ReadBudget:
    """The deadline and the decompressed-bytes allowance of one read_files call."""

    def __init__(self, limits: ImageLimits, what: str, started: float):
        self.limits = limits
        self.what = what
        self.deadline = started + limits.max_seconds
        self.decompressed = 0

    def check_deadline(self) -> None:
        if self.limits.not_after is not None and time.monotonic() > self.limits.not_after:
            raise ObservationError(self.what, "the run's --budget ran out while reading files from the image")
        if time.monotonic() > self.deadline:
            raise ObservationError(
                self.what,
                f"reading files took longer than the {self.limits.max_seconds:g}s --image-timeout "
                "(a stalled or slow registry, or very large layers); raise --image-timeout if the image is just big",
            )

    def add_decompressed(self, count: int, layer: LayerIndex) -> None:
        self.decompressed += count
        if self.decompressed > self.limits.max_decompressed_bytes:
            raise ObservationError(
                self.what,
                f"layer {layer.index} ({layer.descriptor.digest}) took the image past the "
                f"{self.limits.max_decompressed_bytes:,}-byte --max-decompressed-bytes limit "
                "(a decompression bomb, or a very large image: raise --max-decompressed-bytes to read it)",
            )


class ChunkReader:
    """A read()-able raw file over an iterator of blob chunks, checking the deadline as bytes arrive.

    read(n) returns what has arrived, up to n bytes, waiting only while nothing has (a short read,
    as a socket gives): gzip asks for 128 KiB at a time, and a read that stops at the wanted file
    must not pull bytes from the network only to fill that buffer.
    """

    def __init__(self, chunks: Iterator[bytes], budget: ReadBudget):
        self._chunks = chunks
        self._budget = budget
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or not self._buffer:
            self._budget.check_deadline()
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def drain(self) -> None:
        """Consume the rest of the blob, so that its digest is checked."""
        self._buffer.clear()
        for _ in self._chunks:
            self._budget.check_deadline()


class _CountingReader:
    """Reports every decompressed byte read through it, so a bomb stops at the budget."""

    def __init__(self, source: IO[bytes], count: Callable[[int], None]):
        self._source = source
        self._count = count

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._count(len(data))
        return data


def decompressor(descriptor: Descriptor, index: int, what: str) -> Callable[[IO[bytes]], IO[bytes]]:
    media_type = descriptor.media_type
    if media_type in GZIP_LAYERS:
        return lambda compressed: gzip.GzipFile(fileobj=compressed, mode="rb")
    if media_type in _TAR_LAYERS:
        return lambda raw: raw
    if media_type in _ZSTD_LAYERS:
        try:
            import zstandard
        except ImportError:
            raise ObservationError(
                what,
                f"unsupported layer media type {media_type} (zstd) of layer {index} ({descriptor.digest}): "
                "install zstandard (pip install zstandard) to read zstd layers",
            ) from None
        return lambda compressed: zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=True)
    raise ObservationError(
        what,
        f"unsupported layer media type {media_type!r} of layer {index} ({descriptor.digest}): "
        "expected an OCI or Docker tar layer, uncompressed, gzip or zstd",
    )


def _format_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (tarfile.TarError, OSError, EOFError, zlib.error)
    try:
        import zstandard
    except ImportError:
        return errors
    return (*errors, zstandard.ZstdError)


def counted(chunks: Iterator[bytes], layer: LayerIndex) -> Iterator[bytes]:
    """Pass chunks through, adding their length to the layer's bytes read."""
    for chunk in chunks:
        layer.bytes_read += len(chunk)
        yield chunk


def scan_tar(
    layer: LayerIndex,
    chunks: Iterator[bytes],
    *,
    budget: ReadBudget,
    max_file_bytes: int,
    keep: Callable[[str], bool],
    stop_after: Callable[[str], bool] | None = None,
) -> bool:
    """Index the members of `layer`'s blob, given as compressed `chunks`, into `layer`.

    A regular file's content is kept when `keep(path)`. After each member, `stop_after(path)`
    may end the read there: the rest of the blob is then neither read nor verified, and the
    result is False. Otherwise the blob is read to its end (so the chunks' source verifies its
    digest) and the result is True.
    """
    what = budget.what
    open_layer = decompressor(layer.descriptor, layer.index, what)
    compressed = ChunkReader(chunks, budget)
    tar_bytes = _CountingReader(open_layer(compressed), lambda count: budget.add_decompressed(count, layer))
    try:
        with tarfile.open(fileobj=tar_bytes, mode="r|") as tar:
            for member in tar:
                data = None
                if member.isreg() and (normal := member_path(member.name)) is not None and keep(normal):
                    data = tar.extractfile(member).read(max_file_bytes)
                path = layer.record(member.name, _kind(member), linkname=member.linkname, size=member.size, data=data)
                if path is not None and stop_after is not None and stop_after(path):
                    return False
        compressed.drain()
    except _format_errors() as exc:
        compressed.drain()  # if the blob is not what the manifest names, that is the real cause: raises
        raise ObservationError(
            what,
            f"layer {layer.index} ({layer.descriptor.digest}, {layer.descriptor.media_type}) "
            f"is not a readable tar: {type(exc).__name__}: {exc}",
        ) from None
    return True


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    if member.isreg():
        return "file"
    return "other"

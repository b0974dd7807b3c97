"""Read named files from a container image, pinned by digest, without pulling or running it.

`RegistryImageReader` (the default) talks OCI distribution directly: it reads the platform
manifest and config, then walks the layers from the TOP down, streaming and decompressing one
layer at a time, and stops before opening the next layer once every wanted path is settled
(found as a regular file, or known absent). Whiteouts and opaque directories are honoured,
symlinks are resolved across layers, member names that escape the image root are ignored and
reported. Every layer is read to its end so its sha256 is verified before anything from it
is trusted; every read is bounded by `ImageLimits`.

`deploycheck.images_docker.DockerImageReader` is the fallback for registries the OCI reader
cannot reach (a docker engine pulls, creates and never starts a container).
"""

from __future__ import annotations

import functools
import gzip
import posixpath
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

from deploycheck.blobcache import BlobCache, BlobSink, CorruptCacheEntry
from deploycheck.errors import ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.registry import DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, Descriptor, RegistryClient

MIB = 1024 * 1024

_GZIP_LAYERS = frozenset(
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

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_WHITEOUT_META = ".wh..wh."
"""AUFS bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs): not whiteouts of anything."""
_ESCAPES = "escapes the image root"
_SPECULATIVE_BYTES = 64 * MIB
"""Memory for contents kept on the chance that a lower layer's directory symlink leads to them."""


@dataclass(frozen=True)
class ImageLimits:
    max_file_bytes: int = MIB
    """Content kept per file; a longer file is returned truncated (--max-file-bytes)."""
    max_decompressed_bytes: int = 1024 * MIB
    """Decompressed layer bytes one read may inflate, all layers together (--max-decompressed-bytes)."""
    max_layers: int = 128
    """Images with more layers are refused (--max-layers)."""
    max_seconds: float = 120.0
    """Wall-clock budget of one read; a stalled transfer also ends at the client's read timeout (--image-timeout)."""
    max_symlink_hops: int = 16
    """Symlinks followed while resolving one path; more means a loop."""
    not_after: float | None = None
    """A time.monotonic() instant no read may run past: the run's --budget."""


@dataclass(frozen=True)
class FileRead:
    path: str
    """As asked for."""
    found: bool
    """A regular file (or a hardlink to one) exists at `path` in the image."""
    data: bytes | None
    """Content, at most ImageLimits.max_file_bytes of it; None when not found."""
    size: int
    """Full size in bytes (the tar header's), even when `data` is truncated."""
    resolved_path: str
    """Where `path` leads after symlinks: where the file is, or where resolution stopped."""
    layer_digest: str | None
    """The layer that decided the outcome: the one holding the file, or the one hiding it."""
    layer_index: int | None
    """0 is the base layer, as the manifest lists them."""
    layer_size: int | None
    """Compressed size of that layer."""
    truncated: bool
    note: str
    """Why not found, what reading it cost, how it was reached; empty when there is nothing to say."""


@dataclass
class ImageReadResult:
    image: str
    files: dict[str, FileRead]
    """Keyed by the paths as asked for."""
    bytes_read: int | None
    """Bytes received from the registry by this call (manifests, config, layers); None if unmeasurable."""
    bytes_from_cache: int
    """Blob bytes served from the blob cache instead."""
    layers_opened: int
    layers_total: int
    image_compressed_size: int | None
    """Config plus every layer, compressed: what a full pull would transfer."""
    elapsed_s: float
    ignored_members: list[str] = field(default_factory=list)
    """Tar members ignored because their names escape the image root, as 'layer N: NAME'."""

    def __getitem__(self, path: str) -> FileRead:
        return self.files[path]


class Readable(Protocol):
    """A forward-only byte stream: all that tarfile's stream mode ("r|") and the decompressors read."""

    def read(self, size: int = -1, /) -> bytes: ...


class ImageReader(Protocol):
    def read_files(self, ref: ImageRef, paths: Sequence[str]) -> ImageReadResult: ...


def require_digest(ref: ImageRef) -> str:
    if not ref.digest:
        raise ValueError(
            f"image {ref} is not pinned by digest: read files of IMAGE@sha256:..., the digest that "
            "actually runs; re-resolving a tag may read a different image"
        )
    return ref.digest


# --- the registry reader --------------------------------------------------------------------


class RegistryImageReader:
    """Reads files from images over the OCI distribution API, top layer first, stopping early.

    A `cache` also serves the client's manifest and config reads when the client has no cache
    of its own, so a warm run against the same digest sends no request at all.
    """

    def __init__(self, client: RegistryClient, *, cache: BlobCache | None, limits: ImageLimits = ImageLimits()):
        self._client = client
        self._cache = cache
        self._limits = limits
        if cache is not None and client.cache is None:
            client.cache = cache

    def read_files(self, ref: ImageRef, paths: Sequence[str]) -> ImageReadResult:
        require_digest(ref)
        started = time.monotonic()
        received_before = self._client.stats.bytes_received
        caches = {id(cache): cache for cache in (self._cache, self._client.cache) if cache is not None}
        served_before = sum(cache.bytes_served for cache in caches.values())

        config = self._client.image_config(ref)
        manifest = self._client.manifest(ref.with_digest(config.manifest_digest))
        config_size = Descriptor.from_json(manifest.json.get("config"), f"image {ref}").size
        walk = _LayerWalk(self._client, self._cache, self._limits, ref, config.layers, started)
        files = walk.read(paths)

        return ImageReadResult(
            image=str(ref),
            files=files,
            bytes_read=self._client.stats.bytes_received - received_before,
            bytes_from_cache=sum(cache.bytes_served for cache in caches.values()) - served_before,
            layers_opened=len(walk.view.layers),
            layers_total=len(config.layers),
            image_compressed_size=config_size + sum(layer.size for layer in config.layers),
            elapsed_s=time.monotonic() - started,
            ignored_members=[
                f"layer {layer.index}: {name!r} {why}" for layer in walk.view.layers for name, why in layer.ignored
            ],
        )


@dataclass
class _Member:
    kind: Literal["file", "dir", "symlink", "hardlink", "other"]
    target: str = ""
    """Symlink: the link text verbatim. Hardlink: the normalised path of the linked member."""
    size: int = 0
    data: bytes | None = None
    """Kept content of a regular file, or None if the walk did not keep it."""
    read_again: bool = False
    """The content came from a second read of the layer."""


_IMPLIED_DIR = _Member("dir")


class _LayerIndex:
    """What one layer says about paths. Paths are absolute and normalised ('/app/x')."""

    def __init__(self, index: int, descriptor: Descriptor, from_cache: bool):
        self.index = index
        self.descriptor = descriptor
        self.from_cache = from_cache
        self.entries: dict[str, _Member] = {}
        self.implied_dirs: set[str] = set()
        """Parents of entries: directories of this layer even when the tar has no entry for them."""
        self.whiteouts: set[str] = set()
        self.opaque_dirs: set[str] = set()
        self.ignored: list[tuple[str, str]] = []
        """(member name, why) of members left out because they would land outside the image root."""

    def add(self, path: str, member: _Member) -> None:
        self.entries[path] = member  # a later member of the same name replaces the earlier one, as tar extracts
        self._imply_parents(path)

    def add_whiteout(self, path: str) -> None:
        self.whiteouts.add(path)
        self._imply_parents(path)

    def add_opaque(self, directory: str) -> None:
        self.opaque_dirs.add(directory)
        self._imply_parents(posixpath.join(directory, _OPAQUE))

    def entry(self, path: str) -> _Member | None:
        return self.entries.get(path) or (_IMPLIED_DIR if path in self.implied_dirs else None)

    def _imply_parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in self.implied_dirs:
            self.implied_dirs.add(parent)
            parent = posixpath.dirname(parent)


@dataclass
class _Lookup:
    state: Literal["found", "absent", "unknown"]
    member: _Member | None = None
    layer: _LayerIndex | None = None
    reason: str = ""


@dataclass
class _Resolution:
    state: Literal["found", "absent", "pending"]
    path: str
    """The physical path reached: the file, the path found absent, or the best guess while pending."""
    member: _Member | None = None
    layer: _LayerIndex | None = None
    reason: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    """Symlinks followed on the way, as (link path, link text)."""


class _MergedView:
    """The union filesystem as far as the opened layers (a top slice of the image) tell it."""

    def __init__(self, layers_total: int):
        self.layers_total = layers_total
        self.layers: list[_LayerIndex] = []
        """Opened layers, top first."""

    @property
    def complete(self) -> bool:
        return len(self.layers) == self.layers_total

    def lookup(self, path: str) -> _Lookup:
        """The topmost layer's word on one physical path (its parents are directories)."""
        ancestors = _ancestors(path)
        for layer in self.layers:
            member = layer.entry(path)
            if member is not None:
                return _Lookup("found", member, layer)
            if path in layer.whiteouts:
                return _Lookup("absent", layer=layer, reason=f"hidden by a whiteout in layer {layer.index}")
            for ancestor in ancestors:
                if ancestor in layer.whiteouts:
                    reason = f"hidden by a whiteout of {ancestor} in layer {layer.index}"
                elif ancestor in layer.opaque_dirs:
                    reason = f"hidden by opaque directory {ancestor} in layer {layer.index}"
                elif (above := layer.entries.get(ancestor)) is not None and above.kind != "dir":
                    reason = f"{ancestor} is a {above.kind} in layer {layer.index}, hiding lower layers' {ancestor}/"
                else:
                    continue
                return _Lookup("absent", layer=layer, reason=reason)
        if self.complete:
            return _Lookup("absent", reason=f"not in any of the {self.layers_total} layers")
        return _Lookup("unknown")

    def resolve(self, wanted: str, max_hops: int) -> _Resolution:
        """Follow `wanted` component by component through symlinks, as the kernel would in the container."""
        pending = path_components(wanted)
        current = "/"
        links: list[tuple[str, str]] = []
        last: _Lookup | None = None
        while pending:
            name = pending.pop(0)
            if name == "..":
                current = posixpath.dirname(current)
                last = None
                continue
            path = posixpath.join(current, name)
            found = self.lookup(path)
            if found.state != "found":
                state: Literal["pending", "absent"] = "pending" if found.state == "unknown" else "absent"
                physical = posixpath.normpath(posixpath.join(path, *pending))
                return _Resolution(state, physical, layer=found.layer, reason=found.reason, links=links)
            member = found.member
            assert member is not None and found.layer is not None  # as every "found" lookup has
            if member.kind == "symlink":
                links.append((path, member.target))
                if len(links) > max_hops:
                    raise _SymlinkLoop(
                        f"symlink loop (or a chain over {max_hops} hops) resolving {wanted}: "
                        f"{_describe(links[:4])}, ..."
                    )
                pending = path_components(member.target) + pending
                if member.target.startswith("/"):
                    current = "/"
                continue
            if pending and member.kind != "dir":
                reason = f"{path} is a {member.kind} in layer {found.layer.index}, not a directory"
                return _Resolution("absent", path, layer=found.layer, reason=reason, links=links)
            current, last = path, found
        if last is None:
            return _Resolution("absent", current, reason=f"{current} is a directory", links=links)
        return self._final(current, last, links)

    def _final(self, path: str, found: _Lookup, links: list[tuple[str, str]]) -> _Resolution:
        member, layer = found.member, found.layer
        assert member is not None and layer is not None  # `found` is a "found" lookup
        if member.kind == "hardlink":
            linked = layer.entries.get(member.target)
            if linked is None or linked.kind != "file":
                reason = f"{path} is a hardlink to {member.target}, which is not a regular file in layer {layer.index}"
                return _Resolution("absent", path, layer=layer, reason=reason, links=links)
            return _Resolution("found", path, member=linked, layer=layer, links=links)
        if member.kind == "file":
            return _Resolution("found", path, member=member, layer=layer, links=links)
        what = "a directory" if member.kind == "dir" else "not a regular file"
        return _Resolution("absent", path, layer=layer, reason=f"{path} is {what} in layer {layer.index}", links=links)


class _SymlinkLoop(Exception):
    pass


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

    def add_decompressed(self, count: int, layer: _LayerIndex) -> None:
        self.decompressed += count
        if self.decompressed > self.limits.max_decompressed_bytes:
            raise ObservationError(
                self.what,
                f"layer {layer.index} ({layer.descriptor.digest}) took the image past the "
                f"{self.limits.max_decompressed_bytes:,}-byte --max-decompressed-bytes limit "
                "(a decompression bomb, or a very large image: raise --max-decompressed-bytes to read it)",
            )


class _LayerWalk:
    """One read_files call: opens layers top down until every wanted path is settled."""

    def __init__(
        self,
        client: RegistryClient,
        cache: BlobCache | None,
        limits: ImageLimits,
        ref: ImageRef,
        layers: list[Descriptor],
        started: float,
    ):
        self._client = client
        self._cache = cache
        self._limits = limits
        self._ref = ref
        self._layers = layers
        self._what = f"image {ref}"
        self._budget = ReadBudget(limits, self._what, started)
        self._kept_speculatively = 0
        self.view = _MergedView(len(layers))

    def read(self, paths: Sequence[str]) -> dict[str, FileRead]:
        if len(self._layers) > self._limits.max_layers:
            raise ObservationError(
                self._what,
                f"image has {len(self._layers)} layers, more than the --max-layers limit of "
                f"{self._limits.max_layers}; raise --max-layers to read it",
            )
        wanted = {path: "/" + "/".join(path_components(path)) for path in paths}
        basenames = {posixpath.basename(path) for path in wanted.values()}
        resolutions = self._resolve_all(wanted)
        for index in reversed(range(len(self._layers))):
            pending = {r.path for r in resolutions.values() if r.state == "pending"}
            if not pending:
                break
            self._budget.check_deadline()
            layer = self._scan_layer(index, functools.partial(self._keep, pending=pending, basenames=basenames))
            self.view.layers.append(layer)
            resolutions = self._resolve_all(wanted)
        self._fill_missing_contents(resolutions)
        return {path: self._file_read(path, wanted[path], resolutions[path]) for path in paths}

    def _resolve_all(self, wanted: dict[str, str]) -> dict[str, _Resolution]:
        try:
            return {path: self.view.resolve(normal, self._limits.max_symlink_hops) for path, normal in wanted.items()}
        except _SymlinkLoop as loop:
            raise ObservationError(self._what, str(loop)) from None

    def _keep(self, path: str, pending: set[str], basenames: set[str]) -> bool:
        if path in pending:
            return True
        # A directory symlink in a lower layer (/app -> /srv/app) may yet lead a wanted path to
        # this file; keeping likely candidates now saves reading this layer a second time.
        if posixpath.basename(path) in basenames and self._kept_speculatively < _SPECULATIVE_BYTES:
            self._kept_speculatively += self._limits.max_file_bytes
            return True
        return False

    def _fill_missing_contents(self, resolutions: dict[str, _Resolution]) -> None:
        """Read again the layers holding found files whose content the walk did not keep.

        That happens when a link revealed the file only after its layer was passed: a symlink
        in a lower layer, or a hardlink to a member earlier in the same tar.
        """
        missing: dict[int, set[str]] = {}
        for resolution in resolutions.values():
            if resolution.state != "found":
                continue
            assert resolution.member is not None and resolution.layer is not None  # as every "found" one has
            if resolution.member.data is None:
                member_path = resolution.path
                hardlink = resolution.layer.entries.get(member_path)
                if hardlink is not None and hardlink.kind == "hardlink":
                    member_path = hardlink.target
                missing.setdefault(resolution.layer.index, set()).add(member_path)
        for index, member_paths in missing.items():
            self._budget.check_deadline()
            again = self._scan_layer(index, member_paths.__contains__)
            opened = next(layer for layer in self.view.layers if layer.index == index)
            for member_path in member_paths:
                opened.entries[member_path].data = again.entries[member_path].data
                opened.entries[member_path].read_again = True

    def _file_read(self, path: str, normal: str, resolution: _Resolution) -> FileRead:
        layer = resolution.layer
        notes = []
        if resolution.links:
            notes.append("via symlinks " + _describe(resolution.links))
        truncated = False
        member = resolution.member if resolution.state == "found" else None
        if member is not None:
            assert layer is not None  # a found file's layer is known
            truncated = member.size > self._limits.max_file_bytes
            if truncated:
                notes.append(truncation_note(member.size, self._limits))
            if layer.index == 0 and len(self._layers) > 1:
                source = " (from the blob cache)" if layer.from_cache else ""
                notes.append(
                    f"found only in layer 0 (a {layer.descriptor.size:,}-byte base layer): "
                    f"reading it cost that much{source}"
                )
            if member.read_again:
                notes.append(f"layer {layer.index} was read twice: only a link seen later led to this file")
        else:
            notes.append(resolution.reason)
        for opened in self.view.layers:
            for name, why in opened.ignored:
                if posixpath.normpath("/" + name.lstrip("/")) == normal:
                    notes.append(f"ignored member {name!r} of layer {opened.index}: it {why}")
        return FileRead(
            path=path,
            found=member is not None,
            data=member.data if member is not None else None,
            size=member.size if member is not None else 0,
            resolved_path=resolution.path,
            layer_digest=layer.descriptor.digest if layer else None,
            layer_index=layer.index if layer else None,
            layer_size=layer.descriptor.size if layer else None,
            truncated=truncated,
            note="; ".join(notes),
        )

    # --- one layer ---------------------------------------------------------------------------

    def _scan_layer(self, index: int, keep: Callable[[str], bool]) -> _LayerIndex:
        """Index one layer from the cache if it is there and intact, else from the registry."""
        descriptor = self._layers[index]
        open_layer = _decompressor(descriptor, index, self._what)
        if self._cache is not None:
            cached = self._cache.stream(descriptor.digest)
            if cached is not None:
                try:
                    return self._scan(_LayerIndex(index, descriptor, True), open_layer, cached, keep)
                except CorruptCacheEntry:
                    pass  # deleted by the cache; fetch it again below
        chunks = self._client.iter_blob(self._ref, descriptor.digest, max_bytes=descriptor.size)
        if self._cache is None:
            return self._scan(_LayerIndex(index, descriptor, False), open_layer, chunks, keep)
        with self._cache.writer(descriptor.digest) as sink:
            return self._scan(_LayerIndex(index, descriptor, False), open_layer, _tee(chunks, sink), keep)

    def _scan(
        self,
        layer: _LayerIndex,
        open_layer: Callable[[IO[bytes]], Readable],
        chunks: Iterator[bytes],
        keep: Callable[[str], bool],
    ) -> _LayerIndex:
        compressed = ChunkReader(chunks, self._budget)
        # gzip's and zstandard's stubs ask for a whole file object; reading forward calls only read().
        tar_bytes = _CountingReader(
            open_layer(compressed),  # type: ignore[arg-type]
            lambda count: self._budget.add_decompressed(count, layer),
        )
        try:
            # tarfile's stub asks for a seekable file; its stream mode ("r|") calls only read().
            with tarfile.open(fileobj=tar_bytes, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    self._record(layer, tar, member, keep)
            compressed.drain()
        except _format_errors() as exc:
            compressed.drain()  # if the blob is not what the manifest names, that is the real cause: raises
            raise ObservationError(
                self._what,
                f"layer {layer.index} ({layer.descriptor.digest}, {layer.descriptor.media_type}) "
                f"is not a readable tar: {type(exc).__name__}: {exc}",
            ) from None
        return layer

    def _record(
        self, layer: _LayerIndex, tar: tarfile.TarFile, member: tarfile.TarInfo, keep: Callable[[str], bool]
    ) -> None:
        path = _member_path(member.name)
        if path is None:
            layer.ignored.append((member.name, _ESCAPES))
            return
        if path == "/":
            return
        parent, base = posixpath.split(path)
        if base == _OPAQUE:
            layer.add_opaque(parent)
        elif base.startswith(_WHITEOUT_META):
            return
        elif base.startswith(_WHITEOUT):
            if len(base) > len(_WHITEOUT):
                layer.add_whiteout(posixpath.join(parent, base[len(_WHITEOUT) :]))
        elif member.issym():
            layer.add(path, _Member("symlink", target=member.linkname))
        elif member.islnk():
            target = _member_path(member.linkname)
            if target is None:
                layer.ignored.append((member.name, f"is a hardlink to {member.linkname!r}, which {_ESCAPES}"))
            else:
                layer.add(path, _Member("hardlink", target=target))
        elif member.isdir():
            layer.add(path, _Member("dir"))
        elif member.isreg():
            data = _extracted(tar, member).read(self._limits.max_file_bytes) if keep(path) else None
            layer.add(path, _Member("file", size=member.size, data=data))
        else:
            layer.add(path, _Member("other"))


def _extracted(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """A regular file's content (tarfile answers None only for other kinds of member)."""
    content = tar.extractfile(member)
    if content is None:
        raise tarfile.TarError(f"{member.name} is a regular file without content")
    return content


def _member_path(name: str) -> str | None:
    """'/app/x' for './app/x', 'app//x', 'app/./x'; None for names that escape the root."""
    if name.startswith("/"):
        return None
    cleaned = posixpath.normpath(name)
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return "/" if cleaned == "." else "/" + cleaned


def truncation_note(size: int, limits: ImageLimits) -> str:
    return (
        f"file is {size:,} bytes, over the {limits.max_file_bytes:,}-byte --max-file-bytes limit: "
        "data holds only its beginning"
    )


def _describe(links: list[tuple[str, str]]) -> str:
    return ", ".join(f"{path} -> {target}" for path, target in links)


def path_components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _ancestors(path: str) -> list[str]:
    """'/a/b/c' -> ['/a', '/a/b'], top first."""
    parts = path_components(path)[:-1]
    return ["/" + "/".join(parts[: depth + 1]) for depth in range(len(parts))]


def _decompressor(descriptor: Descriptor, index: int, what: str) -> Callable[[IO[bytes]], Readable]:
    media_type = descriptor.media_type
    if media_type in _GZIP_LAYERS:
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


def _tee(chunks: Iterator[bytes], sink: BlobSink) -> Iterator[bytes]:
    """Pass chunks through, copying them into the cache."""
    for chunk in chunks:
        sink.write(chunk)
        yield chunk


class ChunkReader:
    """A read()-able file over an iterator of blob chunks, checking the deadline as bytes arrive."""

    def __init__(self, chunks: Iterator[bytes], budget: ReadBudget):
        self._chunks = chunks
        self._budget = budget
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
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

    def __init__(self, source: Readable, count: Callable[[int], None]):
        self._source = source
        self._count = count

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._count(len(data))
        return data

"""One read_files call of the registry reader: open layers top down until every wanted path is settled.

Where a layer's listing comes from, best first:
  1. the layer-index cache: the listing (and kept contents) of a layer once read whole and verified;
  2. the blob cache: the verified blob, decompressed once more to build that index;
  3. an eStargz TOC (default mode): footer, TOC and the file's chunks by HTTP Range, each verified;
  4. the registry stream: decompressed as it arrives. By default the read stops at the member that
     settles the last wanted path and the HTTP body is abandoned there: those bytes are NOT
     verified against the blob digest (sha256 needs every byte), and every file whose answer
     depends on that layer says so. With --verify-layers every layer is read to its end and
     verified. A layer read to its end is verified and cached either way.

Taking the first member of a name in a layer read in part is what a tar extraction does unless
the same layer has a later member of that name, which only a hand-made tar has; --verify-layers
reads the whole layer and takes the last one, as extraction does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

from deploycheck.blobcache import BlobCache, CorruptCacheEntry
from deploycheck.errors import ObservationError
from deploycheck.estargz import (
    FOOTER_SIZE,
    Chunk,
    EStargzError,
    Toc,
    check_file_digest,
    decode_chunk,
    index_layer,
    parse_footer,
    parse_toc,
    toc_digest,
    toc_json,
)
from deploycheck.imageref import ImageRef
from deploycheck.imageview import (
    Integrity,
    LayerIndex,
    MergedView,
    Resolution,
    SymlinkLoop,
    describe_links,
    path_components,
    watched_paths,
)
from deploycheck.layerscan import GZIP_LAYERS, ReadBudget, counted, scan_tar
from deploycheck.registry import Descriptor, RegistryClient

if TYPE_CHECKING:
    from deploycheck.images import FileRead, ImageLimits

MIB = 1024 * 1024
TAIL_BYTES = 64 * 1024
"""A layer whose unread rest is at most this is read to its end anyway: verified and cached for that little."""
_SPECULATIVE_BYTES = 64 * MIB
"""Memory for contents kept on the chance that a lower layer's directory symlink leads to them."""
_TAIL_GUESS = 16 * 1024
"""Bytes asked from the end of an eStargz blob at first: the footer, and the TOC when it is small."""
_MAX_TOC_BYTES = 64 * MIB
LAYER_INDEX = "layer-index"
_STRENGTH = {"partial": 0, "estargz": 1, "sha256": 2}


class LayerWalk:
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
        self._tocs: dict[int, Toc] = {}
        self._wanted: dict[str, str] = {}
        self._basenames: set[str] = set()
        self._resolutions: dict[str, Resolution] = {}
        self._pending: set[str] = set()
        self._watch: set[str] = set()
        self.view = MergedView(len(layers))

    def read(self, paths: Sequence[str]) -> dict[str, FileRead]:
        if len(self._layers) > self._limits.max_layers:
            raise ObservationError(
                self._what,
                f"image has {len(self._layers)} layers, more than the --max-layers limit of "
                f"{self._limits.max_layers}; raise --max-layers to read it",
            )
        self._wanted = {path: "/" + "/".join(path_components(path)) for path in paths}
        self._basenames = {posixpath.basename(path) for path in self._wanted.values()}
        self._resolve_all()
        for index in reversed(range(len(self._layers))):
            if not self._pending:
                break
            self._budget.check_deadline()
            self._open_layer(index)
            self._resolve_all()
        self._fill_missing_contents()
        return {path: self._file_read(path, self._wanted[path], self._resolutions[path]) for path in paths}

    @property
    def bytes_decompressed(self) -> int:
        return self._budget.decompressed

    @property
    def partial_layers(self) -> list[LayerIndex]:
        return [layer for layer in self.view.layers if layer.integrity == "partial"]

    # --- resolution ----------------------------------------------------------------------------

    def _resolve_all(self) -> None:
        try:
            self._resolutions = {
                path: self.view.resolve(normal, self._limits.max_symlink_hops) for path, normal in self._wanted.items()
            }
        except SymlinkLoop as loop:
            raise ObservationError(self._what, str(loop)) from None
        self._pending = {r.path for r in self._resolutions.values() if r.state == "pending"}
        self._watch = set().union(*(watched_paths(path) for path in self._pending))

    def _keep(self, path: str) -> bool:
        if path in self._pending:
            return True
        # A directory symlink in a lower layer (/app -> /srv/app) may yet lead a wanted path to
        # this file; keeping likely candidates now saves reading this layer a second time.
        if posixpath.basename(path) in self._basenames and self._kept_speculatively < _SPECULATIVE_BYTES:
            self._kept_speculatively += self._limits.max_file_bytes
            return True
        return False

    def _track(self, path: str) -> bool:
        """stop_after for a layer read whole: follow the resolutions as members arrive (so a
        symlink met early in the layer makes its target kept), never stop."""
        if path in self._watch:
            self._resolve_all()
        return False

    def _settled_after(self, layer: LayerIndex) -> Callable[[str], bool]:
        """stop_after for a registry read of `layer`: stop once nothing is pending, unless the rest is small."""

        def stop_after(path: str) -> bool:
            if path not in self._watch:
                return False
            self._resolve_all()
            return not self._pending and layer.descriptor.size - layer.bytes_read > TAIL_BYTES

        return stop_after

    # --- opening one layer ---------------------------------------------------------------------

    def _open_layer(self, index: int) -> None:
        if self._from_index_cache(index) or self._from_blob_cache(index, self._keep):
            return
        layer = self._begin(index)
        if not self._limits.verify_layers and self._estargz_toc_digest(layer) is not None:
            toc = self._toc(layer)
            index_layer(toc, layer)
            self._tocs[index] = toc
            return
        stop_after = self._track if self._limits.verify_layers else self._settled_after(layer)
        self._from_registry(layer, self._keep, stop_after)
        if layer.complete:
            self._store_index(layer)

    def _begin(self, index: int) -> LayerIndex:
        """A fresh index for layer `index` as the lowest opened layer (replacing a failed attempt)."""
        layer = LayerIndex(index, self._layers[index])
        if self.view.layers and self.view.layers[-1].index == index:
            self.view.layers[-1] = layer
        else:
            self.view.layers.append(layer)
        return layer

    def _from_index_cache(self, index: int) -> bool:
        if self._cache is None:
            return False
        document = self._cache.get_document(LAYER_INDEX, self._layers[index].digest)
        if document is None:
            return False
        layer = self._begin(index)
        if layer.load_document(document, self._limits.max_file_bytes):
            return True
        self._begin(index)
        return False

    def _from_blob_cache(self, index: int, keep: Callable[[str], bool], layer: LayerIndex | None = None) -> bool:
        """Index the layer from its cached, verified blob, whole (so the listing can be cached too)."""
        if self._cache is None:
            return False
        chunks = self._cache.stream(self._layers[index].digest)
        if chunks is None:
            return False
        target = layer or self._begin(index)
        try:
            scan_tar(
                target,
                chunks,
                budget=self._budget,
                max_file_bytes=self._limits.max_file_bytes,
                keep=keep,
                stop_after=None if layer is not None else self._track,
            )
        except CorruptCacheEntry:
            if layer is None:
                self._begin(index)
            return False  # deleted by the cache; read from the registry instead
        target.complete, target.integrity, target.from_cache = True, "sha256", True
        _settle_data(target)
        if layer is None:
            self._store_index(target)
        return True

    def _from_registry(
        self, layer: LayerIndex, keep: Callable[[str], bool], stop_after: Callable[[str], bool] | None
    ) -> None:
        descriptor = layer.descriptor
        chunks = self._client.iter_blob(self._ref, descriptor.digest, max_bytes=descriptor.size)
        with ExitStack() as stack:
            sink = stack.enter_context(self._cache.writer(descriptor.digest)) if self._cache is not None else None
            stream = counted(chunks, layer)
            try:
                complete = scan_tar(
                    layer,
                    _tee(stream, sink.write) if sink else stream,
                    budget=self._budget,
                    max_file_bytes=self._limits.max_file_bytes,
                    keep=keep,
                    stop_after=stop_after,
                )
            finally:
                chunks.close()  # a read that stopped early abandons the rest of the HTTP body here
            if not complete and sink is not None:
                sink.discard()  # unverified: never cached
        layer.complete = complete
        layer.integrity = "sha256" if complete else "partial"
        _settle_data(layer)

    def _store_index(self, layer: LayerIndex) -> None:
        if self._cache is not None and layer.complete and layer.integrity == "sha256":
            self._cache.put_document(LAYER_INDEX, layer.descriptor.digest, layer.to_document())

    # --- eStargz -----------------------------------------------------------------------------

    def _estargz_toc_digest(self, layer: LayerIndex) -> str | None:
        if layer.descriptor.media_type not in GZIP_LAYERS:
            return None  # eStargz is gzip members; another compression with this annotation is read as a stream
        try:
            return toc_digest(layer.descriptor)
        except EStargzError as exc:
            raise self._estargz_error(layer, exc) from None

    def _toc(self, layer: LayerIndex) -> Toc:
        if (known := self._tocs.get(layer.index)) is not None:
            return known
        digest = self._estargz_toc_digest(layer)
        try:
            cached = self._cache.get(digest, max_bytes=_MAX_TOC_BYTES) if self._cache is not None else None
            if cached is not None:
                return parse_toc(cached, digest, toc_offset=None)
            size = layer.descriptor.size
            if size <= FOOTER_SIZE:
                raise EStargzError(f"the blob is {size} bytes, too small for a footer")
            tail_start = max(0, size - max(FOOTER_SIZE, _TAIL_GUESS))
            tail = self._range(layer, tail_start, size)
            toc_offset = parse_footer(tail[-FOOTER_SIZE:], size)
            if toc_offset >= tail_start:
                member = tail[toc_offset - tail_start : -FOOTER_SIZE]
            else:
                member = self._range(layer, toc_offset, tail_start) + tail[:-FOOTER_SIZE]
            raw = toc_json(member, min(_MAX_TOC_BYTES, self._limits.max_decompressed_bytes))
            self._budget.add_decompressed(len(raw), layer)
            toc = parse_toc(raw, digest, toc_offset=toc_offset)
        except EStargzError as exc:
            raise self._estargz_error(layer, exc) from None
        if self._cache is not None:
            self._cache.put(digest, raw)
        return toc

    def _read_estargz_file(self, layer: LayerIndex, path: str, size: int) -> bytes:
        """The first --max-file-bytes of a file of an eStargz layer: its chunks from the cache or by Range."""
        toc = self._tocs[layer.index]
        wanted = min(size, self._limits.max_file_bytes)
        chunks = [chunk for chunk in toc.chunks.get(path, []) if chunk.file_offset < wanted]
        pieces: dict[int, bytes] = {}
        for chunk in chunks:
            cached = self._cache.get(chunk.digest, max_bytes=chunk.length) if self._cache is not None else None
            if cached is not None:
                pieces[chunk.file_offset] = cached
        missing = [chunk for chunk in chunks if chunk.file_offset not in pieces]
        try:
            if any(chunk.end < 0 for chunk in missing):  # the TOC came from the cache: the footer says where it starts
                toc_offset = parse_footer(
                    self._range(layer, layer.descriptor.size - FOOTER_SIZE, layer.descriptor.size),
                    layer.descriptor.size,
                )
                missing = [chunk if chunk.end >= 0 else _ending_at(chunk, toc_offset) for chunk in missing]
            for start, end, group in _ranges(missing):
                self._budget.check_deadline()
                data = self._range(layer, start, end)
                for chunk in group:
                    piece = decode_chunk(data[chunk.offset - start : chunk.end - start], chunk, path)
                    self._budget.add_decompressed(chunk.inner_offset + chunk.length, layer)
                    pieces[chunk.file_offset] = piece
                    if self._cache is not None:
                        self._cache.put(chunk.digest, piece)
            content = b"".join(pieces[chunk.file_offset] for chunk in chunks)
            if len(content) != sum(chunk.length for chunk in chunks):
                raise EStargzError(f"the chunks of {path} do not add up")
            if wanted == size:
                check_file_digest(toc, path, content)
        except EStargzError as exc:
            raise self._estargz_error(layer, exc) from None
        return content[:wanted]

    def _range(self, layer: LayerIndex, start: int, end: int) -> bytes:
        data = self._client.blob_range(self._ref, layer.descriptor.digest, start, end, blob_size=layer.descriptor.size)
        layer.bytes_read += len(data)
        return data

    def _estargz_error(self, layer: LayerIndex, exc: EStargzError) -> ObservationError:
        return ObservationError(
            self._what,
            f"layer {layer.index} ({layer.descriptor.digest}) is announced as eStargz, but {exc}",
            hint="--verify-layers reads and verifies whole layers instead of eStargz tables of contents",
        )

    # --- contents the walk did not keep --------------------------------------------------------

    def _fill_missing_contents(self) -> None:
        """Fetch contents of found files that the walk did not keep.

        eStargz files are fetched here by design (their chunks, once the TOC has settled the
        path). For other layers it happens when a link revealed the file only after its layer
        was passed (a symlink in a lower layer, or a hardlink to a member earlier in the same
        tar): that layer is read again.
        """
        missing: dict[int, set[str]] = {}
        for resolution in self._resolutions.values():
            if resolution.state == "found" and resolution.member.data is None:
                member_path = resolution.path
                hardlink = resolution.layer.entries.get(member_path)
                if hardlink is not None and hardlink.kind == "hardlink":
                    member_path = hardlink.target
                missing.setdefault(resolution.layer.index, set()).add(member_path)
        for index, member_paths in missing.items():
            self._budget.check_deadline()
            opened = next(layer for layer in self.view.layers if layer.index == index)
            if index in self._tocs:
                for member_path in sorted(member_paths):
                    member = opened.entries[member_path]
                    member.data = self._read_estargz_file(opened, member_path, member.size)
                    member.data_integrity = "estargz"
            else:
                self._read_again(opened, member_paths)

    def _read_again(self, opened: LayerIndex, member_paths: set[str]) -> None:
        again = LayerIndex(opened.index, opened.descriptor)
        keep = member_paths.__contains__
        if not self._from_blob_cache(opened.index, keep, layer=again):
            again = LayerIndex(opened.index, opened.descriptor)

            def stop_after(path: str) -> bool:
                done = all((m := again.entries.get(p)) is not None and m.data is not None for p in member_paths)
                return done and again.descriptor.size - again.bytes_read > TAIL_BYTES

            self._from_registry(again, keep, None if self._limits.verify_layers else stop_after)
        opened.bytes_read += again.bytes_read
        for member_path in member_paths:
            found = again.entries.get(member_path)
            if found is None or found.data is None:
                raise ObservationError(
                    self._what,
                    f"layer {opened.index} ({opened.descriptor.digest}) held "
                    f"{member_path} at first but not when read again",
                )
            member = opened.entries[member_path]
            member.data, member.data_integrity, member.read_again = found.data, found.data_integrity, True
        self._store_index(opened if opened.integrity == "sha256" else again)

    # --- the answer --------------------------------------------------------------------------

    def _file_read(self, path: str, normal: str, resolution: Resolution) -> FileRead:
        from deploycheck.images import FileRead, truncation_note

        layer = resolution.layer
        notes = []
        if resolution.links:
            notes.append("via symlinks " + describe_links(resolution.links))
        truncated = False
        found = resolution.state == "found"
        if found:
            member = resolution.member
            truncated = member.size > self._limits.max_file_bytes
            if truncated:
                notes.append(truncation_note(member.size, self._limits))
            if layer.index == 0 and len(self._layers) > 1:
                # A base layer read in part or by eStargz says what it cost in its integrity note.
                cost = {
                    "sha256": ": reading it cost that much" + (" (from the blob cache)" if layer.from_cache else "")
                }
                notes.append(
                    f"found only in layer 0 (a {layer.descriptor.size:,}-byte base layer)"
                    + cost.get(layer.integrity, "")
                )
            if member.read_again:
                notes.append(f"layer {layer.index} was read twice: only a link seen later led to this file")
        else:
            notes.append(resolution.reason)
        consulted = resolution.consulted if resolution.consulted or found else self.view.layers
        integrity: Integrity = min((layer.integrity for layer in consulted), key=_STRENGTH.get, default="sha256")
        if found and resolution.member.data_integrity is not None:
            integrity = min(integrity, resolution.member.data_integrity, key=_STRENGTH.get)
        notes.extend(self._integrity_notes(consulted, resolution if found else None))
        for opened in self.view.layers:
            for name, why in opened.ignored:
                if posixpath.normpath("/" + name.lstrip("/")) == normal:
                    notes.append(f"ignored member {name!r} of layer {opened.index}: it {why}")
        return FileRead(
            path=path,
            found=found,
            data=resolution.member.data if found else None,
            size=resolution.member.size if found else 0,
            resolved_path=resolution.path,
            layer_digest=layer.descriptor.digest if layer else None,
            layer_index=layer.index if layer else None,
            layer_size=layer.descriptor.size if layer else None,
            truncated=truncated,
            note="; ".join(notes),
            integrity=integrity,
        )

    def _integrity_notes(self, consulted: list[LayerIndex], found: Resolution | None) -> list[str]:
        notes = []
        layers = list(consulted)
        if found is not None and found.member.data_integrity == "partial" and found.layer not in layers:
            layers.append(found.layer)
        for layer in layers:
            read = f"{layer.bytes_read:,} of {layer.descriptor.size:,} bytes"
            data_partial = found is not None and layer is found.layer and found.member.data_integrity == "partial"
            if layer.integrity == "partial" or data_partial:
                notes.append(
                    f"layer {layer.index} read in part ({read}), blob digest not verified "
                    "(--verify-layers reads it whole)"
                )
            elif layer.integrity == "estargz":
                what = "its TOC and the file's chunks" if found is not None and layer is found.layer else "its TOC"
                how = f"read {what} ({read})" if layer.bytes_read else f"{what} came from the blob cache"
                notes.append(f"layer {layer.index} is eStargz: {how}, verified against the manifest's TOC digest")
        return notes


def _settle_data(layer: LayerIndex) -> None:
    """Contents kept during a read are as verified as the read turned out to be."""
    for member in layer.entries.values():
        if member.data is not None and member.data_integrity is None:
            member.data_integrity = layer.integrity


def _tee(chunks: Iterator[bytes], write: Callable[[bytes], int]) -> Iterator[bytes]:
    """Pass chunks through, copying them into the cache."""
    for chunk in chunks:
        write(chunk)
        yield chunk


def _ending_at(chunk: Chunk, toc_offset: int) -> Chunk:
    return replace(chunk, end=toc_offset)


def _ranges(chunks: list[Chunk]) -> list[tuple[int, int, list[Chunk]]]:
    """Chunks' members merged into as few contiguous byte ranges as they allow."""
    ranges: list[tuple[int, int, list[Chunk]]] = []
    for chunk in sorted(chunks, key=lambda c: (c.offset, c.inner_offset)):
        if ranges and chunk.offset <= ranges[-1][1]:
            start, end, group = ranges[-1]
            ranges[-1] = (start, max(end, chunk.end), group + [chunk])
        else:
            ranges.append((chunk.offset, chunk.end, [chunk]))
    return ranges

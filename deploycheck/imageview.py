"""The union filesystem of an image's layers, as far as the layers opened so far tell it.

Layers are opened top down. A layer is `complete` once every member is known (read to its end,
or listed whole by a verified eStargz table of contents); the lowest opened layer may still be
in progress, or have been read only in part. An in-progress layer can prove that a path exists
(its member was seen), never that it does not: its whiteouts, opaque directories and missing
members only count once the layer is complete.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass, field
from typing import Literal

from deploycheck.registry import Descriptor

_WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_WHITEOUT_META = ".wh..wh."
"""AUFS bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs): not whiteouts of anything."""
ESCAPES = "escapes the image root"
INDEX_FORMAT = 1

Integrity = Literal["sha256", "estargz", "partial"]
"""How a layer's listing or a file's content is known: the layer blob was read whole and its
sha256 verified; an eStargz TOC and chunks verified against the manifest's TOC digest; or the
layer was read in part and its blob digest not verified."""


@dataclass
class Member:
    kind: Literal["file", "dir", "symlink", "hardlink", "other"]
    target: str = ""
    """Symlink: the link text verbatim. Hardlink: the normalised path of the linked member."""
    size: int = 0
    data: bytes | None = None
    """Kept content of a regular file (at most --max-file-bytes of it), or None if not kept."""
    data_integrity: Integrity | None = None
    read_again: bool = False
    """The content came from a second read of the layer."""


_IMPLIED_DIR = Member("dir")


class LayerIndex:
    """What one layer says about paths. Paths are absolute and normalised ('/app/x')."""

    def __init__(self, index: int, descriptor: Descriptor):
        self.index = index
        self.descriptor = descriptor
        self.entries: dict[str, Member] = {}
        self.implied_dirs: set[str] = set()
        """Parents of entries: directories of this layer even when the tar has no entry for them."""
        self.whiteouts: set[str] = set()
        self.opaque_dirs: set[str] = set()
        self.ignored: list[tuple[str, str]] = []
        """(member name, why) of members left out because they would land outside the image root."""
        self.complete = False
        """Every member is known; False while the layer is read, and after a read stopped early."""
        self.integrity: Integrity = "partial"
        self.from_cache = False
        self.bytes_read = 0
        """Compressed bytes of this layer received from the registry by this image read."""

    # --- building -----------------------------------------------------------------------------

    def record(
        self, name: str, kind: str, *, linkname: str = "", size: int = 0, data: bytes | None = None
    ) -> str | None:
        """Add one archive member as the union filesystem sees it; returns its path (None if ignored).

        `kind` is file, dir, symlink, hardlink or other. Whiteouts and opaque markers are files by name.
        """
        path = member_path(name)
        if path is None:
            self.ignored.append((name, ESCAPES))
            return None
        if path == "/":
            return None
        parent, base = posixpath.split(path)
        if base == OPAQUE:
            self.opaque_dirs.add(parent)
            self._imply_parents(path)
        elif base.startswith(_WHITEOUT_META):
            return None
        elif base.startswith(_WHITEOUT):
            if len(base) > len(_WHITEOUT):
                self.whiteouts.add(posixpath.join(parent, base[len(_WHITEOUT) :]))
                self._imply_parents(path)
        elif kind == "hardlink":
            target = member_path(linkname)
            if target is None:
                self.ignored.append((name, f"is a hardlink to {linkname!r}, which {ESCAPES}"))
                return None
            self._add(path, Member("hardlink", target=target))
        elif kind == "symlink":
            self._add(path, Member("symlink", target=linkname))
        elif kind == "file":
            self._add(path, Member("file", size=size, data=data, data_integrity=None))
        else:
            self._add(path, Member(kind if kind == "dir" else "other"))
        return path

    def _add(self, path: str, member: Member) -> None:
        self.entries[path] = member  # a later member of the same name replaces the earlier one, as tar extracts
        self._imply_parents(path)

    def entry(self, path: str) -> Member | None:
        return self.entries.get(path) or (_IMPLIED_DIR if path in self.implied_dirs else None)

    def _imply_parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in self.implied_dirs:
            self.implied_dirs.add(parent)
            parent = posixpath.dirname(parent)

    # --- the layer-index cache ------------------------------------------------------------------

    def to_document(self) -> dict:
        """The complete, verified listing and the contents kept, for BlobCache.put_document."""
        assert self.complete and self.integrity == "sha256", "only verified, complete listings are cached"
        return {
            "format": INDEX_FORMAT,
            "layer": self.descriptor.digest,
            "entries": [
                [path, m.kind, m.target, m.size, base64.b64encode(m.data).decode() if m.data is not None else None]
                for path, m in self.entries.items()
            ],
            "whiteouts": sorted(self.whiteouts),
            "opaque_dirs": sorted(self.opaque_dirs),
            "ignored": [list(item) for item in self.ignored],
        }

    def load_document(self, document: dict, max_file_bytes: int) -> bool:
        """Fill this (empty) index from a cached document; False if it is not one for this layer."""
        try:
            if document.get("format") != INDEX_FORMAT or document.get("layer") != self.descriptor.digest:
                return False
            for path, kind, target, size, encoded in document["entries"]:
                data = base64.b64decode(encoded) if encoded is not None else None
                # Content kept under a smaller --max-file-bytes than this read's is not enough.
                if data is not None and len(data) < min(size, max_file_bytes):
                    data = None
                member = Member(
                    kind,
                    target=target,
                    size=size,
                    data=data[:max_file_bytes] if data is not None else None,
                    data_integrity="sha256" if data is not None else None,
                )
                self._add(path, member)
            for path in document["whiteouts"]:
                self.whiteouts.add(path)
                self._imply_parents(path)
            for directory in document["opaque_dirs"]:
                self.opaque_dirs.add(directory)
                self._imply_parents(posixpath.join(directory, OPAQUE))
            self.ignored = [(name, why) for name, why in document["ignored"]]
        except (KeyError, TypeError, ValueError):
            self.__init__(self.index, self.descriptor)
            return False
        self.complete, self.integrity, self.from_cache = True, "sha256", True
        return True


@dataclass
class Lookup:
    state: Literal["found", "absent", "unknown"]
    member: Member | None = None
    layer: LayerIndex | None = None
    reason: str = ""


@dataclass
class Resolution:
    state: Literal["found", "absent", "pending"]
    path: str
    """The physical path reached: the file, the path found absent, or the best guess while pending."""
    member: Member | None = None
    layer: LayerIndex | None = None
    reason: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    """Symlinks followed on the way, as (link path, link text)."""
    consulted: list[LayerIndex] = field(default_factory=list)
    """Layers whose word decided a step of the resolution (for saying how far it is verified)."""


class SymlinkLoop(Exception):
    pass


class MergedView:
    """The union filesystem as far as the opened layers (a top slice of the image) tell it."""

    def __init__(self, layers_total: int):
        self.layers_total = layers_total
        self.layers: list[LayerIndex] = []
        """Opened layers, top first."""

    @property
    def complete(self) -> bool:
        return len(self.layers) == self.layers_total and all(layer.complete for layer in self.layers)

    def lookup(self, path: str) -> Lookup:
        """The topmost layer's word on one physical path (its parents are directories)."""
        ancestors = _ancestors(path)
        for layer in self.layers:
            member = layer.entry(path)
            if member is not None:
                return Lookup("found", member, layer)
            if not layer.complete:
                return Lookup("unknown")  # the rest of this layer may still hold it, hide it, or not
            if path in layer.whiteouts:
                return Lookup("absent", layer=layer, reason=f"hidden by a whiteout in layer {layer.index}")
            for ancestor in ancestors:
                if ancestor in layer.whiteouts:
                    reason = f"hidden by a whiteout of {ancestor} in layer {layer.index}"
                elif ancestor in layer.opaque_dirs:
                    reason = f"hidden by opaque directory {ancestor} in layer {layer.index}"
                elif (above := layer.entries.get(ancestor)) is not None and above.kind != "dir":
                    reason = f"{ancestor} is a {above.kind} in layer {layer.index}, hiding lower layers' {ancestor}/"
                else:
                    continue
                return Lookup("absent", layer=layer, reason=reason)
        if self.complete:
            return Lookup("absent", reason=f"not in any of the {self.layers_total} layers")
        return Lookup("unknown")

    def resolve(self, wanted: str, max_hops: int) -> Resolution:
        """Follow `wanted` component by component through symlinks, as the kernel would in the container."""
        pending = path_components(wanted)
        current = "/"
        links: list[tuple[str, str]] = []
        consulted: list[LayerIndex] = []
        last: Lookup | None = None
        while pending:
            name = pending.pop(0)
            if name == "..":
                current = posixpath.dirname(current)
                last = None
                continue
            path = posixpath.join(current, name)
            found = self.lookup(path)
            if found.layer is not None and found.layer not in consulted:
                consulted.append(found.layer)
            if found.state != "found":
                state = "pending" if found.state == "unknown" else "absent"
                physical = posixpath.normpath(posixpath.join(path, *pending))
                return Resolution(
                    state, physical, layer=found.layer, reason=found.reason, links=links, consulted=consulted
                )
            member = found.member
            if member.kind == "symlink":
                links.append((path, member.target))
                if len(links) > max_hops:
                    raise SymlinkLoop(
                        f"symlink loop (or a chain over {max_hops} hops) resolving {wanted}: "
                        f"{describe_links(links[:4])}, ..."
                    )
                pending = path_components(member.target) + pending
                if member.target.startswith("/"):
                    current = "/"
                continue
            if pending and member.kind != "dir":
                reason = f"{path} is a {member.kind} in layer {found.layer.index}, not a directory"
                return Resolution("absent", path, layer=found.layer, reason=reason, links=links, consulted=consulted)
            current, last = path, found
        if last is None:
            return Resolution("absent", current, reason=f"{current} is a directory", links=links, consulted=consulted)
        return self._final(current, last, links, consulted)

    def _final(self, path: str, found: Lookup, links: list[tuple[str, str]], consulted: list[LayerIndex]) -> Resolution:
        member, layer = found.member, found.layer
        if member.kind == "hardlink":
            linked = layer.entries.get(member.target)
            if linked is None or linked.kind != "file":
                reason = f"{path} is a hardlink to {member.target}, which is not a regular file in layer {layer.index}"
                return Resolution("absent", path, layer=layer, reason=reason, links=links, consulted=consulted)
            return Resolution("found", path, member=linked, layer=layer, links=links, consulted=consulted)
        if member.kind == "file":
            return Resolution("found", path, member=member, layer=layer, links=links, consulted=consulted)
        what = "a directory" if member.kind == "dir" else "not a regular file"
        return Resolution(
            "absent",
            path,
            layer=layer,
            reason=f"{path} is {what} in layer {layer.index}",
            links=links,
            consulted=consulted,
        )


def member_path(name: str) -> str | None:
    """'/app/x' for './app/x', 'app//x', 'app/./x', 'app/x/'; None for names that escape the root."""
    if name.startswith("/"):
        return None
    cleaned = posixpath.normpath(name)
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return "/" if cleaned == "." else "/" + cleaned


def describe_links(links: list[tuple[str, str]]) -> str:
    return ", ".join(f"{path} -> {target}" for path, target in links)


def path_components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _ancestors(path: str) -> list[str]:
    """'/a/b/c' -> ['/a', '/a/b'], top first."""
    parts = path_components(path)[:-1]
    return ["/" + "/".join(parts[: depth + 1]) for depth in range(len(parts))]


def watched_paths(physical: str) -> set[str]:
    """The members whose arrival can move a pending resolution: the path and its ancestors."""
    return {physical, *_ancestors(physical)}

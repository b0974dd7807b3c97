"""eStargz layers: read the table of contents and one file's chunks by HTTP Range, verified.

An eStargz layer (containerd/stargz-snapshotter docs/estargz.md) is an ordinary gzip tar layer
made of many gzip members: each regular file's content (or each chunk of a large file) starts a
member of its own, the last tar member is a JSON table of contents `stargz.index.json` listing
every entry with the offset of its content's member and the sha256 of each chunk (chunkDigest),
and a 51-byte footer (an empty gzip member whose extra field holds the TOC's offset) ends the
blob. The layer's descriptor in the manifest carries the TOC's sha256 in the annotation
`containerd.io/snapshot/stargz/toc.digest`.

So with the manifest pinned by digest the chain is whole: manifest -> TOC digest -> TOC ->
chunk digests -> file content. Reading a file costs the footer, the TOC and the file's chunks.
What it does not check is the layer's tar stream itself (what an eStargz-agnostic runtime
extracts), which the TOC describes but nothing binds to; --verify-layers reads that instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass, field

from deploycheck.imageref import DIGEST_RE
from deploycheck.imageview import LayerIndex, member_path
from deploycheck.registry import Descriptor

TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
TOC_NAME = "stargz.index.json"
FOOTER_SIZE = 51
_FOOTER_MAGIC = b"STARGZ"
_ENTRY_TYPES = {
    "dir": "dir",
    "reg": "file",
    "symlink": "symlink",
    "hardlink": "hardlink",
    "char": "other",
    "block": "other",
    "fifo": "other",
    "chunk": None,
}


class EStargzError(Exception):
    """The layer is not the eStargz its annotation promises, or a piece does not match its digest."""


def toc_digest(descriptor: Descriptor) -> str | None:
    """The TOC digest the manifest promises for this layer, if it is an eStargz layer."""
    digest = descriptor.annotations.get(TOC_DIGEST_ANNOTATION)
    if digest is None:
        return None
    if not DIGEST_RE.match(digest):
        raise EStargzError(f"annotation {TOC_DIGEST_ANNOTATION} is {digest!r}, not a sha256 digest")
    return digest


def parse_footer(footer: bytes, blob_size: int) -> int:
    """The offset of the TOC's gzip member, from the 51-byte footer."""
    if len(footer) != FOOTER_SIZE or footer[:3] != b"\x1f\x8b\x08" or not footer[3] & 0x04:
        raise EStargzError("the blob does not end with an eStargz footer (a gzip member with an extra field)")
    extra_length = int.from_bytes(footer[10:12], "little")
    extra = footer[12 : 12 + extra_length]
    if extra_length != 26 or extra[:2] != b"SG" or int.from_bytes(extra[2:4], "little") != 22:
        raise EStargzError("the footer's gzip extra field is not the eStargz one (SG, 22 bytes)")
    subfield = extra[4:26]
    if subfield[16:] != _FOOTER_MAGIC:
        raise EStargzError("the footer has no STARGZ magic")
    try:
        offset = int(subfield[:16].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise EStargzError(f"the footer's TOC offset {subfield[:16]!r} is not hexadecimal") from None
    if not 0 <= offset < blob_size - FOOTER_SIZE:
        raise EStargzError(f"the footer's TOC offset {offset:,} is outside the blob's {blob_size:,} bytes")
    return offset


def toc_json(member: bytes, limit: int) -> bytes:
    """The TOC JSON out of its gzip member (a tar holding stargz.index.json), at most `limit` bytes."""
    tar_bytes = _gunzip(member, limit + 64 * 1024, "the TOC's gzip member")
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            entry = tar.next()
            if entry is None or entry.name != TOC_NAME or not entry.isreg():
                raise EStargzError(f"the TOC's member holds {entry.name if entry else 'nothing'!r}, not {TOC_NAME}")
            if entry.size > limit:
                raise EStargzError(f"the TOC is {entry.size:,} bytes, over the {limit:,}-byte limit")
            data = tar.extractfile(entry).read()
    except tarfile.TarError as exc:
        raise EStargzError(f"the TOC's member is not a tar: {exc}") from None
    if len(data) != entry.size:
        raise EStargzError(f"the TOC ends after {len(data):,} of {entry.size:,} bytes")
    return data


@dataclass(frozen=True)
class Chunk:
    offset: int
    """Where the gzip member holding the chunk starts in the blob."""
    end: int
    """Where that member ends: the next member's offset, or the TOC's."""
    inner_offset: int
    """Where the chunk starts in the member's decompressed bytes (several small files may share one)."""
    file_offset: int
    length: int
    digest: str


@dataclass
class Toc:
    digest: str
    raw: bytes = field(repr=False)
    entries: list[dict] = field(repr=False)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict, repr=False)
    """Chunks of each non-empty regular file by normalised path, in file order."""
    file_digests: dict[str, str] = field(default_factory=dict, repr=False)


def parse_toc(raw: bytes, digest: str, *, toc_offset: int | None) -> Toc:
    """The TOC, checked against `digest` (the manifest's annotation) and for a coherent chunk list.

    `toc_offset` (None when the TOC came from the cache) bounds the last member; without it the
    last member's end is left open (`Chunk.end` = -1) until the footer is read.
    """
    actual = "sha256:" + hashlib.sha256(raw).hexdigest()
    if actual != digest:
        raise EStargzError(f"the TOC hashes to {actual}, not the {digest} the manifest's annotation names")
    try:
        document = json.loads(raw)
    except ValueError:
        raise EStargzError("the TOC is not JSON") from None
    if not isinstance(document, dict) or document.get("version") != 1 or not isinstance(document.get("entries"), list):
        raise EStargzError("the TOC is not a version 1 eStargz TOC with an entries list")
    entries = document["entries"]
    toc = Toc(digest=digest, raw=raw, entries=entries)
    pieces: dict[str, list[dict]] = {}
    offsets: set[int] = set()
    for position, entry in enumerate(entries):
        _check_entry(entry, position, toc_offset)
        if entry["type"] in ("reg", "chunk") and (entry["type"] == "chunk" or entry.get("size", 0) > 0):
            path = member_path(entry["name"])
            if path is None:
                continue  # an escaping name: the listing ignores it as the tar scan does
            pieces.setdefault(path, []).append(entry)
            offsets.add(entry["offset"])
            if entry["type"] == "reg" and isinstance(entry.get("digest"), str):
                toc.file_digests[path] = entry["digest"]
    ends = sorted(offsets) + [toc_offset if toc_offset is not None else -1]
    next_offset = {offset: ends[index + 1] for index, offset in enumerate(ends[:-1])}
    sizes = {member_path(e["name"]): e.get("size", 0) for e in entries if e["type"] == "reg"}
    for path, parts in pieces.items():
        toc.chunks[path] = _chunks_of(path, parts, sizes.get(path), next_offset)
    return toc


def _check_entry(entry: object, position: int, toc_offset: int | None) -> None:
    where = f"TOC entry {position}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or entry.get("type") not in _ENTRY_TYPES:
        raise EStargzError(f"{where} has no name or an unknown type: {json.dumps(entry)[:200]}")
    for key in ("size", "offset", "chunkOffset", "chunkSize", "innerOffset"):
        value = entry.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise EStargzError(f"{where} ({entry['name']}): {key} {value!r} is not a non-negative integer")
    needs_content = entry["type"] == "chunk" or (entry["type"] == "reg" and entry.get("size", 0) > 0)
    if needs_content:
        if "offset" not in entry or not DIGEST_RE.match(str(entry.get("chunkDigest", ""))):
            raise EStargzError(f"{where} ({entry['name']}): content without an offset or a sha256 chunkDigest")
        if toc_offset is not None and entry["offset"] >= toc_offset:
            raise EStargzError(f"{where} ({entry['name']}): offset {entry['offset']:,} is not before the TOC")
    if entry["type"] in ("symlink", "hardlink") and not isinstance(entry.get("linkName"), str):
        raise EStargzError(f"{where} ({entry['name']}): a {entry['type']} without linkName")


def _chunks_of(path: str, parts: list[dict], size: int | None, next_offset: dict[int, int]) -> list[Chunk]:
    if size is None or parts[0]["type"] != "reg":
        raise EStargzError(f"TOC: chunks of {path} without its reg entry first")
    chunks, position = [], 0
    for index, part in enumerate(parts):
        file_offset = part.get("chunkOffset", 0)
        last = index == len(parts) - 1
        length = size - file_offset if last else part.get("chunkSize", 0)
        if file_offset != position or length <= 0 or (last and part.get("chunkSize", 0) not in (0, length)):
            raise EStargzError(f"TOC: the chunks of {path} do not cover its {size:,} bytes in order")
        chunks.append(
            Chunk(
                offset=part["offset"],
                end=next_offset[part["offset"]],
                inner_offset=part.get("innerOffset", 0),
                file_offset=file_offset,
                length=length,
                digest=part["chunkDigest"],
            )
        )
        position += length
    return chunks


def index_layer(toc: Toc, layer: LayerIndex) -> None:
    """The layer's complete listing from its TOC (the TOC lists every entry but itself)."""
    for entry in toc.entries:
        kind = _ENTRY_TYPES[entry["type"]]
        if kind is not None:
            layer.record(entry["name"], kind, linkname=entry.get("linkName", ""), size=entry.get("size", 0))
    layer.record(TOC_NAME, "file", size=len(toc.raw))
    layer.complete, layer.integrity = True, "estargz"


def decode_chunk(member: bytes, chunk: Chunk, path: str) -> bytes:
    """The chunk out of the bytes of its gzip member, verified against its chunkDigest."""
    data = _gunzip(member, chunk.inner_offset + chunk.length, f"the member of {path} at offset {chunk.offset:,}")
    piece = data[chunk.inner_offset : chunk.inner_offset + chunk.length]
    if len(piece) != chunk.length:
        raise EStargzError(
            f"the member of {path} at offset {chunk.offset:,} holds {len(data):,} bytes, "
            f"too few for the chunk at {chunk.inner_offset:,}+{chunk.length:,}"
        )
    actual = "sha256:" + hashlib.sha256(piece).hexdigest()
    if actual != chunk.digest:
        raise EStargzError(
            f"the chunk of {path} at file offset {chunk.file_offset:,} hashes to {actual}, "
            f"not its TOC chunkDigest {chunk.digest} (corrupt or hostile registry)"
        )
    return piece


def check_file_digest(toc: Toc, path: str, content: bytes) -> None:
    expected = toc.file_digests.get(path)
    if expected is not None and "sha256:" + hashlib.sha256(content).hexdigest() != expected:
        raise EStargzError(f"{path} does not hash to its TOC digest {expected}, though each chunk did")


def _gunzip(data: bytes, limit: int, what: str) -> bytes:
    """At most `limit` bytes out of the gzip member at the start of `data` (no more is inflated)."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    pending = data
    try:
        while len(out) < limit and pending and not inflater.eof:
            out += inflater.decompress(pending, limit - len(out))
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise EStargzError(f"{what} is not gzip: {exc}") from None
    return bytes(out)

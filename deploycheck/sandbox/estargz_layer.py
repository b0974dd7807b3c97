"""Build eStargz layers (containerd/stargz-snapshotter docs/estargz.md) in Python, deterministically.

No maintained Python library writes eStargz, and the format is small: an ordinary gzip tar
layer cut into gzip members so that each regular file's content (and each `chunk_size` piece of
a large file) starts a member of its own; a `stargz.index.json` table of contents as the last tar
member, in a member of its own; and a 51-byte footer, an empty gzip member whose extra field
holds the TOC's offset. The layer's descriptor carries the TOC's sha256 in the annotation
`containerd.io/snapshot/stargz/toc.digest`. Any gzip reader sees one valid tar.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping

from deploycheck.estargz import FOOTER_SIZE, TOC_DIGEST_ANNOTATION, TOC_NAME
from deploycheck.registry import OCI_LAYER_GZIP, sha256_digest

from .oci_builder import Blob, FileEntry, layer_members, tar_info

DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
"""stargz-snapshotter's default chunk size."""
_LANDMARK = ".no.prefetch.landmark"
_TOC_TYPES = {"file": "reg", "dir": "dir", "symlink": "symlink", "hardlink": "hardlink"}


def estargz_layer_from_files(
    files: Mapping[str, bytes | FileEntry], *, chunk_size: int = DEFAULT_CHUNK_SIZE, compresslevel: int = 6
) -> Blob:
    """An eStargz layer holding `files` (absolute paths, parents added), annotated with its TOC digest."""
    writer = _Writer(compresslevel)
    writer.add(_LANDMARK, FileEntry(data=b"\x0f"), chunk_size)  # no prioritised files: the no-prefetch landmark
    for name, entry in layer_members(files):
        writer.add(name, entry, chunk_size)
    return writer.close()


class _Writer:
    def __init__(self, compresslevel: int):
        self._compresslevel = compresslevel
        self._blob = bytearray()
        self._member = bytearray()
        """Uncompressed tar bytes of the gzip member being written."""
        self._diff = hashlib.sha256()
        self._entries: list[dict] = []

    def add(self, name: str, entry: FileEntry, chunk_size: int) -> None:
        info = tar_info(name, entry)
        self._write(info.tobuf(format=tarfile.PAX_FORMAT))
        toc_entry: dict = {"name": name, "type": _TOC_TYPES[entry.kind], "mode": info.mode, "uid": 0, "gid": 0}
        if entry.kind in ("symlink", "hardlink"):
            toc_entry["linkName"] = info.linkname
        if entry.kind != "file":
            self._entries.append(toc_entry)
            return
        data = entry.data
        toc_entry["size"] = len(data)
        toc_entry["digest"] = sha256_digest(data)
        if not data:
            self._entries.append(toc_entry)
            return
        for start in range(0, len(data), chunk_size):
            piece = data[start : start + chunk_size]
            self._end_member()  # each chunk's content starts a gzip member of its own
            last = start + chunk_size >= len(data)
            chunk_entry = toc_entry if start == 0 else {"name": name, "type": "chunk"}
            chunk_entry.update(
                offset=len(self._blob),
                chunkOffset=start,
                chunkSize=0 if last else len(piece),
                chunkDigest=sha256_digest(piece),
            )
            self._entries.append(chunk_entry)
            self._write(piece)
        self._write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))

    def close(self) -> Blob:
        self._end_member()
        toc_offset = len(self._blob)
        toc = json.dumps({"version": 1, "entries": self._entries}, indent="\t").encode()
        toc_tar = io.BytesIO()
        with tarfile.open(fileobj=toc_tar, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(tar_info(TOC_NAME, FileEntry(data=toc)), io.BytesIO(toc))
        self._write(toc_tar.getvalue())
        self._end_member()
        self._blob += _footer(toc_offset)
        return Blob.of(
            bytes(self._blob),
            OCI_LAYER_GZIP,
            diff_id="sha256:" + self._diff.hexdigest(),
            annotations={TOC_DIGEST_ANNOTATION: sha256_digest(toc)},
        )

    def _write(self, data: bytes) -> None:
        self._member += data
        self._diff.update(data)

    def _end_member(self) -> None:
        if self._member:
            self._blob += gzip.compress(bytes(self._member), compresslevel=self._compresslevel, mtime=0)
            self._member.clear()


def _footer(toc_offset: int) -> bytes:
    """An empty gzip member whose extra field says where the TOC starts: exactly 51 bytes."""
    subfield = f"{toc_offset:016x}STARGZ".encode()
    extra = b"SG" + len(subfield).to_bytes(2, "little") + subfield
    header = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\0\xff" + len(extra).to_bytes(2, "little") + extra
    footer = header + b"\x01\x00\x00\xff\xff" + b"\0" * 8  # a final stored block of length 0; CRC32 and size 0
    assert len(footer) == FOOTER_SIZE
    return footer

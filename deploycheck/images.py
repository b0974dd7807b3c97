"""Read named files from a container image, pinned by digest, without pulling or running it.

`RegistryImageReader` (the default) talks OCI distribution directly: it reads the platform
manifest (pinned by digest, verified) and config, then walks the layers from the TOP down
(layerwalk.py), streaming and decompressing one layer at a time, and stops as soon as every
wanted path is settled (found as a regular file, or known absent): in the middle of a layer,
abandoning the rest of its HTTP body. A layer read only in part has not had its sha256
verified, and each file whose answer rests on one says so (`FileRead.integrity`, `note`);
`ImageLimits.verify_layers` (--verify-layers) reads every opened layer whole and verifies it.
eStargz layers are read by their table of contents and the file's chunks (estargz.py), each
verified. Whiteouts and opaque directories are honoured, symlinks are resolved across layers
(imageview.py), member names that escape the image root are ignored and reported; every read
is bounded by `ImageLimits`. Only verified data is cached (blobcache.py).

`deploycheck.images_docker.DockerImageReader` is the fallback for registries the OCI reader
cannot reach (a docker engine pulls, creates and never starts a container).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deploycheck.blobcache import BlobCache
from deploycheck.imageref import ImageRef
from deploycheck.imageview import Integrity, path_components
from deploycheck.layerscan import ChunkReader, ReadBudget
from deploycheck.layerwalk import LayerWalk
from deploycheck.registry import Descriptor, RegistryClient

__all__ = [
    "ChunkReader",
    "FileRead",
    "ImageLimits",
    "ImageReadResult",
    "ImageReader",
    "ReadBudget",
    "RegistryImageReader",
    "path_components",
    "require_digest",
    "truncation_note",
]

MIB = 1024 * 1024


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
    verify_layers: bool = False
    """Read every opened layer to its end and verify its sha256, even when the wanted files came
    earlier, and read eStargz layers whole rather than by their TOC (--verify-layers)."""


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
    """Why not found, what reading it cost, how it was reached, how far it is verified; empty when
    there is nothing to say."""
    integrity: Integrity | None = None
    """How the answer is known: "sha256" (every layer it rests on read whole and verified),
    "estargz" (TOC and chunks verified against the manifest's TOC digest), "partial" (a layer it
    rests on was read in part: its blob digest not verified); None when the reader cannot tell."""


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
    partial_layers: list[str] = field(default_factory=list)
    """Digests of layers read only in part, whose blob digest was therefore not verified."""
    bytes_decompressed: int = 0
    """Layer bytes inflated by this call (0 when every listing and content came from the cache)."""

    def __getitem__(self, path: str) -> FileRead:
        return self.files[path]


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
        walk = LayerWalk(self._client, self._cache, self._limits, ref, config.layers, started)
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
            partial_layers=[layer.descriptor.digest for layer in walk.partial_layers],
            bytes_decompressed=walk.bytes_decompressed,
        )


def truncation_note(size: int, limits: ImageLimits) -> str:
    return (
        f"file is {size:,} bytes, over the {limits.max_file_bytes:,}-byte --max-file-bytes limit: "
        "data holds only its beginning"
    )

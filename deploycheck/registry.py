"""OCI distribution v2 client: tags -> digests, manifests, image configs.

Talks to registries directly over HTTP (httpx): no daemon, no pull. Every byte read is
checked against the digest it was asked for, every read is bounded, and every failure
surfaces as an ObservationError that says what could not be read and why.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import google.auth.credentials

from deploycheck.blobcache import BlobCache
from deploycheck.errors import ObservationError
from deploycheck.imageref import DIGEST_RE, ImageRef
from deploycheck.registry_http import (
    RegistryRouter,
    RegistryStats,
    RegistryTransport,
    bounded_chunks,
    is_google_registry,
)

__all__ = ["Descriptor", "ImageConfig", "Manifest", "RegistryClient", "RegistryRouter", "RegistryStats"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Without all four, registries answer 404 or down-convert to schema1 (a different digest).
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_json(cls, value: Any, what: str) -> Descriptor:
        # The digest goes into a URL path, so a hostile manifest must not get anything else there.
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("digest"), str)
            or not DIGEST_RE.match(value["digest"])
            or not isinstance(value.get("size"), int)
            or isinstance(value.get("size"), bool)
            or value["size"] < 0
        ):
            raise ObservationError(what, f"malformed descriptor in manifest: {json.dumps(value)[:200]}")
        annotations = _string_map(value.get("annotations"), what, f"annotations of descriptor {value['digest']}")
        return cls(
            media_type=str(value.get("mediaType", "")),
            digest=value["digest"],
            size=value["size"],
            annotations=annotations,
        )


@dataclass
class Manifest:
    digest: str
    media_type: str
    raw: bytes = field(repr=False)
    json: dict = field(repr=False)


@dataclass
class ImageConfig:
    digest: str
    """The config blob digest."""
    manifest_digest: str
    """The platform image manifest the config belongs to (not the index)."""
    labels: dict[str, str]
    created: str | None
    env: dict[str, str]
    annotations: dict[str, str]
    """Index, index entry and manifest annotations merged, the most specific winning."""
    layers: list[Descriptor]
    """Layer blobs, bottom first, as the platform manifest lists them."""


@dataclass(frozen=True)
class _Platform:
    os: str
    architecture: str
    variant: str | None

    @classmethod
    def parse(cls, text: str) -> _Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} must be OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, platform: dict) -> bool:
        if platform.get("os") != self.os or platform.get("architecture") != self.architecture:
            return False
        return self.variant is None or platform.get("variant") == self.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


class RegistryClient:
    """Reads manifests and blobs from OCI distribution registries.

    `credentials` (google.auth) are exchanged for registry tokens only with Google registries
    (gcr.io, *.gcr.io, *-docker.pkg.dev); any other registry gets the anonymous token flow.
    With a `cache`, manifests asked for by digest and whole blobs (configs) are served from it
    when present and stored in it after they verify, so a warm run sends no request for them.
    """

    def __init__(
        self,
        router: RegistryRouter,
        *,
        credentials: google.auth.credentials.Credentials | None = None,
        timeout: float = 30.0,
        deadline: float = 60.0,
        not_after: float | None = None,
        platform: str = "linux/amd64",
        max_manifest_bytes: int = 4 * 1024 * 1024,
        cache: BlobCache | None = None,
    ):
        self._http = RegistryTransport(
            router, credentials=credentials, timeout=timeout, deadline=deadline, not_after=not_after
        )
        self.stats = self._http.stats
        self.cache = cache
        self._platform = _Platform.parse(platform)
        self._max_manifest_bytes = max_manifest_bytes
        # Content addressed, hence immutable: safe to keep for the whole session.
        self._manifests_by_digest: dict[tuple[str, str, str], Manifest] = {}
        # Whole small blobs (configs): the commit check and the image reader both ask for the same
        # config, perhaps before a disk cache is attached; one request per session answers both.
        self._blobs_by_digest: dict[tuple[str, str, str], bytes] = {}
        # One request for a digest however many threads ask for it at once (the read-ahead
        # threads do): the later callers wait for the first one's answer.
        self._fetching: dict[tuple[str, str, str], threading.Lock] = {}
        self._fetching_guard = threading.Lock()

    # --- public API ------------------------------------------------------------------

    def resolve(self, ref: ImageRef) -> str:
        """The digest of the top-level manifest the registry serves for `ref` now.

        From Google's registries the manifest itself is asked for: one GET answers both the
        digest (hashed here from the bytes) and the manifest that reading the image asks for next,
        where a HEAD and then a GET cost two requests and two round trips. Elsewhere a HEAD:
        Docker Hub counts manifest GETs, not HEADs, against its pull rate limit."""
        if ref.digest:
            return ref.digest
        if is_google_registry(ref.host):
            return self.manifest(ref).digest
        with self._open_manifest(ref, "HEAD") as response:
            digest = response.headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.match(digest):
            return digest
        return self.manifest(ref).digest

    def manifest(self, ref: ImageRef) -> Manifest:
        """The manifest `ref` names, exact bytes kept; verified against the digest when pinned."""
        if not ref.digest:
            return self._read_manifest(ref)
        key = (*self._http.router.endpoint(ref), ref.digest)
        with self._one_fetch(key):
            return self._manifests_by_digest.get(key) or self._read_manifest(ref)

    def _read_manifest(self, ref: ImageRef) -> Manifest:
        base_url, repository = self._http.router.endpoint(ref)
        what = f"image {ref}"
        raw = self._cached(ref.digest, self._max_manifest_bytes) if ref.digest else None
        announced_digest = content_type = ""
        if raw is None:
            with self._open_manifest(ref, "GET") as response:
                raw = b"".join(bounded_chunks(response, self._max_manifest_bytes, what))
                announced_digest = response.headers.get("Docker-Content-Digest", "")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = sha256_digest(raw)
        if ref.digest and digest != ref.digest:
            raise ObservationError(
                what,
                f"registry served a manifest whose sha256 is {digest}, not the requested digest "
                "(corrupt or hostile registry)",
            )
        if announced_digest.startswith("sha256:") and announced_digest != digest:
            raise ObservationError(
                what,
                f"registry announced Docker-Content-Digest {announced_digest} but the manifest bytes hash to {digest}",
            )
        try:
            body = json.loads(raw)
        except ValueError:
            raise ObservationError(what, f"manifest {digest} is not JSON") from None
        if not isinstance(body, dict):
            raise ObservationError(what, f"manifest {digest} is not a JSON object")
        if not body:
            raise ObservationError(what, f"registry served an empty manifest ({{}}, {digest})")
        media_type = body.get("mediaType") or content_type
        if media_type not in INDEX_MEDIA_TYPES | IMAGE_MANIFEST_MEDIA_TYPES:
            raise ObservationError(
                what, f"registry served an unsupported manifest type {media_type!r} (expected OCI or Docker schema2)"
            )
        manifest = Manifest(digest=digest, media_type=media_type, raw=raw, json=body)
        self._manifests_by_digest[(base_url, repository, digest)] = manifest
        # Only self-describing manifests: a cached one has no Content-Type header to fall back on.
        if self.cache is not None and "mediaType" in body:
            self.cache.put(digest, raw)
        return manifest

    def image_config(self, ref: ImageRef) -> ImageConfig:
        """Labels, creation time, env and layers of `ref`'s image for this client's platform."""
        what = f"image {ref}"
        image_manifest, annotations = self._image_manifest(ref)
        config_descriptor = Descriptor.from_json(image_manifest.json.get("config"), what)
        layer_list = image_manifest.json.get("layers")
        if not isinstance(layer_list, list):
            raise ObservationError(what, f"manifest {image_manifest.digest} has no layer list")
        layers = [Descriptor.from_json(layer, what) for layer in layer_list]

        raw_config = self.blob(ref, config_descriptor.digest, max_bytes=self._max_manifest_bytes)
        not_a_config = f"config blob {config_descriptor.digest} is not an image config"
        if len(raw_config) != config_descriptor.size:
            raise ObservationError(
                what, f"{not_a_config}: {len(raw_config)} bytes, the manifest says {config_descriptor.size}"
            )
        try:
            config = json.loads(raw_config)
            container_config = config.get("config") or {}
            env_list = container_config.get("Env") or []
            labels = container_config.get("Labels")
            created = config.get("created")
        except (ValueError, AttributeError):
            raise ObservationError(what, f"{not_a_config} JSON object") from None
        if not isinstance(env_list, list) or not all(isinstance(item, str) for item in env_list):
            raise ObservationError(what, f"{not_a_config}: malformed Env list")
        return ImageConfig(
            digest=config_descriptor.digest,
            manifest_digest=image_manifest.digest,
            labels=_string_map(labels, what, "config labels"),
            created=created if isinstance(created, str) else None,
            env=dict(item.partition("=")[::2] for item in env_list),
            annotations=annotations,
            layers=layers,
        )

    def blob(self, ref: ImageRef, digest: str, *, max_bytes: int) -> bytes:
        """A whole (small) blob of `ref`'s repository, verified; kept in memory for the session, and
        from and into the disk cache when there is one."""
        key = (*self._http.router.endpoint(ref), digest)
        with self._one_fetch(key):
            if (kept := self._blobs_by_digest.get(key)) is not None and len(kept) <= max_bytes:
                return kept
            data = self._cached(digest, max_bytes)
            if data is None:
                data = b"".join(self.iter_blob(ref, digest, max_bytes=max_bytes, whole=True))
                if self.cache is not None:
                    self.cache.put(digest, data)
            self._blobs_by_digest[key] = data
            return data

    def _one_fetch(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._fetching_guard:
            return self._fetching.setdefault(key, threading.Lock())

    def blob_range(self, ref: ImageRef, digest: str, start: int, end: int, *, blob_size: int) -> bytes:
        """Bytes [start, end) of a blob by HTTP Range, NOT verified: the caller checks them against
        digests of its own (an eStargz TOC's). A registry that ignores Range answers with the
        whole blob; then the bytes up to `end` are read and the transfer is cut there."""
        what = f"bytes {start:,}-{end - 1:,} of blob {digest} of image {ref}"
        if not DIGEST_RE.match(digest):
            raise ObservationError(what, "not a sha256 digest")
        if not 0 <= start < end <= blob_size:
            raise ObservationError(what, f"outside the blob's {blob_size:,} bytes")
        with self._http.open(
            ref, "GET", f"blobs/{digest}", what=what, missing=f"blob {digest}", byte_range=(start, end)
        ) as response:
            if response.status_code == 206:
                expected = f"bytes {start}-{end - 1}/"
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(expected):
                    raise ObservationError(
                        what, f"registry answered Content-Range {content_range!r}, not {expected}{blob_size}"
                    )
                data = b"".join(bounded_chunks(response, end - start, what))
            else:
                data = self._prefix(response, end, blob_size, what)[start:]
        if len(data) != end - start:
            raise ObservationError(what, f"registry sent {len(data):,} bytes, not {end - start:,}")
        return data

    @staticmethod
    def _prefix(response, end: int, blob_size: int, what: str) -> bytes:
        received = bytearray()
        for chunk in bounded_chunks(response, blob_size, what):
            received += chunk
            if len(received) >= end:
                break
        return bytes(received[:end])

    def iter_blob(
        self, ref: ImageRef, digest: str, *, max_bytes: int, whole: bool = False
    ) -> Generator[bytes, None, None]:
        """Stream a blob; raises after the last chunk if the bytes do not hash to `digest`.

        A caller acting on chunks before the end (e.g. a layer walk that stops early) must
        treat what it saw as unverified until the generator is exhausted. With `whole`, the
        last byte must arrive within the request's --deadline; layer reads leave the bound to
        the caller, who bounds the whole image read (--image-timeout).
        """
        what = f"blob {digest} of image {ref}"
        if not DIGEST_RE.match(digest):
            raise ObservationError(what, "not a sha256 digest")
        hasher = hashlib.sha256()
        with self._http.open(ref, "GET", f"blobs/{digest}", what=what, missing=f"blob {digest}") as response:
            for chunk in bounded_chunks(response, max_bytes, what, whole=whole):
                hasher.update(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            raise ObservationError(
                what, f"registry served bytes that hash to sha256:{hasher.hexdigest()} (corrupt or hostile registry)"
            )

    def _cached(self, digest: str, max_bytes: int) -> bytes | None:
        return self.cache.get(digest, max_bytes=max_bytes) if self.cache is not None else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- platform selection ------------------------------------------------------------

    def _image_manifest(self, ref: ImageRef) -> tuple[Manifest, dict[str, str]]:
        """The image manifest for this client's platform (through an index if `ref` names one),
        with index, index entry and manifest annotations merged, the most specific winning."""
        what = f"image {ref}"
        top = self.manifest(ref)
        if top.media_type in IMAGE_MANIFEST_MEDIA_TYPES:
            return top, _string_map(top.json.get("annotations"), what, "manifest annotations")
        entry = self._select_platform(what, top)
        image_manifest = self.manifest(ref.with_digest(Descriptor.from_json(entry, what).digest))
        if image_manifest.media_type not in IMAGE_MANIFEST_MEDIA_TYPES:
            raise ObservationError(
                what,
                f"{self._platform} entry of index {top.digest} is a {image_manifest.media_type}, not an image manifest",
            )
        annotations = _string_map(top.json.get("annotations"), what, "index annotations")
        annotations |= _string_map(entry.get("annotations"), what, "index entry annotations")
        annotations |= _string_map(image_manifest.json.get("annotations"), what, "manifest annotations")
        return image_manifest, annotations

    def _select_platform(self, what: str, index: Manifest) -> dict:
        entries = index.json.get("manifests")
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise ObservationError(what, f"index {index.digest} has no well-formed manifest list")
        platforms = [entry.get("platform") if isinstance(entry.get("platform"), dict) else {} for entry in entries]
        # buildx attestations are marked unknown/unknown, which no real platform matches; the
        # annotation check also keeps out one that a tool labelled with a real platform.
        candidates = [
            entry
            for entry, platform in zip(entries, platforms, strict=True)
            if self._platform.matches(platform) and not _is_attestation(entry)
        ]
        if not candidates:
            available = ", ".join(_platform_text(platform) for platform in platforms) or "none"
            raise ObservationError(what, f"index {index.digest} has no {self._platform} image; available: {available}")
        # Asked for no variant: prefer the plain entry over e.g. amd64/v3.
        plain = [entry for entry in candidates if not entry["platform"].get("variant")]
        return (plain or candidates)[0]

    # --- HTTP ------------------------------------------------------------------------

    def _open_manifest(self, ref: ImageRef, method: str):
        missing = f"manifest {ref.digest}" if ref.digest else f"tag {ref.reference!r}"
        return self._http.open(
            ref, method, f"manifests/{ref.reference}", what=f"image {ref}", missing=missing, accept=MANIFEST_ACCEPT
        )


def _is_attestation(entry: dict) -> bool:
    annotations = entry.get("annotations")
    return isinstance(annotations, dict) and annotations.get(_ATTESTATION_ANNOTATION) == "attestation-manifest"


def _platform_text(platform: dict) -> str:
    parts = [str(platform[key]) for key in ("os", "architecture", "variant") if platform.get(key)]
    return "/".join(parts) or "unspecified"


def _string_map(value: Any, what: str, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ObservationError(what, f"{name} are not a map of strings")
    return dict(value)

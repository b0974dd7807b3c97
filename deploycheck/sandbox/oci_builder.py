"""Build OCI / Docker images in Python (no daemon) and push them over the registry HTTP API.

Everything is deterministic: the same inputs give the same bytes, hence the same digests,
so a scenario can name an image by digest and tests can compare digests across runs.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import random
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple

import httpx

from deploycheck.imageref import DIGEST_RE
from deploycheck.registry import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_MEDIA_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    sha256_digest,
)

_REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_PUSH_TIMEOUT = 60.0


class PushError(RuntimeError):
    """The registry refused an upload."""


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)
    digest: str
    size: int
    diff_id: str | None = None
    """sha256 of the uncompressed tar, for layers (the image config lists these, not the blob digests)."""
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Annotations of the blob's descriptor in the manifest (an eStargz layer's TOC digest)."""

    @classmethod
    def of(
        cls, data: bytes, media_type: str, *, diff_id: str | None = None, annotations: Mapping[str, str] | None = None
    ) -> Blob:
        return cls(
            media_type=media_type,
            data=data,
            digest=sha256_digest(data),
            size=len(data),
            diff_id=diff_id,
            annotations=dict(annotations or {}),
        )


@dataclass(frozen=True)
class BuiltImage:
    manifest: bytes
    manifest_media_type: str
    digest: str
    config: Blob
    layers: list[Blob]


class BuiltIndex(NamedTuple):
    manifest: bytes
    manifest_media_type: str
    digest: str


@dataclass(frozen=True)
class FileEntry:
    """A tar member beyond a plain file, for layers a test wants to shape exactly.

    Whiteouts ('/dir/.wh.name') and opaque markers ('/dir/.wh..wh..opq') are plain empty
    files by name, so `b""` is enough for them. `raw_name=True` stores the mapping key as
    the member name verbatim ('../etc/passwd', '/etc/shadow'), without normalisation or
    parent directories, to build hostile layers.
    """

    data: bytes = b""
    kind: Literal["file", "dir", "symlink", "hardlink"] = "file"
    target: str = ""
    """Link target: stored verbatim for symlinks; for hardlinks an absolute path in the layer."""
    mode: int | None = None
    raw_name: bool = False

    @classmethod
    def symlink(cls, target: str) -> FileEntry:
        return cls(kind="symlink", target=target)

    @classmethod
    def hardlink(cls, target: str) -> FileEntry:
        return cls(kind="hardlink", target=target)

    @classmethod
    def directory(cls, mode: int = 0o755) -> FileEntry:
        return cls(kind="dir", mode=mode)


_TAR_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
_DEFAULT_MODES = {"file": 0o644, "dir": 0o755, "symlink": 0o777, "hardlink": 0o644}


def layer_from_files(files: Mapping[str, bytes | FileEntry], *, compresslevel: int = 6) -> Blob:
    """A gzip tar layer holding `files` (absolute paths), with every parent directory added."""
    return layer_from_tar(_tar(layer_members(files)), compresslevel=compresslevel)


def layer_members(files: Mapping[str, bytes | FileEntry]) -> list[tuple[str, FileEntry]]:
    """Tar members for `files`, parents added, in name order (as `tar` of a sorted tree has them)."""
    members: dict[str, FileEntry] = {}
    for path, content in files.items():
        entry = content if isinstance(content, FileEntry) else FileEntry(data=content)
        if entry.raw_name:
            members[path] = entry
            continue
        name = _member_name(path)
        members[name] = entry
        for parent in PurePosixPath(name).parents:
            if str(parent) != ".":
                members.setdefault(str(parent), FileEntry.directory())
    return [(name, members[name]) for name in sorted(members)]


def layer_from_tar(tar: bytes, *, compresslevel: int = 6) -> Blob:
    """A gzip layer around `tar` as is (which need not even be a valid tar, for hostile layers)."""
    compressed = gzip.compress(tar, compresslevel=compresslevel, mtime=0)
    return Blob.of(compressed, OCI_LAYER_GZIP, diff_id=sha256_digest(tar))


def random_layer(size_bytes: int, seed: int) -> Blob:
    """A layer with one file of `size_bytes` seeded random bytes: a big, incompressible base layer.

    Stored gzip (level 0): random bytes do not compress anyway, and level 0 is the fastest.
    """
    content = random.Random(seed).randbytes(size_bytes)
    tar = _tar([(f"opt/base/random-{seed}.bin", FileEntry(data=content))])
    return layer_from_tar(tar, compresslevel=0)


def _member_name(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"layer path {path!r} must be absolute (or use FileEntry(raw_name=True))")
    name = posixpath.normpath(path).lstrip("/")
    if not name:
        raise ValueError(f"layer path {path!r} names the root directory")
    return name


def _tar(members: Iterable[tuple[str, FileEntry]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, entry in members:
            info = tar_info(name, entry)
            if entry.kind == "file":
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def tar_info(name: str, entry: FileEntry) -> tarfile.TarInfo:
    """The tar header of one member, deterministic (no times, owners or names of this machine)."""
    info = tarfile.TarInfo(name)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = entry.mode if entry.mode is not None else _DEFAULT_MODES[entry.kind]
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "symlink":
        info.linkname = entry.target
    elif entry.kind == "hardlink":
        # Hardlink targets are member names, which carry no leading '/'.
        info.linkname = entry.target if entry.raw_name else _member_name(entry.target)
    if entry.kind == "file":
        info.size = len(entry.data)
    return info


def build_image(
    layers: Sequence[Blob],
    *,
    labels: Mapping[str, str] = {},
    created: str = "1970-01-01T00:00:00Z",
    env: Sequence[str] = (),
    architecture: str = "amd64",
    os: str = "linux",
    media: Literal["oci", "docker"] = "oci",
    annotations: Mapping[str, str] = {},
) -> BuiltImage:
    """An image manifest + config over `layers` (bottom first); `env` items are "NAME=value"."""
    for layer in layers:
        if layer.diff_id is None:
            raise ValueError(f"layer {layer.digest} has no diff_id; build layers with layer_from_files/layer_from_tar")
    if media == "docker":
        if annotations:
            raise ValueError("Docker schema2 manifests have no annotations; use media='oci'")
        config_type, layer_type, manifest_type = DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST
    else:
        config_type, layer_type, manifest_type = OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
    layers = [replace(layer, media_type=layer_type) for layer in layers]
    config_body: dict = {
        "architecture": architecture,
        "os": os,
        "created": created,
        "config": {"Env": list(env), "Labels": dict(labels)},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": "deploycheck.sandbox.oci_builder"} for _ in layers],
    }
    config = Blob.of(_canonical_json(config_body), config_type)
    manifest_body: dict = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": _descriptor(config),
        "layers": [_descriptor(layer) for layer in layers],
    }
    if annotations:
        manifest_body["annotations"] = dict(annotations)
    manifest = _canonical_json(manifest_body)
    return BuiltImage(manifest, manifest_type, sha256_digest(manifest), config, layers)


def build_index(
    images: Sequence[tuple[BuiltImage, Mapping[str, str]]],
    *,
    annotations: Mapping[str, str] = {},
    media: Literal["oci", "docker"] = "oci",
) -> BuiltIndex:
    """An OCI index (or Docker manifest list) of (image, platform) pairs, in the given order.

    `platform` is the descriptor's platform object, e.g. {"architecture": "amd64", "os": "linux"};
    {"architecture": "unknown", "os": "unknown"} makes an attestation-style entry.
    """
    media_type = DOCKER_MANIFEST_LIST if media == "docker" else OCI_INDEX
    body: dict = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {
                "mediaType": image.manifest_media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "platform": dict(platform),
            }
            for image, platform in images
        ],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    raw = _canonical_json(body)
    return BuiltIndex(raw, media_type, sha256_digest(raw))


def _descriptor(blob: Blob) -> dict:
    descriptor = {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
    if blob.annotations:
        descriptor["annotations"] = dict(blob.annotations)
    return descriptor


def write_oci_layout(image: BuiltImage, directory: Path, *, ref_name: str | None = None) -> Path:
    """`image` as an OCI image layout directory (as skopeo writes one), for a scenario's `oci_layout`."""
    directory = Path(directory)
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest, data in (
        (image.config.digest, image.config.data),
        (image.digest, image.manifest),
        *((layer.digest, layer.data) for layer in image.layers),
    ):
        path = blobs / digest.removeprefix("sha256:")
        if not path.exists() or path.stat().st_size != len(data):
            path.write_bytes(data)
    entry: dict = {"mediaType": image.manifest_media_type, "digest": image.digest, "size": len(image.manifest)}
    if ref_name:
        entry["annotations"] = {_REF_NAME_ANNOTATION: ref_name}
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    )
    return directory


def _canonical_json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# --- pushing ---------------------------------------------------------------------------


def push_image(
    registry_url: str,
    repository: str,
    image: BuiltImage,
    tags: Iterable[str] = (),
    *,
    client: httpx.Client | None = None,
) -> str:
    """Upload the image's blobs and manifest (by digest, then each tag); returns the manifest digest."""
    with _uploader(registry_url, repository, client) as upload:
        for blob in (image.config, *image.layers):
            upload.blob(blob.digest, blob.data)
        return upload.manifest_and_tags(image.manifest, image.manifest_media_type, tags)


def push_manifest(
    registry_url: str,
    repository: str,
    manifest_bytes: bytes,
    media_type: str,
    reference: str,
    *,
    client: httpx.Client | None = None,
) -> str:
    """PUT one manifest (whose blobs / child manifests are already there) under a tag or its digest."""
    with _uploader(registry_url, repository, client) as upload:
        return upload.manifest(manifest_bytes, media_type, reference)


def push_oci_layout(
    layout_dir: Path,
    registry_url: str,
    repository: str,
    tags: Iterable[str],
    *,
    ref_name: str | None = None,
) -> str:
    """Push an OCI image layout directory (as skopeo / umoci write it) as is; returns its digest.

    The layout's index.json must hold exactly one manifest, or one whose
    org.opencontainers.image.ref.name annotation equals `ref_name`.
    """
    layout = _OciLayout(Path(layout_dir))
    descriptor = layout.top_descriptor(ref_name)
    with _uploader(registry_url, repository, None) as upload:
        return layout.push_tree(upload, descriptor, tags)


class _Uploader:
    def __init__(self, client: httpx.Client, registry_url: str, repository: str):
        self._client = client
        self._base = f"{registry_url.rstrip('/')}/v2/{repository}"

    def blob(self, digest: str, data: bytes) -> None:
        if self._client.head(f"{self._base}/blobs/{digest}").status_code == 200:
            return
        started = self._client.post(f"{self._base}/blobs/uploads/")
        _expect(started, 202, f"start upload of blob {digest}")
        upload_url = httpx.URL(self._base).join(started.headers["Location"]).copy_merge_params({"digest": digest})
        finished = self._client.put(upload_url, content=data, headers={"Content-Type": "application/octet-stream"})
        _expect(finished, 201, f"upload of blob {digest}")

    def manifest(self, raw: bytes, media_type: str, reference: str) -> str:
        response = self._client.put(
            f"{self._base}/manifests/{reference}", content=raw, headers={"Content-Type": media_type}
        )
        _expect(response, 201, f"manifest {reference}")
        digest = sha256_digest(raw)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise PushError(f"registry stored manifest {reference} as {stored}, but its bytes hash to {digest}")
        return digest

    def manifest_and_tags(self, raw: bytes, media_type: str, tags: Iterable[str]) -> str:
        digest = self.manifest(raw, media_type, sha256_digest(raw))
        for tag in tags:
            self.manifest(raw, media_type, tag)
        return digest


@contextmanager
def _uploader(registry_url: str, repository: str, client: httpx.Client | None) -> Iterator[_Uploader]:
    if client is not None:
        yield _Uploader(client, registry_url, repository)
        return
    with httpx.Client(timeout=_PUSH_TIMEOUT) as own_client:
        yield _Uploader(own_client, registry_url, repository)


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise PushError(
            f"push {what} to {response.request.url} failed: HTTP {response.status_code} {response.text[:500]}"
        )


class _OciLayout:
    def __init__(self, root: Path):
        self.root = root
        marker = json.loads((root / "oci-layout").read_text())
        if marker.get("imageLayoutVersion") != "1.0.0":
            raise ValueError(f"{root}/oci-layout: unsupported imageLayoutVersion {marker.get('imageLayoutVersion')!r}")
        self.index = json.loads((root / "index.json").read_text())

    def top_descriptor(self, ref_name: str | None) -> dict:
        entries = self.index.get("manifests", [])
        names = [entry.get("annotations", {}).get(_REF_NAME_ANNOTATION, entry["digest"]) for entry in entries]
        chosen = [entry for entry, name in zip(entries, names, strict=False) if ref_name is None or name == ref_name]
        if len(chosen) != 1:
            wanted = f"named {ref_name!r}" if ref_name else "in total"
            raise ValueError(
                f"{self.root}/index.json: expected one manifest {wanted}, found {len(chosen)} among {names}"
            )
        return chosen[0]

    def blob(self, descriptor: dict) -> bytes:
        digest = descriptor["digest"]
        if not DIGEST_RE.match(digest):
            raise ValueError(f"{self.root}: {digest!r} is not a sha256 digest")
        data = (self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        if sha256_digest(data) != digest or len(data) != descriptor["size"]:
            raise ValueError(f"{self.root}: blob {digest} does not match its descriptor (digest or size differ)")
        return data

    def push_tree(self, upload: _Uploader, descriptor: dict, tags: Iterable[str] = ()) -> str:
        """Push everything `descriptor` refers to (children first), then the manifest by digest and tags."""
        raw = self.blob(descriptor)
        body = json.loads(raw)
        media_type = descriptor.get("mediaType") or body.get("mediaType")
        if media_type in INDEX_MEDIA_TYPES:
            for child in body["manifests"]:
                self.push_tree(upload, child)
        else:
            for blob in (body["config"], *body["layers"]):
                upload.blob(blob["digest"], self.blob(blob))
        return upload.manifest_and_tags(raw, media_type, tags)

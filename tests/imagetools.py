"""Helpers shared by the image-reading tests: publishing sandbox images and a hostile registry stub."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deploycheck.imageref import ImageRef
from deploycheck.registry import RegistryClient, RegistryRouter, sha256_digest
from deploycheck.sandbox.oci_builder import Blob, BuiltImage, build_image, build_index, push_image, push_manifest
from deploycheck.sandbox.registry_process import LocalRegistry

MIB = 1024 * 1024


def mirror_client(url: str, **options) -> RegistryClient:
    return RegistryClient(RegistryRouter.mirror(url), **options)


def publish(registry_url: str, name: str, image: BuiltImage) -> ImageRef:
    """Push `image` as us-west2-docker.pkg.dev/proj/repo/NAME into a mirror registry; the pinned ref."""
    ref = ImageRef.parse(f"us-west2-docker.pkg.dev/proj/repo/{name}").with_digest(image.digest)
    base_url, repository = RegistryRouter.mirror(registry_url).endpoint(ref)
    push_image(base_url, repository, image)
    return ref


def publish_index(
    registry_url: str, name: str, platforms: Sequence[tuple[BuiltImage, Mapping[str, str]]], *, media: str = "oci"
) -> ImageRef:
    """Push each (image, platform) and an index of them; the ref pinned to the index."""
    for image, _ in platforms:
        ref = publish(registry_url, name, image)
    index = build_index(platforms, media=media)
    base_url, repository = RegistryRouter.mirror(registry_url).endpoint(ref)
    push_manifest(base_url, repository, index.manifest, index.manifest_media_type, index.digest)
    return ref.with_digest(index.digest)


def publish_layers(registry: LocalRegistry, name: str, layers: Sequence[Blob], **options) -> ImageRef:
    return publish(registry.url, name, build_image(layers, **options))


def relabel_layers(image: BuiltImage, media_types: Mapping[int, str]) -> BuiltImage:
    """`image` with some layers' descriptors given another media type (build_image writes gzip only)."""
    body = json.loads(image.manifest)
    layers = list(image.layers)
    for index, media_type in media_types.items():
        body["layers"][index]["mediaType"] = media_type
        layers[index] = dataclasses.replace(layers[index], media_type=media_type)
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return BuiltImage(raw, image.manifest_media_type, sha256_digest(raw), image.config, layers)


def tar_of(layer: Blob) -> bytes:
    """The uncompressed tar inside a gzip layer built by oci_builder."""
    return gzip.decompress(layer.data)


class Respond:
    """What the stub answers to one request: a status, headers and a body sent in paced chunks."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str] = {},
        *,
        stall_after: int | None = None,
        chunk_size: int = 64 * 1024,
        chunk_delay: float = 0.0,
    ):
        self.status = status
        self.body = body
        self.headers = dict(headers)
        self.stall_after = stall_after
        """Send this many body bytes, then nothing more (the connection stays open)."""
        self.chunk_size = chunk_size
        self.chunk_delay = chunk_delay


class StubRegistry:
    """A registry that serves exactly what a test says, including what a real one would refuse.

    Routes map (method, path) to a Respond; unknown routes answer 404. Stalled responses end
    when the stub is closed.
    """

    def __init__(self):
        self.routes: dict[tuple[str, str], Respond] = {}
        self.requests: list[str] = []
        self._closing = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                stub.requests.append(f"{self.command} {self.path}")
                respond = stub.routes.get((self.command, self.path.split("?")[0]), Respond(404))
                self.send_response(respond.status)
                for name, value in respond.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(respond.body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                stub._send(self.wfile, respond)

            do_GET = do_HEAD = answer  # noqa: N815 (http.server naming)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def _send(self, wfile, respond: Respond) -> None:
        limit = len(respond.body) if respond.stall_after is None else respond.stall_after
        try:
            for start in range(0, limit, respond.chunk_size):
                wfile.write(respond.body[start : min(start + respond.chunk_size, limit)])
                wfile.flush()
                if respond.chunk_delay and self._closing.wait(respond.chunk_delay):
                    return
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should
        if respond.stall_after is not None:
            self._closing.wait()

    def serve_image(self, ref: ImageRef, image: BuiltImage, blobs: Mapping[str, Respond | bytes] = {}) -> None:
        """Serve `image` under `ref`'s mirror repository; `blobs` overrides what some digests answer."""
        repository = RegistryRouter.mirror(self.url).endpoint(ref)[1]
        self.routes[("GET", f"/v2/{repository}/manifests/{image.digest}")] = Respond(
            body=image.manifest, headers={"Content-Type": image.manifest_media_type}
        )
        for blob in (image.config, *image.layers):
            override = blobs.get(blob.digest, blob.data)
            respond = override if isinstance(override, Respond) else Respond(body=override)
            self.routes[("GET", f"/v2/{repository}/blobs/{blob.digest}")] = respond

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


def plant_manifest(registry: LocalRegistry, repository: str, raw: bytes, *, tag: str | None = None) -> str:
    """Store a manifest in the registry's filesystem storage, byte for byte, as a push would leave it.

    For captured manifests whose referenced blobs we do not have: the registry's PUT refuses
    those (MANIFEST_BLOB_UNKNOWN), but serves what its storage holds.
    """
    digest = sha256_digest(raw)
    _store_blob(registry, raw, digest)
    manifests = _repository_root(registry, repository) / "_manifests"
    _write_link(manifests / "revisions" / "sha256" / digest.removeprefix("sha256:") / "link", digest)
    if tag:
        _write_link(manifests / "tags" / tag / "current" / "link", digest)
        _write_link(manifests / "tags" / tag / "index" / "sha256" / digest.removeprefix("sha256:") / "link", digest)
    return digest


def plant_blob(registry: LocalRegistry, repository: str, data: bytes) -> str:
    digest = sha256_digest(data)
    _store_blob(registry, data, digest)
    layer_link = _repository_root(registry, repository) / "_layers" / "sha256" / digest.removeprefix("sha256:") / "link"
    _write_link(layer_link, digest)
    return digest


def _storage(registry: LocalRegistry) -> Path:
    return registry.root / "data" / "docker" / "registry" / "v2"


def _repository_root(registry: LocalRegistry, repository: str) -> Path:
    return _storage(registry) / "repositories" / repository


def _store_blob(registry: LocalRegistry, data: bytes, digest: str) -> None:
    hex_digest = digest.removeprefix("sha256:")
    path = _storage(registry) / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_link(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest)

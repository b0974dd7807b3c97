"""RegistryClient against the real distribution registry, and against a hostile stub where needed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.oauth2.credentials
import httpx
import pytest

from deploycheck.errors import NotFoundError, ObservationError, PermissionDeniedError
from deploycheck.imageref import ImageRef
from deploycheck.netutil import free_port, wait_until_ready
from deploycheck.registry import MANIFEST_ACCEPT, OCI_MANIFEST, RegistryClient, RegistryRouter, sha256_digest
from deploycheck.sandbox import local_server
from deploycheck.sandbox.needs import SandboxUnavailable
from deploycheck.sandbox.oci_builder import build_image, build_index, layer_from_files, push_image, push_manifest
from deploycheck.sandbox.registry_process import LocalRegistry

REVISION_LABEL = "org.opencontainers.image.revision"
LINUX_AMD64 = {"architecture": "amd64", "os": "linux"}
LINUX_ARM64 = {"architecture": "arm64", "os": "linux"}
ATTESTATION = {"architecture": "unknown", "os": "unknown"}


def mirror_client(url: str, **options) -> RegistryClient:
    return RegistryClient(RegistryRouter.mirror(url), **options)


@pytest.fixture
def client(registry):
    with mirror_client(registry.url, timeout=5) as registry_client:
        yield registry_client


def push(registry: LocalRegistry, ref: ImageRef, image, *tags: str) -> str:
    base_url, repository = RegistryRouter.mirror(registry.url).endpoint(ref)
    return push_image(base_url, repository, image, tags)


def push_index(registry: LocalRegistry, ref: ImageRef, entries, *, media: str = "oci"):
    """Push each (image, platform) and an index of them, in that order, tagged `ref.tag`."""
    for image, _ in entries:
        push(registry, ref, image)
    index = build_index(entries, media=media)
    base_url, repository = RegistryRouter.mirror(registry.url).endpoint(ref)
    push_manifest(base_url, repository, index.manifest, index.manifest_media_type, ref.tag)
    return index


def app_image(revision: str, **options):
    layer = layer_from_files({"/app/main.py": f"REVISION = {revision!r}\n".encode()})
    return build_image([layer], labels={REVISION_LABEL: revision}, **options)


def attestation_image(media: str = "oci"):
    """What buildx pushes next to the image: provenance in an image manifest for unknown/unknown."""
    provenance = layer_from_files({"/provenance.json": b"{}"})
    return build_image([provenance], architecture="unknown", os="unknown", media=media)


# --- resolve ---------------------------------------------------------------------------


def test_resolve_returns_the_digest_of_the_pushed_image(registry, client):
    ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/svc:latest")
    image = app_image("aaaa111")
    assert push(registry, ref, image, "latest") == image.digest
    assert client.resolve(ref) == image.digest


def test_resolve_follows_a_moved_tag(registry, client):
    ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/moving:latest")
    old, new = app_image("old0001"), app_image("new0002")
    push(registry, ref, old, "latest")
    assert client.resolve(ref) == old.digest
    push(registry, ref, new, "latest")
    assert client.resolve(ref) == new.digest


def test_a_google_tag_is_resolved_by_the_get_that_also_brings_its_manifest(registry, client):
    ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/once:latest")
    image = app_image("once001")
    push(registry, ref, image, "latest")
    assert client.resolve(ref) == image.digest
    client.image_config(ref.with_digest(image.digest))
    assert client.stats.requests == 2  # the manifest, by its tag; the config blob


def test_a_tag_of_another_registry_is_resolved_with_head(stub):
    """Docker Hub counts manifest GETs against its pull rate limit, HEADs not."""
    image = app_image("hub0001")
    stub.on(
        "HEAD", "/v2/registry.example.com/app/manifests/latest", (200, {"Docker-Content-Digest": image.digest}, b"")
    )
    with mirror_client(stub.url) as client:
        assert client.resolve(ImageRef.parse("registry.example.com/app:latest")) == image.digest
    assert [method for method, _, _ in stub.requests] == ["HEAD"]


def test_resolve_of_a_pinned_reference_makes_no_request(client):
    digest = sha256_digest(b"anything")
    assert client.resolve(ImageRef.parse(f"gcr.io/proj/app@{digest}")) == digest
    assert client.stats.requests == 0


def test_mirror_keeps_same_path_on_different_hosts_apart(registry, client):
    legacy = ImageRef.parse("gcr.io/proj/worker:latest")
    current = ImageRef.parse("us-west2-docker.pkg.dev/proj/worker:latest")
    push(registry, legacy, app_image("legacy1"), "latest")
    push(registry, current, app_image("current"), "latest")
    assert client.resolve(legacy) != client.resolve(current)
    assert RegistryRouter.direct().endpoint(current) == ("https://us-west2-docker.pkg.dev", "proj/worker")


def test_missing_tag_is_not_found_with_the_tag_and_registry(registry, client):
    ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/svc:no-such-tag")
    push(registry, ref, app_image("aaaa111"), "latest")
    with pytest.raises(NotFoundError) as raised:
        client.resolve(ref)
    message = str(raised.value)
    assert "image us-west2-docker.pkg.dev/proj/repo/svc:no-such-tag" in message
    assert "tag 'no-such-tag' not found in registry" in message and registry.url in message


def test_stopped_registry_is_an_observation_error_not_a_hang(tmp_path):
    ref = ImageRef.parse("gcr.io/proj/app:latest")
    with LocalRegistry(tmp_path) as short_lived:
        push(short_lived, ref, app_image("aaaa111"), "latest")
        url = short_lived.url
    started = time.monotonic()
    with mirror_client(url, timeout=2) as client, pytest.raises(ObservationError) as raised:
        client.resolve(ref)
    assert time.monotonic() - started < 2
    assert f"cannot connect to registry at {url}/v2/gcr.io/proj/app/manifests/latest" in str(raised.value)


# --- configs and platforms -----------------------------------------------------------------


def test_image_config_reads_labels_created_env(registry, client):
    ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/config:v1")
    image = app_image(
        "ce269d67", created="2026-01-02T03:04:05Z", env=["PATH=/usr/bin", "OPTS=a=b"], annotations={"team": "props"}
    )
    push(registry, ref, image, "v1")
    config = client.image_config(ref)
    assert config.labels == {REVISION_LABEL: "ce269d67"}
    assert config.created == "2026-01-02T03:04:05Z"
    assert config.env == {"PATH": "/usr/bin", "OPTS": "a=b"}
    assert config.annotations == {"team": "props"}
    assert (config.digest, config.manifest_digest) == (image.config.digest, image.digest)
    assert [layer.digest for layer in config.layers] == [layer.digest for layer in image.layers]


@pytest.mark.parametrize("media", ["oci", "docker"])
def test_index_picks_linux_amd64_after_a_leading_attestation(registry, client, media):
    ref = ImageRef.parse(f"us-west2-docker.pkg.dev/proj/repo/multi-{media}:latest")
    attestation = attestation_image(media)
    arm = app_image("arm6464", architecture="arm64", media=media)
    amd = app_image("amd6464", media=media)
    index = push_index(registry, ref, [(attestation, ATTESTATION), (arm, LINUX_ARM64), (amd, LINUX_AMD64)], media=media)

    assert client.resolve(ref) == index.digest
    config = client.image_config(ref)
    assert config.manifest_digest == amd.digest
    assert config.labels[REVISION_LABEL] == "amd6464"


def test_index_without_the_platform_lists_what_it_has(registry, client):
    ref = ImageRef.parse("gcr.io/proj/armonly:latest")
    arm = app_image("arm6464", architecture="arm64")
    push_index(registry, ref, [(attestation_image(), ATTESTATION), (arm, LINUX_ARM64)])
    with pytest.raises(ObservationError) as raised:
        client.image_config(ref)
    assert "has no linux/amd64 image; available: unknown/unknown, linux/arm64" in str(raised.value)


def test_stats_count_requests_and_digest_reads_are_cached(registry, client):
    ref = ImageRef.parse("gcr.io/proj/stats:latest")
    image = app_image("stats01")
    push(registry, ref, image, "latest")
    client.resolve(ref)
    assert client.stats.requests == 1
    client.image_config(ref)
    assert client.stats.requests == 3  # manifest by tag + config blob
    assert client.stats.bytes_received >= len(image.manifest) + image.config.size
    client.image_config(ref.with_digest(image.digest))
    assert client.stats.requests == 3  # manifest and config blob are content-addressed: kept for the session
    assert client.stats.retries == 0


# --- LocalRegistry and readiness polling -------------------------------------------------


def test_local_registry_stop_leaves_no_process(tmp_path):
    running = LocalRegistry(tmp_path).start()
    pid = running.pid
    os.kill(pid, 0)
    running.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    running.stop()  # idempotent
    assert "GET /v2/" in running.log_path.read_text()


def test_local_registry_names_the_package_when_the_binary_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        SandboxUnavailable,
        match=r"docker-registry .* not found on PATH; .*deploycheck\[sandbox\].*"
        r"apt-get install docker-registry",
    ):
        LocalRegistry(tmp_path).start()


def test_local_registry_retries_when_its_port_was_taken(tmp_path, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports = iter([squatter.getsockname()[1], free_port()])
        monkeypatch.setattr(local_server, "free_port", lambda: next(ports))
        with LocalRegistry(tmp_path) as running:
            assert httpx.get(f"{running.url}/v2/").status_code == 200
    assert "address already in use" in running.log_path.read_text()


def test_wait_until_ready_fails_fast_with_the_log_when_the_process_dies(tmp_path):
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["sh", "-c", "echo fatal: bad config; exit 3"], stdout=log)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"(?s)server exited with code 3.*fatal: bad config"):
        wait_until_ready(lambda: False, timeout=30, what="server", process=process, log_path=log_path)
    assert time.monotonic() - started < 5


def test_wait_until_ready_times_out_naming_what_and_the_log(tmp_path):
    with pytest.raises(RuntimeError, match=re.escape(f"server not ready after 0.2s; log {tmp_path / 'missing.log'}")):
        wait_until_ready(lambda: False, timeout=0.2, what="server", log_path=tmp_path / "missing.log")


# --- hostile or failing registries (stub) -----------------------------------------------------


class StubRegistry:
    """Answers (method, path) with canned responses, in order (the last repeats); records requests."""

    def __init__(self):
        self.responses: dict[tuple[str, str], list[tuple[int, dict[str, str], bytes]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.arrived = threading.Condition()
        self.hold_until_requests = 0  # hold each answer until this many requests came (or 1 s)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                with stub.arrived:
                    stub.requests.append((self.command, self.path, dict(self.headers)))
                    stub.arrived.notify_all()
                    stub.arrived.wait_for(lambda: len(stub.requests) >= stub.hold_until_requests, timeout=1)
                queue = stub.responses.get((self.command, self.path.split("?")[0]), [(404, {}, b"")])
                status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = answer  # noqa: N815 (http.server naming)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def on(self, method: str, path: str, *responses: tuple[int, dict[str, str], bytes]) -> None:
        self.responses[(method, path)] = list(responses)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


OCI_HEADERS = {"Content-Type": OCI_MANIFEST}


@pytest.fixture
def stub():
    server = StubRegistry()
    yield server
    server.close()


def test_manifest_whose_bytes_do_not_match_the_digest_is_rejected(stub):
    real = app_image("real001")
    forged = app_image("forged1")
    stub.on("GET", f"/v2/gcr.io/proj/app/manifests/{real.digest}", (200, OCI_HEADERS, forged.manifest))
    with mirror_client(stub.url) as client, pytest.raises(ObservationError) as raised:
        client.manifest(ImageRef.parse(f"gcr.io/proj/app@{real.digest}"))
    assert f"sha256 is {forged.digest}, not the requested digest" in str(raised.value)


def test_config_blob_that_does_not_match_its_digest_is_rejected(stub):
    image = app_image("real001")
    tampered = image.config.data.replace(b"real001", b"evil001")
    stub.on("GET", "/v2/gcr.io/proj/app/manifests/latest", (200, OCI_HEADERS, image.manifest))
    stub.on("GET", f"/v2/gcr.io/proj/app/blobs/{image.config.digest}", (200, {}, tampered))
    with mirror_client(stub.url) as client, pytest.raises(ObservationError, match="hostile registry"):
        client.image_config(ImageRef.parse("gcr.io/proj/app:latest"))


def test_a_blob_asked_for_by_many_threads_at_once_is_fetched_once(stub):
    image = app_image("once001")
    ref = ImageRef.parse(f"gcr.io/proj/app@{image.digest}")
    stub.on("GET", f"/v2/gcr.io/proj/app/manifests/{image.digest}", (200, OCI_HEADERS, image.manifest))
    stub.on("GET", f"/v2/gcr.io/proj/app/blobs/{image.config.digest}", (200, {}, image.config.data))
    stub.hold_until_requests = 2  # a second request, if any is sent, arrives while the first is answered
    with mirror_client(stub.url) as client, ThreadPoolExecutor(4) as pool:
        configs = list(pool.map(lambda _: client.image_config(ref), range(4)))
    assert {config.digest for config in configs} == {image.config.digest}
    assert [path for _, path, _ in stub.requests] == [
        f"/v2/gcr.io/proj/app/manifests/{image.digest}",
        f"/v2/gcr.io/proj/app/blobs/{image.config.digest}",
    ]


def test_an_empty_manifest_for_a_tag_is_named_empty(stub):
    stub.on("GET", "/v2/gcr.io/proj/app/manifests/latest", (200, {"Content-Type": "application/json"}, b"{}"))
    with mirror_client(stub.url) as client, pytest.raises(ObservationError, match=r"empty manifest \(\{\}"):
        client.resolve(ImageRef.parse("gcr.io/proj/app:latest"))


def test_oversized_manifest_is_refused(stub):
    stub.on("GET", "/v2/gcr.io/proj/app/manifests/latest", (200, OCI_HEADERS, b" " * 5000))
    with (
        mirror_client(stub.url, max_manifest_bytes=4096) as client,
        pytest.raises(ObservationError, match="over the 4096-byte limit"),
    ):
        client.manifest(ImageRef.parse("gcr.io/proj/app:latest"))


def test_bearer_token_flow_and_google_token_never_leaves_for_other_hosts(stub):
    image = app_image("token01")
    path = "/v2/gcr.io/proj/app/manifests/latest"
    scope = "repository:gcr.io/proj/app:pull"
    challenge = {"WWW-Authenticate": f'Bearer realm="{stub.url}/token",service="stub",scope="{scope}"'}
    stub.on("GET", path, (401, challenge, b""), (200, OCI_HEADERS, image.manifest))
    stub.on("GET", "/token", (200, {}, json.dumps({"token": "registry-token"}).encode()))
    secret = "ya29.must-not-leak"
    credentials = google.oauth2.credentials.Credentials(token=secret)
    with mirror_client(stub.url, credentials=credentials) as client:
        assert client.resolve(ImageRef.parse("gcr.io/proj/app:latest")) == image.digest
    (_, token_path, token_headers), (_, _, retried_headers) = stub.requests[1], stub.requests[2]
    assert token_path == "/token?scope=repository%3Agcr.io%2Fproj%2Fapp%3Apull&service=stub"
    assert "Authorization" not in token_headers
    assert retried_headers["Authorization"] == "Bearer registry-token"
    assert retried_headers["Accept"] == MANIFEST_ACCEPT
    assert all(secret not in str(headers) for _, _, headers in stub.requests)


@pytest.mark.parametrize(
    "image, permission",
    [
        ("us-west2-docker.pkg.dev/proj/repo/app:latest", "artifactregistry.repositories.downloadArtifacts"),
        ("gcr.io/proj/app:latest", "storage.objects.get"),
    ],
)
def test_denied_access_names_the_missing_permission(stub, image, permission):
    ref = ImageRef.parse(image)
    stub.on("GET", f"/v2/{ref.repository}/manifests/latest", (403, {}, b""))
    with mirror_client(stub.url) as client, pytest.raises(PermissionDeniedError) as raised:
        client.resolve(ref)
    assert raised.value.permission == permission
    assert f"missing permission {permission}" in str(raised.value)


def test_retryable_statuses_are_retried_then_succeed(stub):
    image = app_image("retry01")
    path = "/v2/gcr.io/proj/app/manifests/latest"
    stub.on("GET", path, (503, {}, b""), (429, {}, b""), (200, OCI_HEADERS, image.manifest))
    with mirror_client(stub.url) as client:
        assert client.resolve(ImageRef.parse("gcr.io/proj/app:latest")) == image.digest
        assert (client.stats.requests, client.stats.retries) == (3, 2)


def test_persistent_server_error_gives_up_after_three_attempts(stub):
    stub.on("GET", "/v2/gcr.io/proj/app/manifests/latest", (500, {}, b""))
    with mirror_client(stub.url) as client, pytest.raises(ObservationError, match="HTTP 500 after 3 attempts"):
        client.resolve(ImageRef.parse("gcr.io/proj/app:latest"))
    assert len(stub.requests) == 3


def test_silent_registry_times_out_within_the_bound():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog, nothing ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with (
            mirror_client(url, timeout=0.2) as client,
            pytest.raises(ObservationError, match=r"timed out \(ReadTimeout\) 3 times"),
        ):
            client.resolve(ImageRef.parse("gcr.io/proj/app:latest"))
    # three 0.2 s attempts plus at most 0.5 s + 1 s of backoff
    assert time.monotonic() - started < 3

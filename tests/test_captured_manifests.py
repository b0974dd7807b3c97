"""Manifests real registries served, byte for byte, through the real distribution registry.

The captured files (tests/data/manifests, provenance in its README) are checked against their
published digests, planted in a LocalRegistry's storage (its PUT refuses manifests whose blobs
are absent) and read back through RegistryClient and RegistryImageReader.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deploycheck.blobcache import BlobCache
from deploycheck.errors import NotFoundError, ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.images import RegistryImageReader
from deploycheck.registry import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, RegistryRouter
from deploycheck.sandbox.registry_process import LocalRegistry

from imagetools import mirror_client, plant_blob, plant_manifest

CAPTURED = Path(__file__).parent / "data" / "manifests"
HELLO_LIST = "sha256:97a379f4f88575512824f3b352bc03cd75e239179eea0fecc38e597b2209f49a"
HELLO_AMD64 = "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"
HELLO_CONFIG = "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412"
HELLO_LAYER = "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
FLUX_INDEX = "sha256:6a6693172589f8ff26123a231d5fa6ceb194a6efb4dc647cdf057c959f76a2e3"
FLUX_AMD64 = "sha256:d10ea2ebeb475de80a6d3caf792578b1eaaa0366c55442d20d7e5f6f78fad3ec"
FLUX_ARM_V7 = "sha256:abda1053b630d5258b04dbd5090029e4c7f68cb1ab6ba26d46764912f81ddcec"
FLUX_ARM64 = "sha256:5f2e5cd101b7b5e22afa9d555ba58afb54c5bbc099ac814deb993ee2e982592f"

PUBLISHED = {
    "docker-hub-hello-world-latest-manifest-list.json": HELLO_LIST,
    "docker-hub-hello-world-linux-amd64-schema2.json": HELLO_AMD64,
    "docker-hub-hello-world-linux-amd64-config.json": HELLO_CONFIG,
    "ghcr-fluxcd-source-controller-v1.9.6-oci-index.json": FLUX_INDEX,
}
HELLO = ImageRef.parse("docker.io/library/hello-world:latest")
FLUX = ImageRef.parse("ghcr.io/fluxcd/source-controller:v1.9.6")


def captured(digest: str) -> bytes:
    name = next(name for name, published in PUBLISHED.items() if published == digest)
    return (CAPTURED / name).read_bytes()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        hello = _repository(running, HELLO)
        plant_blob(running, hello, captured(HELLO_CONFIG))
        plant_manifest(running, hello, captured(HELLO_AMD64))
        plant_manifest(running, hello, captured(HELLO_LIST), tag="latest")
        plant_manifest(running, _repository(running, FLUX), captured(FLUX_INDEX), tag="v1.9.6")
        yield running


def _repository(registry: LocalRegistry, ref: ImageRef) -> str:
    return RegistryRouter.mirror(registry.url).endpoint(ref)[1]


@pytest.fixture
def client(registry):
    with mirror_client(registry.url, timeout=5) as registry_client:
        yield registry_client


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_captured_bytes_hash_to_the_published_digest(name):
    assert "sha256:" + hashlib.sha256((CAPTURED / name).read_bytes()).hexdigest() == PUBLISHED[name]


def test_docker_hub_manifest_list_resolves_and_selects_linux_amd64(client):
    assert client.resolve(HELLO) == HELLO_LIST
    top = client.manifest(HELLO)
    assert (top.digest, top.media_type, top.raw) == (HELLO_LIST, DOCKER_MANIFEST_LIST, captured(HELLO_LIST))

    config = client.image_config(HELLO)

    assert (config.manifest_digest, config.digest) == (HELLO_AMD64, HELLO_CONFIG)
    assert config.created == "2021-09-23T23:47:57.442225064Z"
    assert config.env == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert config.labels == {}
    assert [(layer.digest, layer.size) for layer in config.layers] == [(HELLO_LAYER, 2479)]


def test_docker_schema2_manifest_by_digest(client):
    manifest = client.manifest(HELLO.with_digest(HELLO_AMD64))
    assert manifest.media_type == DOCKER_MANIFEST and manifest.raw == captured(HELLO_AMD64)
    assert client.image_config(HELLO.with_digest(HELLO_AMD64)).digest == HELLO_CONFIG


def test_captured_manifests_and_config_come_from_the_cache_on_a_warm_run(registry, tmp_path):
    pinned = HELLO.with_digest(HELLO_LIST)
    with mirror_client(registry.url, cache=BlobCache(tmp_path)) as cold:
        cold.image_config(pinned)
        assert cold.stats.requests == 3
    with mirror_client(registry.url, cache=BlobCache(tmp_path)) as warm:
        assert warm.image_config(pinned).digest == HELLO_CONFIG
        assert (warm.stats.requests, warm.stats.bytes_received) == (0, 0)


def test_reader_walks_to_the_captured_layer(client):
    # The layer blob was not captured: reaching for exactly it shows the walk picked the right one.
    reader = RegistryImageReader(client, cache=None)
    with pytest.raises(NotFoundError, match=f"blob {HELLO_LAYER} not found"):
        reader.read_files(HELLO.with_digest(HELLO_LIST), ["/hello"])


def test_buildkit_index_resolves_and_is_an_oci_index(client):
    assert client.resolve(FLUX) == FLUX_INDEX
    index = client.manifest(FLUX.with_digest(FLUX_INDEX))
    assert index.media_type == OCI_INDEX and index.raw == captured(FLUX_INDEX)


@pytest.mark.parametrize(
    "platform, chosen",
    [("linux/amd64", FLUX_AMD64), ("linux/arm64", FLUX_ARM64), ("linux/arm/v7", FLUX_ARM_V7)],
)
def test_buildkit_index_platform_selection_skips_attestations(registry, platform, chosen):
    # The child manifests were not captured: the request for the chosen one names it.
    with (
        mirror_client(registry.url, platform=platform) as client,
        pytest.raises(NotFoundError, match=f"manifest {chosen} not found"),
    ):
        client.image_config(FLUX)


def test_attestation_entries_are_never_an_image(registry):
    with mirror_client(registry.url, platform="unknown/unknown") as client, pytest.raises(ObservationError) as raised:
        client.image_config(FLUX)
    assert f"index {FLUX_INDEX} has no unknown/unknown image" in str(raised.value)
    assert "available: linux/amd64, linux/arm/v7, linux/arm64, unknown/unknown" in str(raised.value)

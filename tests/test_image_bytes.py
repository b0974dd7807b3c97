"""Bytes near the floor, integrity said out loud: partial layer reads, --verify-layers, what the
cache keeps, warm reads, and the config read once. Against the real registry unless a hostile
transfer needs the stub."""

from __future__ import annotations

import os

import pytest

from deploycheck.blobcache import BlobCache
from deploycheck.errors import ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.images import ImageLimits, RegistryImageReader
from deploycheck.sandbox.oci_builder import FileEntry, build_image, layer_from_files, random_layer

from imagetools import MIB, StubRegistry, mirror_client, publish, publish_layers

HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"
FIXED_CODE = b"    def processor_name(self):\n        return self.processor_name\n"


@pytest.fixture
def client(registry):
    with mirror_client(registry.url, timeout=5) as registry_client:
        yield registry_client


def read(client, ref, paths, *, cache=None, **limits):
    return RegistryImageReader(client, cache=cache, limits=ImageLimits(**limits)).read_files(ref, paths)


def app_layer(before: int = MIB, after: int = 2 * MIB):
    """An app layer with the heartbeat file between `before` and `after` bytes of random files."""
    return layer_from_files(
        {"/app/assets/a.bin": os.urandom(before), HEARTBEAT: FIXED_CODE, "/app/static/z.bin": os.urandom(after)},
        compresslevel=1,
    )


def cached_digests(directory) -> set[str]:
    return (
        {"sha256:" + path.name for path in (directory / "sha256").iterdir()}
        if (directory / "sha256").is_dir()
        else set()
    )


# --- partial reads ----------------------------------------------------------------------------------


def test_read_stops_mid_layer_after_the_wanted_file_and_says_it_is_unverified(registry, client):
    app = app_layer()
    ref = publish_layers(registry, "partial", [random_layer(2 * MIB, seed=11), app])

    result = read(client, ref, [HEARTBEAT])

    heartbeat = result[HEARTBEAT]
    assert heartbeat.found and heartbeat.data == FIXED_CODE and heartbeat.integrity == "partial"
    # The file sits after 1 MiB of the 3 MiB layer: about a third of it crosses the wire.
    assert MIB < result.bytes_read == client.stats.bytes_received < 1.3 * MIB
    assert heartbeat.note.startswith("layer 1 read in part (")
    assert f" of {app.size:,} bytes), blob digest not verified (--verify-layers reads it whole)" in heartbeat.note
    assert result.partial_layers == [app.digest] and result.layers_opened == 1


def test_verify_layers_reads_the_whole_layer_and_verifies_it(registry, client):
    app = app_layer()
    ref = publish_layers(registry, "verified", [random_layer(2 * MIB, seed=12), app])

    result = read(client, ref, [HEARTBEAT], verify_layers=True)

    heartbeat = result[HEARTBEAT]
    assert heartbeat.data == FIXED_CODE and heartbeat.integrity == "sha256" and heartbeat.note == ""
    assert app.size < result.bytes_read < app.size + 4096  # the app layer whole, the base layer untouched
    assert result.partial_layers == [] and result.layers_opened == 1


def test_a_small_rest_is_read_anyway_so_the_layer_is_verified(registry, client):
    app = app_layer(after=16 * 1024)  # less than 64 KiB left after the file
    ref = publish_layers(registry, "small-rest", [app])
    heartbeat = read(client, ref, [HEARTBEAT])[HEARTBEAT]
    assert heartbeat.integrity == "sha256" and "read in part" not in heartbeat.note


def test_a_symlink_found_in_a_layer_read_in_part_marks_the_file_it_leads_to(registry, client):
    # /app -> /srv/app comes from the base layer, which the read leaves after the link.
    base = layer_from_files({"/app": FileEntry.symlink("/srv/app"), "/zz/filler.bin": os.urandom(MIB)}, compresslevel=1)
    app = layer_from_files({"/srv/app/shared/monitoring/processor_heartbeat.py": FIXED_CODE})
    ref = publish_layers(registry, "partial-link", [base, app])

    heartbeat = read(client, ref, [HEARTBEAT])[HEARTBEAT]

    assert heartbeat.data == FIXED_CODE and heartbeat.layer_index == 1 and heartbeat.integrity == "partial"
    assert "via symlinks /app -> /srv/app" in heartbeat.note and "layer 0 read in part (" in heartbeat.note


def test_absence_needs_every_layer_whole(registry, client):
    ref = publish_layers(registry, "absent", [app_layer(), layer_from_files({"/app/main.py": b""})])
    result = read(client, ref, ["/app/nope.py"])
    assert not result["/app/nope.py"].found and result["/app/nope.py"].integrity == "sha256"
    assert result.partial_layers == []


def test_tampered_rest_of_a_layer_passes_by_default_unverified_and_errors_with_verify_layers(tmp_path):
    """What the default trades: a layer forged after the wanted file is not noticed (and the
    finding says the digest was not verified); --verify-layers notices."""
    app = app_layer()
    image = build_image([app])
    forged = bytearray(app.data)
    forged[-200_000] ^= 0xFF  # deep in /app/static/z.bin, long after the heartbeat file
    ref = ImageRef.parse("gcr.io/proj/app").with_digest(image.digest)
    stub = StubRegistry()
    try:
        stub.serve_image(ref, image, {app.digest: bytes(forged)})
        cache = BlobCache(tmp_path / "cache")
        with mirror_client(stub.url) as client:
            default = read(client, ref, [HEARTBEAT], cache=cache)
            assert default[HEARTBEAT].data == FIXED_CODE and default[HEARTBEAT].integrity == "partial"
            assert "blob digest not verified" in default[HEARTBEAT].note
            with pytest.raises(ObservationError, match="hostile registry") as raised:
                read(client, ref, [HEARTBEAT], cache=cache, verify_layers=True)
        assert f"blob {app.digest}" in str(raised.value)
        assert app.digest not in cached_digests(tmp_path / "cache")
    finally:
        stub.close()


# --- what the cache keeps -------------------------------------------------------------------------


def test_cache_keeps_only_verified_data(registry, client, tmp_path):
    app = app_layer()
    image = build_image([random_layer(MIB, seed=13), app])
    ref = publish(registry.url, "cache-verified", image)
    cache_dir = tmp_path / "cache"

    read(client, ref, [HEARTBEAT], cache=BlobCache(cache_dir))
    assert cached_digests(cache_dir) == {image.digest, image.config.digest}  # not the layer read in part
    assert not (cache_dir / "layer-index").exists()
    assert not [path for path in (cache_dir / "sha256").iterdir() if path.name.startswith(".")]

    read(client, ref, [HEARTBEAT], cache=BlobCache(cache_dir), verify_layers=True)
    assert cached_digests(cache_dir) == {image.digest, image.config.digest, app.digest}
    assert [path.name for path in (cache_dir / "layer-index").iterdir()] == [app.digest.removeprefix("sha256:")]


def test_warm_read_after_a_verified_read_costs_nothing(registry, tmp_path):
    ref = publish_layers(registry, "warm-verified", [random_layer(MIB, seed=14), app_layer()])
    with mirror_client(registry.url) as cold_client:
        read(cold_client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"), verify_layers=True)

    with mirror_client(registry.url) as warm_client:  # a new process would see the same: nothing in memory
        warm = read(warm_client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))
        assert (warm_client.stats.requests, warm.bytes_read, warm.bytes_decompressed) == (0, 0, 0)
    assert warm[HEARTBEAT].data == FIXED_CODE and warm[HEARTBEAT].integrity == "sha256"


def test_warm_read_after_a_partial_read_reads_the_prefix_again(registry, tmp_path):
    ref = publish_layers(registry, "warm-partial", [app_layer()])
    with mirror_client(registry.url) as cold_client:
        cold = read(cold_client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))
    with mirror_client(registry.url) as warm_client:
        warm = read(warm_client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))
        assert warm_client.stats.requests == 1  # manifest and config came from the cache; the prefix did not
    assert MIB < warm.bytes_read < 1.3 * MIB and MIB < cold.bytes_read < 1.3 * MIB
    assert warm[HEARTBEAT].integrity == "partial"


# --- the config blob ------------------------------------------------------------------------------


def test_config_is_fetched_once_when_the_commit_check_asked_for_it_first(registry, client, tmp_path):
    ref = publish_layers(
        registry,
        "config-once",
        [layer_from_files({HEARTBEAT: FIXED_CODE})],
        labels={"org.opencontainers.image.revision": "ce269d67"},
    )
    assert client.image_config(ref).labels == {"org.opencontainers.image.revision": "ce269d67"}
    assert client.stats.requests == 2  # manifest, config
    # The image reader attaches its disk cache only now, as the session's fixtures do.
    read(client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))
    assert client.stats.requests == 3  # + the layer; the config is not asked for again

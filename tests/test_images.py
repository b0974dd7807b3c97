"""RegistryImageReader: reading files from images by digest, layer by layer, against hostile images.

Images are built in Python and pushed into the real distribution registry; where a real
registry would refuse the content (a blob that does not match its digest) or where the
transfer itself misbehaves (stalls, drips), a stub registry serves it instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from deploycheck.blobcache import BlobCache
from deploycheck.errors import ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.images import ImageLimits, RegistryImageReader
from deploycheck.registry import sha256_digest
from deploycheck.sandbox.oci_builder import Blob, FileEntry, build_image, layer_from_files, layer_from_tar, random_layer

from imagetools import (
    MIB,
    Respond,
    StubRegistry,
    mirror_client,
    publish,
    publish_index,
    publish_layers,
    relabel_layers,
    tar_of,
)

HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"
FIXED_CODE = b"    def processor_name(self):\n        return self.processor_name\n"
OLD_CODE = b"    def processor_name(self):\n        return f'{self.name}_{self.run_id}'\n"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
PLAIN_TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture
def client(registry):
    with mirror_client(registry.url, timeout=5) as registry_client:
        yield registry_client


@pytest.fixture
def stub():
    server = StubRegistry()
    yield server
    server.close()


def read(client, ref, paths, *, cache=None, **limits):
    return RegistryImageReader(client, cache=cache, limits=ImageLimits(**limits)).read_files(ref, paths)


# --- the walk: top down, early stop, costs ------------------------------------------------------


def test_file_in_the_app_layer_is_read_without_touching_a_big_base_layer(registry, client):
    base = random_layer(20 * MIB, seed=1)
    app = layer_from_files({HEARTBEAT: FIXED_CODE})
    ref = publish_layers(registry, "early-stop", [base, app])

    result = read(client, ref, [HEARTBEAT])

    heartbeat = result[HEARTBEAT]
    assert heartbeat.found and heartbeat.data == FIXED_CODE and heartbeat.size == len(FIXED_CODE)
    assert (heartbeat.layer_index, heartbeat.layer_digest, heartbeat.layer_size) == (1, app.digest, app.size)
    assert (result.layers_opened, result.layers_total) == (1, 2)
    assert result.image_compressed_size > 20 * MIB
    assert result.bytes_read < result.image_compressed_size / 100
    assert heartbeat.note == ""


def test_file_only_in_the_base_layer_says_what_reading_it_cost(registry, client):
    base = layer_from_files({"/etc/os-release": b"ID=debian\n", "/opt/filler.bin": os.urandom(MIB)})
    app = layer_from_files({HEARTBEAT: FIXED_CODE})
    ref = publish_layers(registry, "base-only", [base, app])

    result = read(client, ref, ["/etc/os-release"])
    os_release = result["/etc/os-release"]

    assert os_release.found and os_release.data == b"ID=debian\n" and os_release.layer_index == 0
    assert os_release.note.startswith(
        f"found only in layer 0 (a {base.size:,}-byte base layer); layer 0 read in part ("
    )
    assert result.bytes_read < base.size / 4  # /etc comes before /opt/filler.bin in the tar: the read stopped there

    whole = read(client, ref, ["/etc/os-release"], verify_layers=True)["/etc/os-release"]
    assert whole.note == f"found only in layer 0 (a {base.size:,}-byte base layer): reading it cost that much"


def test_missing_file_and_directory_are_not_found_with_the_reason(registry, client):
    layers = [layer_from_files({HEARTBEAT: FIXED_CODE}), layer_from_files({"/x": b""})]
    ref = publish_layers(registry, "missing", layers)
    result = read(client, ref, ["/app/nope.py", "/app/shared"])
    assert not result["/app/nope.py"].found and result["/app/nope.py"].note == "not in any of the 2 layers"
    assert result["/app/nope.py"].data is None and result["/app/nope.py"].layer_index is None
    assert not result["/app/shared"].found and result["/app/shared"].note == "/app/shared is a directory in layer 0"


def test_an_upper_layer_replaces_a_lower_file(registry, client):
    ref = publish_layers(
        registry, "override", [layer_from_files({HEARTBEAT: OLD_CODE}), layer_from_files({HEARTBEAT: FIXED_CODE})]
    )
    heartbeat = read(client, ref, [HEARTBEAT])[HEARTBEAT]
    assert heartbeat.data == FIXED_CODE and heartbeat.layer_index == 1


def test_paths_are_normalised_and_kept_as_asked(registry, client):
    ref = publish_layers(registry, "normalise", [layer_from_files({"/app/x.py": b"x"})])
    asked = ["./app/x.py", "app//x.py", "/app/./x.py", "/app/../app/x.py"]
    result = read(client, ref, asked)
    assert list(result.files) == asked
    assert all(result[path].found and result[path].data == b"x" and result[path].path == path for path in asked)


def test_docker_schema2_image_behind_an_index_with_an_attestation(registry, client):
    app = build_image([layer_from_files({HEARTBEAT: FIXED_CODE})], media="docker")
    arm = build_image([layer_from_files({HEARTBEAT: b"arm"})], architecture="arm64", media="docker")
    attestation = build_image([layer_from_files({"/provenance.json": b"{}"})], architecture="unknown", os="unknown")
    platforms = [
        (attestation, {"architecture": "unknown", "os": "unknown"}),
        (arm, {"architecture": "arm64", "os": "linux"}),
        (app, {"architecture": "amd64", "os": "linux"}),
    ]
    ref = publish_index(registry.url, "multi", platforms, media="docker")

    heartbeat = read(client, ref, [HEARTBEAT])[HEARTBEAT]

    assert heartbeat.data == FIXED_CODE and heartbeat.layer_digest == app.layers[0].digest


def test_a_tag_is_refused_never_resolved(client):
    with pytest.raises(ValueError, match="is not pinned by digest"):
        read(client, ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/svc:latest"), [HEARTBEAT])
    assert client.stats.requests == 0


# --- whiteouts, opaque directories, links ---------------------------------------------------------


def test_whiteout_hides_a_lower_file_and_says_which_layer(registry, client):
    base = layer_from_files({HEARTBEAT: OLD_CODE, "/app/main.py": b"main"})
    middle = layer_from_files({"/app/other.py": b""})
    deletion = layer_from_files({"/app/shared/monitoring/.wh.processor_heartbeat.py": b""})
    ref = publish_layers(registry, "whiteout", [base, middle, deletion])

    result = read(client, ref, [HEARTBEAT, "/app/main.py"])

    heartbeat = result[HEARTBEAT]
    assert not heartbeat.found and heartbeat.data is None
    assert heartbeat.note == "hidden by a whiteout in layer 2"
    assert (heartbeat.layer_index, heartbeat.layer_digest) == (2, deletion.digest)
    assert result["/app/main.py"].data == b"main"


def test_whiteout_alone_settles_the_path_without_opening_lower_layers(registry, client):
    base = random_layer(2 * MIB, seed=2)
    deletion = layer_from_files({"/app/.wh.secret.env": b""})
    ref = publish_layers(registry, "whiteout-early", [base, deletion])
    result = read(client, ref, ["/app/secret.env"])
    assert not result["/app/secret.env"].found and result.layers_opened == 1


def test_whiteout_of_a_parent_directory_hides_everything_below_it(registry, client):
    base = layer_from_files({"/app/old/config.py": b"old"})
    deletion = layer_from_files({"/app/.wh.old": b""})
    recreated = layer_from_files({"/app/old/new.py": b"new"})
    ref = publish_layers(registry, "whiteout-dir", [base, deletion, recreated])
    result = read(client, ref, ["/app/old/config.py", "/app/old/new.py"])
    assert result["/app/old/config.py"].note == "hidden by a whiteout of /app/old in layer 1"
    assert result["/app/old/new.py"].data == b"new"


def test_opaque_directory_hides_lower_contents_but_keeps_its_own(registry, client):
    base = layer_from_files({"/app/a.py": b"a-old", "/app/b.py": b"b-old", "/etc/keep": b"keep"})
    replaced = layer_from_files({"/app/.wh..wh..opq": b"", "/app/b.py": b"b-new"})
    ref = publish_layers(registry, "opaque", [base, replaced])

    result = read(client, ref, ["/app/a.py", "/app/b.py", "/etc/keep"])

    assert not result["/app/a.py"].found
    assert result["/app/a.py"].note == "hidden by opaque directory /app in layer 1"
    assert result["/app/b.py"].data == b"b-new"
    assert result["/etc/keep"].data == b"keep"


def test_symlinked_parent_directory_in_a_lower_layer(registry, client):
    # What `COPY . /app` gives when the base image made /app a symlink: the files land under the target.
    base = layer_from_files({"/srv/app/README": b"", "/app": FileEntry.symlink("/srv/app")})
    app = layer_from_files({"/srv/app/shared/monitoring/processor_heartbeat.py": FIXED_CODE})
    ref = publish_layers(registry, "symlinked-parent", [base, app])

    result = read(client, ref, [HEARTBEAT])

    heartbeat = result[HEARTBEAT]
    assert heartbeat.found and heartbeat.data == FIXED_CODE
    assert heartbeat.resolved_path == "/srv/app/shared/monitoring/processor_heartbeat.py"
    assert heartbeat.layer_index == 1 and heartbeat.note == "via symlinks /app -> /srv/app"
    assert result.layers_opened == 2
    assert result.bytes_read < base.size + app.size + 4096  # each layer read once


def test_relative_symlinks_and_dot_dot(registry, client):
    base = layer_from_files(
        {
            "/usr/lib/python3/site.py": b"site",
            "/opt/venv/lib": FileEntry.symlink("../../usr/lib"),
            "/opt/venv/current": FileEntry.symlink("lib/python3/site.py"),
        }
    )
    ref = publish_layers(registry, "relative", [base])
    result = read(client, ref, ["/opt/venv/current", "/opt/venv/lib/python3/../python3/site.py"])
    assert result["/opt/venv/current"].data == b"site"
    assert result["/opt/venv/current"].resolved_path == "/usr/lib/python3/site.py"
    assert result["/opt/venv/lib/python3/../python3/site.py"].data == b"site"


def test_symlink_target_in_an_upper_layer_is_read_again_for_its_content(registry, client):
    base = layer_from_files({"/etc/app.conf": FileEntry.symlink("/opt/conf/real.conf")})
    app = layer_from_files({"/opt/conf/real.conf": b"setting=1\n"})
    ref = publish_layers(registry, "late-link", [base, app])
    conf = read(client, ref, ["/etc/app.conf"])["/etc/app.conf"]
    assert conf.found and conf.data == b"setting=1\n" and conf.layer_index == 1
    assert "layer 1 was read twice: only a link seen later led to this file" in conf.note


def test_hardlink_reads_the_linked_file(registry, client):
    layer = layer_from_files({"/a/python3.11": b"ELF...", "/b/python3": FileEntry.hardlink("/a/python3.11")})
    ref = publish_layers(registry, "hardlink", [layer])
    python = read(client, ref, ["/b/python3"])["/b/python3"]
    assert python.found and python.data == b"ELF..." and python.size == 6


@pytest.mark.parametrize(
    "links",
    [
        {"/a": FileEntry.symlink("/b"), "/b": FileEntry.symlink("/a")},
        {"/a": FileEntry.symlink("a")},
        {"/a": FileEntry.symlink("/a/x")},
    ],
    ids=["a-b-a", "self-relative", "into-itself"],
)
def test_symlink_loop_is_a_clear_error(registry, client, links):
    ref = publish_layers(registry, "loop", [layer_from_files(links)])
    with pytest.raises(ObservationError, match=r"symlink loop \(or a chain over 16 hops\) resolving /a: /a -> "):
        read(client, ref, ["/a"])


def test_names_escaping_the_root_never_satisfy_a_read_and_are_noted(registry, client):
    hostile = layer_from_files(
        {
            "../etc/passwd": FileEntry(b"evil-relative", raw_name=True),
            "/etc/passwd": FileEntry(b"evil-absolute", raw_name=True),
            "app/../../etc/shadow": FileEntry(b"evil-nested", raw_name=True),
            "etc/group": FileEntry(kind="hardlink", target="../../etc/group", raw_name=True),
        }
    )
    ref = publish_layers(registry, "escape", [hostile])

    result = read(client, ref, ["/etc/passwd", "/etc/shadow", "/etc/group"])

    passwd = result["/etc/passwd"]
    assert not passwd.found and passwd.data is None
    assert "ignored member '../etc/passwd' of layer 0: it escapes the image root" in passwd.note
    assert "ignored member '/etc/passwd' of layer 0: it escapes the image root" in passwd.note
    assert not result["/etc/shadow"].found and "'app/../../etc/shadow'" in result["/etc/shadow"].note
    assert not result["/etc/group"].found and "is a hardlink to '../../etc/group'" in result["/etc/group"].note
    assert len(result.ignored_members) == 4


def test_escaping_names_do_not_override_the_real_file_below(registry, client):
    base = layer_from_files({"/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"})
    hostile = layer_from_files({"../etc/passwd": FileEntry(b"evil", raw_name=True)})
    ref = publish_layers(registry, "escape-over", [base, hostile])
    passwd = read(client, ref, ["/etc/passwd"])["/etc/passwd"]
    assert passwd.data == b"root:x:0:0:root:/root:/bin/sh\n" and passwd.layer_index == 0


# --- limits -----------------------------------------------------------------------------------------


def test_file_over_the_size_limit_is_truncated_with_a_note(registry, client):
    big = bytes(range(256)) * (3 * MIB // 256)
    ref = publish_layers(registry, "big-file", [layer_from_files({"/app/big.bin": big})])
    result = read(client, ref, ["/app/big.bin"], max_file_bytes=MIB)["/app/big.bin"]
    assert result.found and result.truncated and result.size == 3 * MIB
    assert result.data == big[:MIB]
    assert "file is 3,145,728 bytes, over the 1,048,576-byte --max-file-bytes limit" in result.note


def test_gzip_bomb_stops_at_the_decompressed_limit(registry, client):
    bomb = layer_from_files({"/zeros": bytes(10 * 1000 * 1000)})
    assert bomb.size < 20 * 1024
    ref = publish_layers(registry, "bomb", [bomb])
    started = time.monotonic()
    with pytest.raises(ObservationError) as raised:
        read(client, ref, ["/app/x"], max_decompressed_bytes=MIB)
    assert time.monotonic() - started < 5
    assert "past the 1,048,576-byte --max-decompressed-bytes limit" in str(raised.value)
    assert bomb.digest in str(raised.value)


def test_too_many_layers_is_refused(registry, client):
    layers = [layer_from_files({f"/l{i}": b""}) for i in range(3)]
    ref = publish_layers(registry, "layers", layers)
    with pytest.raises(ObservationError, match="image has 3 layers, more than the --max-layers limit of 2"):
        read(client, ref, ["/l0"], max_layers=2)


def test_layer_that_is_not_a_tar_is_an_error(registry, client):
    ref = publish_layers(registry, "not-tar", [layer_from_tar(b"this is no tar archive" * 100)])
    with pytest.raises(ObservationError, match="is not a readable tar"):
        read(client, ref, ["/x"])


def test_unsupported_layer_media_type_is_named(registry, client):
    image = relabel_layers(build_image([layer_from_files({"/x": b""})]), {0: "application/vnd.example.layer+brotli"})
    ref = publish(registry.url, "weird-media", image)
    with pytest.raises(ObservationError, match=r"unsupported layer media type 'application/vnd.example.layer\+brotli'"):
        read(client, ref, ["/x"])


def test_uncompressed_tar_layer(registry, client):
    gzipped = layer_from_files({HEARTBEAT: FIXED_CODE})
    plain = Blob.of(tar_of(gzipped), PLAIN_TAR_LAYER, diff_id=gzipped.diff_id)
    ref = publish(registry.url, "plain-tar", relabel_layers(build_image([plain]), {0: PLAIN_TAR_LAYER}))
    assert read(client, ref, [HEARTBEAT])[HEARTBEAT].data == FIXED_CODE


@pytest.fixture
def zstd_image(registry):
    if shutil.which("zstd") is None:
        pytest.skip("the zstd command is needed to build a zstd layer (apt-get install zstd)")
    gzipped = layer_from_files({HEARTBEAT: FIXED_CODE})
    compressed = subprocess.run(["zstd", "-q", "-c"], input=tar_of(gzipped), capture_output=True, check=True).stdout
    layer = Blob.of(compressed, ZSTD_LAYER, diff_id=gzipped.diff_id)
    return publish(registry.url, "zstd", relabel_layers(build_image([layer]), {0: ZSTD_LAYER}))


def test_zstd_layer_is_read_with_zstandard(client, zstd_image):
    pytest.importorskip("zstandard", reason="zstandard is not installed: the reader then refuses zstd layers")
    assert read(client, zstd_image, [HEARTBEAT])[HEARTBEAT].data == FIXED_CODE


def test_zstd_layer_without_zstandard_says_what_to_install(client, zstd_image, monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` fail
    expected = rf"unsupported layer media type {re.escape(ZSTD_LAYER)} \(zstd\).*: install zstandard"
    with pytest.raises(ObservationError, match=expected):
        read(client, zstd_image, [HEARTBEAT])


# --- hostile or failing transfers (stub registry) -------------------------------------------------


def test_layer_blob_that_does_not_match_its_digest_is_an_error(stub, tmp_path):
    image = build_image([layer_from_files({HEARTBEAT: OLD_CODE})])
    forged = layer_from_files({HEARTBEAT: FIXED_CODE})
    ref = ImageRef.parse("gcr.io/proj/app").with_digest(image.digest)
    stub.serve_image(ref, image, {image.layers[0].digest: forged.data})
    cache = BlobCache(tmp_path / "cache")
    with mirror_client(stub.url) as client, pytest.raises(ObservationError) as raised:
        read(client, ref, [HEARTBEAT], cache=cache)
    assert f"blob {image.layers[0].digest}" in str(raised.value)
    assert f"hash to {forged.digest}" in str(raised.value) and "hostile registry" in str(raised.value)
    assert cache.stream(image.layers[0].digest) is None  # nothing unverified is kept


def test_registry_stalling_mid_blob_ends_at_the_read_timeout(stub):
    layer = random_layer(MIB, seed=3)
    image = build_image([layer])
    ref = ImageRef.parse("gcr.io/proj/app").with_digest(image.digest)
    stub.serve_image(ref, image, {layer.digest: Respond(body=layer.data, stall_after=layer.size // 2)})
    started = time.monotonic()
    with mirror_client(stub.url, timeout=0.5) as client, pytest.raises(ObservationError, match="ReadTimeout"):
        read(client, ref, ["/x"])
    assert time.monotonic() - started < 3


def test_registry_dripping_bytes_ends_at_the_image_deadline(stub):
    layer = random_layer(256 * 1024, seed=4)
    image = build_image([layer])
    ref = ImageRef.parse("gcr.io/proj/app").with_digest(image.digest)
    # Each chunk arrives well within the read timeout; the whole would take 25 s.
    stub.serve_image(ref, image, {layer.digest: Respond(body=layer.data, chunk_size=1024, chunk_delay=0.1)})
    started = time.monotonic()
    with mirror_client(stub.url, timeout=5) as client, pytest.raises(ObservationError) as raised:
        read(client, ref, ["/x"], max_seconds=1)
    assert time.monotonic() - started < 3
    assert "longer than the 1s --image-timeout" in str(raised.value)


# --- the blob cache ---------------------------------------------------------------------------------


def test_warm_run_in_a_new_process_reads_nothing_from_the_registry(registry, client, tmp_path):
    base = random_layer(2 * MIB, seed=5)
    app = layer_from_files({HEARTBEAT: FIXED_CODE})
    ref = publish_layers(registry, "warm", [base, app])
    cache_dir = tmp_path / "cache"

    cold = read(client, ref, [HEARTBEAT, "/etc/hostname"], cache=BlobCache(cache_dir))
    assert cold.bytes_read > base.size and cold.bytes_from_cache == 0

    script = textwrap.dedent(
        f"""
        import json, sys
        from deploycheck.blobcache import BlobCache
        from deploycheck.images import RegistryImageReader
        from deploycheck.imageref import ImageRef
        from deploycheck.registry import RegistryClient, RegistryRouter
        client = RegistryClient(RegistryRouter.mirror({registry.url!r}), timeout=5)
        reader = RegistryImageReader(client, cache=BlobCache({str(cache_dir)!r}))
        result = reader.read_files(ImageRef.parse({str(ref)!r}), [{HEARTBEAT!r}, "/etc/hostname"])
        json.dump({{"requests": client.stats.requests, "bytes_received": client.stats.bytes_received,
                   "bytes_read": result.bytes_read, "bytes_decompressed": result.bytes_decompressed,
                   "data": result[{HEARTBEAT!r}].data.decode(), "hostname": result["/etc/hostname"].note}}, sys.stdout)
        """
    )
    warm = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, text=True).stdout)
    assert (warm["requests"], warm["bytes_received"], warm["bytes_read"]) == (0, 0, 0)
    assert warm["bytes_decompressed"] == 0  # the layers' listings and the file came from the layer-index cache
    assert warm["data"] == FIXED_CODE.decode() and warm["hostname"] == "not in any of the 2 layers"


def test_corrupted_cache_file_is_deleted_and_fetched_again(registry, client, tmp_path):
    app = layer_from_files({HEARTBEAT: FIXED_CODE, "/app/main.py": b"main"})
    ref = publish_layers(registry, "corrupt-cache", [app])
    cache = BlobCache(tmp_path / "cache")
    read(client, ref, [HEARTBEAT, "/etc/hostname"], cache=cache)  # the absent path makes the read whole: cached
    cached_layer = cache.path_for(app.digest)
    cached_layer.write_bytes(layer_from_files({HEARTBEAT: OLD_CODE, "/app/main.py": b"evil"}).data)

    # main.py's content was not kept in the layer's cached listing: it comes from the blob, found corrupt.
    with mirror_client(registry.url, timeout=5) as fresh:
        again = read(fresh, ref, ["/app/main.py"], cache=BlobCache(tmp_path / "cache"))

    assert again["/app/main.py"].data == b"main" and again["/app/main.py"].integrity == "sha256"
    assert again.bytes_read >= app.size
    assert sha256_digest(cached_layer.read_bytes()) == app.digest


def test_corrupted_layer_listing_in_the_cache_is_deleted_and_rebuilt(registry, client, tmp_path):
    app = layer_from_files({HEARTBEAT: FIXED_CODE})
    ref = publish_layers(registry, "corrupt-index", [app])
    cache = BlobCache(tmp_path / "cache")
    read(client, ref, [HEARTBEAT], cache=cache, verify_layers=True)
    listing = tmp_path / "cache" / "layer-index" / app.digest.removeprefix("sha256:")
    listing.write_bytes(listing.read_bytes().replace(b"processor_heartbeat.py", b"processor_heartbeat.px"))

    again = read(client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))

    assert again[HEARTBEAT].data == FIXED_CODE and again.bytes_read == 0  # rebuilt from the cached blob
    assert again.bytes_decompressed > 0 and b"processor_heartbeat.py" in listing.read_bytes()


def test_corrupted_cached_manifest_or_config_is_fetched_again(registry, client, tmp_path):
    image = build_image([layer_from_files({HEARTBEAT: FIXED_CODE})], labels={"revision": "ce269d67"})
    ref = publish(registry.url, "corrupt-config", image)
    cache = BlobCache(tmp_path / "cache")
    read(client, ref, [HEARTBEAT], cache=cache)
    for digest in (image.digest, image.config.digest):
        cache.path_for(digest).write_bytes(b"{}")

    with mirror_client(registry.url, timeout=5, cache=BlobCache(tmp_path / "cache")) as fresh:
        assert fresh.image_config(ref).labels == {"revision": "ce269d67"}
        assert fresh.stats.requests == 2
    assert sha256_digest(cache.path_for(image.config.digest).read_bytes()) == image.config.digest


def test_concurrent_processes_share_one_cache_directory(registry, tmp_path):
    layers = [random_layer(4 * MIB, seed=6), layer_from_files({HEARTBEAT: FIXED_CODE})]
    ref = publish_layers(registry, "concurrent", layers)
    cache_dir = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        from deploycheck.blobcache import BlobCache
        from deploycheck.images import RegistryImageReader
        from deploycheck.imageref import ImageRef
        from deploycheck.registry import RegistryClient, RegistryRouter
        client = RegistryClient(RegistryRouter.mirror({registry.url!r}), timeout=10)
        reader = RegistryImageReader(client, cache=BlobCache({str(cache_dir)!r}))
        for _ in range(3):
            result = reader.read_files(ImageRef.parse({str(ref)!r}), ["/opt/base/random-6.bin"])
            assert result["/opt/base/random-6.bin"].size == 4 * 1024 * 1024
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for worker in workers:
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors
    stored = sorted((cache_dir / "sha256").iterdir())
    assert all(not path.name.startswith(".") for path in stored), "temp files left behind"
    assert all(sha256_digest(path.read_bytes()) == "sha256:" + path.name for path in stored)


def test_unusable_cache_directory_only_loses_the_caching(registry, client, tmp_path):
    ref = publish_layers(registry, "no-cache-dir", [layer_from_files({HEARTBEAT: FIXED_CODE})])
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    for _ in range(2):
        assert read(client, ref, [HEARTBEAT], cache=BlobCache(not_a_directory))[HEARTBEAT].data == FIXED_CODE


def test_cache_refuses_bytes_that_do_not_match(tmp_path):
    cache = BlobCache(tmp_path)
    cache.put(sha256_digest(b"right"), b"wrong")
    assert cache.get(sha256_digest(b"right"), max_bytes=100) is None
    with pytest.raises(RuntimeError), cache.writer(sha256_digest(b"abc")) as sink:
        sink.write(b"ab")
        raise RuntimeError("transfer failed half way")
    assert list((tmp_path / "sha256").iterdir()) == []

"""Image building (deterministic bytes) and pushing (to the real distribution registry)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import time

import httpx
import pytest

from deploycheck.imageref import ImageRef
from deploycheck.registry import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    RegistryClient,
    RegistryRouter,
    sha256_digest,
)
from deploycheck.sandbox.oci_builder import (
    FileEntry,
    build_image,
    build_index,
    layer_from_files,
    push_image,
    push_manifest,
    push_oci_layout,
    random_layer,
)

FILES = {"/app/main.py": b"print('hi')\n", "/etc/app.conf": b"level=INFO\n"}
REVISION = {"org.opencontainers.image.revision": "ce269d67"}
LINUX_AMD64 = {"architecture": "amd64", "os": "linux"}
LINUX_ARM64 = {"architecture": "arm64", "os": "linux"}


def members(layer) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
        return tar.getmembers()


# --- building ----------------------------------------------------------------------------


def test_same_input_gives_the_same_digest():
    first = build_image([layer_from_files(FILES)], labels={"a": "1", "b": "2"})
    second = build_image([layer_from_files(dict(reversed(FILES.items())))], labels={"b": "2", "a": "1"})
    assert first.digest == second.digest and first.manifest == second.manifest
    assert build_image([layer_from_files(FILES)], labels={"a": "other"}).digest != first.digest


def test_layer_is_a_normalised_gzip_tar_with_parent_directories():
    layer = layer_from_files(FILES)
    assert layer.data[4:8] == b"\0\0\0\0"  # gzip header mtime
    entries = members(layer)
    assert [entry.name for entry in entries] == ["app", "app/main.py", "etc", "etc/app.conf"]
    assert {(entry.mtime, entry.uid, entry.gid, entry.uname) for entry in entries} == {(0, 0, 0, "")}
    assert [entry.isdir() for entry in entries] == [True, False, True, False]
    assert layer.digest == sha256_digest(layer.data) and layer.size == len(layer.data)
    assert layer.diff_id == sha256_digest(gzip.decompress(layer.data))


def test_layer_can_hold_links_whiteouts_opaque_dirs_and_hostile_names():
    layer = layer_from_files(
        {
            "/usr/bin/python": FileEntry.symlink("python3.11"),
            "/usr/bin/py": FileEntry.hardlink("/usr/bin/python3.11"),
            "/usr/bin/python3.11": b"\x7fELF",
            "/app/.wh.old.py": b"",
            "/srv/.wh..wh..opq": b"",
            "/var/empty": FileEntry.directory(mode=0o700),
            "../etc/passwd": FileEntry(data=b"root::0:0::/:/bin/sh\n", raw_name=True),
        }
    )
    by_name = {entry.name: entry for entry in members(layer)}
    assert by_name["usr/bin/python"].issym() and by_name["usr/bin/python"].linkname == "python3.11"
    assert by_name["usr/bin/py"].islnk() and by_name["usr/bin/py"].linkname == "usr/bin/python3.11"
    assert by_name["app/.wh.old.py"].isfile() and by_name["srv/.wh..wh..opq"].size == 0
    assert by_name["var/empty"].isdir() and by_name["var/empty"].mode == 0o700
    assert "../etc/passwd" in by_name and "etc" not in by_name  # raw names get no parent dirs


def test_layer_paths_must_be_absolute():
    with pytest.raises(ValueError, match="must be absolute"):
        layer_from_files({"app/main.py": b""})


def test_config_lists_uncompressed_diff_ids_and_labels():
    layers = [layer_from_files(FILES), layer_from_files({"/app/extra.py": b"x = 1\n"})]
    image = build_image(layers, labels=REVISION, env=["A=1"], created="2026-01-01T00:00:00Z")
    config = json.loads(image.config.data)
    assert config["rootfs"]["diff_ids"] == [sha256_digest(gzip.decompress(layer.data)) for layer in layers]
    assert config["config"] == {"Env": ["A=1"], "Labels": REVISION}
    assert (config["created"], config["architecture"], config["os"]) == ("2026-01-01T00:00:00Z", "amd64", "linux")
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == OCI_MANIFEST and image.digest == sha256_digest(image.manifest)
    assert [layer["digest"] for layer in manifest["layers"]] == [layer.digest for layer in layers]
    assert manifest["layers"][0]["mediaType"] == OCI_LAYER_GZIP


def test_docker_media_uses_schema2_types():
    image = build_image([layer_from_files(FILES)], media="docker")
    manifest = json.loads(image.manifest)
    assert (image.manifest_media_type, manifest["config"]["mediaType"], manifest["layers"][0]["mediaType"]) == (
        DOCKER_MANIFEST,
        DOCKER_CONFIG,
        DOCKER_LAYER_GZIP,
    )


def test_random_layer_is_deterministic_incompressible_and_fast():
    assert random_layer(4096, seed=7) == random_layer(4096, seed=7)
    assert random_layer(4096, seed=7).digest != random_layer(4096, seed=8).digest
    started = time.monotonic()
    big = random_layer(100 * 1024 * 1024, seed=1)
    assert time.monotonic() - started < 10
    assert big.size > 100 * 1024 * 1024
    assert big.diff_id == sha256_digest(gzip.decompress(big.data))


# --- pushing -----------------------------------------------------------------------------


def test_push_skips_blobs_the_registry_already_has(registry):
    image = build_image([layer_from_files(FILES)], labels={"v": "1"})
    uploads = []
    with httpx.Client(event_hooks={"request": [lambda request: uploads.append(request.method)]}) as client:
        push_image(registry.url, "gcr.io/proj/skip", image, ["v1"], client=client)
        assert uploads.count("POST") == 2  # config and layer
        uploads.clear()
        push_image(registry.url, "gcr.io/proj/skip", image, ["v2"], client=client)
        assert uploads.count("POST") == 0


def test_pushed_index_is_served_back_byte_for_byte(registry):
    amd = build_image([layer_from_files(FILES)])
    index = build_index([(amd, LINUX_AMD64)], annotations=REVISION)
    repository = "gcr.io/proj/index"
    push_image(registry.url, repository, amd)
    assert push_manifest(registry.url, repository, index.manifest, index.manifest_media_type, "latest") == index.digest
    served = httpx.get(
        f"{registry.url}/v2/{repository}/manifests/latest", headers={"Accept": index.manifest_media_type}
    )
    assert served.content == index.manifest
    assert served.headers["Docker-Content-Digest"] == index.digest


def skopeo_copy(source: str, destination: str, *options: str) -> None:
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", *options, source, destination],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_oci_layout_written_by_skopeo_pushes_back_identically(registry, tmp_path):
    image = build_image([layer_from_files(FILES)], labels=REVISION)
    push_image(registry.url, "gcr.io/proj/original", image, ["v1"])
    host = registry.url.removeprefix("http://")
    skopeo_copy(f"docker://{host}/gcr.io/proj/original:v1", f"oci:{tmp_path / 'layout'}:v1")

    digest = push_oci_layout(tmp_path / "layout", registry.url, "us-west2-docker.pkg.dev/proj/repo/copy", ["latest"])

    assert digest == image.digest
    with RegistryClient(RegistryRouter.mirror(registry.url)) as client:
        ref = ImageRef.parse("us-west2-docker.pkg.dev/proj/repo/copy:latest")
        assert client.resolve(ref) == image.digest
        assert client.image_config(ref).labels == REVISION


def test_oci_layout_with_an_index_and_several_names(registry, tmp_path):
    amd = build_image([layer_from_files(FILES)])
    arm = build_image([layer_from_files(FILES)], architecture="arm64")
    for image in (amd, arm):
        push_image(registry.url, "gcr.io/proj/multi", image)
    index = build_index([(arm, LINUX_ARM64), (amd, LINUX_AMD64)])
    push_manifest(registry.url, "gcr.io/proj/multi", index.manifest, index.manifest_media_type, "latest")
    push_image(registry.url, "gcr.io/proj/multi", amd, ["single"])
    host = registry.url.removeprefix("http://")
    layout = tmp_path / "layout"
    skopeo_copy(f"docker://{host}/gcr.io/proj/multi:latest", f"oci:{layout}:multi", "--all")
    skopeo_copy(f"docker://{host}/gcr.io/proj/multi:single", f"oci:{layout}:single")

    with pytest.raises(ValueError, match="expected one manifest in total, found 2"):
        push_oci_layout(layout, registry.url, "gcr.io/proj/pushed", ["latest"])
    assert push_oci_layout(layout, registry.url, "gcr.io/proj/pushed", ["latest"], ref_name="multi") == index.digest
    with RegistryClient(RegistryRouter.mirror(registry.url)) as client:
        assert client.image_config(ImageRef.parse("gcr.io/proj/pushed:latest")).manifest_digest == amd.digest

"""DockerImageReader against a real dockerd, and the same files read the same as the registry reader.

The engine tests start their own dockerd (vfs storage, no networking set-up, temp data-root)
when the binary exists and we are root, and skip with the reason otherwise. The image comes
from a LocalRegistry on 127.0.0.1, which dockerd treats as insecure by default.
"""

from __future__ import annotations

import docker
import docker.errors
import pytest

from deploycheck.errors import ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.images import ImageLimits, RegistryImageReader
from deploycheck.images_docker import DockerImageReader
from deploycheck.registry import RegistryClient, RegistryRouter
from deploycheck.sandbox.oci_builder import FileEntry, build_image, layer_from_files, push_image

from dockerd import dockerd_engine
from imagetools import MIB

HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"
FIXED_CODE = b"    def processor_name(self):\n        return self.processor_name\n"
_API_VERSION = "1.41"


class _PlainHttpRouter(RegistryRouter):
    """Ask each image's own host over plain HTTP, as dockerd does for 127.0.0.1 registries."""

    def endpoint(self, ref: ImageRef) -> tuple[str, str]:
        return f"http://{ref.host}", ref.path


@pytest.fixture(scope="module")
def engine():
    with dockerd_engine() as engine:
        yield engine.client


@pytest.fixture(scope="module")
def image_ref(registry):
    base = layer_from_files(
        {
            "/srv/app/README": b"readme\n",
            "/app": FileEntry.symlink("/srv/app"),
            "/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
            "/srv/app/old.py": b"old\n",
            "/usr/share/big.bin": bytes(range(256)) * (3 * MIB // 256),
        }
    )
    app = layer_from_files(
        {
            "/srv/app/shared/monitoring/processor_heartbeat.py": FIXED_CODE,
            "/srv/app/.wh.old.py": b"",
            "/etc/app.conf": FileEntry.symlink("/opt/conf/real.conf"),
            "/opt/conf/real.conf": b"setting=1\n",
        }
    )
    image = build_image([base, app])
    ref = ImageRef.parse(f"127.0.0.1:{registry.port}/proj/app").with_digest(image.digest)
    push_image(registry.url, ref.path, image)
    return ref


PATHS = [HEARTBEAT, "/etc/passwd", "/app/old.py", "/nope", "/usr/share/big.bin", "/etc/app.conf", "/srv/app"]


def test_both_readers_read_the_same_files(engine, image_ref):
    limits = ImageLimits(max_file_bytes=MIB)
    with RegistryClient(_PlainHttpRouter(None), timeout=10) as client:
        from_registry = RegistryImageReader(client, cache=None, limits=limits).read_files(image_ref, PATHS)
    from_docker = DockerImageReader(engine, limits=limits).read_files(image_ref, PATHS)

    def outcome(read):
        return read.found, read.data, read.size, read.truncated

    for path in PATHS:
        assert outcome(from_docker[path]) == outcome(from_registry[path]), path
    assert from_docker[HEARTBEAT].data == FIXED_CODE
    assert from_docker["/usr/share/big.bin"].truncated and "--max-file-bytes" in from_docker["/usr/share/big.bin"].note
    assert from_docker["/etc/app.conf"].resolved_path == "/opt/conf/real.conf"
    assert from_registry["/etc/app.conf"].resolved_path == "/opt/conf/real.conf"
    assert not from_docker["/app/old.py"].found and not from_docker["/srv/app"].found
    assert from_docker.layers_total == 2 and from_docker.bytes_read is None


def test_probe_container_is_never_started_and_always_removed(engine, image_ref):
    DockerImageReader(engine).read_files(image_ref, [HEARTBEAT, "/nope"])
    assert engine.containers.list(all=True, filters={"label": "deploycheck"}) == []


def test_unreachable_daemon_names_where_and_what_to_do():
    unreachable = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version=_API_VERSION)
    ref = ImageRef.parse("gcr.io/proj/app").with_digest("sha256:" + "a" * 64)
    with pytest.raises(ObservationError) as raised:
        DockerImageReader(unreachable).read_files(ref, [HEARTBEAT])
    assert "docker daemon not reachable at" in str(raised.value)
    assert "use the default registry reader or start dockerd" in str(raised.value)


def test_unreachable_default_daemon_names_docker_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    ref = ImageRef.parse("gcr.io/proj/app").with_digest("sha256:" + "a" * 64)
    with pytest.raises(ObservationError, match=r"docker daemon not reachable at unix:///nonexistent/docker\.sock"):
        DockerImageReader().read_files(ref, [HEARTBEAT])


def test_docker_reader_refuses_a_tag():
    with pytest.raises(ValueError, match="is not pinned by digest"):
        DockerImageReader().read_files(ImageRef.parse("gcr.io/proj/app:latest"), [HEARTBEAT])

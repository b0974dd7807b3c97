"""The fallback image reader: a docker engine pulls the image by digest, a container is created
(never started) and the files are copied out with the archive API. Needs the docker SDK
(`pip install deploycheck[docker]`) and an engine; the default reader needs neither."""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Sequence

import docker
import docker.errors
import requests

from deploycheck.errors import ObservationError
from deploycheck.imageref import ImageRef
from deploycheck.images import (
    ChunkReader,
    FileRead,
    ImageLimits,
    ImageReadResult,
    ReadBudget,
    path_components,
    require_digest,
    truncation_note,
)

# --- the docker engine reader ---------------------------------------------------------------

_PROBE_COMMAND = ["/deploycheck-probe-never-started"]
_GO_MODE_DIR = 1 << 31
"""os.ModeDir in the Go FileMode the engine reports in an archive's path stat."""
_DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
"""What docker SDK calls raise when the engine refuses or cannot be reached (requests' errors leak through)."""


class DockerImageReader:
    """Reads files through a docker engine: pull by digest, create (never start) a container,
    copy each file out with the archive API, remove the container.

    Layer-level facts (which layer, bytes fetched) are not observable this way and are None.
    """

    def __init__(self, docker_client=None, *, limits: ImageLimits = ImageLimits(), platform: str = "linux/amd64"):
        self._docker = docker_client
        self._limits = limits
        self._platform = platform

    def read_files(self, ref: ImageRef, paths: Sequence[str]) -> ImageReadResult:
        digest = require_digest(ref)
        started = time.monotonic()
        what = f"image {ref}"
        budget = ReadBudget(self._limits, what, started)
        engine = self._engine(what)
        try:
            image = self._image(engine, ref, digest)
            container = engine.containers.create(
                image.id, command=_PROBE_COMMAND, network_disabled=True, labels={"deploycheck": "file-probe"}
            )
        except _ENGINE_ERRORS as exc:
            raise ObservationError(what, f"docker engine could not pull or create {ref}: {exc}") from None
        try:
            files = {path: self._read_one(container, path, budget, what) for path in paths}
        finally:
            try:
                container.remove(force=True)
            except _ENGINE_ERRORS as exc:
                raise ObservationError(what, f"could not remove probe container {container.id}: {exc}") from None
        return ImageReadResult(
            image=str(ref),
            files=files,
            bytes_read=None,
            bytes_from_cache=0,
            layers_opened=0,
            layers_total=len(image.attrs.get("RootFS", {}).get("Layers") or []),
            image_compressed_size=None,
            elapsed_s=time.monotonic() - started,
        )

    def _engine(self, what: str) -> docker.DockerClient:
        engine = self._docker
        try:
            if engine is None:
                engine = docker.from_env(timeout=max(1, int(self._limits.max_seconds)))
            engine.ping()
        except _ENGINE_ERRORS as exc:
            host = engine.api.base_url if engine is not None else os.environ.get("DOCKER_HOST", _DEFAULT_DOCKER_HOST)
            raise ObservationError(
                what,
                f"docker daemon not reachable at {host}: use the default registry reader or start dockerd ({exc})",
            ) from None
        self._docker = engine
        return engine

    def _image(self, engine: docker.DockerClient, ref: ImageRef, digest: str):
        try:
            return engine.images.get(f"{ref.repository}@{digest}")
        except docker.errors.ImageNotFound:
            return engine.images.pull(ref.repository, tag=digest, platform=self._platform)

    def _read_one(self, container, path: str, budget: ReadBudget, what: str) -> FileRead:
        normal = "/" + "/".join(path_components(path))
        resolved = normal
        try:
            chunks, stat = container.get_archive(normal)
            if stat.get("linkTarget"):
                # As `docker cp --follow-link`: the engine names the symlink's fully resolved target.
                chunks.close()
                resolved = stat["linkTarget"]
                chunks, stat = container.get_archive(resolved)
        except docker.errors.NotFound:
            return _not_found(path, resolved, "not in the image (the docker engine has no such path)")
        except _ENGINE_ERRORS as exc:
            raise ObservationError(
                what, f"docker engine could not copy {normal} out of the probe container: {exc}"
            ) from None
        try:
            if stat.get("mode", 0) & _GO_MODE_DIR:
                return _not_found(path, resolved, f"{resolved} is a directory")
            # tarfile's stub asks for a seekable file; its stream mode ("r|") calls only read().
            with tarfile.open(fileobj=ChunkReader(chunks, budget), mode="r|") as tar:  # type: ignore[call-overload]
                member = next(iter(tar), None)
                if member is None or not member.isreg():
                    return _not_found(path, resolved, f"{resolved} is not a regular file")
                data = tar.extractfile(member).read(self._limits.max_file_bytes)
        except (*_ENGINE_ERRORS, tarfile.TarError) as exc:
            raise ObservationError(what, f"reading {resolved} from the docker engine's archive failed: {exc}") from None
        finally:
            chunks.close()  # the rest of the archive (all of a directory's contents, say) is not needed
        truncated = member.size > self._limits.max_file_bytes
        note = truncation_note(member.size, self._limits) if truncated else ""
        return FileRead(path, True, data, member.size, resolved, None, None, None, truncated, note)


def _not_found(path: str, resolved: str, note: str) -> FileRead:
    return FileRead(path, False, None, 0, resolved, None, None, None, False, note)

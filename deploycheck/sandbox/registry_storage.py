"""Images written straight into the registry's storage, for fleets too big to push one by one.

A generated fleet has hundreds of images; pushing each through the registry's HTTP API costs
about eight requests (blob HEAD, upload POST and PUT for config and layer, manifest PUTs), some
40 s for 1,000 images on this machine. The CNCF registry's filesystem driver keeps everything as
plain files, in a layout it documents and reads on every request (the sandbox configures no
cache), so the sandbox writes that layout before the registry starts, as it seeds Firestore in
bulk. The registry then serves these images exactly as pushed ones: tests compare the two.

    docker/registry/v2/blobs/sha256/AB/ABCD.../data                      blob bytes (manifests too)
    docker/registry/v2/repositories/REPO/_layers/sha256/ABCD.../link      "sha256:ABCD..." per blob
    docker/registry/v2/repositories/REPO/_manifests/revisions/sha256/DIGEST/link
    docker/registry/v2/repositories/REPO/_manifests/tags/TAG/current/link
    docker/registry/v2/repositories/REPO/_manifests/tags/TAG/index/sha256/DIGEST/link
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .oci_builder import Blob, BuiltImage

_V2 = Path("docker/registry/v2")


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return value


class RegistryStorage:
    """Writes images into the registry's storage root (`storage.filesystem.rootdirectory`); safe
    to call from several threads."""

    def __init__(self, root: Path):
        self.root = os.path.join(str(root), *_V2.parts)
        self._blobs_written: set[str] = set()
        self._lock = threading.Lock()
        self._directories: set[str] = set()  # made or seen: 1,000 images are ~20,000 directories

    def _directory(self, path: str) -> None:
        if path in self._directories:
            return
        parent = os.path.dirname(path)
        if parent not in self._directories:
            os.makedirs(parent, exist_ok=True)
            self._directories.add(parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        self._directories.add(path)

    def _file(self, directory: str, name: str, data: bytes) -> None:
        self._directory(directory)
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)

    def _link(self, directory: str, digest: str) -> None:
        self._file(directory, "link", digest.encode("ascii"))

    def _blob(self, digest: str, data: bytes) -> None:
        with self._lock:  # a blob shared by images being written at once is written once
            if digest in self._blobs_written:
                return
            self._blobs_written.add(digest)
        value = _hex(digest)
        self._file(os.path.join(self.root, "blobs", "sha256", value[:2], value), "data", data)

    def write(self, repository: str, image: BuiltImage, tags: Iterable[str] = ()) -> str:
        """The image's blobs, its manifest by digest and each tag (a later write of a tag moves it)."""
        repo = os.path.join(self.root, "repositories", *repository.split("/"))
        blobs: list[Blob] = [image.config, *image.layers]
        for blob in blobs:
            self._blob(blob.digest, blob.data)
            self._link(os.path.join(repo, "_layers", "sha256", _hex(blob.digest)), blob.digest)
        self._blob(image.digest, image.manifest)
        self._link(os.path.join(repo, "_manifests", "revisions", "sha256", _hex(image.digest)), image.digest)
        for tag in tags:
            tag_dir = os.path.join(repo, "_manifests", "tags", tag)
            self._link(os.path.join(tag_dir, "current"), image.digest)
            self._link(os.path.join(tag_dir, "index", "sha256", _hex(image.digest)), image.digest)
        return image.digest

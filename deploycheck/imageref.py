"""Container image references: HOST/PATH[:TAG][@sha256:HEX], parsed strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class ImageRefError(ValueError):
    pass


@dataclass(frozen=True)
class ImageRef:
    host: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        original = text
        if not isinstance(text, str) or not text or text != text.strip():
            raise ImageRefError(f"image reference {original!r} is empty or has surrounding spaces")
        digest = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not DIGEST_RE.match(digest):
                raise ImageRefError(
                    f"image reference {original!r}: digest must be sha256: followed by 64 lowercase hex digits"
                )
        if "/" not in text:
            raise ImageRefError(
                f"image reference {original!r} has no registry host (expected HOST/PATH[:TAG], e.g. us-west2-docker.pkg.dev/PROJECT/REPO/NAME:latest)"
            )
        host, rest = text.split("/", 1)
        if not ("." in host or ":" in host or host == "localhost") or not _HOST_RE.match(host):
            raise ImageRefError(
                f"image reference {original!r}: {host!r} is not a registry host (expected e.g. us-west2-docker.pkg.dev or gcr.io)"
            )
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG_RE.match(tag):
                raise ImageRefError(f"image reference {original!r}: tag {tag!r} is not a valid tag")
        if not _PATH_RE.match(rest):
            raise ImageRefError(
                f"image reference {original!r}: repository path {rest!r} must be lowercase components separated by '/'"
            )
        return cls(host=host, path=rest, tag=tag, digest=digest)

    @property
    def repository(self) -> str:
        """HOST/PATH without tag or digest."""
        return f"{self.host}/{self.path}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (default latest)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, tag=None, digest=digest)

    def with_tag(self, tag: str) -> ImageRef:
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def digest_of(image_or_digest: str) -> str | None:
    """The sha256 digest in a bare `sha256:...` or a full `HOST/PATH@sha256:...`, else None."""
    candidate = image_or_digest.rsplit("@", 1)[-1].strip()
    return candidate if DIGEST_RE.match(candidate) else None

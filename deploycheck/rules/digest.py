"""digest: the serving revision runs the digest the inventory's tag points to now (seed 001)."""

from __future__ import annotations

from typing import Any

from .. import remedies
from ..cloudrun import ServingImage
from ..findings import Finding, Severity, failed, passed
from ..imageref import ImageRef

CHECK = "digest"


def evaluate_digest(
    service: str, expected: ImageRef, tag_digest: str, serving: list[ServingImage], *, region: str, project: str
) -> Finding:
    pinned = f"{expected.repository}@{tag_digest}"
    fix = remedies.deploy_image(service, pinned, region, project)
    evidence: dict[str, Any] = {
        "tag": str(expected),
        "tag_digest": tag_digest,
        "serving": {item.revision.name: item.digest or item.repository_image for item in serving},
    }
    foreign = [item for item in serving if item.container is None]
    if foreign:
        item = foreign[0]
        return failed(
            CHECK,
            service,
            Severity.P1,
            f"serving revision {item.revision.name} runs {item.repository_image}, "
            f"not an image of {expected.repository}",
            fix,
            cause="foreign-image",
            **evidence,
        )
    stale = [item for item in serving if item.digest != tag_digest]
    if stale:
        item = stale[0]
        return failed(
            CHECK,
            service,
            Severity.P1,
            f"serving revision {item.revision.name} runs {_short(item.digest)} but :{expected.tag} now points "
            f"to {_short(tag_digest)}: the tag moved and was never rolled out",
            fix,
            cause="tag-not-rolled-out",
            **evidence,
        )
    names = ", ".join(item.revision.name for item in serving)
    return passed(
        CHECK, service, f"{names} runs {_short(tag_digest)}, the digest :{expected.tag} points to", **evidence
    )


def _short(digest: str | None) -> str:
    return f"{digest[:19]}…" if digest else "no digest"

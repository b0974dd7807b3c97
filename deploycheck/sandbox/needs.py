"""What the sandbox needs beyond the production install, said with every missing piece.

The production install (`pip install deploycheck`) reads the real project and brings no servers;
`--target sandbox:...` starts real ones that come from Debian, not from pip."""

from __future__ import annotations

from ..errors import CannotStartError

INSTALL = (
    "the local sandbox needs `pip install 'deploycheck[sandbox]'` and, from Debian, the CNCF registry "
    "(apt-get install docker-registry) and, for scenarios with Firestore documents, Java and gcloud's "
    "Firestore emulator (apt-get install openjdk-17-jre-headless google-cloud-cli-firestore-emulator)"
)


class SandboxUnavailable(CannotStartError):
    """A program the sandbox starts is not installed."""

    def __init__(self, missing: str):
        super().__init__(f"{missing}; {INSTALL}")

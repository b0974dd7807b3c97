"""Where checks look: the real project (ADC) or the local sandbox, behind one interface."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CredentialsError, InputError, ObservationError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

SANDBOX_STATE_ENV = "DEPLOYCHECK_SANDBOX_STATE"
# Where `deploycheck sandbox up` records the sandbox it leaves running (relative to the project).
SANDBOX_STATE_FILE = Path(".deploycheck/sandbox.json")
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

AUTH_HELP = """--target gcp needs Application Default Credentials, and none were found ({reason}).
  Authenticate:   gcloud auth application-default login
  or in CI:       set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or use workload identity
  The identity needs read access: roles/run.viewer, roles/logging.viewer, roles/datastore.viewer,
  roles/artifactregistry.reader, and on the organisation roles/iam.securityReviewer and roles/browser.
  No cloud account? See your checks against a stand-in generated from your inventory: --target sandbox:auto"""


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # "gcp" or "sandbox"
    scenario: str | None = None

    @classmethod
    def parse(cls, text: str) -> TargetSpec:
        if text == "gcp":
            return cls("gcp")
        if text == "sandbox" or text.startswith("sandbox:"):
            scenario = text.partition(":")[2] or "incident"
            return cls("sandbox", scenario)
        raise InputError(
            f"--target {text!r}: expected gcp, sandbox or sandbox:SCENARIO (a built-in name or a directory)"
        )

    def __str__(self) -> str:
        return "gcp" if self.kind == "gcp" else f"sandbox:{self.scenario}"


def gcp_credentials():
    """ADC with the cloud-platform scope, or a CredentialsError that says how to authenticate."""
    import google.auth
    from google.auth import exceptions

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except exceptions.DefaultCredentialsError as exc:
        reason = "google.auth.default() found no credentials" if "not found" in str(exc) else str(exc).splitlines()[0]
        raise CredentialsError(AUTH_HELP.format(reason=reason)) from exc
    return credentials


@dataclass
class Target:
    """Endpoints and credentials for one run. Readers are built from this and nothing else."""

    spec: TargetSpec
    project: str
    region: str
    credentials: Credentials
    api_endpoint: str | None = None  # the sandbox serves every Google REST API here; None: the real ones
    registry_mirror: str | None = None
    firestore_emulator: str | None = None
    deadline_s: float = 60.0
    not_after: float | None = None  # time.monotonic() instant the run's --budget ends
    platform: str = "linux/amd64"

    def call_policy(self):
        from .gcall import CallPolicy

        return CallPolicy(
            deadline=self.deadline_s, attempt_timeout=min(20.0, self.deadline_s), not_after=self.not_after
        )

    @classmethod
    def gcp(cls, project: str, region: str) -> Target:
        return cls(TargetSpec("gcp"), project, region, gcp_credentials())

    @classmethod
    def from_sandbox(cls, spec: TargetSpec, state_path: Path) -> Target:
        from google.auth.credentials import AnonymousCredentials

        from .sandbox.state import SandboxInfo

        info = SandboxInfo.load(state_path)
        return cls(
            spec,
            info.project,
            info.region,
            AnonymousCredentials(),
            api_endpoint=info.api_url,
            registry_mirror=info.registry_url,
            firestore_emulator=info.firestore_host,
        )

    def cloudrun(self, region: str | None = None):
        """A Cloud Run reader of the project in `region` (default: the target's region)."""
        from .cloudrun import CloudRunReader

        return CloudRunReader(
            self.project, region or self.region, self.credentials, endpoint=self.api_endpoint, policy=self.call_policy()
        )

    def iam(self):
        from .iam import IamReader

        return IamReader(self.project, self.credentials, endpoint=self.api_endpoint, policy=self.call_policy())

    def logs(self):
        from .logs import LogReader

        return LogReader(self.project, self.credentials, endpoint=self.api_endpoint, policy=self.call_policy())

    def heartbeats(self):
        from .heartbeats import HeartbeatReader

        if self.spec.kind == "sandbox" and not self.firestore_emulator:
            raise ObservationError(
                "the Firestore heartbeat collection",
                f"sandbox:{self.spec.scenario} runs no Firestore emulator (its scenario seeds no documents)",
            )
        return HeartbeatReader(
            self.project, self.credentials, emulator_host=self.firestore_emulator, policy=self.call_policy()
        )

    def registry(self):
        from .registry import RegistryClient, RegistryRouter

        bounds: dict[str, Any] = {
            "timeout": min(30.0, self.deadline_s),
            "deadline": self.deadline_s,
            "not_after": self.not_after,
            "platform": self.platform,
        }
        if self.registry_mirror:
            return RegistryClient(RegistryRouter.mirror(self.registry_mirror), **bounds)
        return RegistryClient(RegistryRouter.direct(), credentials=self.credentials, **bounds)

    def pull_ref(self, ref):
        """The reference a docker engine pulls for `ref` (the sandbox mirrors every host locally)."""
        from .imageref import ImageRef

        if not self.registry_mirror:
            return ref
        host = self.registry_mirror.split("://", 1)[-1].rstrip("/")
        return ImageRef(host=host, path=f"{ref.host}/{ref.path}", tag=ref.tag, digest=ref.digest)


class RegionalReaders:
    """One reader per region, each made on first use: an inventory entry may run outside the
    inventory's region, and a run that checks one region opens one reader."""

    def __init__(self, make):
        self._make = make
        self._readers: dict[str, Any] = {}  # whatever `make` builds: each has close()
        # Reading ahead asks from many threads: two must not each make (and one leak) a reader.
        self._lock = threading.Lock()

    def __call__(self, region: str):
        with self._lock:
            if region not in self._readers:
                self._readers[region] = self._make(region)
            return self._readers[region]

    def close(self) -> None:
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.close()

"""The real Firestore emulator (shipped with gcloud) on a free loopback port, and a fast seeder.

The emulator is the jar of the `cloud-firestore-emulator` gcloud component. It is launched with
java directly when the jar is found next to gcloud: that skips gcloud's own Python start-up and
lets us ask the JVM for its quick-start compiler (measured here: "Ok" after about 1.0 s, against
1.8 s through gcloud). `gcloud emulators firestore start` is the fallback for SDK layouts where
the jar is elsewhere. Either way the process runs in its own process group: gcloud's launcher
leaves its java child running when only gcloud is killed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path

import httpx

from .local_server import LocalServer
from .needs import SandboxUnavailable
from .timeutil import rfc3339

_JAR_IN_SDK = Path("platform", "cloud-firestore-emulator", "cloud-firestore-emulator.jar")
_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
# -Duser.language=en: the emulator only has English messages (gcloud's launcher script sets it too).
# TieredStopAtLevel=1: the C1 compiler only; a short-lived test server starts faster without C2.
_JVM_FLAGS = ("-Duser.language=en", "-XX:TieredStopAtLevel=1")
# The REST API's limit on writes in one commit.
_WRITES_PER_COMMIT = 500
_SEED_TIMEOUT = 60.0

INSTALL_EMULATOR = (
    "apt-get install google-cloud-cli google-cloud-cli-firestore-emulator "
    "(or `gcloud components install cloud-firestore-emulator`)"
)
INSTALL_JAVA = "apt-get install openjdk-17-jre-headless"


class FirestoreEmulator(LocalServer):
    """A throwaway Firestore emulator in native mode; data lives in memory only.

    Use as a context manager, or call start() and stop(). The process log is `root/firestore.log`.
    """

    name = "Firestore emulator"
    log_name = "firestore.log"
    start_timeout = 30.0  # a JVM: seconds on a busy machine

    def __init__(self, root: Path):
        super().__init__(root)
        self.launcher: str | None = None  # "java" or "gcloud", once started

    @property
    def host(self) -> str:
        """HOST:PORT, the form FIRESTORE_EMULATOR_HOST and gRPC channels take."""
        if self.port is None:
            raise RuntimeError("FirestoreEmulator is not started")
        return f"127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        command = _launch_command()
        self.launcher = Path(command[0]).name
        if self.launcher == "gcloud":
            return [*command, f"--host-port=127.0.0.1:{port}"]
        return [*command, "--host=127.0.0.1", f"--port={port}", "--database-mode=firestore-native"]

    def ready_probe(self, port: int):
        return _answers_ok(f"http://127.0.0.1:{port}/")


def _launch_command() -> list[str]:
    """java on the emulator jar when both are found, else gcloud; a clear install hint when neither works."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise SandboxUnavailable(f"gcloud not found on PATH; the Firestore emulator ships with it: {INSTALL_EMULATOR}")
    java = shutil.which("java")
    if java is None:
        raise SandboxUnavailable(f"java not found on PATH; the Firestore emulator needs a Java runtime: {INSTALL_JAVA}")
    # gcloud is usually a symlink into the SDK (/usr/bin/gcloud -> SDK/bin/gcloud).
    jar = Path(gcloud).resolve().parent.parent / _JAR_IN_SDK
    if jar.is_file():
        return [java, *_JVM_FLAGS, "-cp", str(jar), _MAIN_CLASS, "start"]
    return [gcloud, "emulators", "firestore", "start"]


def _answers_ok(url: str):
    """Readiness probe: the emulator answers GET / with the body "Ok" once it serves."""

    def probe() -> bool:
        try:
            response = httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.text.strip() == "Ok"

    return probe


def seed_documents(host: str, project: str, collection: str, documents: Iterable[tuple[str, dict]]) -> int:
    """Write (id, fields) documents into the emulator at `host`, replacing any of the same id.

    Uses the REST API's commit, 500 writes per request, so 10,000 documents are 20 requests.
    Field values may be str, int, bool, None or timezone-aware datetime. Returns the count written.
    """
    database = f"projects/{project}/databases/(default)"
    written = 0
    # "Bearer owner" is the emulator's admin token: security rules do not apply to the seeder.
    with httpx.Client(
        base_url=f"http://{host}/v1", headers={"Authorization": "Bearer owner"}, timeout=_SEED_TIMEOUT
    ) as client:
        for chunk in _chunks(documents, _WRITES_PER_COMMIT):
            writes = [
                {
                    "update": {
                        "name": f"{database}/documents/{collection}/{doc_id}",
                        "fields": {name: _value(name, value) for name, value in fields.items()},
                    }
                }
                for doc_id, fields in chunk
            ]
            response = client.post(f"/{database}/documents:commit", json={"writes": writes})
            if response.status_code != 200:
                raise RuntimeError(
                    f"seeding {collection} in the Firestore emulator at {host} failed: "
                    f"HTTP {response.status_code} {response.text[:500]}"
                )
            written += len(writes)
    return written


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _value(name: str, value) -> dict:
    """A Python value as a Firestore REST `Value`."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}  # int64 travels as a JSON string
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"field {name!r}: timestamp {value} has no timezone")
        return {"timestampValue": rfc3339(value)}
    raise TypeError(f"field {name!r}: cannot seed a {type(value).__name__} value")

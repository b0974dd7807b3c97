"""Firestore heartbeat documents, read-only: one streamed query with a field mask.

The reader uses google-cloud-firestore's generated client (`firestore_v1.services.firestore`,
the layer `google.cloud.firestore.Client` itself delegates to) rather than `Client`:
- `Client` can reach an emulator only through the process-wide FIRESTORE_EMULATOR_HOST
  variable (its one insecure-channel path reads it in __init__; `client_options.api_endpoint`
  always gets a TLS channel). The generated client takes a transport on any channel, so each
  reader gets its own `grpc.insecure_channel(emulator_host)` and sandboxes can share a process.
- `Query.stream()` silently resumes a broken stream after the last document it saw, in a new
  RPC. Here a stream is either read to its end or thrown away: retries (gcall.call) restart the
  query from scratch, so a partial list is never presented as the collection.
- RunQuery's protobuf values say which type a field holds, so a `last_heartbeat` written as a
  string is reported as such instead of being guessed from a decoded Python value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from google.api_core import exceptions as api_exceptions

from .errors import ObservationError
from .gcall import ApiCounter, CallPolicy, call

FIELDS = ("processor_name", "last_heartbeat", "status")
PERMISSION = "datastore.entities.list"
METHOD = "runQuery"
# The emulator's admin token: the library's own emulator support sends it so that security
# rules do not apply to a server-side client.
EMULATOR_METADATA = (("authorization", "Bearer owner"),)
_TYPE_NAMES = {
    None: "a Value with no type set",
    "null_value": "null",
    "boolean_value": "a boolean",
    "integer_value": "an integer",
    "double_value": "a number",
    "timestamp_value": "a timestamp",
    "string_value": "a string",
    "bytes_value": "bytes",
    "reference_value": "a reference",
    "geo_point_value": "a geo point",
    "array_value": "an array",
    "map_value": "a map",
}


@dataclass(frozen=True)
class HeartbeatDoc:
    """One heartbeat document as far as the masked fields go.

    `problems` says why a field could not be taken as written (missing or of the wrong type);
    the rule decides what that means. An empty `problems` guarantees `last_heartbeat` is set.
    """

    id: str
    processor_name: str | None
    last_heartbeat: datetime | None
    status: str | None
    problems: tuple[str, ...] = ()


@dataclass
class HeartbeatScan:
    collection: str
    documents: list[HeartbeatDoc]
    requests: int  # RunQuery streams opened, retries included
    elapsed_s: float
    response_bytes: int  # serialized size of every response message received: the mask's effect


class HeartbeatReader:
    """Reads one project's heartbeat collection; never writes.

    `credentials` authenticate to firestore.googleapis.com; with `emulator_host` ("HOST:PORT")
    the reader talks plaintext gRPC to that emulator and the credentials are not used.
    """

    def __init__(
        self, project: str, credentials, *, emulator_host: str | None = None, policy: CallPolicy | None = None
    ):
        self.project = project
        self.policy = policy or CallPolicy()
        self.calls = ApiCounter()
        # The Firestore client is imported when a reader is made, not when the check module is collected.
        from google.cloud.firestore_v1.services.firestore import FirestoreClient
        from google.cloud.firestore_v1.services.firestore.transports import FirestoreGrpcTransport

        if emulator_host:
            self.endpoint = emulator_host
            transport = FirestoreGrpcTransport(channel=grpc.insecure_channel(emulator_host))
            self._client = FirestoreClient(transport=transport)
            self._metadata: tuple[tuple[str, str], ...] = EMULATOR_METADATA
        else:
            self.endpoint = FirestoreClient.DEFAULT_ENDPOINT
            self._client = FirestoreClient(credentials=credentials)
            self._metadata = ()

    @property
    def database(self) -> str:
        return f"projects/{self.project}/databases/(default)"

    def scan(self, collection: str) -> HeartbeatScan:
        """Every document of `collection` (top level), with only FIELDS transferred."""
        from google.cloud.firestore_v1.types import RunQueryRequest, RunQueryResponse, StructuredQuery

        request = RunQueryRequest(
            parent=f"{self.database}/documents",
            structured_query=StructuredQuery(
                select=StructuredQuery.Projection(
                    fields=[StructuredQuery.FieldReference(field_path=name) for name in FIELDS]
                ),
                from_=[StructuredQuery.CollectionSelector(collection_id=collection)],
            ),
        )

        what = f"Firestore collection {collection}"

        def read_whole_stream() -> tuple[list[HeartbeatDoc], int]:
            documents: list[HeartbeatDoc] = []
            received = 0
            try:
                # retry=None: gcall.call owns retries, and each one re-reads from the start.
                for response in self._client.run_query(
                    request=request, retry=None, metadata=self._metadata, timeout=self.policy.attempt_timeout
                ):
                    message = RunQueryResponse.pb(response)
                    received += message.ByteSize()
                    if message.HasField("document"):
                        if not message.document.name.startswith(f"{request.parent}/{collection}/"):
                            raise ObservationError(
                                what,
                                f"Firestore runQuery answered a document outside "
                                f"{collection}: {message.document.name!r}",
                            )
                        documents.append(_heartbeat_doc(message.document))
            except grpc.RpcError as exc:  # api_core wraps stream errors, but a raw one must not escape
                raise api_exceptions.from_grpc_error(exc) from exc
            return documents, received

        requests_before = self.calls[METHOD]
        began = time.perf_counter()
        try:
            documents, received = call(
                what,
                read_whole_stream,
                policy=self.policy,
                permission=PERMISSION,
                counter=self.calls,
                method=METHOD,
                api="Firestore",
            )
        except ObservationError as exc:
            if _unreachable(exc.__cause__):
                raise ObservationError(what, f"could not reach Firestore at {self.endpoint} ({exc.reason})") from exc
            raise
        # A document the stream sent twice (a broken or hostile server) is still one document.
        unique = list({document.id: document for document in documents}.values())
        return HeartbeatScan(
            collection=collection,
            documents=unique,
            requests=self.calls[METHOD] - requests_before,
            elapsed_s=time.perf_counter() - began,
            response_bytes=received,
        )

    def close(self) -> None:
        self._client.transport.close()

    def __enter__(self) -> HeartbeatReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _unreachable(error: BaseException | None) -> bool:
    """True when the last failure was UNAVAILABLE (nothing listening, or the service refusing)."""
    if isinstance(error, api_exceptions.RetryError):
        error = error.cause
    return isinstance(error, api_exceptions.ServiceUnavailable)


def _heartbeat_doc(document) -> HeartbeatDoc:
    """A RunQuery document (protobuf) -> HeartbeatDoc, with a problem per unusable field."""
    problems: list[str] = []

    def field(name: str, expected: str, required: bool):
        if name not in document.fields:
            if required:
                problems.append(f"{name} is missing")
            return None
        value = document.fields[name]
        kind = value.WhichOneof("value_type")
        if kind != expected:
            problems.append(f"{name} is {_TYPE_NAMES.get(kind, kind)}, not {_TYPE_NAMES[expected]}")
            return None
        return getattr(value, kind)

    processor_name = field("processor_name", "string_value", required=False)
    timestamp = field("last_heartbeat", "timestamp_value", required=True)
    status = field("status", "string_value", required=False)
    return HeartbeatDoc(
        id=document.name.rsplit("/", 1)[-1],
        processor_name=processor_name,
        last_heartbeat=timestamp.ToDatetime(tzinfo=timezone.utc) if timestamp is not None else None,
        status=status,
        problems=tuple(problems),
    )

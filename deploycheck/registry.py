"""OCI distribution v2 client: tags -> digests, manifests, image configs.

Talks to registries directly over HTTP (httpx): no daemon, no pull. Every byte read is
checked against the digest it was asked for, every read is bounded, and every failure
surfaces as an ObservationError that says what could not be read and why.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import httpx

from deploycheck import __version__
from deploycheck.blobcache import BlobCache
from deploycheck.errors import NotFoundError, ObservationError, PermissionDeniedError
from deploycheck.gcall import AttemptTimedOut, tally, within
from deploycheck.imageref import DIGEST_RE, ImageRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Without all four, registries answer 404 or down-convert to schema1 (a different digest).
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_RETRYABLE_STATUSES = frozenset({429, 500, 503, 504})
_MAX_ATTEMPTS = 3
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 4.0
_MAX_ERROR_BODY = 64 * 1024
_ANSWER_BY = "deploycheck.answer_by"  # response extension: the instant the whole body is due
_MAX_TOKEN_RESPONSE = 1024 * 1024
_ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryRouter:
    """Where to send requests for an image reference: the real registry, or one local mirror."""

    def __init__(self, mirror_url: str | None):
        self._mirror_url = mirror_url.rstrip("/") if mirror_url else None

    @classmethod
    def direct(cls) -> "RegistryRouter":
        return cls(None)

    @classmethod
    def mirror(cls, base_url: str) -> "RegistryRouter":
        """Every host maps to `base_url`, under repository HOST/PATH, so images of many registries share one."""
        return cls(base_url)

    def endpoint(self, ref: ImageRef) -> tuple[str, str]:
        """(base URL, repository) to ask for `ref`."""
        if self._mirror_url is None:
            return f"https://{ref.host}", ref.path
        return self._mirror_url, f"{ref.host}/{ref.path}"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, value: Any, what: str) -> "Descriptor":
        # The digest goes into a URL path, so a hostile manifest must not get anything else there.
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("digest"), str)
            or not DIGEST_RE.match(value["digest"])
            or not isinstance(value.get("size"), int)
        ):
            raise ObservationError(what, f"malformed descriptor in manifest: {json.dumps(value)[:200]}")
        return cls(media_type=str(value.get("mediaType", "")), digest=value["digest"], size=value["size"])


@dataclass
class Manifest:
    digest: str
    media_type: str
    raw: bytes = field(repr=False)
    json: dict = field(repr=False)


@dataclass
class ImageConfig:
    digest: str
    """The config blob digest."""
    manifest_digest: str
    """The platform image manifest the config belongs to (not the index)."""
    labels: dict[str, str]
    created: str | None
    env: dict[str, str]
    annotations: dict[str, str]
    """Index, index entry and manifest annotations merged, the most specific winning."""
    layers: list[Descriptor]
    """Layer blobs, bottom first, as the platform manifest lists them."""


@dataclass
class RegistryStats:
    requests: int = 0
    """HTTP requests sent, retries and token requests included."""
    bytes_received: int = 0
    """Response body bytes as received on the wire."""
    retries: int = 0


@dataclass(frozen=True)
class _Platform:
    os: str
    architecture: str
    variant: str | None

    @classmethod
    def parse(cls, text: str) -> "_Platform":
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} must be OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, platform: dict) -> bool:
        if platform.get("os") != self.os or platform.get("architecture") != self.architecture:
            return False
        return self.variant is None or platform.get("variant") == self.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


class RegistryClient:
    """Reads manifests and blobs from OCI distribution registries.

    `credentials` (google.auth) are exchanged for registry tokens only with Google registries
    (gcr.io, *.gcr.io, *-docker.pkg.dev); any other registry gets the anonymous token flow.
    With a `cache`, manifests asked for by digest and whole blobs (configs) are served from it
    when present and stored in it after they verify, so a warm run sends no request for them.
    """

    def __init__(
        self,
        router: RegistryRouter,
        *,
        credentials: google.auth.credentials.Credentials | None = None,
        timeout: float = 30.0,
        deadline: float = 60.0,
        not_after: float | None = None,
        platform: str = "linux/amd64",
        max_manifest_bytes: int = 4 * 1024 * 1024,
        cache: BlobCache | None = None,
    ):
        self._router = router
        self.cache = cache
        self._credentials = credentials
        self._timeout = timeout
        # httpx's timeout bounds each socket read; these bound the whole answer (a trickle included).
        self._deadline = deadline
        self._not_after = not_after
        self._platform = _Platform.parse(platform)
        self._max_manifest_bytes = max_manifest_bytes
        self._clients: dict[str, httpx.Client] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        # Content addressed, hence immutable: safe to keep for the whole session.
        self._manifests_by_digest: dict[tuple[str, str, str], Manifest] = {}
        self.stats = RegistryStats()

    # --- public API ------------------------------------------------------------------

    def resolve(self, ref: ImageRef) -> str:
        """The digest of the top-level manifest the registry serves for `ref` now."""
        if ref.digest:
            return ref.digest
        with self._open_manifest(ref, "HEAD") as response:
            digest = response.headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.match(digest):
            return digest
        return self.manifest(ref).digest

    def manifest(self, ref: ImageRef) -> Manifest:
        """The manifest `ref` names, exact bytes kept; verified against the digest when pinned."""
        base_url, repository = self._router.endpoint(ref)
        if ref.digest and (cached := self._manifests_by_digest.get((base_url, repository, ref.digest))):
            return cached
        what = f"image {ref}"
        raw = self._cached(ref.digest, self._max_manifest_bytes) if ref.digest else None
        announced_digest = content_type = ""
        if raw is None:
            with self._open_manifest(ref, "GET") as response:
                raw = b"".join(_bounded_chunks(response, self._max_manifest_bytes, what))
                announced_digest = response.headers.get("Docker-Content-Digest", "")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = sha256_digest(raw)
        if ref.digest and digest != ref.digest:
            raise ObservationError(
                what,
                f"registry served a manifest whose sha256 is {digest}, not the requested digest "
                "(corrupt or hostile registry)",
            )
        if announced_digest.startswith("sha256:") and announced_digest != digest:
            raise ObservationError(
                what,
                f"registry announced Docker-Content-Digest {announced_digest} but the manifest bytes hash to {digest}",
            )
        try:
            body = json.loads(raw)
        except ValueError:
            raise ObservationError(what, f"manifest {digest} is not JSON") from None
        if not isinstance(body, dict):
            raise ObservationError(what, f"manifest {digest} is not a JSON object")
        media_type = body.get("mediaType") or content_type
        if media_type not in INDEX_MEDIA_TYPES | IMAGE_MANIFEST_MEDIA_TYPES:
            raise ObservationError(
                what, f"registry served an unsupported manifest type {media_type!r} (expected OCI or Docker schema2)"
            )
        manifest = Manifest(digest=digest, media_type=media_type, raw=raw, json=body)
        self._manifests_by_digest[(base_url, repository, digest)] = manifest
        # Only self-describing manifests: a cached one has no Content-Type header to fall back on.
        if self.cache is not None and "mediaType" in body:
            self.cache.put(digest, raw)
        return manifest

    def image_config(self, ref: ImageRef) -> ImageConfig:
        """Labels, creation time, env and layers of `ref`'s image for this client's platform."""
        what = f"image {ref}"
        image_manifest, annotations = self._image_manifest(ref)
        config_descriptor = Descriptor.from_json(image_manifest.json.get("config"), what)
        layer_list = image_manifest.json.get("layers")
        if not isinstance(layer_list, list):
            raise ObservationError(what, f"manifest {image_manifest.digest} has no layer list")
        layers = [Descriptor.from_json(layer, what) for layer in layer_list]

        raw_config = self.blob(ref, config_descriptor.digest, max_bytes=self._max_manifest_bytes)
        not_a_config = f"config blob {config_descriptor.digest} is not an image config"
        if len(raw_config) != config_descriptor.size:
            raise ObservationError(
                what, f"{not_a_config}: {len(raw_config)} bytes, the manifest says {config_descriptor.size}"
            )
        try:
            config = json.loads(raw_config)
            container_config = config.get("config") or {}
            env_list = container_config.get("Env") or []
            labels = container_config.get("Labels")
            created = config.get("created")
        except (ValueError, AttributeError):
            raise ObservationError(what, f"{not_a_config} JSON object") from None
        if not isinstance(env_list, list) or not all(isinstance(item, str) for item in env_list):
            raise ObservationError(what, f"{not_a_config}: malformed Env list")
        return ImageConfig(
            digest=config_descriptor.digest,
            manifest_digest=image_manifest.digest,
            labels=_string_map(labels, what, "config labels"),
            created=created if isinstance(created, str) else None,
            env=dict(item.partition("=")[::2] for item in env_list),
            annotations=annotations,
            layers=layers,
        )

    def blob(self, ref: ImageRef, digest: str, *, max_bytes: int) -> bytes:
        """A whole blob of `ref`'s repository, verified; from and into the cache when there is one."""
        cached = self._cached(digest, max_bytes)
        if cached is not None:
            return cached
        data = b"".join(self.iter_blob(ref, digest, max_bytes=max_bytes, whole=True))
        if self.cache is not None:
            self.cache.put(digest, data)
        return data

    def iter_blob(self, ref: ImageRef, digest: str, *, max_bytes: int, whole: bool = False) -> Iterator[bytes]:
        """Stream a blob; raises after the last chunk if the bytes do not hash to `digest`.

        A caller acting on chunks before the end (e.g. a layer walk that stops early) must
        treat what it saw as unverified until the generator is exhausted. With `whole`, the
        last byte must arrive within the request's --deadline; layer reads leave the bound to
        the caller, who bounds the whole image read (--image-timeout).
        """
        what = f"blob {digest} of image {ref}"
        if not DIGEST_RE.match(digest):
            raise ObservationError(what, "not a sha256 digest")
        hasher = hashlib.sha256()
        with self._open(ref, "GET", f"blobs/{digest}", what=what, missing=f"blob {digest}") as response:
            for chunk in _bounded_chunks(response, max_bytes, what, whole=whole):
                hasher.update(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            raise ObservationError(
                what, f"registry served bytes that hash to sha256:{hasher.hexdigest()} (corrupt or hostile registry)"
            )

    def _cached(self, digest: str, max_bytes: int) -> bytes | None:
        return self.cache.get(digest, max_bytes=max_bytes) if self.cache is not None else None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- platform selection ------------------------------------------------------------

    def _image_manifest(self, ref: ImageRef) -> tuple[Manifest, dict[str, str]]:
        """The image manifest for this client's platform (through an index if `ref` names one),
        with index, index entry and manifest annotations merged, the most specific winning."""
        what = f"image {ref}"
        top = self.manifest(ref)
        if top.media_type in IMAGE_MANIFEST_MEDIA_TYPES:
            return top, _string_map(top.json.get("annotations"), what, "manifest annotations")
        entry = self._select_platform(what, top)
        image_manifest = self.manifest(ref.with_digest(Descriptor.from_json(entry, what).digest))
        if image_manifest.media_type not in IMAGE_MANIFEST_MEDIA_TYPES:
            raise ObservationError(
                what,
                f"{self._platform} entry of index {top.digest} is a {image_manifest.media_type}, not an image manifest",
            )
        annotations = _string_map(top.json.get("annotations"), what, "index annotations")
        annotations |= _string_map(entry.get("annotations"), what, "index entry annotations")
        annotations |= _string_map(image_manifest.json.get("annotations"), what, "manifest annotations")
        return image_manifest, annotations

    def _select_platform(self, what: str, index: Manifest) -> dict:
        entries = index.json.get("manifests")
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise ObservationError(what, f"index {index.digest} has no well-formed manifest list")
        platforms = [entry.get("platform") if isinstance(entry.get("platform"), dict) else {} for entry in entries]
        # buildx attestations are marked unknown/unknown, which no real platform matches; the
        # annotation check also keeps out one that a tool labelled with a real platform.
        candidates = [
            entry
            for entry, platform in zip(entries, platforms)
            if self._platform.matches(platform) and not _is_attestation(entry)
        ]
        if not candidates:
            available = ", ".join(_platform_text(platform) for platform in platforms) or "none"
            raise ObservationError(what, f"index {index.digest} has no {self._platform} image; available: {available}")
        # Asked for no variant: prefer the plain entry over e.g. amd64/v3.
        plain = [entry for entry in candidates if not entry["platform"].get("variant")]
        return (plain or candidates)[0]

    # --- HTTP ------------------------------------------------------------------------

    def _open_manifest(self, ref: ImageRef, method: str):
        missing = f"manifest {ref.digest}" if ref.digest else f"tag {ref.reference!r}"
        return self._open(
            ref, method, f"manifests/{ref.reference}", what=f"image {ref}", missing=missing, accept=MANIFEST_ACCEPT
        )

    @contextmanager
    def _open(
        self, ref: ImageRef, method: str, suffix: str, *, what: str, missing: str, accept: str | None = None
    ) -> Iterator[httpx.Response]:
        """A successful streamed response for /v2/REPOSITORY/SUFFIX, else the matching ObservationError.

        `missing` names what a 404 means is absent ("tag 'latest'", "blob sha256:...").
        """
        base_url, repository = self._router.endpoint(ref)
        url = f"{base_url}/v2/{repository}/{suffix}"
        headers = {"Accept": accept} if accept else {}
        response = self._authorized_exchange(ref, (base_url, repository), method, url, headers, what)
        try:
            if not response.is_success:
                raise self._failure(ref, response, what=what, missing=missing)
            yield response
        except httpx.HTTPError as exc:
            raise ObservationError(what, f"reading {url} failed: {type(exc).__name__}: {exc}") from None
        finally:
            self._close(response)

    def _authorized_exchange(
        self, ref: ImageRef, endpoint: tuple[str, str], method: str, url: str, headers: dict, what: str
    ) -> httpx.Response:
        """Send with the endpoint's cached token; on a Bearer challenge get a new token and resend once."""
        token = self._tokens.get(endpoint)
        response = self._exchange(method, url, what=what, headers=_with_bearer(headers, token))
        challenge = _bearer_challenge(response)
        if response.status_code != 401 or challenge is None:
            return response
        self._close(response)
        token = self._fetch_token(ref, endpoint[1], challenge, what)
        self._tokens[endpoint] = token
        return self._exchange(method, url, what=what, headers=_with_bearer(headers, token))

    def _fetch_token(self, ref: ImageRef, repository: str, challenge: dict[str, str], what: str) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise ObservationError(what, "registry asked for a Bearer token but named no token realm")
        params = {"scope": challenge.get("scope") or f"repository:{repository}:pull"}
        if "service" in challenge:
            params["service"] = challenge["service"]
        permission = _download_permission(ref.host)
        realm_url = httpx.URL(realm)
        auth = None
        # Google credentials go to Google's token service over TLS only, never to any realm a
        # registry names (a hostile or mirrored registry would otherwise harvest them).
        if self._credentials is not None and realm_url.scheme == "https" and _download_permission(realm_url.host):
            auth = httpx.BasicAuth("oauth2accesstoken", self._access_token(what))
        response = self._exchange("GET", realm_url.copy_merge_params(params), what=what, auth=auth)
        try:
            if response.status_code in (401, 403):
                raise PermissionDeniedError(
                    what,
                    f"token service {realm} refused a pull token (HTTP {response.status_code})",
                    permission=permission,
                )
            if not response.is_success:
                raise ObservationError(what, f"token service {realm} answered HTTP {response.status_code}")
            body = json.loads(b"".join(_bounded_chunks(response, _MAX_TOKEN_RESPONSE, what)))
        except ValueError:
            raise ObservationError(what, f"token service {realm} answered something that is not JSON") from None
        except httpx.HTTPError as exc:
            raise ObservationError(what, f"reading a token from {realm} failed: {type(exc).__name__}") from None
        finally:
            self._close(response)
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ObservationError(what, f"token service {realm} returned no token")
        return token

    def _access_token(self, what: str) -> str:
        if not self._credentials.valid:
            try:
                self._credentials.refresh(google.auth.transport.requests.Request())
            except google.auth.exceptions.GoogleAuthError as exc:
                raise ObservationError(
                    what,
                    f"cannot refresh Google credentials ({type(exc).__name__})",
                    hint="run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
                ) from None
        return self._credentials.token

    def _exchange(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        what: str,
        headers: dict | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send one request, retrying 429/5xx and timeouts; returns the final streamed response."""
        client = self._client_for(httpx.URL(url))
        request = client.build_request(method, url, headers=headers)
        began = time.monotonic()
        answer_by = self._answer_by()
        failures: list[str] = []
        while True:
            self.stats.requests += 1
            try:
                response = within(max(0.0, answer_by - time.monotonic()),
                                  lambda: client.send(request, auth=auth, stream=True))
            except (httpx.TimeoutException, AttemptTimedOut) as exc:
                failures.append(f"timed out ({type(exc).__name__})")
            except httpx.ConnectError as exc:
                raise ObservationError(what, f"cannot connect to registry at {request.url}: {exc}") from None
            except httpx.HTTPError as exc:
                raise ObservationError(what, f"{method} {request.url} failed: {type(exc).__name__}: {exc}") from None
            else:
                response.extensions[_ANSWER_BY] = answer_by
                if response.status_code not in _RETRYABLE_STATUSES:
                    return response
                failures.append(f"answered HTTP {response.status_code}")
                if len(failures) == _MAX_ATTEMPTS:
                    return response
                self._close(response)
            pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (len(failures) - 1)))
            if len(failures) == _MAX_ATTEMPTS or answer_by - time.monotonic() - pause <= 0:
                raise ObservationError(what, f"registry {method} {request.url} {tally(failures)} over "
                                             f"{time.monotonic() - began:.1f}s; gave up within --deadline "
                                             f"{self._deadline:g}s")
            self.stats.retries += 1
            time.sleep(pause)  # backoff between retries of a remote call

    def _answer_by(self) -> float:
        """The instant a request started now must be fully answered by."""
        limit = time.monotonic() + self._deadline
        return limit if self._not_after is None else min(limit, self._not_after)

    def _failure(self, ref: ImageRef, response: httpx.Response, *, what: str, missing: str) -> ObservationError:
        codes, detail = _error_detail(response)
        status = response.status_code
        base_url, repository = self._router.endpoint(ref)
        if status == 404 or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
            if "NAME_UNKNOWN" in codes:
                return NotFoundError(what, f"repository {repository} not found in registry {base_url}")
            return NotFoundError(what, f"{missing} not found in registry {base_url} (repository {repository})")
        if status in (401, 403):
            return PermissionDeniedError(
                what,
                f"registry {base_url} denied access (HTTP {status}{detail})",
                permission=_download_permission(ref.host),
            )
        retried = f" after {_MAX_ATTEMPTS} attempts" if status in _RETRYABLE_STATUSES else ""
        request = response.request
        return ObservationError(what, f"{request.method} {request.url} answered HTTP {status}{detail}{retried}")

    def _client_for(self, url: httpx.URL) -> httpx.Client:
        origin = f"{url.scheme}://{url.netloc.decode()}"
        client = self._clients.get(origin)
        if client is None:
            client = httpx.Client(
                timeout=self._timeout,
                follow_redirects=True,  # blob GETs redirect to storage; httpx drops Authorization across origins
                headers={"User-Agent": f"deploycheck/{__version__}"},
            )
            self._clients[origin] = client
        return client

    def _close(self, response: httpx.Response) -> None:
        response.close()
        self.stats.bytes_received += response.num_bytes_downloaded


def _is_attestation(entry: dict) -> bool:
    annotations = entry.get("annotations")
    return isinstance(annotations, dict) and annotations.get(_ATTESTATION_ANNOTATION) == "attestation-manifest"


def _platform_text(platform: dict) -> str:
    parts = [str(platform[key]) for key in ("os", "architecture", "variant") if platform.get(key)]
    return "/".join(parts) or "unspecified"


def _download_permission(host: str) -> str | None:
    """The IAM permission a pull needs on a Google registry host; None for other registries."""
    if host.endswith("-docker.pkg.dev"):
        return "artifactregistry.repositories.downloadArtifacts"
    if host == "gcr.io" or host.endswith(".gcr.io"):
        return "storage.objects.get"
    return None


def _with_bearer(headers: dict, token: str | None) -> dict:
    return {**headers, "Authorization": f"Bearer {token}"} if token else headers


def _bearer_challenge(response: httpx.Response) -> dict[str, str] | None:
    scheme, _, params = response.headers.get("WWW-Authenticate", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def _bounded_chunks(response: httpx.Response, limit: int, what: str, *, whole: bool = True) -> Iterator[bytes]:
    """The body in chunks, at most `limit` bytes; with `whole`, all of it by the request's deadline."""
    answer_by = response.extensions.get(_ANSWER_BY) if whole else None
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ObservationError(what, f"{response.request.url} is {declared} bytes, over the {limit}-byte limit")
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > limit:
            raise ObservationError(what, f"{response.request.url} is over the {limit}-byte limit")
        if answer_by is not None and time.monotonic() > answer_by:
            raise ObservationError(what, f"{response.request.url} sent only {received} bytes before the deadline "
                                         "(a stalled or trickling registry); raise --deadline if it is just slow")
        yield chunk


def _error_detail(response: httpx.Response) -> tuple[set[str], str]:
    """Error codes of a distribution error body and a short text for messages."""
    answer_by = response.extensions.get(_ANSWER_BY, time.monotonic() + 5.0)
    body = b""
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= _MAX_ERROR_BODY or time.monotonic() > answer_by:
                break
    except httpx.HTTPError:
        pass  # the status says enough; a broken error body adds nothing
    codes, text = set(), body[:200].decode("utf-8", "replace").strip()
    try:
        document = json.loads(body)
        if isinstance(document.get("errors"), list):  # the distribution spec's error body
            codes = {str(error.get("code")) for error in document["errors"]}
            text = "; ".join(f"{error.get('code')}: {error.get('message')}" for error in document["errors"])
        elif isinstance(document.get("error"), dict):  # Google's envelope, from a front end or proxy
            text = f"{document['error'].get('status', '')}: {document['error'].get('message', '')}".strip(": ")
    except (ValueError, AttributeError, TypeError):
        pass
    return codes, f" ({text[:300]})" if text else ""


def _string_map(value: Any, what: str, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ObservationError(what, f"{name} are not a map of strings")
    return dict(value)

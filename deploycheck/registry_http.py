"""The HTTP side of the OCI distribution client: token auth, bounded exchanges, readable failures.

One pooled httpx client per registry origin; Google credentials are exchanged for pull tokens
only with Google's token service over TLS. Every exchange is bounded as a whole by --deadline
(httpx's own timeout bounds single socket reads, which a trickling server never trips), retried
only for 429/500/503/504, and every failure becomes an ObservationError naming what was asked.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import httpx

from deploycheck import __version__
from deploycheck.errors import NotFoundError, ObservationError, PermissionDeniedError
from deploycheck.gcall import AttemptTimedOut, CallPolicy, tally, within
from deploycheck.imageref import ImageRef

_RETRYABLE_STATUSES = frozenset({429, 500, 503, 504})
_MAX_ATTEMPTS = 3
_BACKOFF = CallPolicy(initial=0.5, maximum=4.0, multiplier=2.0)  # the pauses only: the bounds are the request's
_MAX_ERROR_BODY = 64 * 1024
_ANSWER_BY = "deploycheck.answer_by"  # response extension: the instant the whole body is due
_MAX_TOKEN_RESPONSE = 1024 * 1024


class RegistryRouter:
    """Where to send requests for an image reference: the real registry, or one local mirror."""

    def __init__(self, mirror_url: str | None):
        self._mirror_url = mirror_url.rstrip("/") if mirror_url else None

    @classmethod
    def direct(cls) -> RegistryRouter:
        return cls(None)

    @classmethod
    def mirror(cls, base_url: str) -> RegistryRouter:
        """Every host maps to `base_url`, under repository HOST/PATH, so images of many registries share one."""
        return cls(base_url)

    def endpoint(self, ref: ImageRef) -> tuple[str, str]:
        """(base URL, repository) to ask for `ref`."""
        if self._mirror_url is None:
            return f"https://{ref.host}", ref.path
        return self._mirror_url, f"{ref.host}/{ref.path}"


@dataclass
class RegistryStats:
    requests: int = 0
    """HTTP requests sent, retries and token requests included."""
    bytes_received: int = 0
    """Response body bytes as received on the wire."""
    retries: int = 0


class RegistryTransport:
    """Authorized, bounded requests to /v2/ endpoints of the registries a router names."""

    def __init__(
        self,
        router: RegistryRouter,
        *,
        credentials: google.auth.credentials.Credentials | None,
        timeout: float,
        deadline: float,
        not_after: float | None,
    ):
        self.router = router
        self._credentials = credentials
        self._timeout = timeout
        # httpx's timeout bounds each socket read; these bound the whole answer (a trickle included).
        self._deadline = deadline
        self._not_after = not_after
        self._clients: dict[str, httpx.Client] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self.stats = RegistryStats()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    @contextmanager
    def open(
        self,
        ref: ImageRef,
        method: str,
        suffix: str,
        *,
        what: str,
        missing: str,
        accept: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> Iterator[httpx.Response]:
        """A successful streamed response for /v2/REPOSITORY/SUFFIX, else the matching ObservationError.

        `missing` names what a 404 means is absent ("tag 'latest'", "blob sha256:..."). `byte_range`
        (start, end), end exclusive, asks for part of a blob (the distribution spec's Range GET); the
        registry may still answer 200 with all of it.
        """
        base_url, repository = self.router.endpoint(ref)
        url = f"{base_url}/v2/{repository}/{suffix}"
        headers = {"Accept": accept} if accept else {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
        response = self._authorized_exchange(ref, (base_url, repository), method, url, headers, what)
        try:
            if not response.is_success:
                raise self._failure(ref, response, what=what, missing=missing)
            yield response
        except httpx.HTTPError as exc:
            raise ObservationError(what, f"reading {url} failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.close_response(response)

    def _authorized_exchange(
        self, ref: ImageRef, endpoint: tuple[str, str], method: str, url: str, headers: dict, what: str
    ) -> httpx.Response:
        """Send with the endpoint's cached token; on a Bearer challenge get a new token and resend once."""
        token = self._tokens.get(endpoint)
        response = self._exchange(method, url, what=what, headers=_with_bearer(headers, token))
        challenge = _bearer_challenge(response)
        if response.status_code != 401 or challenge is None:
            return response
        self.close_response(response)
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
        if self._credentials is not None and realm_url.scheme == "https" and is_google_registry(realm_url.host):
            auth = httpx.BasicAuth("oauth2accesstoken", self._access_token(self._credentials, what))
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
            body = json.loads(b"".join(bounded_chunks(response, _MAX_TOKEN_RESPONSE, what)))
        except ValueError:
            raise ObservationError(what, f"token service {realm} answered something that is not JSON") from None
        except httpx.HTTPError as exc:
            raise ObservationError(what, f"reading a token from {realm} failed: {type(exc).__name__}") from None
        finally:
            self.close_response(response)
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ObservationError(what, f"token service {realm} returned no token")
        return token

    def _access_token(self, credentials: google.auth.credentials.Credentials, what: str) -> str:
        if not credentials.valid:
            try:
                credentials.refresh(google.auth.transport.requests.Request())
            except google.auth.exceptions.GoogleAuthError as exc:
                raise ObservationError(
                    what,
                    f"cannot refresh Google credentials ({type(exc).__name__})",
                    hint="run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
                ) from None
        if not isinstance(credentials.token, str) or not credentials.token:
            raise ObservationError(what, "the Google credentials gave no access token")
        return credentials.token

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
        answer_by = self.answer_by()
        failures: list[str] = []
        while True:
            self.stats.requests += 1
            try:
                response = within(
                    max(0.0, answer_by - time.monotonic()), lambda: client.send(request, auth=auth, stream=True)
                )
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
                self.close_response(response)
            pause = _BACKOFF.backoff(len(failures))
            if len(failures) == _MAX_ATTEMPTS or answer_by - time.monotonic() - pause <= 0:
                raise ObservationError(
                    what,
                    f"registry {method} {request.url} {tally(failures)} over "
                    f"{time.monotonic() - began:.1f}s; gave up within --deadline "
                    f"{self._deadline:g}s",
                )
            self.stats.retries += 1
            time.sleep(pause)  # backoff between retries of a remote call

    def answer_by(self) -> float:
        """The instant a request started now must be fully answered by."""
        limit = time.monotonic() + self._deadline
        return limit if self._not_after is None else min(limit, self._not_after)

    def _failure(self, ref: ImageRef, response: httpx.Response, *, what: str, missing: str) -> ObservationError:
        codes, detail = _error_detail(response)
        status = response.status_code
        base_url, repository = self.router.endpoint(ref)
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

    def close_response(self, response: httpx.Response) -> None:
        response.close()
        self.stats.bytes_received += response.num_bytes_downloaded


def is_google_registry(host: str) -> bool:
    """Artifact Registry or Container Registry: the hosts whose pulls Google's IAM governs."""
    return _download_permission(host) is not None


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


def bounded_chunks(response: httpx.Response, limit: int, what: str, *, whole: bool = True) -> Iterator[bytes]:
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
            raise ObservationError(
                what,
                f"{response.request.url} sent only {received} bytes before the deadline "
                "(a stalled or trickling registry); raise --deadline if it is just slow",
            )
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

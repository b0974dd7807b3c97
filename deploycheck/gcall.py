"""One way to call a Google API: a wall-clock deadline, bounded retries, errors that name their cause.

Every reader goes through `call()`, so the policy lives in one place:
- each attempt runs under a wall-clock bound that covers the whole response: client timeouts
  are per socket read, so a server trickling a byte every half second would never trip them;
- only 429/500/503/504 and gRPC UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED (and a
  connection that failed or an attempt that ran out of time) are retried, with capped
  exponential backoff and full jitter (seed 000), within `--deadline` and the run's `--budget`;
- the ObservationError names the API method, the statuses it answered and for how long,
  e.g. "Cloud Run services.get answered HTTP 503 (UNAVAILABLE) 3 times over 5.1s";
- an answer that cannot be decoded (not JSON, truncated, invalid UTF-8, wrong types) is an
  ERROR naming the API, never a traceback.
Nothing here knows which check asked.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import grpc
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.protobuf import json_format

from .errors import NotFoundError, ObservationError, PermissionDeniedError
from .redact import redact

T = TypeVar("T")

RETRYABLE_HTTP = frozenset({429, 500, 503, 504})
RETRYABLE_GRPC = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
# What a client library raises when the bytes it got are not the message it expected.
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, UnicodeError, json_format.ParseError)

AUTH_HINT = "authenticate with `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS)"


class CallPolicy:
    """Deadline and retry budget for one API call (all attempts together).

    `not_after` is a time.monotonic() instant no call may run past: the run's --budget.
    """

    def __init__(
        self,
        *,
        deadline: float = 60.0,
        attempt_timeout: float = 20.0,
        initial: float = 0.5,
        maximum: float = 8.0,
        multiplier: float = 2.0,
        not_after: float | None = None,
    ):
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.not_after = not_after

    def remaining(self, began: float) -> float:
        left = self.deadline - (time.monotonic() - began)
        if self.not_after is not None:
            left = min(left, self.not_after - time.monotonic())
        return left

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random pause up to the capped exponential backoff of this attempt."""
        return random.uniform(0, min(self.maximum, self.initial * self.multiplier ** (attempt - 1)))

    def limit_name(self, began: float) -> str:
        if self.not_after is not None and self.not_after - time.monotonic() < self.deadline - (
            time.monotonic() - began
        ):
            return "the run's --budget"
        return f"--deadline {self.deadline:g}s"


class ApiCounter(Counter):
    """API calls made, by method name: the unit the benchmarks report."""


class AttemptTimedOut(Exception):
    """One attempt had no complete answer within its wall-clock bound."""


def within(seconds: float, fn: Callable[[], T]) -> T:
    """fn's result, or AttemptTimedOut once `seconds` have passed without one.

    fn runs on a daemon thread: a socket that trickles or hangs keeps only that thread, which
    dies with the process, while the caller goes on (a ThreadPoolExecutor would be joined at exit).
    """
    values: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            values.append(fn())
        except BaseException as exc:  # handed to the caller's thread as it is
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="deploycheck-call", daemon=True).start()
    if not done.wait(max(0.0, seconds)):
        raise AttemptTimedOut(f"no complete answer within {seconds:.1f}s")
    if errors:
        raise errors[0]
    return values[0]


def call(
    what: str,
    fn: Callable[[], T],
    *,
    policy: CallPolicy,
    permission: str | None = None,
    counter: ApiCounter | None = None,
    method: str = "",
    api: str = "",
) -> T:
    """Run fn under the policy; turn every failure into an ObservationError about `what`."""
    name = " ".join(part for part in (api, method) if part) or "the API"
    began = time.monotonic()
    failures: list[str] = []
    last: BaseException | None = None
    attempt = 0
    while True:
        remaining = policy.remaining(began)
        if remaining <= 0:
            raise _gave_up(what, name, failures, began, policy, last=last) from last
        attempt += 1
        if counter is not None:
            counter[method or what] += 1
        bound = min(policy.attempt_timeout, remaining)
        try:
            return within(bound, fn)
        except AttemptTimedOut as exc:
            failures.append(f"gave no complete answer within {bound:.1f}s")
            # An attempt the deadline cut short says little about the server; what the earlier
            # attempts met (unreachable, an error status) stays the cause the caller looks at.
            if last is None or bound >= policy.attempt_timeout:
                last = exc
        except api_exceptions.GoogleAPICallError as exc:
            if not _retryable(exc):
                raise _final(what, name, exc, permission) from exc
            failures.append(f"answered {_status(exc)}")
            last = exc
        except (requests.ConnectionError, requests.Timeout, auth_exceptions.TransportError) as exc:
            failures.append(f"could not be reached ({type(exc).__name__})")
            last = exc
        except auth_exceptions.DefaultCredentialsError as exc:
            raise ObservationError(what, "no Application Default Credentials", hint=AUTH_HINT) from exc
        except auth_exceptions.RefreshError as exc:
            raise ObservationError(
                what, f"credentials could not be refreshed ({_message(exc)})", hint=AUTH_HINT
            ) from exc
        except requests.RequestException as exc:
            raise ObservationError(what, f"{name} failed ({type(exc).__name__}: {_message(exc)})") from exc
        except MALFORMED as exc:
            raise ObservationError(
                what, f"{name} answered a malformed payload ({type(exc).__name__}: {_message(exc)})"
            ) from exc
        pause = policy.backoff(attempt)
        if policy.remaining(began) - pause <= 0:
            raise _gave_up(what, name, failures, began, policy, last=last, early=True) from last
        time.sleep(pause)  # backoff between retries of a remote call, not a wait for a server we own


def _retryable(exc: api_exceptions.GoogleAPICallError) -> bool:
    grpc_code = getattr(exc, "grpc_status_code", None)
    if grpc_code is not None and grpc_code in RETRYABLE_GRPC:
        return True
    return isinstance(exc.code, int) and exc.code in RETRYABLE_HTTP


def _status(exc: api_exceptions.GoogleAPICallError) -> str:
    """HTTP 503 (UNAVAILABLE) for a REST answer, UNAVAILABLE for a gRPC one."""
    grpc_code = getattr(exc, "grpc_status_code", None)
    name = grpc_code.name if grpc_code is not None else ""
    if name and not isinstance(getattr(exc, "response", None), requests.Response):
        return name
    if not exc.code:
        return name or type(exc).__name__
    return f"HTTP {int(exc.code)}" + (f" ({name})" if name else "")


def _gave_up(
    what: str,
    name: str,
    failures: list[str],
    began: float,
    policy: CallPolicy,
    *,
    last: BaseException | None = None,
    early: bool = False,
) -> ObservationError:
    elapsed = time.monotonic() - began
    limit = policy.limit_name(began)
    if not failures:
        return ObservationError(what, f"{name} was not called: {limit} was already spent")
    summary = f"{name} {tally(failures)} over {elapsed:.1f}s"
    if isinstance(last, api_exceptions.GoogleAPICallError) and _message(last):
        summary += f" (last: {_message(last)})"
    ending = f"no time left for another try within {limit}" if early else f"gave up at {limit}"
    return ObservationError(what, f"{summary}; {ending}")


def tally(failures: list[str]) -> str:
    """["answered HTTP 503"] * 3 -> "answered HTTP 503 3 times"; mixed ones are listed in order."""
    distinct = list(dict.fromkeys(failures))
    if len(distinct) == 1:
        return f"{distinct[0]} " + ("once" if len(failures) == 1 else f"{len(failures)} times")
    return f"failed {len(failures)} times ({', '.join(failures)})"


def _final(what: str, name: str, exc: api_exceptions.GoogleAPICallError, permission: str | None) -> ObservationError:
    detail = f"{_status(exc)}: {_message(exc)}"
    if isinstance(exc, api_exceptions.NotFound):
        return NotFoundError(what, f"not found ({name} answered {detail})")
    if isinstance(exc, (api_exceptions.PermissionDenied, api_exceptions.Forbidden)):
        return PermissionDeniedError(what, f"permission denied ({name} answered {detail})", permission=permission)
    if isinstance(exc, (api_exceptions.Unauthenticated, api_exceptions.Unauthorized)):
        return ObservationError(what, f"not authenticated ({name} answered {detail})", hint=AUTH_HINT)
    return ObservationError(what, f"{name} answered {detail}")


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return redact(" ".join(str(message).split())[:300])


def pin_environment(session: requests.Session | None, url: str) -> None:
    """Take the proxy and CA-bundle settings requests would read from the environment for `url`
    (the one host this session talks to) now, and stop it from reading os.environ on every
    request: facts are read on background threads while pytest sets and removes
    PYTEST_CURRENT_TEST around every test phase, and requests' proxy lookup iterates os.environ,
    which fails (KeyError) when a variable vanishes under it. The token refresh of the credentials
    (its own session, rare) keeps reading the environment."""
    if session is None:
        return
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


def transport_session(client) -> requests.Session | None:
    """The requests session of a gapic client's REST transport (None if a version keeps it elsewhere)."""
    return getattr(getattr(client, "_transport", None), "_session", None)


def raise_for_status(response: requests.Response) -> requests.Response:
    """Map a raw HTTP response to the api_core exception the generated clients would raise."""
    if response.status_code >= 400:
        raise api_exceptions.from_http_response(response)
    return response

"""One way to call a Google API: bounded retries for retryable codes, errors made readable.

Every reader goes through `call()`, so the retry policy (seed 000: 429/500/503/504, capped
exponential backoff with jitter) and the mapping of API errors to ObservationError live in
one place. Nothing here knows which check asked.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions

from .errors import NotFoundError, ObservationError, PermissionDeniedError

T = TypeVar("T")

RETRYABLE = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    requests.ConnectionError,
    requests.Timeout,
)

AUTH_HINT = "authenticate with `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS)"


class CallPolicy:
    """Deadline and retry budget for one API call (all attempts together)."""

    def __init__(self, *, deadline: float = 60.0, attempt_timeout: float = 20.0, initial: float = 0.5,
                 maximum: float = 8.0, multiplier: float = 2.0):
        self.attempt_timeout = attempt_timeout
        # api_core's Retry sleeps a random amount up to the current backoff: that is the jitter.
        self.retry = api_retry.Retry(predicate=api_retry.if_exception_type(*RETRYABLE), initial=initial,
                                     maximum=maximum, multiplier=multiplier, timeout=deadline)


class ApiCounter(Counter):
    """API calls made, by method name: the unit the benchmarks report."""


def call(what: str, fn: Callable[[], T], *, policy: CallPolicy, permission: str | None = None,
         counter: ApiCounter | None = None, method: str = "") -> T:
    """Run fn under the policy's retry; turn every failure into an ObservationError about `what`."""

    def attempt() -> T:
        if counter is not None:
            counter[method or what] += 1
        return fn()

    try:
        return policy.retry(attempt)()
    except api_exceptions.NotFound as exc:
        raise NotFoundError(what, f"not found ({_message(exc)})") from exc
    except (api_exceptions.PermissionDenied, api_exceptions.Forbidden) as exc:
        raise PermissionDeniedError(what, f"permission denied ({_message(exc)})", permission=permission) from exc
    except (api_exceptions.Unauthenticated, api_exceptions.Unauthorized) as exc:
        raise ObservationError(what, f"not authenticated ({_message(exc)})", hint=AUTH_HINT) from exc
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ObservationError(what, "no Application Default Credentials", hint=AUTH_HINT) from exc
    except auth_exceptions.RefreshError as exc:
        raise ObservationError(what, f"credentials could not be refreshed ({exc})", hint=AUTH_HINT) from exc
    except api_exceptions.RetryError as exc:
        raise ObservationError(what, f"gave up after retries for {policy.retry.timeout:.0f}s "
                                     f"(last error: {_message(exc.cause) if exc.cause else exc})") from exc
    except api_exceptions.GoogleAPICallError as exc:
        raise ObservationError(what, f"API error {exc.code}: {_message(exc)}") from exc
    except (requests.RequestException, auth_exceptions.TransportError) as exc:
        raise ObservationError(what, f"could not reach the API ({type(exc).__name__}: {exc})") from exc


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:300]


def raise_for_status(response: requests.Response) -> requests.Response:
    """Map a raw HTTP response to the api_core exception the generated clients would raise."""
    if response.status_code >= 400:
        raise api_exceptions.from_http_response(response)
    return response

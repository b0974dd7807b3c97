"""Errors that mean "this fact could not be observed" or "the input is wrong".

A check whose fact cannot be observed must end as ERROR with the reason, never as a
pass or a skip; readers raise ObservationError and the pytest layer lets it surface.
"""

from __future__ import annotations

from .redact import redact


class DeploycheckError(Exception):
    """Base of every error deploycheck raises on purpose."""


class ObservationError(DeploycheckError):
    """A fact the check needs could not be read (API error, permission, timeout, bad data).

    `what` names the fact ("revision nba-phase2-raw-processors-00128-abc"), `reason` says why
    it is unknown, `permission` names the IAM permission when the cause is a denial.
    """

    def __init__(self, what: str, reason: str, *, permission: str | None = None, hint: str | None = None):
        self.what = what
        self.reason = reason
        self.permission = permission
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"cannot observe {self.what}: {self.reason}"
        if self.permission:
            text += f" (missing permission {self.permission})"
        if self.hint:
            text += f"; {self.hint}"
        return redact(text)


class NotFoundError(ObservationError):
    """The resource does not exist (HTTP 404 / NOT_FOUND)."""


class PermissionDeniedError(ObservationError):
    """The caller lacks a permission (HTTP 403 / PERMISSION_DENIED)."""


class CredentialsError(DeploycheckError):
    """No usable credentials for the target; raised before any check runs."""


class CannotStartError(DeploycheckError):
    """The target could not be prepared (the sandbox's servers did not come up); raised before any check runs."""


class InputError(DeploycheckError):
    """Bad input from the user (inventory, options, scenario). Message is ready to print."""

"""Log checks over what the bounded queries read: boot errors (seeds 000, 004), the heartbeat
format (seed 001) and whether INFO application lines get out at all (seed 003's gunicorn blackout).

A listing cut at its limit proves presence, never absence: a rule that would conclude "none"
from a cut listing ERRORs naming the limit instead.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from .. import re2
from ..findings import Finding, Outcome, Severity, failed, passed
from ..inventory import HeartbeatLogSpec
from ..logfacts import BootLogs, HeartbeatLogs
from ..logs import BOOT_ERROR_PATTERNS, Listing, LogLine, pattern_filter
from .rollback import RevisionListing, rollback_first

__all__ = ["BOOT_ERROR_PATTERNS", "evaluate_boot", "evaluate_heartbeat_log", "evaluate_log_visibility", "reproduce"]

QUOTED = 3


def reproduce(project: str, scope: str, patterns: list[str]) -> str:
    """The `gcloud logging read` that shows the lines a finding quotes, and their neighbours."""
    return (
        f"gcloud logging read {shlex.quote(f'{scope} AND {pattern_filter(patterns)}')} --project {project} --limit 50"
    )


def _quote_lines(lines: list[LogLine]) -> str:
    shown = "; ".join(line.quoted() for line in lines[:QUOTED])
    return shown + (f" (+{len(lines) - QUOTED} more)" if len(lines) > QUOTED else "")


def _count(lines: list[LogLine], listing: Listing) -> str:
    return f"{len(lines):,}" if listing.complete else f"at least {len(lines):,}"


def _matching(lines: list[LogLine], patterns: list[str]) -> list[LogLine]:
    """The lines matching any pattern, by RE2 as Cloud Logging matched them: a server that
    ignored part of the filter cannot make an ordinary line count as an error."""
    compiled = [re2.compile(p) for p in patterns]
    return [line for line in lines if any(p.search(line.text) for p in compiled)]


def _cannot_tell(check: str, service: str, why: str, *, cause: str, **evidence) -> Finding:
    return Finding(check, service, Severity.P1, Outcome.ERROR, f"cannot tell: {why}", evidence, cause=cause)


def evaluate_boot(
    service: str,
    logs: BootLogs,
    *,
    serving: list[str],
    newest: str,
    since: datetime,
    project: str,
    scope: str,
    revisions: RevisionListing | None = None,
    region: str = "",
) -> Finding:
    """With `revisions`, a serving revision that fails at boot is fixed by a rollback first."""
    errors = _matching(logs.errors.lines, BOOT_ERROR_PATTERNS)
    silent = [revision for revision in serving if logs.latest.get(revision) is None]
    evidence: dict[str, Any] = {
        "since": since.isoformat(),
        "serving": serving,
        "newest": newest,
        "matches": len(errors),
        "complete": logs.errors.complete,
        "silent_revisions": silent,
    }
    how = reproduce(project, scope, BOOT_ERROR_PATTERNS)
    in_serving = [line for line in errors if line.revision in serving]
    in_newest = [line for line in errors if line.revision == newest and newest not in serving]
    if in_serving:
        failing = list(dict.fromkeys(line.revision for line in in_serving))
        if revisions is not None:
            how = rollback_first(service, revisions, failing, how, region=region, project=project)
        return failed(
            "boot",
            service,
            Severity.P0,
            f"boot errors in the serving revision "
            f"({_count(in_serving, logs.errors)} lines, newest first): {_quote_lines(in_serving)}",
            how,
            cause="boot-error",
            **evidence,
        )
    if not logs.errors.complete:
        return _cannot_tell(
            "boot",
            service,
            f"more than {logs.errors.limit:,} boot-error lines of "
            f"{', '.join(dict.fromkeys([*serving, newest]))} since {since:%Y-%m-%d %H:%M}Z and "
            f"none of the newest from the serving revision: {logs.errors.cut_note()}",
            cause="boot-logs-cut",
            **evidence,
        )
    if in_newest:
        return failed(
            "boot",
            service,
            Severity.P1,
            f"the newest revision {newest} fails at boot (traffic stays elsewhere): {_quote_lines(in_newest)}",
            how,
            cause="newest-boot-error",
            **evidence,
        )
    if silent:
        return _cannot_tell(
            "boot",
            service,
            f"no log entry at all from {', '.join(silent)} since "
            f"{since:%Y-%m-%d %H:%M}Z, so the absence of boot errors proves nothing: its logs do "
            "not reach Cloud Logging (exclusion, sink, or a revision that never ran)",
            cause="no-logs",
            **evidence,
        )
    latest = "; ".join(
        f"{revision} last logged at {line.timestamp:%Y-%m-%d %H:%M:%S}Z"
        for revision, line in logs.latest.items()
        if line is not None
    )
    return passed(
        "boot",
        service,
        f"no boot error in {', '.join(dict.fromkeys([*serving, newest]))} since {since:%Y-%m-%d %H:%M}Z ({latest})",
        **evidence,
    )


def evaluate_heartbeat_log(
    service: str,
    spec: HeartbeatLogSpec,
    logs: HeartbeatLogs,
    *,
    serving: list[str],
    since: datetime,
    project: str,
    scope: str,
) -> Finding:
    bad = _matching([line for line in logs.forbidden.lines if line.revision in serving], spec.forbidden)
    good = logs.latest_expected
    if good is not None and not (good.revision in serving and _matching([good], [spec.expected])):
        good = None
    evidence: dict[str, Any] = {
        "since": since.isoformat(),
        "expected": spec.expected,
        "forbidden": spec.forbidden,
        "bad_lines": len(bad),
        "bad_lines_complete": logs.forbidden.complete,
        "latest_good": good.quoted() if good else None,
    }
    if bad:
        return failed(
            "heartbeat-log",
            service,
            Severity.P1,
            f"old heartbeat format in the serving revision ({_count(bad, logs.forbidden)} lines, newest "
            f"first): {_quote_lines(bad)}",
            reproduce(project, scope, spec.forbidden),
            cause="old-heartbeat-format",
            **evidence,
        )
    if good is None:
        return failed(
            "heartbeat-log",
            service,
            Severity.P2,
            f"no line matching /{spec.expected}/ from the serving revision since {since:%Y-%m-%d %H:%M}Z: "
            "its processors did not run, or do not log heartbeats",
            reproduce(project, scope, [spec.expected, *spec.forbidden]),
            cause="no-heartbeat",
            **evidence,
        )
    return passed(
        "heartbeat-log", service, f"no old-format heartbeat line; latest heartbeat: {good.quoted()}", **evidence
    )


def evaluate_log_visibility(
    service: str, info_line: LogLine | None, *, serving: list[str], since: datetime, region: str, project: str
) -> Finding:
    evidence: dict[str, Any] = {"since": since.isoformat(), "serving": serving}
    if info_line is None:
        return failed(
            "log-visibility",
            service,
            Severity.P1,
            f"no INFO application line from {', '.join(serving)} since {since:%Y-%m-%d %H:%M}Z, only "
            "request logs and warnings at most: logger.info() output is being swallowed (seed 003's "
            "gunicorn blackout)",
            f"gcloud run services update {service} --update-env-vars GUNICORN_CMD_ARGS=--log-level=info "
            f"--region {region} --project {project}",
            cause="info-swallowed",
            **evidence,
        )
    return passed("log-visibility", service, f"INFO lines get out, e.g. {info_line.quoted()}", **evidence)

"""Log checks over one query's lines: boot errors (seeds 000, 004), the heartbeat format (seed
001) and whether INFO application lines get out at all (seed 003's gunicorn blackout)."""

from __future__ import annotations

import re
import shlex
from datetime import datetime

from ..findings import Finding, Severity, failed, passed
from ..inventory import HeartbeatLogSpec
from ..logs import LogLine, pattern_filter

QUOTED = 3
BOOT_ERROR_PATTERNS = [
    r"ImportError",
    r"ModuleNotFoundError",
    r"Traceback \(most recent call last\)",
    r"Worker failed to boot",
    r"Container called exit\([1-9][0-9]*\)",
]


def reproduce(project: str, scope: str, patterns: list[str]) -> str:
    """The `gcloud logging read` that shows the lines a finding quotes, and their neighbours."""
    return f"gcloud logging read {shlex.quote(f'{scope} AND {pattern_filter(patterns)}')} --project {project} --limit 50"


def _quote_lines(lines: list[LogLine]) -> str:
    shown = "; ".join(line.quoted() for line in lines[:QUOTED])
    return shown + (f" (+{len(lines) - QUOTED} more)" if len(lines) > QUOTED else "")


def _matching(lines: list[LogLine], patterns: list[str]) -> list[LogLine]:
    compiled = [re.compile(p) for p in patterns]
    return [line for line in lines if any(p.search(line.text) for p in compiled)]


def evaluate_boot(service: str, lines: list[LogLine], *, serving: list[str], newest: str, since: datetime,
                  project: str, scope: str) -> Finding:
    errors = _matching(lines, BOOT_ERROR_PATTERNS)
    evidence = {"since": since.isoformat(), "serving": serving, "newest": newest, "matches": len(errors)}
    in_serving = [line for line in errors if line.revision in serving]
    in_newest = [line for line in errors if line.revision == newest and newest not in serving]
    if in_serving:
        return failed("boot", service, Severity.P0, f"boot errors in the serving revision: {_quote_lines(in_serving)}",
                      reproduce(project, scope, BOOT_ERROR_PATTERNS), **evidence)
    if in_newest:
        return failed("boot", service, Severity.P1,
                      f"the newest revision {newest} fails at boot (traffic stays elsewhere): {_quote_lines(in_newest)}",
                      reproduce(project, scope, BOOT_ERROR_PATTERNS), **evidence)
    return passed("boot", service, f"no boot error in {', '.join(dict.fromkeys([*serving, newest]))} "
                                   f"since {since:%Y-%m-%d %H:%M}Z", **evidence)


def evaluate_heartbeat_log(service: str, spec: HeartbeatLogSpec, lines: list[LogLine], *, serving: list[str],
                           since: datetime, project: str, scope: str) -> Finding:
    mine = [line for line in lines if line.revision in serving]
    bad = _matching(mine, spec.forbidden)
    good = _matching(mine, [spec.expected])
    evidence = {"since": since.isoformat(), "expected": spec.expected, "forbidden": spec.forbidden,
                "good_lines": len(good), "bad_lines": len(bad)}
    if bad:
        return failed("heartbeat-log", service, Severity.P1,
                      f"old heartbeat format in the serving revision ({len(bad)} lines): {_quote_lines(bad)}",
                      reproduce(project, scope, spec.forbidden), **evidence)
    if not good:
        return failed("heartbeat-log", service, Severity.P2,
                      f"no line matching /{spec.expected}/ from the serving revision since {since:%Y-%m-%d %H:%M}Z: "
                      "its processors did not run, or do not log heartbeats",
                      reproduce(project, scope, [spec.expected, *spec.forbidden]), **evidence)
    return passed("heartbeat-log", service, f"{len(good)} heartbeat lines, latest: {good[-1].quoted()}", **evidence)


def evaluate_log_visibility(service: str, info_line: LogLine | None, *, serving: list[str], since: datetime,
                            region: str, project: str) -> Finding:
    evidence = {"since": since.isoformat(), "serving": serving}
    if info_line is None:
        return failed("log-visibility", service, Severity.P1,
                      f"no INFO application line from {', '.join(serving)} since {since:%Y-%m-%d %H:%M}Z, only "
                      "request logs and warnings at most: logger.info() output is being swallowed (seed 003's "
                      "gunicorn blackout)",
                      f"gcloud run services update {service} --update-env-vars GUNICORN_CMD_ARGS=--log-level=info "
                      f"--region {region} --project {project}", **evidence)
    return passed("log-visibility", service, f"INFO lines get out, e.g. {info_line.quoted()}", **evidence)

"""The fault matrix: every check against every fault on an endpoint it reads, judged from report.json.

A *fault configuration* is one fault on one endpoint family of one backend (FAMILIES); one
suite run (a pytest subprocess, as a user runs it) per configuration checks one service, one
job and the project-wide checks at once against the `healthy` sandbox, where every check passes
without the fault. A *cell* is (check, configuration) where the check reads that family; its
verdict:

  .  correct: transient fault and the check passed after retrying, or a permanent fault and the
     check did not pass and its summary names the cause (Fault.cause)
  F  false green: a permanent or data-destroying fault and the check passed anyway (duplicates
     and page-token faults, which leave the first page true, may pass only if the check's
     evidence equals the fault-free run's)
  H  hang: the session ran past --budget + MARGIN_S (report.json's started..finished), or the
     run never finished and was killed after KILL_AFTER_S
  U  unnamed cause: the check did not pass, but nothing in its summary names what happened
  E  false red: a transient fault, retried away by a correct reader, and the check did not pass
  0  the fault never fired in that run: the cell proves nothing (the matrix's ROWS are wrong)
  -  not a cell: the check does not read that family (not counted)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SERVICE = "nba-phase3-analytics-processors"
JOB = "nbac-team-boxscore-processor-backfill"
DEADLINE_S = 3
BUDGET_S = 20
# A run is a hang when the session (deploycheck's own clock: report.json's started..finished) ran
# past --budget by more than MARGIN_S, the time one in-flight read may still take. Python's
# start-up is outside that clock; it only meets the hard KILL_AFTER_S, which catches a run that
# never writes its report, however slowly a busy CI machine starts processes.
MARGIN_S = DEADLINE_S + 2
KILL_AFTER_S = BUDGET_S + 60

# Endpoint families: (backend, path regex of the proxy rule).
_RUN = r"^/v2/projects/[^/]+/locations/[^/]+/(services|jobs)"
FAMILIES = {
    "run-get": ("api", _RUN + r"/[^/]+(/revisions/[^/]+)?$"),
    "run-list": ("api", _RUN + r"$"),
    # A service's revisions.list: the gate reads its serving and newest revisions from it.
    "run-revisions": ("api", r"^/v2/projects/[^/]+/locations/[^/]+/services/[^/]+/revisions$"),
    "iam": ("api", r":getIamPolicy$|^/v1/roles/|^/v3/(projects|folders|organizations)/[^/:]+$"),
    "logging": ("api", r"^/v2/entries:list$"),
    "manifests": ("registry", r"/manifests/"),
    "blobs": ("registry", r"/blobs/"),
    "runquery": ("firestore", r"/RunQuery$"),
}

# Rows: (check, resource kind) -> families it reads. "manifests-head" is a check that resolves a tag
# with a HEAD, which no fault that only changes bodies can reach; on Google's registries (the
# sandbox's image names) a tag is resolved by the GET of its manifest, so the digest check reads
# manifest bodies too.
# traffic reads the revisions listing only for its advice (the rollback target), never for its verdict.
ROWS = {
    ("traffic", "service"): {"run-get"},
    ("rollout", "service"): {"run-get", "run-revisions"},
    ("digest", "service"): {"run-get", "run-revisions", "manifests", "manifests-head"},
    ("commit", "service"): {"run-get", "run-revisions", "manifests", "manifests-head", "blobs"},
    ("code", "service"): {"run-get", "run-revisions", "manifests", "manifests-head", "blobs"},
    ("iam", "service"): {"run-get", "run-revisions", "iam"},
    ("boot", "service"): {"run-get", "run-revisions", "logging"},
    ("heartbeat-log", "service"): {"run-get", "run-revisions", "logging"},
    ("log-visibility", "service"): {"run-get", "run-revisions", "logging"},
    ("code", "job"): {"run-get", "manifests", "manifests-head", "blobs"},
    ("stale-jobs", "job"): {"run-get", "manifests", "manifests-head", "blobs"},
    ("orphans", "project"): {"run-list"},
    ("heartbeat-docs", "collection"): {"runquery"},
}

_STATUS_CAUSES = {
    503: r"503|UNAVAILABLE|unavailable",
    500: r"500|INTERNAL|[Ii]nternal",
    429: r"429|RESOURCE_EXHAUSTED|[Qq]uota|[Tt]oo [Mm]any",
    504: r"504|DEADLINE_EXCEEDED|timed out|deadline",
    403: r"403|PERMISSION_DENIED|[Pp]ermission",
}
_TIMEOUT = r"deadline|timed? ?out|timeout|budget"
_BROKEN_CONNECTION = r"reset|[Cc]onnection|disconnect|closed|aborted|refused|unreachable|reach|UNAVAILABLE|down"


@dataclass(frozen=True)
class Fault:
    name: str
    rule: dict
    cause: str  # regex a non-pass summary must match
    transient: bool = False
    body_only: bool = False  # changes bodies only: a HEAD answer is untouched
    # A backend killed mid-run destroys nothing already read: a pass is true if the check got
    # its facts before the kill; a non-pass must still name the cause.
    pass_ok: bool = False
    # Destroys nothing a check may need: page-token faults leave the first page true, and
    # duplicates must be counted once. A pass is right only if it concluded what the fault-free
    # run concluded, from the same evidence (e.g. "the latest INFO line" needs no second page).
    same_evidence_ok: bool = False


def _status(code: int, times: int | None = None) -> Fault:
    rule = {"fault": "status", "status": code, **({"times": times} if times else {})}
    name = f"{code}x{times}" if times else f"{code}"
    return Fault(name, rule, _STATUS_CAUSES[code], transient=times is not None)


FAULTS = {
    "503x2": _status(503, 2),
    "429x2": _status(429, 2),
    "503": _status(503),
    "500": _status(500),
    "429": _status(429),
    "504": _status(504),
    "403": _status(403),
    "hang": Fault("hang", {"fault": "hang"}, _TIMEOUT),
    "trickle": Fault("trickle", {"fault": "trickle"}, _TIMEOUT, body_only=True),
    "reset": Fault("reset", {"fault": "reset"}, _BROKEN_CONNECTION),
    "truncate": Fault(
        "truncate",
        {"fault": "truncate"},
        r"truncat|incomplete|[Ii]ncompleteRead|ended|closed|peer|length|[Cc]hunked|[Pp]rotocol|reset"
        r"|UNAVAILABLE|malformed|not JSON|invalid",
        body_only=True,
    ),
    "corrupt": Fault(
        "corrupt",
        {"fault": "corrupt"},
        r"corrupt|not JSON|malformed|invalid|[Dd]ecod|UTF-?8|utf-?8|hash|digest|deserializ|parse",
        body_only=True,
    ),
    "empty": Fault("empty", {"fault": "empty"}, r"empty|missing|[Nn]o \w+|none|0 documents", body_only=True),
    "down": Fault("down", {"fault": "down"}, _BROKEN_CONNECTION),
    # Killed mid-run: the first two requests of the family are answered, nothing after them.
    "down-mid": Fault("down-mid", {"fault": "down", "after": 2}, _BROKEN_CONNECTION, pass_ok=True),
    # The same where a run makes only two requests of the family (services.get and jobs.get).
    "down-mid1": Fault("down-mid1", {"fault": "down", "after": 1}, _BROKEN_CONNECTION, pass_ok=True),
    "token-repeat": Fault(
        "token-repeat", {"fault": "page_token_repeat"}, r"page|token", body_only=True, same_evidence_ok=True
    ),
    "token-cycle": Fault(
        "token-cycle", {"fault": "page_token_cycle"}, r"page|token", body_only=True, same_evidence_ok=True
    ),
    "empty-pages": Fault(
        "empty-pages", {"fault": "empty_pages"}, r"page|token|" + _TIMEOUT, body_only=True, same_evidence_ok=True
    ),
    "duplicate": Fault("duplicate", {"fault": "duplicate"}, r"duplicate", body_only=True, same_evidence_ok=True),
}

# Which faults each family gets (a fault with no meaning there, e.g. page tokens on a GET, is left out).
_COMMON = ["503x2", "503", "hang", "reset", "truncate", "corrupt", "empty", "down"]
PLAN = {
    "run-get": [
        "503x2",
        "429x2",
        "503",
        "500",
        "429",
        "504",
        "403",
        "hang",
        "trickle",
        "reset",
        "truncate",
        "corrupt",
        "empty",
        "down",
        "down-mid1",
    ],
    "run-list": _COMMON + ["token-repeat", "token-cycle", "empty-pages", "duplicate"],
    "run-revisions": _COMMON + ["403", "token-repeat", "token-cycle", "empty-pages", "duplicate"],
    "iam": _COMMON + ["403"],
    "logging": _COMMON + ["429", "trickle", "token-repeat", "token-cycle", "empty-pages", "duplicate"],
    "manifests": _COMMON + ["500", "trickle"],
    "blobs": _COMMON + ["trickle", "down-mid"],
    "runquery": _COMMON + ["429", "403", "504", "trickle", "duplicate"],
}


@dataclass(frozen=True)
class Config:
    family: str
    fault: Fault

    @property
    def backend(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def label(self) -> str:
        return f"{self.family}:{self.fault.name}"

    @property
    def pattern(self) -> re.Pattern:
        cause = self.fault.cause
        if self.backend == "registry" and self.fault.name in ("empty", "truncate", "corrupt"):
            # Content-addressed reads: other bytes than asked for are named by their digest mismatch.
            cause += r"|hash|digest|corrupt"
        return re.compile(cause, re.IGNORECASE)

    def rules(self) -> list[dict]:
        return [{**self.fault.rule, "path": FAMILIES[self.family][1]}]

    def reads(self, row: tuple[str, str]) -> bool:
        families = ROWS[row]
        if self.family == "manifests":
            return ("manifests" in families) if self.fault.body_only else ("manifests-head" in families)
        return self.family in families


def configurations() -> list[Config]:
    return [Config(family, FAULTS[name]) for family, names in PLAN.items() for name in names]


@dataclass
class RunResult:
    config: Config | None
    elapsed_s: float
    timed_out: bool
    findings: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    output: str = ""
    hits: int | None = None  # requests the fault broke (None: not asked)
    session_s: float | None = None  # the session's own duration, from report.json


def row_of(finding: dict) -> tuple[str, str]:
    resource = finding["resource"]
    kind = {SERVICE: "service", JOB: "job", "processor_heartbeats": "collection"}.get(resource, "project")
    return finding["check"], kind


def run_suite(checkout: Path, state_file: Path, name: str, config: Config | None) -> RunResult:
    """One suite run in `checkout` against the sandbox in `state_file`, killed after KILL_AFTER_S."""
    report_dir = checkout / "runs" / name
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--target",
        "sandbox:healthy",
        "--service",
        SERVICE,
        "--job",
        JOB,
        "--deadline",
        str(DEADLINE_S),
        "--budget",
        str(BUDGET_S),
        "--report-dir",
        str(report_dir),
        "--cache-dir",
        str(report_dir / "cache"),
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    env = {**os.environ, "DEPLOYCHECK_SANDBOX_STATE": str(state_file), "HOME": str(checkout)}
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=KILL_AFTER_S)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        output, _ = process.communicate()
        timed_out = True
    result = RunResult(config, time.monotonic() - began, timed_out, output=output.decode(errors="replace"))
    report = report_dir / "report.json"
    if report.is_file() and not timed_out:
        document = json.loads(report.read_text())
        for finding in document["findings"]:
            result.findings.setdefault(row_of(finding), []).append(finding)
        summary = document["summary"]
        session_s = datetime.fromisoformat(summary["finished"]) - datetime.fromisoformat(summary["started"])
        result.session_s = session_s.total_seconds()
        result.timed_out = result.session_s > BUDGET_S + MARGIN_S
    return result


_RANK = {"pass": 0, "fail": 1, "error": 2}


def outcome(findings: list[dict]) -> str:
    if not findings:
        return "missing"
    return max((f["outcome"] for f in findings), key=lambda value: _RANK.get(value, 3))


def _evidence(findings: list[dict]) -> list:
    volatile = {"waited_s", "elapsed_s", "bytes_read", "bytes_from_cache", "since"}
    return sorted(
        json.dumps({k: v for k, v in f.get("evidence", {}).items() if k not in volatile}, sort_keys=True)
        for f in findings
    )


def verdict(run: RunResult, row: tuple[str, str], baseline: RunResult) -> str:
    fault = run.config.fault
    if run.timed_out:
        return "H"
    if run.hits == 0:
        return "0"  # the fault never fired: this cell proves nothing (a wrong ROWS entry)
    findings = run.findings.get(row, [])
    result = outcome(findings)
    if fault.transient:
        return "." if result == "pass" else "E"
    if result == "pass" and fault.pass_ok:
        return "."
    if result == "pass":
        if fault.same_evidence_ok and _evidence(findings) == _evidence(baseline.findings.get(row, [])):
            return "."  # the fault changed nothing the check concluded, nor what it concluded it from
        return "F"
    if result == "missing":
        return "U"
    text = " ".join(f["summary"] for f in findings if f["outcome"] != "pass")
    return "." if run.config.pattern.search(text) else "U"


@dataclass
class Matrix:
    runs: list[RunResult]
    baseline: RunResult

    def cells(self):
        for run in self.runs:
            for row in ROWS:
                if run.config.reads(row):
                    yield row, run, verdict(run, row, self.baseline)

    def counts(self) -> dict[str, int]:
        counts = {"N": 0, "F": 0, "H": 0, "U": 0, "E": 0, "0": 0}
        for _, _, symbol in self.cells():
            counts["N"] += 1
            if symbol in counts:
                counts[symbol] += 1
        return counts

    def table(self) -> str:
        verdicts = {(row, run.config.label): symbol for row, run, symbol in self.cells()}
        families = list(dict.fromkeys(run.config.family for run in self.runs))
        width = max(len(f"{check}[{kind}]") for check, kind in ROWS)
        lines = [
            "columns: "
            + "; ".join(
                f"{family}: " + " ".join(run.config.fault.name for run in self.runs if run.config.family == family)
                for family in families
            )
        ]
        header = (
            " " * width
            + " "
            + " | ".join(
                "".join(str(index % 10) for index, run in enumerate(r for r in self.runs if r.config.family == family))
                for family in families
            )
        )
        lines.append(header)
        for row in ROWS:
            cells = " | ".join(
                "".join(verdicts.get((row, run.config.label), "-") for run in self.runs if run.config.family == family)
                for family in families
            )
            lines.append(f"{row[0] + '[' + row[1] + ']':<{width}} {cells}")
        counts = self.counts()
        lines.append(f"false reds on transient faults (E): {counts['E']}; faults that never fired (0): {counts['0']}")
        sessions = [run.session_s for run in self.runs if run.session_s is not None]
        if sessions:
            lines.append(
                f"longest session {max(sessions):.1f}s against --budget {BUDGET_S}s + {MARGIN_S}s margin "
                f"(--deadline {DEADLINE_S}s)"
            )
        lines.append(
            f"fault matrix: {counts['N']} cells, {counts['F']} false greens, {counts['H']} hangs, "
            f"{counts['U']} unnamed causes"
        )
        return "\n".join(lines)

    def failures(self) -> list[str]:
        lines = []
        for row, run, symbol in self.cells():
            if symbol in ("F", "H", "U", "E", "0"):
                findings = run.findings.get(row, [])
                summary = " / ".join(f"{f['outcome']}: {f['summary']}" for f in findings) or "(no finding)"
                if run.timed_out:
                    summary = (
                        f"session took {run.session_s:.0f}s against --budget {BUDGET_S}s"
                        if run.session_s is not None
                        else f"run killed after {run.elapsed_s:.0f}s"
                    )
                lines.append(f"{symbol} {row[0]}[{row[1]}] x {run.config.label}: {summary[:300]}")
        return lines

"""deploycheck gate / nightly: the two pytest runs a team schedules, with their options named.

`gate SERVICE` is `pytest -m postdeploy --service SERVICE`, `nightly` is `pytest -m nightly`;
the options below are passed to pytest as given, and so is everything after `--`. Values are
passed as `--option=VALUE`, so pytest never takes a path for a test path when it picks its
rootdir. pytest runs in this process: the exit code is pytest's.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from typing import Any

from ..argtypes import commit_sha, severity_threshold
from .common import EXIT_NOTHING_SELECTED


@dataclass(frozen=True)
class Passed:
    """An option deploycheck names in its help and hands to pytest unchanged."""

    flag: str
    metavar: str
    help: str
    type: Any = str


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


COMMON_OPTIONS = (
    Passed("--inventory", "PATH", "the inventory (default: ./services.yaml)"),
    Passed(
        "--target",
        "gcp|sandbox:SCENARIO",
        "gcp (Application Default Credentials; default), or the local "
        "stand-in: sandbox:auto (generated from the inventory), sandbox:healthy, "
        "sandbox:incident or a scenario directory",
    ),
    Passed("--report-dir", "DIR", "write report.json, report.md, report.txt and report.html to DIR"),
    Passed("--previous", "PATH", "an earlier report.json (or a directory of them): mark findings new, still, fixed"),
    Passed("--history", "DIR", "keep each run's report.json in DIR and draw trends from them"),
    Passed(
        "--fail-on",
        "P0|P1|P2|P3",
        "the lowest severity that fails the run (default: any failure fails); a fact not observed (ERROR) always fails",
        severity_threshold,
    ),
    Passed("--project", "PROJECT", "the Google Cloud project (overrides the inventory's)"),
    Passed("--region", "REGION", "the Cloud Run region (overrides the inventory's)"),
    Passed("--shard", "K/N", "run the K-th of N slices of the checks (for parallel CI jobs)"),
)
GATE_OPTIONS = (
    Passed(
        "--expect-commit",
        "SHA",
        "fail unless the running image was built from this commit; an empty value is refused",
        commit_sha,
    ),
    Passed("--wait", "SECONDS", "poll until the newest revision is ready or failed, up to SECONDS", _seconds),
)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _add_options(parser: argparse.ArgumentParser, options: tuple[Passed, ...]) -> None:
    for option in options:
        parser.add_argument(option.flag, type=option.type, metavar=option.metavar, help=option.help)


def _add_common(parser: argparse.ArgumentParser) -> None:
    _add_options(parser, COMMON_OPTIONS)
    parser.add_argument("-n", "--numprocesses", metavar="N", help="run checks in N processes (pytest-xdist; or auto)")
    parser.set_defaults(takes_pytest_args=True)


def register(commands: argparse._SubParsersAction) -> None:
    gate = commands.add_parser(
        "gate",
        help="verify a deploy: pytest -m postdeploy --service SERVICE",
        description="Verify a deploy minutes after it: the postdeploy checks of SERVICE (pytest -m postdeploy "
        "--service SERVICE). Arguments after `--` go to pytest unchanged.",
        epilog="exit codes: 0 every check passed, 1 a check failed or could not observe its fact, 4 bad usage or "
        "the run cannot start (no credentials, bad inventory), 5 no check selected (an error for a gate)",
    )
    gate.add_argument("services", nargs="+", metavar="SERVICE", help="the service(s) just deployed")
    _add_options(gate, GATE_OPTIONS)
    _add_common(gate)
    gate.set_defaults(run=run_gate)
    nightly = commands.add_parser(
        "nightly",
        help="the nightly drift report: pytest -m nightly",
        description="Project-wide checks for the nightly report (pytest -m nightly). Arguments after `--` go to "
        "pytest unchanged.",
    )
    _add_common(nightly)
    nightly.set_defaults(run=run_nightly)


def pytest_arguments(args: argparse.Namespace, options: tuple[Passed, ...]) -> list[str]:
    """The options given, as pytest takes them."""
    passed = [
        f"{option.flag}={getattr(args, _dest(option.flag))}"
        for option in options
        if getattr(args, _dest(option.flag)) is not None
    ]
    if args.numprocesses is not None:
        # -p xdist: loaded by name also where PYTEST_DISABLE_PLUGIN_AUTOLOAD is set.
        passed = ["-p", "xdist", f"--numprocesses={args.numprocesses}", *passed]
    return passed


def gate_arguments(args: argparse.Namespace) -> list[str]:
    return [
        "-m",
        "postdeploy",
        *(f"--service={name}" for name in args.services),
        *pytest_arguments(args, GATE_OPTIONS + COMMON_OPTIONS),
        *args.pytest_args,
    ]


def nightly_arguments(args: argparse.Namespace) -> list[str]:
    return ["-m", "nightly", *pytest_arguments(args, COMMON_OPTIONS), *args.pytest_args]


def _run(arguments: list[str]) -> int:
    from deploycheck_pytest.run import run_pytest  # pytest only for the commands that run it

    return run_pytest(arguments)


def run_gate(args: argparse.Namespace) -> int:
    code = _run(gate_arguments(args))
    if code == EXIT_NOTHING_SELECTED:
        services = " ".join(shlex.quote(name) for name in args.services)
        print(
            f"deploycheck: error: `deploycheck gate {services}` selected no check, so it proves nothing about "
            f"the deploy. Every postdeploy check was deselected (not configured for {services}), or the arguments "
            f"after `--` (test paths, -k) left none. `deploycheck gate {services} -- --collect-only -q` lists what "
            f"is collected.",
            file=sys.stderr,
        )
    return code


def run_nightly(args: argparse.Namespace) -> int:
    code = _run(nightly_arguments(args))
    if code == EXIT_NOTHING_SELECTED:
        print(
            "deploycheck: error: `deploycheck nightly` selected no check: the inventory configures none of the "
            "nightly checks, or the arguments after `--` left none. `deploycheck nightly -- --collect-only -q` "
            "lists what is collected.",
            file=sys.stderr,
        )
    return code

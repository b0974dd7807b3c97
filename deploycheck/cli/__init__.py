"""deploycheck COMMAND: the console script (`python -m deploycheck` is the same).

The checks run under pytest: `deploycheck gate` and `deploycheck nightly` are pytest runs with
the options a deploy gate and a nightly job need; the other commands are tools around them.

Each command is a module of this package with `register(commands)`, which adds its subparser
to `commands` (the subparsers of `deploycheck`, or of a command group such as `inventory`) and
sets `run` (parsed arguments -> exit code) as its default. A new command is a new module whose
`register` is called from COMMANDS below (or from its group's `register`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from .. import __version__
from . import checks, inventory, report, sandbox
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliParser, split_passthrough

COMMANDS = (checks, inventory, sandbox, report)
DESCRIPTION = (
    "Verify that what runs on Google Cloud Run is what the team thinks runs there: a deploy gate and a "
    "nightly drift report over the services and jobs of services.yaml, run with pytest."
)


def build_parser() -> CliParser:
    parser = CliParser(
        prog="deploycheck", description=DESCRIPTION, epilog="`deploycheck COMMAND --help` for each command's options"
    )
    parser.add_argument("--version", action="version", version=f"deploycheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    own, passthrough = split_passthrough(argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if passthrough is not None and not getattr(args, "takes_pytest_args", False):
        parser.error(
            f"`deploycheck {args.command}` takes no arguments after `--` (gate and nightly pass them to pytest)"
        )
    args.pytest_args = passthrough or []
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BrokenPipeError:
        # The reader went away (`deploycheck inventory schema | head`); nothing left to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("deploycheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

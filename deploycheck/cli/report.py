"""deploycheck report merge: the reports of a sharded run (--shard K/N) as one."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    from ..report import merge

    group = commands.add_parser(
        "report", help="reports: merge the shards of a sharded run", description="Reports written by --report-dir."
    )
    report_commands = group.add_subparsers(dest="report_command", metavar="COMMAND", required=True)
    command = report_commands.add_parser(
        "merge",
        help="combine the reports of a sharded run (--shard K/N) into one",
        description=(merge.__doc__ or "").splitlines()[0],
    )
    merge.add_arguments(command)
    command.set_defaults(run=merge.run)
    # The name `python -m deploycheck` had for it on the way; not listed in help.
    alias = commands.add_parser("report-merge")
    merge.add_arguments(alias)
    alias.set_defaults(run=merge.run)

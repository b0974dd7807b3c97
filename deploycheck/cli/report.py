"""deploycheck report merge DIR... --out DIR: the reports of a sharded run (--shard K/N) as one.

The merge itself is deploycheck.report.merge (it refuses shards of different runs, inventories or
selections, and a shard missing or given twice, exit 4); exit 1 when the merged run has a
failing finding, 0 when every finding passed.
"""

from __future__ import annotations

import argparse

from ..report import merge


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("report", help="reports: merge the reports of a sharded run into one",
                                description="Reports of deploycheck runs.")
    report_commands = group.add_subparsers(dest="report_command", metavar="COMMAND", required=True)
    command = report_commands.add_parser("merge", help="combine the report.json of every shard into one "
                                                       "report.json/md/txt/html", description=merge.__doc__.splitlines()[0])
    merge.add_arguments(command).set_defaults(run=merge.run)
    # The name `python -m deploycheck` had before the command grew groups; not listed in help.
    merge.add_arguments(commands.add_parser("report-merge")).set_defaults(run=merge.run)

"""python -m deploycheck COMMAND: tools around the suite (the checks themselves run under pytest).

Each command is one `_add_*` function registering a subparser whose `run` returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .inventory import InventoryError, inventory_json_schema, load_inventory

EXIT_INPUT_ERROR = 2


def _print_schema(args: argparse.Namespace) -> int:
    print(json.dumps(inventory_json_schema(), indent=2))
    return 0


def _check_inventory(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.path)
    except InventoryError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT_ERROR
    print(f"{args.path}: {len(inventory.services)} services, {len(inventory.jobs)} jobs, OK")
    return 0


def _add_schema(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("schema", help="print the JSON Schema of services.yaml (services.schema.json)")
    command.set_defaults(run=_print_schema)


def _add_check_inventory(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("check-inventory", help="validate an inventory file, no network access")
    command.add_argument("path", nargs="?", type=Path, default=Path("services.yaml"),
                         help="the inventory (default: ./services.yaml)")
    command.set_defaults(run=_check_inventory)


def _add_report_merge(commands: argparse._SubParsersAction) -> None:
    from .report import merge

    command = commands.add_parser("report-merge", help="combine the reports of a sharded run (--shard K/N) into one",
                                  description=merge.__doc__.splitlines()[0])
    merge.add_arguments(command)
    command.set_defaults(run=merge.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploycheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_schema(commands)
    _add_check_inventory(commands)
    _add_report_merge(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())

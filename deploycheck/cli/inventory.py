"""deploycheck inventory check|schema: the inventory, without touching the network.

`inventory check` exits 4 on a bad file, as pytest does for the same file, and prints the same
`file:line:col: field: message` lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..inventory import InventoryError, inventory_json_schema, load_inventory
from .common import EXIT_USAGE

DEFAULT_INVENTORY = Path("services.yaml")


def check(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.path)
    except InventoryError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.path}: {len(inventory.services)} services, {len(inventory.jobs)} jobs, OK")
    return 0


def schema(args: argparse.Namespace) -> int:
    print(json.dumps(inventory_json_schema(), indent=2))
    return 0


def _add_check(commands: argparse._SubParsersAction, name: str, listed_as: str | None = None) -> None:
    """`listed_as`: the line in `--help`; an alias without one is accepted but not listed."""
    command = commands.add_parser(name, help=listed_as) if listed_as else commands.add_parser(name)
    command.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=DEFAULT_INVENTORY,
        metavar="PATH",
        help="the inventory (default: ./services.yaml)",
    )
    command.set_defaults(run=check)


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "inventory",
        help="the inventory (services.yaml): check it, print its JSON Schema",
        description="The inventory (services.yaml).",
    )
    inventory_commands = group.add_subparsers(dest="inventory_command", metavar="COMMAND", required=True)
    _add_check(
        inventory_commands,
        "check",
        "validate an inventory file: every error as file:line:col: field: message, exit 4",
    )
    inventory_commands.add_parser("schema", help="print the JSON Schema of services.yaml").set_defaults(run=schema)
    # The names `python -m deploycheck` had before the command grew groups; not listed in help.
    _add_check(commands, "check-inventory")
    commands.add_parser("schema").set_defaults(run=schema)

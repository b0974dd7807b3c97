"""deploycheck inventory check|schema|import: the inventory; only import reads the fleet.

`inventory check` exits 4 on a bad file, as pytest does for the same file, and prints the same
`file:line:col: field: message` lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import CredentialsError, DeploycheckError, InputError
from ..inventory import InventoryError, inventory_json_schema, load_inventory
from .common import EXIT_FAILED, EXIT_USAGE

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


def import_(args: argparse.Namespace) -> int:
    from ..inventory_import import import_inventory

    def say(line: str) -> None:
        print(f"deploycheck: {line}", file=sys.stderr)

    try:
        text = import_inventory(
            args.project, args.region, target=args.target, output=args.output, force=args.force, progress=say
        )
    except (InputError, CredentialsError) as exc:
        print(f"deploycheck inventory import: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeploycheckError as exc:
        print(f"deploycheck inventory import: could not read the fleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.output is None:
        sys.stdout.write(text)
    return 0


def _add_import(commands: argparse._SubParsersAction, name: str, listed_as: str | None = None) -> None:
    command = commands.add_parser(name, help=listed_as) if listed_as else commands.add_parser(name)
    command.add_argument("--project", required=True, help="the Google Cloud project to read")
    command.add_argument("--region", required=True, help="the Cloud Run region to read")
    command.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the draft here (default: print it); an existing file needs --force",
    )
    command.add_argument("--force", action="store_true", help="replace an existing --output file")
    command.add_argument(
        "--target",
        default="gcp",
        metavar="gcp|sandbox:SCENARIO",
        help="read the real project (default, Application Default Credentials) or a local stand-in",
    )
    command.set_defaults(run=import_)


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
        help="the inventory (services.yaml): check it, print its JSON Schema, import it from the fleet",
        description="The inventory (services.yaml).",
    )
    inventory_commands = group.add_subparsers(dest="inventory_command", metavar="COMMAND", required=True)
    _add_check(
        inventory_commands,
        "check",
        "validate an inventory file: every error as file:line:col: field: message, exit 4",
    )
    inventory_commands.add_parser("schema", help="print the JSON Schema of services.yaml").set_defaults(run=schema)
    _add_import(
        inventory_commands,
        "import",
        "draft services.yaml from the services, jobs, images, accounts and "
        "roles deployed (read-only; every guess is marked in a comment)",
    )
    # The names `python -m deploycheck` had before the command grew groups; not listed in help.
    _add_check(commands, "check-inventory")
    _add_import(commands, "inventory-import")
    commands.add_parser("schema").set_defaults(run=schema)

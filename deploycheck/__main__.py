"""python -m deploycheck COMMAND: tools around the suite (the checks themselves run under pytest).

Each command is one `_add_*` function registering a subparser whose `run` returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import CredentialsError, DeploycheckError, InputError
from .inventory import InventoryError, inventory_json_schema, load_inventory

EXIT_INPUT_ERROR = 2
EXIT_FAILED = 1  # a read the command needed failed (an API error, a timeout)
EXIT_CANNOT_START = 4  # bad usage, no credentials: nothing was read


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


def _import_inventory(args: argparse.Namespace) -> int:
    from .inventory_import import import_inventory

    def say(line: str) -> None:
        print(f"deploycheck: {line}", file=sys.stderr)

    try:
        text = import_inventory(args.project, args.region, target=args.target, output=args.output, force=args.force,
                                progress=say)
    except (InputError, CredentialsError) as exc:
        print(f"deploycheck inventory import: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except DeploycheckError as exc:
        print(f"deploycheck inventory import: could not read the fleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.output is None:
        sys.stdout.write(text)
    return 0


def add_import_arguments(command: argparse.ArgumentParser) -> None:
    """The options of `inventory import` (also for the `deploycheck inventory import` subcommand)."""
    command.add_argument("--project", required=True, help="the Google Cloud project to read")
    command.add_argument("--region", required=True, help="the Cloud Run region to read")
    command.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                         help="write the draft here (default: print it); an existing file needs --force")
    command.add_argument("--force", action="store_true", help="replace an existing --output file")
    command.add_argument("--target", default="gcp", metavar="gcp|sandbox:SCENARIO",
                         help="read the real project (default, Application Default Credentials) or a local stand-in")
    command.set_defaults(run=_import_inventory)


def _add_import(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "inventory-import", help="draft services.yaml from the services, jobs, images, accounts and roles deployed "
                                 "(read-only; every guess is marked in a comment)")
    add_import_arguments(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploycheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_schema(commands)
    _add_check_inventory(commands)
    _add_import(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())

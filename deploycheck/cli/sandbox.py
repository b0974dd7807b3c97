"""deploycheck sandbox up|down|status: a long-lived local stand-in that runs reuse.

The same commands as `python -m deploycheck.sandbox`; `--target sandbox:SCENARIO` reuses a
sandbox of that scenario recorded in ./.deploycheck/sandbox.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..target import SANDBOX_STATE_FILE
from .common import EXIT_USAGE


def _guarded(args: argparse.Namespace) -> int:
    # The sandbox's modules load only for these commands: a gate against gcp never imports them.
    from ..sandbox import __main__ as control

    if args.sandbox_command == "up":
        return control.guarded(
            control.up,
            args.scenario,
            inventory=args.inventory,
            state_file=args.state_file,
            down_command="deploycheck sandbox down",
        )
    if args.sandbox_command == "down":
        return control.guarded(control.down, args.state_file, args.scenario)
    return control.guarded(control.status, args.state_file)


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "sandbox",
        help="start or stop a local stand-in project that runs reuse",
        description="A local stand-in project (real registry, Firestore emulator, a Cloud "
        "Run / Logging / Resource Manager API stand-in) left running; "
        "--target sandbox:SCENARIO reuses it.",
        epilog=f"exit codes: 0 done, 1 already running (up) or not answering (status), "
        f"{EXIT_USAGE} bad scenario or inventory, or it cannot start",
    )
    group.add_argument(
        "--state-file",
        type=Path,
        default=SANDBOX_STATE_FILE,
        metavar="PATH",
        help=f"where the running sandbox is recorded (default: {SANDBOX_STATE_FILE})",
    )
    sandbox_commands = group.add_subparsers(dest="sandbox_command", metavar="COMMAND", required=True)
    up = sandbox_commands.add_parser("up", help="start a sandbox and leave it running")
    up.add_argument(
        "scenario",
        nargs="?",
        default="incident",
        metavar="SCENARIO",
        help="healthy, incident, auto (generated from the inventory) or a scenario directory (default: incident)",
    )
    up.add_argument(
        "--inventory",
        type=Path,
        default=Path("services.yaml"),
        metavar="PATH",
        help="the inventory whose project and region the sandbox takes (default: ./services.yaml)",
    )
    stop = sandbox_commands.add_parser("down", help="stop the recorded sandbox")
    stop.add_argument("scenario", nargs="?", metavar="SCENARIO", help="stop it only if it is this scenario")
    sandbox_commands.add_parser("status", help="say whether the recorded sandbox answers")
    group.set_defaults(run=_guarded)

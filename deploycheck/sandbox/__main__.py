"""python -m deploycheck.sandbox up|down|status — a long-lived sandbox that pytest reuses.

`up` starts the stand-in project and records it in the state file; `pytest --target
sandbox:NAME` then reuses it instead of starting its own (same scenario, still healthy).
`deploycheck sandbox ...` (deploycheck.cli.sandbox) runs the same commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DeploycheckError
from ..target import SANDBOX_STATE_FILE
from .manager import Sandbox, SandboxInfo, stop_recorded

DEFAULT_SCENARIO = "incident"
EXIT_CANNOT_START = 4


def _project_region(inventory_path: Path) -> tuple[str, str]:
    if inventory_path.is_file():
        from ..inventory import load_inventory

        inventory = load_inventory(inventory_path)
        return inventory.project, inventory.region
    return "nba-props-platform", "us-west2"


def up(scenario: str, *, inventory: Path, state_file: Path, down_command: str) -> int:
    if state_file.exists():
        existing = SandboxInfo.load(state_file)
        if existing.is_healthy():
            print(
                f"sandbox:{existing.scenario} already running (api {existing.api_url}); run `{down_command}` first",
                file=sys.stderr,
            )
            return 1
    if scenario == "auto":
        # Generated from the inventory, as `pytest --target sandbox:auto` would; that run reuses it
        # while the inventory is unchanged.
        from ..inventory import load_inventory
        from .auto import auto_sandbox

        sandbox = auto_sandbox(load_inventory(inventory), progress=print)
    else:
        project, region = _project_region(inventory)
        sandbox = Sandbox(scenario, project=project, region=region, progress=print)
    try:
        info = sandbox.start()
    except (RuntimeError, OSError) as exc:
        # A server that exited or never became ready; its log tail is in the message.
        print(f"error: sandbox:{scenario} could not start: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    info.save(state_file)
    print(f"state: {state_file}")
    return 0


def down(state_file: Path, scenario: str | None = None) -> int:
    """Stop the recorded sandbox; with `scenario`, only if it is that one (a script that started
    `up incident` must not stop someone's `healthy`)."""
    if not state_file.exists():
        print(f"no sandbox recorded in {state_file}", file=sys.stderr)
        return 0
    info = SandboxInfo.load(state_file)
    if scenario is not None and scenario != info.scenario:
        print(
            f"the sandbox recorded in {state_file} is sandbox:{info.scenario}, not {scenario}; nothing stopped",
            file=sys.stderr,
        )
        return 1
    stop_recorded(info)
    state_file.unlink(missing_ok=True)  # stop_recorded removed it if it was in the workdir
    print(f"sandbox:{info.scenario} stopped")
    return 0


def status(state_file: Path) -> int:
    if not state_file.exists():
        print(f"no sandbox recorded in {state_file}", file=sys.stderr)
        return 1
    info = SandboxInfo.load(state_file)
    healthy = info.is_healthy()
    print(
        f"sandbox:{info.scenario} api {info.api_url} registry {info.registry_url} "
        f"{'healthy' if healthy else 'NOT answering'} (workdir {info.workdir})"
    )
    return 0 if healthy else 1


def guarded(command: Callable[..., int], *args: Any, **kwargs: Any) -> int:
    """A command's exit code; a known error (bad scenario, bad inventory, a missing program) is
    one line and exit 4, never a traceback."""
    try:
        return command(*args, **kwargs)
    except DeploycheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploycheck.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", type=Path, default=SANDBOX_STATE_FILE)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start a sandbox and leave it running")
    start.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        help="built-in scenario name, a directory, or auto (generated from --inventory)",
    )
    start.add_argument("--inventory", type=Path, default=Path("services.yaml"))
    sub.add_parser("down", help="stop the sandbox recorded in the state file")
    sub.add_parser("status", help="print the recorded sandbox and whether it answers")
    args = parser.parse_args(argv)
    if args.command == "up":
        return guarded(
            up,
            args.scenario,
            inventory=args.inventory,
            state_file=args.state_file,
            down_command="python -m deploycheck.sandbox down",
        )
    return guarded(down if args.command == "down" else status, args.state_file)


if __name__ == "__main__":
    raise SystemExit(main())

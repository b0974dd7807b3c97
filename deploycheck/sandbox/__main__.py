"""python -m deploycheck.sandbox up|down|status — a long-lived sandbox that pytest reuses.

`up` starts the stand-in project and records it in the state file; `pytest --target
sandbox:NAME` then reuses it instead of starting its own (same scenario, still healthy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DeploycheckError
from .manager import Sandbox, SandboxInfo, stop_recorded

DEFAULT_STATE_FILE = Path(".deploycheck/sandbox.json")


def _project_region(inventory_path: Path) -> tuple[str, str]:
    if inventory_path.is_file():
        from ..inventory import load_inventory

        inventory = load_inventory(inventory_path)
        return inventory.project, inventory.region
    return "nba-props-platform", "us-west2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploycheck.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a sandbox and leave it running")
    up.add_argument("scenario", nargs="?", default="incident", help="built-in scenario name or a directory")
    up.add_argument("--inventory", type=Path, default=Path("services.yaml"))
    sub.add_parser("down", help="stop the sandbox recorded in the state file")
    sub.add_parser("status", help="print the recorded sandbox and whether it answers")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            if args.state_file.exists():
                existing = SandboxInfo.load(args.state_file)
                if existing.is_healthy():
                    print(f"sandbox:{existing.scenario} already running (api {existing.api_url}); "
                          f"run `python -m deploycheck.sandbox down` first", file=sys.stderr)
                    return 1
            project, region = _project_region(args.inventory)
            info = Sandbox(args.scenario, project=project, region=region, progress=print).start()
            info.save(args.state_file)
            print(f"state: {args.state_file}")
            return 0
        if not args.state_file.exists():
            print(f"no sandbox recorded in {args.state_file}", file=sys.stderr)
            return 1 if args.command == "status" else 0
        info = SandboxInfo.load(args.state_file)
        if args.command == "down":
            stop_recorded(info)
            args.state_file.unlink(missing_ok=True)  # stop_recorded removed it if it was in the workdir
            print(f"sandbox:{info.scenario} stopped")
            return 0
        healthy = info.is_healthy()
        print(f"sandbox:{info.scenario} api {info.api_url} registry {info.registry_url} "
              f"{'healthy' if healthy else 'NOT answering'} (workdir {info.workdir})")
        return 0 if healthy else 1
    except DeploycheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

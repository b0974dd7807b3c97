"""python -m deploycheck: the `deploycheck` command (deploycheck.cli)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

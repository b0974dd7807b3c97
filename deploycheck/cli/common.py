"""What every command shares: exit codes, a parser whose usage errors exit 4, and the split at `--`."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

# The same codes pytest gives, so a CI step reads `deploycheck gate` and `pytest -m postdeploy` alike.
EXIT_OK = 0
EXIT_FAILED = 1  # a check failed or could not observe its fact
EXIT_USAGE = 4  # bad usage, bad input, or the run cannot start (no credentials, no sandbox)
EXIT_NOTHING_SELECTED = 5
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CliParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; deploycheck (like pytest) says 4."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """deploycheck's own arguments, and those after the first `--` (None when there is no `--`)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"deploycheck: error: {message}", file=sys.stderr)
    return code

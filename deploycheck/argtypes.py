"""Values of command-line options, checked where they are parsed (argparse `type=` functions),
shared by the pytest options and the `deploycheck` command so both refuse the same input alike."""

from __future__ import annotations

import argparse

from .findings import Severity


def commit_sha(text: str) -> str:
    """--expect-commit: an empty value (an unset CI variable, `--expect-commit "$SHA"`) would
    silently check nothing, so it is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty: give the commit the deploy was built from (in CI the variable holding it, "
            "e.g. $GITHUB_SHA or $COMMIT_SHA, is probably unset); leave the option out to check no commit"
        )
    if text != text.strip() or any(char.isspace() for char in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a commit: it contains whitespace")
    return text


def severity_threshold(text: str) -> str:
    """--fail-on P0|P1|P2|P3 (any case)."""
    value = text.strip().upper()
    known = [severity.value for severity in Severity]
    if value not in known:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(known)}")
    return value

"""Regular expressions from the inventory, run by RE2 (the `google-re2` binding).

RE2 matches in time linear in the text, so a pattern like `(a+)+$` written in services.yaml cannot
stall a check on a large file or a hostile document id; and it is the dialect Cloud Logging uses
for `=~`, so a heartbeat-log regex the inventory accepts is one the real service accepts too.
Every regex the inventory holds is compiled here; RE2 itself decides what is valid.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Protocol

import re2 as _re2  # the google-re2 binding (absolute import: this module is deploycheck.re2)

__all__ = ["Match", "Pattern", "Re2Error", "compile", "re2_incompatibility"]


class Match(Protocol):
    """A match of a Pattern. Offsets are in characters of the str searched, as with Python's re."""

    def start(self, group: int | str = 0) -> int: ...
    def end(self, group: int | str = 0) -> int: ...
    def group(self, *groups: int | str) -> str | None: ...


class Pattern(Protocol):
    """A pattern compiled by RE2 (the binding's own class has no type information)."""

    pattern: str

    def search(self, text: str) -> Match | None: ...
    def match(self, text: str) -> Match | None: ...
    def fullmatch(self, text: str) -> Match | None: ...
    def finditer(self, text: str) -> Iterator[Match]: ...


class Re2Error(ValueError):
    """RE2 refuses the pattern. `snippet` is the offending part (may be empty), `reason` says why."""

    def __init__(self, pattern: str, snippet: str, reason: str):
        self.pattern = pattern
        self.snippet = snippet
        self.reason = reason
        super().__init__(f"invalid regex {pattern!r}: {self.problem}")

    @property
    def problem(self) -> str:
        """The snippet and the reason, e.g. `'(?=' is a lookahead, which RE2 lacks`; just the reason
        when the snippet is the whole pattern, e.g. `a '(' is never closed`."""
        if self.snippet and self.snippet != self.pattern:
            return f"'{self.snippet}' {self.reason}"
        return self.reason.removeprefix(_INVALID).removeprefix("is ")


_OPTIONS = _re2.Options()
_OPTIONS.log_errors = False  # RE2 would also print every refused pattern to stderr

# RE2's names for its parse errors (re2/regexp.cc), said for a reader who writes Python or Perl regexes.
_PERL_GROUPS = (
    ("(?=", "a lookahead"),
    ("(?!", "a negative lookahead"),
    ("(?<=", "a lookbehind"),
    ("(?<!", "a negative lookbehind"),
    ("(?P=", "a named backreference"),
    ("(?P>", "a recursion"),
    ("(?(", "a conditional"),
    ("(?>", "an atomic group"),
    ("(?#", "a comment group"),
)
_INVALID = "is not a valid regular expression: "
_PLAIN_REASONS = {
    "missing )": _INVALID + "a '(' is never closed",
    "unexpected )": _INVALID + "a ')' closes no group",
    "missing ]": _INVALID + "a '[' is never closed",
    "trailing \\": _INVALID + "it ends in a lone backslash",
    "no argument for repetition operator": _INVALID + "a repetition with nothing to repeat",
    "invalid repetition size": "is a repetition count RE2 refuses (at most 1000)",
    "invalid character class": "is not a valid character class",
    "invalid character class range": "is not a valid character class or range in RE2",
    "invalid named capture group": "is not a valid group name in RE2",
    "invalid UTF-8": "is not valid UTF-8",
    "pattern too large - compile failed": "is too large for RE2 to compile (simplify it)",
    "pattern too large - reverse compile failed": "is too large for RE2 to compile (simplify it)",
}


def _explained(pattern: str, code: str, snippet: str) -> tuple[str, str]:
    """(snippet, reason) in words a Python regex writer knows."""
    if code == "invalid escape sequence":
        if len(snippet) == 2 and snippet[1] in "123456789":
            return snippet, "is a backreference, which RE2 lacks"
        if snippet == "\\Z":
            return snippet, "is not RE2 syntax (RE2 spells end of text \\z)"
        return snippet, "is an escape sequence RE2 does not know"
    if code == "invalid perl operator":
        for prefix, construct in _PERL_GROUPS:
            # RE2 shows only '(?P' for '(?P=name)'; the pattern tells which construct it was.
            if (prefix.startswith(snippet) and prefix in pattern) or snippet.startswith(prefix):
                return prefix, f"is {construct} in a regular expression, which RE2 lacks"
        return snippet, "is a group or flag syntax RE2 does not know"
    if code == "bad repetition operator":
        if snippet in ("++", "*+", "?+") or snippet.endswith("}+"):
            return snippet, "is a possessive quantifier, which RE2 lacks"
        return snippet, "is a repetition of a repetition, which RE2 refuses (group it: (?:a*)*)"
    if code in _PLAIN_REASONS:
        return snippet, _PLAIN_REASONS[code]
    return snippet, f"is refused by RE2: {code}"


def _refusal(pattern: str, error: _re2.error) -> Re2Error:
    message = (
        error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else str(error)
    )
    code, _, snippet = message.partition(": ")
    snippet, reason = _explained(pattern, code, snippet)
    return Re2Error(pattern, snippet, reason)


@functools.lru_cache(maxsize=1024)
def compile(pattern: str, *, multiline: bool = False) -> Pattern:  # noqa: A001 - the name `re` users expect
    """`pattern` compiled by RE2; Re2Error if RE2 refuses it. `multiline`: `^` and `$` also match
    at line boundaries (Python's re.MULTILINE)."""
    if not isinstance(pattern, str):
        raise TypeError(f"a regex must be a str, not {type(pattern).__name__}")
    try:
        checked = _re2.compile(pattern, _OPTIONS)  # alone first, so errors are about what was written
        return _re2.compile(f"(?m){pattern}", _OPTIONS) if multiline else checked
    except _re2.error as exc:
        raise _refusal(pattern, exc) from None


def re2_incompatibility(pattern: str) -> tuple[str, str] | None:
    """(the offending text, why) when RE2 (and so Cloud Logging) refuses `pattern`, else None."""
    try:
        compile(pattern)
    except Re2Error as exc:
        return exc.snippet, exc.reason
    return None

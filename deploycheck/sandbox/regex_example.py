"""The shortest plain text a regex matches: what sandbox:auto writes into image files and log
lines so that an inventory's `must_contain` and heartbeat formats hold.

Inventory regexes are RE2 (deploycheck.re2). Python's own parser reads the syntax the two share
(literals, classes, groups, alternation, repetition, anchors) into a tree, which is walked here
choosing the first alternative, the fewest repetitions and a plain ASCII character for each class.
Every example is then checked with RE2 itself, so a construct read differently by the two can only
make this refuse, never write text the check would not accept.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse  # the stdlib regex parser (re's own, stable across 3.11+)
import string
from collections.abc import Callable

from .. import re2

# A plain character for each class, tried in order; the first one the class accepts is used.
CANDIDATES = string.ascii_lowercase + string.digits + string.ascii_uppercase + "_-.:/ " + string.punctuation
CATEGORY_CHECK = {
    sre.CATEGORY_DIGIT: str.isdigit,
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


class NoExample(ValueError):
    """The regex uses something this cannot make an example of (or RE2 reads it differently)."""


def example(pattern: str) -> str:
    """The shortest text (one line, plain ASCII where the regex allows) that RE2 finds `pattern` in."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise NoExample(f"cannot read /{pattern}/: {exc}") from None
    text = _emit(tree, pattern)
    if not re2.compile(pattern).search(text):
        raise NoExample(f"the text {text!r} made for /{pattern}/ does not match it under RE2")
    return text


def _emit(items, pattern: str) -> str:
    out = []
    for op, value in items:
        if op is sre.LITERAL:
            out.append(chr(value))
        elif op is sre.NOT_LITERAL:
            out.append(next(c for c in CANDIDATES if ord(c) != value))
        elif op is sre.ANY:
            out.append("x")
        elif op is sre.IN:
            out.append(_member(value, pattern))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, _high, sub = value
            out.append(_emit(sub, pattern) * low)
        elif op is sre.SUBPATTERN:
            out.append(_emit(value[-1], pattern))
        elif op is sre.ATOMIC_GROUP:
            out.append(_emit(value, pattern))
        elif op is sre.BRANCH:
            out.append(_emit(value[1][0], pattern))
        elif op is sre.AT:
            continue  # ^ $ \A \z \b: each example stands alone on its line, words are separated by its literals
        else:
            raise NoExample(f"/{pattern}/ uses {op} (lookaround or backreference), which RE2 lacks")
    return "".join(out)


def _member(items, pattern: str) -> str:
    """A character of the class [items]."""
    negated = bool(items) and items[0][0] is sre.NEGATE
    tests: list[Callable[..., bool]] = []  # each called with one character
    for op, value in items[1:] if negated else items:
        if op is sre.LITERAL:
            tests.append(lambda c, v=value: ord(c) == v)
        elif op is sre.RANGE:
            tests.append(lambda c, v=value: v[0] <= ord(c) <= v[1])
        elif op is sre.CATEGORY and value in CATEGORY_CHECK:
            tests.append(CATEGORY_CHECK[value])
        else:
            raise NoExample(f"/{pattern}/ has a character class this cannot read ({op} {value})")
    for candidate in CANDIDATES:
        if any(test(candidate) for test in tests) != negated:
            return candidate
    if not negated:
        # A class of only non-ASCII characters: its first literal or range start.
        for op, value in items:
            if op is sre.LITERAL:
                return chr(value)
            if op is sre.RANGE:
                return chr(value[0])
    raise NoExample(f"/{pattern}/ has a character class no plain character satisfies")

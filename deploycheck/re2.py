"""What Python's `re` accepts but RE2 rejects. Cloud Logging evaluates `=~` with RE2, so a regex
sent there must stay inside RE2: the inventory refuses the rest at load time, and the sandbox's
Logging stand-in refuses it in queries, as the real service would."""

from __future__ import annotations

_LACKING_GROUPS = (("(?=", "a lookahead"), ("(?!", "a negative lookahead"), ("(?<=", "a lookbehind"),
                   ("(?<!", "a negative lookbehind"), ("(?P=", "a named backreference"), ("(?(", "a conditional"),
                   ("(?>", "an atomic group"), ("(?#", "a comment group"))


def re2_incompatibility(pattern: str) -> tuple[str, str] | None:
    """(the offending text, why) for the first construct RE2 lacks, or None."""
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1:index + 2]
            if not in_class and escaped and escaped in "123456789":
                return pattern[index:index + 2], "is a backreference, which RE2 lacks"
            if escaped == "Z":
                return "\\Z", "is not RE2 syntax (RE2 spells end of text \\z)"
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1
            index += pattern.startswith("^", index)
            index += pattern.startswith("]", index)  # a leading ']' is a literal in the class
            continue
        elif char == "(":
            for prefix, construct in _LACKING_GROUPS:
                if pattern.startswith(prefix, index):
                    return prefix, f"is {construct} in a regular expression, which RE2 lacks"
        elif char in "*+?}" and pattern.startswith("+", index + 1):
            return pattern[index:index + 2], "is a possessive quantifier, which RE2 lacks"
        index += 1
    return None


def compile(pattern: str):  # noqa: A001 -- TEMP shim until the google-re2 based module lands
    import re

    return re.compile(pattern)

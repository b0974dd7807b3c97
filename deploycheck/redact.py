"""Masking of credentials in anything deploycheck prints or writes.

A server may echo what it was sent (a registry's 403 body quoting the Authorization header, a
proxy's error page), so secrets are masked where text leaves deploycheck, whatever its source:
error messages, findings, reports, the terminal and JUnit. The patterns are fixed and linear.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

# Each pattern with the words (lower case) one of which any text it matches contains: a text
# holding none of them is left to no pattern. Reports run thousands of strings through here.
_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (
        re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----.*?(?:-----END [A-Z ]{0,40}PRIVATE KEY-----|$)", re.S),
        f"{MASK} private key",
        ("-----begin",),
    ),
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token|negotiate)\s+)?"
            r"[^\s\"',;}\]]+"
        ),
        rf"\1{MASK}",
        ("authorization",),
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]{8,}=*"), rf"\1 {MASK}", ("bearer", "basic")),
    (
        re.compile(
            r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|client_secret|private_key_id|private_key|"
            r"password|secret|token|(?:x-goog-)?api[_-]?key|key)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}\]]{4,}"
        ),
        rf"\1{MASK}",
        ("token", "secret", "password", "key"),
    ),
    (re.compile(r"\bya29\.[A-Za-z0-9._\-]+"), f"ya29.{MASK}", ("ya29.",)),
    (re.compile(r"\b1//[A-Za-z0-9._\-]{20,}"), MASK, ("1//",)),  # Google refresh tokens
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK, ("eyj",)),  # JWTs
]


def redact(text: str) -> str:
    """`text` with bearer tokens, access tokens, Authorization values and private keys masked."""
    if not isinstance(text, str) or not text:
        return text
    folded = _folded(text)
    for pattern, replacement, words in _PATTERNS:
        if folded is None or any(word in folded for word in words):
            masked = pattern.sub(replacement, text)
            if masked != text:
                text, folded = masked, _folded(masked)
    return text


def _folded(text: str) -> str | None:
    """`text` lower-cased, to screen it for each pattern's words; None when the screen cannot
    decide. Outside ASCII, case-insensitive matching folds more than lower() does (the long s is
    s, dotted capital I is i, the Kelvin sign is k): such a text is given to every pattern."""
    return text.lower() if text.isascii() else None


def redact_data(value: Any) -> Any:
    """Every string inside nested dicts, lists and tuples redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(item) for item in value)
    return value

"""The subset of the Cloud Logging query language the suite emits, evaluated over LogEntry JSON.

The stand-in's `entries.list` filters with this. It follows the real language (itself the
AIP-160 filter grammar) where it matters for correctness:

    query       = [expression]
    expression  = sequence { "AND" sequence }
    sequence    = factor { factor }                 (juxtaposition is an implicit AND)
    factor      = term { "OR" term }
    term        = ["NOT" | "-"] term | "(" expression ")" | restriction
    restriction = field operator argument
    field       = name { "." (name | string) }      (labels."k8s-pod/app")
    operator    = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":" | "=~" | "!~"
    argument    = value | "(" value { "OR" value } ")" | "(" value { "AND" value } ")" | "*" (after ":" only)
    value       = string | bare word

So NOT binds tightest, then OR, then AND: `a OR b AND c` is `(a OR b) AND c`, as in the real
language (its documentation: `a OR NOT b AND NOT c OR d` is `(a OR (NOT b)) AND ((NOT c) OR d)`).

Anything outside the subset raises UnsupportedQuery naming the column, so the suite cannot come
to depend on semantics the real service lacks or the stand-in would only guess. Where the real
semantics are uncertain the stand-in is the stricter one: `=` is case-sensitive, severities are
upper-case names, strings know only the escapes \\" and \\\\, and unquoted values are plain words.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NoReturn

import re2 as google_re2  # the google-re2 binding: Cloud Logging evaluates =~ with RE2

from ..re2 import re2_incompatibility

SUPPORTED = "the sandbox evaluates AND/OR/NOT, =, !=, <, <=, >, >=, :, =~, !~ and parentheses"

# LogSeverity values; filters compare severities by these, not by name.
SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}

_INSTANT_FIELDS = {("timestamp",), ("receiveTimestamp",)}
_SEVERITY_FIELD = ("severity",)
_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|>=|<=|=|>|<|:")
_BARE_WORD = re.compile(r'[^\s()"]+')
_KEYWORD = re.compile(r"(AND|OR|NOT)(?=[\s()]|$)")
_NOT_IN_BARE_WORDS = re.compile(r"[=<>!~:*\\]")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2}))"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class UnsupportedQuery(ValueError):
    """A filter outside the subset the stand-in evaluates; the message quotes where and why."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line = line
        self.column = column


def instant(text: str) -> int:
    """An RFC 3339 timestamp (nanoseconds, any offset, `+0000` as google-cloud-logging writes it)
    as integer nanoseconds since the epoch, so nanosecond timestamps compare exactly."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp")
    try:
        moment = datetime(*(int(part) for part in match.groups()[:6]), tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp: {exc}") from None
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    if match["sign"]:
        offset = (int(match["hours"]) * 60 + int(match["minutes"])) * 60
        seconds -= offset if match["sign"] == "+" else -offset
    return seconds * 1_000_000_000 + int((match.group(7) or "").ljust(9, "0"))


@dataclass(frozen=True)
class Query:
    text: str
    root: _Node | None  # None: the empty filter, which matches every entry

    def matches(self, entry: dict) -> bool:
        return self.root is None or self.root.matches(entry)


def parse(text: str) -> Query:
    return Query(text, _Parser(text).parse())


# --- evaluation --------------------------------------------------------------------------------
_MISSING = object()


def _lookup(entry: dict, path: tuple[str, ...]) -> object:
    value: object = entry
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return _MISSING
        value = value[key]
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return None


def _leaves(value: object):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield value


class _Node:
    def matches(self, entry: dict) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class _All(_Node):
    children: tuple[_Node, ...]

    def matches(self, entry: dict) -> bool:
        return all(child.matches(entry) for child in self.children)


@dataclass(frozen=True)
class _Any(_Node):
    children: tuple[_Node, ...]

    def matches(self, entry: dict) -> bool:
        return any(child.matches(entry) for child in self.children)


@dataclass(frozen=True)
class _Not(_Node):
    child: _Node

    def matches(self, entry: dict) -> bool:
        return not self.child.matches(entry)


@dataclass(frozen=True)
class _Present(_Node):
    path: tuple[str, ...]

    def matches(self, entry: dict) -> bool:
        return _lookup(entry, self.path) is not _MISSING


@dataclass(frozen=True)
class _InstantComparison(_Node):
    path: tuple[str, ...]
    op: str
    nanos: int

    def matches(self, entry: dict) -> bool:
        value = _lookup(entry, self.path)
        return isinstance(value, str) and _COMPARISONS[self.op](instant(value), self.nanos)


@dataclass(frozen=True)
class _SeverityComparison(_Node):
    op: str
    level: int

    def matches(self, entry: dict) -> bool:
        # JSON omits an enum at its default value: an entry without severity is DEFAULT.
        name = entry.get("severity") or "DEFAULT"
        if name not in SEVERITIES:
            raise ValueError(f"log entry {entry.get('insertId')!r} has an unknown severity {name!r}")
        return _COMPARISONS[self.op](SEVERITIES[name], self.level)


@dataclass(frozen=True)
class _Has(_Node):
    path: tuple[str, ...]
    needle: str  # casefolded: `:` is a case-insensitive substring test

    def matches(self, entry: dict) -> bool:
        value = _lookup(entry, self.path)
        if value is _MISSING:
            return False
        # On a structure (`jsonPayload:"x"`) the test applies to every value inside it.
        return any(self.needle in _text(leaf).casefold() for leaf in _leaves(value))


@dataclass(frozen=True)
class _RegexMatch(_Node):
    path: tuple[str, ...]
    regex: object  # a compiled google-re2 expression
    negated: bool

    def matches(self, entry: dict) -> bool:
        value = _lookup(entry, self.path)
        if value is _MISSING or isinstance(value, (dict, list)):
            return False
        return (self.regex.search(_text(value)) is not None) != self.negated


@dataclass(frozen=True)
class _ValueComparison(_Node):
    path: tuple[str, ...]
    op: str
    text: str
    number: int | float | None  # set when the filter value is numeric: compare numbers, not strings

    def matches(self, entry: dict) -> bool:
        value = _lookup(entry, self.path)
        if value is _MISSING or isinstance(value, (dict, list)):
            return False
        if self.number is not None and not isinstance(value, bool):
            entry_number = value if isinstance(value, (int, float)) else _number(_text(value))
            if entry_number is not None:
                return _COMPARISONS[self.op](entry_number, self.number)
        return _COMPARISONS[self.op](_text(value), self.text)


# --- parsing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Value:
    text: str
    position: int
    presence: bool = False  # the `*` of `field:*`


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def parse(self) -> _Node | None:
        self._skip_space()
        if self._at_end():
            return None
        root = self._expression()
        self._skip_space()
        if not self._at_end():  # the grammar stops early only at a ')' it did not open
            self._reject(self.pos, ")", "closes no parenthesis")
        return root

    # --- the grammar, loosest binding first ---
    def _expression(self) -> _Node:
        sequences = [self._sequence()]
        while self._keyword() == "AND":
            self._take_keyword()
            sequences.append(self._sequence())
        return _joined(_All, sequences)

    def _sequence(self) -> _Node:
        factors = [self._factor()]
        while True:
            self._skip_space()
            if self._at_end() or self._peek(")") or self._keyword() == "AND":
                break
            factors.append(self._factor())
        return _joined(_All, factors)

    def _factor(self) -> _Node:
        terms = [self._term()]
        while self._keyword() == "OR":
            self._take_keyword()
            terms.append(self._term())
        return _joined(_Any, terms)

    def _term(self) -> _Node:
        self._skip_space()
        if self._keyword() == "NOT":
            self._take_keyword()
            return _Not(self._term())
        if self._peek("-"):
            self.pos += 1
            return _Not(self._term())
        if self._peek("("):
            opening = self.pos
            self.pos += 1
            self._skip_space()
            if self._peek(")"):
                self._reject(opening, "()", "is an empty group")
            inner = self._expression()
            self._skip_space()
            if not self._peek(")"):
                self._reject(opening, "(", "is never closed")
            self.pos += 1
            return inner
        return self._restriction()

    def _restriction(self) -> _Node:
        start = self.pos
        if self._at_end():
            self._reject(start, None, "the query ends where a restriction was expected")
        if self._peek('"'):
            self._string()
            self._reject(start, self.text[start : self.pos], "is a value without a field (a global restriction)")
        if self._peek(")"):
            self._reject(start, ")", "closes a group where a restriction was expected")
        if not _NAME.match(self.text, self.pos):
            self._reject(start, self._word_at(start), "is not a field name")
        path = self._field_path()
        if self._peek("("):
            self._reject(start, self.text[start : self.pos + 1], "is a function")
        path_end = self.pos
        self._skip_space()
        op_match = _OPERATOR.match(self.text, self.pos)
        if not op_match:
            if path_end == self.pos and not self._at_end():
                self._reject(path_end, self.text[path_end], f"cannot follow the field name '{'.'.join(path)}'")
            word = self._word_at(start)
            hint = "; AND, OR and NOT are upper case" if word.upper() in ("AND", "OR", "NOT") else ""
            self._reject(start, word, f"is a value without a field (a global restriction){hint}")
        op, op_position = op_match.group(), self.pos
        self.pos = op_match.end()
        self._skip_space()
        if self._peek("("):
            if op in ("!=", "!~"):  # whether the real service negates each value or the list is unclear
                self._reject(op_position, op, "cannot take a value list (write NOT field=(...))")
            return self._value_list(path, op, op_position)
        return self._typed_restriction(path, op, op_position, self._value(op))

    def _field_path(self) -> tuple[str, ...]:
        segments = [self._name()]
        while self._peek("."):
            self.pos += 1
            if self._peek('"'):
                segments.append(self._string())
            elif _NAME.match(self.text, self.pos):
                segments.append(self._name())
            else:
                self._reject(self.pos, self._word_at(self.pos), "is not a field name (quote it after '.')")
        return tuple(segments)

    def _typed_restriction(self, path: tuple[str, ...], op: str, op_position: int, value: _Value) -> _Node:
        """One comparison, typed by its field: instants, severity levels, or JSON values."""
        if value.presence:
            return _Present(path)
        field = ".".join(path)
        if path in _INSTANT_FIELDS or path == _SEVERITY_FIELD:
            if op not in _COMPARISONS:
                self._reject(op_position, op, f"cannot apply to {field} (use =, !=, <, <=, >, >=)")
            if path == _SEVERITY_FIELD:
                if value.text not in SEVERITIES:
                    self._reject(value.position, value.text, f"is not a severity ({', '.join(SEVERITIES)})")
                return _SeverityComparison(op, SEVERITIES[value.text])
            try:
                return _InstantComparison(path, op, instant(value.text))
            except ValueError:
                self._reject(value.position, value.text, "is not an RFC 3339 timestamp")
        if op == ":":
            return _Has(path, value.text.casefold())
        if op in ("=~", "!~"):
            return _RegexMatch(path, self._re2_pattern(value), negated=op == "!~")
        return _ValueComparison(path, op, value.text, _number(value.text))

    def _re2_pattern(self, value: _Value):
        """RE2 itself, with `search` semantics; what RE2 lacks is refused with the reason first."""
        pattern = value.text
        problem = re2_incompatibility(pattern)
        if problem:
            self._reject(value.position, *problem)
        try:
            return google_re2.compile(pattern)
        except google_re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            self._reject(value.position, pattern, f"is not a valid RE2 regular expression: {reason}")

    def _name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        self.pos = match.end()
        return match.group()

    def _value_list(self, path: tuple[str, ...], op: str, op_position: int) -> _Node:
        """`field=("a" OR "b")` is `field="a" OR field="b"`; likewise with AND."""
        opening = self.pos
        self.pos += 1
        restrictions = [self._typed_restriction(path, op, op_position, self._list_value(op))]
        connective = None
        while True:
            self._skip_space()
            if self._peek(")"):
                self.pos += 1
                return _joined(_All if connective == "AND" else _Any, restrictions)
            if self._at_end():
                self._reject(opening, "(", "is never closed")
            keyword = self._keyword()
            if keyword not in ("AND", "OR"):
                self._reject(self.pos, self._word_at(self.pos), "is not AND, OR or ')' inside a value list")
            if connective not in (None, keyword):
                self._reject(self.pos, keyword, "mixes AND and OR in one value list")
            connective = keyword
            self._take_keyword()
            restrictions.append(self._typed_restriction(path, op, op_position, self._list_value(op)))

    def _list_value(self, op: str) -> _Value:
        self._skip_space()
        if self._peek("("):
            self._reject(self.pos, "(", "nests a group inside a value list")
        return self._value(op)

    def _value(self, op: str) -> _Value:
        start = self.pos
        if self._peek('"'):
            return _Value(self._string(), start)
        if self._at_end():
            self._reject(start, None, f"the query ends where a value was expected after '{op}'")
        match = _BARE_WORD.match(self.text, self.pos)
        if not match:
            self._reject(start, self.text[start], f"is not a value after '{op}'")
        word = match.group()
        self.pos = match.end()
        if op == ":" and word == "*":
            return _Value(word, start, presence=True)
        if self._peek("("):
            self._reject(start, word + "(", "is a function")
        if _KEYWORD.fullmatch(word):
            self._reject(start, word, "is an operator where a value was expected (quote it to mean the word)")
        odd = _NOT_IN_BARE_WORDS.search(word)
        if odd:
            self._reject(start + odd.start(), odd.group(), "is not allowed in an unquoted value (quote the value)")
        return _Value(word, start)

    def _string(self) -> str:
        """A double-quoted literal; only \\" and \\\\ are escapes, so a value cannot widen a match."""
        opening = self.pos
        self.pos += 1
        chars = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(chars)
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in ('"', "\\"):
                    self._reject(self.pos, "\\" + escaped, 'is not an escape the sandbox knows (only \\" and \\\\)')
                chars.append(escaped)
                self.pos += 2
                continue
            chars.append(char)
            self.pos += 1
        self._reject(opening, self.text[opening : opening + 20], "opens a string that is never closed")

    # --- lexical helpers ---
    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)

    def _peek(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def _keyword(self) -> str | None:
        self._skip_space()
        match = _KEYWORD.match(self.text, self.pos)
        return match.group() if match else None

    def _take_keyword(self) -> None:
        self.pos = _KEYWORD.match(self.text, self.pos).end()

    def _word_at(self, position: int) -> str:
        match = _BARE_WORD.match(self.text, position)
        return match.group() if match else self.text[position : position + 1]

    def _reject(self, position: int, snippet: str | None, reason: str) -> NoReturn:
        line = self.text.count("\n", 0, position) + 1
        column = position - self.text.rfind("\n", 0, position)
        where = f"line {line}, column {column}" if "\n" in self.text else f"column {column}"
        what = f"'{snippet}' {reason}" if snippet else reason
        raise UnsupportedQuery(f"unsupported at {where}: {what} ({SUPPORTED})", line, column)


def _joined(kind: type, nodes: list[_Node]) -> _Node:
    if kind is _Any:
        nodes = _merged_regexes(nodes)
    return nodes[0] if len(nodes) == 1 else kind(tuple(nodes))


def _merged_regexes(nodes: list[_Node]) -> list[_Node]:
    """`f=~"a" OR f=~"b"` as one RE2 search for `(?:a)|(?:b)`: the same matches (each part
    compiled alone first, so no part can reach into another), one pass over the text instead
    of one per pattern, which is what keeps 100,000-entry scans fast."""
    by_path: dict[tuple[str, ...], list[_RegexMatch]] = {}
    for node in nodes:
        if isinstance(node, _RegexMatch) and not node.negated:
            by_path.setdefault(node.path, []).append(node)
    merged: list[_Node] = []
    for node in nodes:
        if isinstance(node, _RegexMatch) and not node.negated:
            group = by_path.pop(node.path, None)
            if group:
                merged.append(
                    group[0]
                    if len(group) == 1
                    else _RegexMatch(
                        node.path, google_re2.compile("|".join(f"(?:{n.regex.pattern})" for n in group)), False
                    )
                )
        else:
            merged.append(node)
    return merged


@dataclass(frozen=True)
class IndexTerms:
    """What a query's top-level AND terms pin down, so the store visits only those entries."""

    services: frozenset[str] | None = None  # None: any service
    revisions: frozenset[str] | None = None  # None: any revision
    lower_ns: int | None = None  # inclusive bounds on timestamp
    upper_ns: int | None = None


_SERVICE = ("resource", "labels", "service_name")
_REVISION = ("resource", "labels", "revision_name")


def index_terms(query: Query) -> IndexTerms:
    services = revisions = lower = upper = None
    root = query.root
    for node in root.children if isinstance(root, _All) else (root,) if root is not None else ():
        if (names := _names_of(node, _SERVICE)) is not None:
            services = names if services is None else services & names
        elif (names := _names_of(node, _REVISION)) is not None:
            revisions = names if revisions is None else revisions & names
        elif isinstance(node, _InstantComparison) and node.path == ("timestamp",) and node.op in (">", ">="):
            bound = node.nanos + (node.op == ">")
            lower = bound if lower is None else max(lower, bound)
        elif isinstance(node, _InstantComparison) and node.path == ("timestamp",) and node.op in ("<", "<="):
            bound = node.nanos - (node.op == "<")
            upper = bound if upper is None else min(upper, bound)
    return IndexTerms(services, revisions, lower, upper)


def _is_equality(node: _Node, path: tuple[str, ...]) -> bool:
    # A numeric-looking value compares as a number, which an exact-string index would miss.
    return isinstance(node, _ValueComparison) and node.path == path and node.op == "=" and node.number is None


def _names_of(node: _Node, path: tuple[str, ...]) -> frozenset[str] | None:
    """The values `path` must equal for `node` to hold (`f="a"`, `f=("a" OR "b")`), or None."""
    alternatives = node.children if isinstance(node, _Any) else (node,)
    if all(_is_equality(child, path) for child in alternatives):
        return frozenset(child.text for child in alternatives)
    return None

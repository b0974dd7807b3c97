"""YAML with positions: the document composed into nodes that keep a line and column for every key
and item (and reveal duplicate keys, which PyYAML would silently collapse to the last value).

The composer is bounded before anything walks the document: nesting deeper than MAX_DEPTH and
alias expansion beyond MAX_EXPANDED_NODES (a "billion laughs" bomb) are refused at the node that
crosses the line, so no RecursionError and no exponential walk can follow."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .specs import InventoryError, InventoryIssue

MAX_DEPTH = 64
"""Nesting levels, aliases followed; services.yaml needs about 6."""
MAX_EXPANDED_NODES = 100_000
"""Nodes of the document with every alias expanded; the real services.yaml has about 1,000."""

Loc = tuple[Any, ...]  # a location in the document: keys and sequence indexes, like pydantic's loc
Mark = tuple[int, int]  # 1-based line, column


class Positions:
    """Where each key and each value of the document starts."""

    def __init__(self) -> None:
        self._keys: dict[Loc, Mark] = {(): (1, 1)}
        self._values: dict[Loc, Mark] = {(): (1, 1)}

    def record(self, path: Loc, key: Mark, value: Mark) -> None:
        self._keys[path] = key
        self._values[path] = value

    def key(self, path: Loc) -> Mark:
        """The key at `path` (a sequence item: the item), or the nearest enclosing one that exists."""
        return self._nearest(self._keys, path)

    def value(self, path: Loc) -> Mark:
        return self._nearest(self._values, path)

    @staticmethod
    def _nearest(marks: dict[Loc, Mark], path: Loc) -> Mark:
        while path not in marks:
            path = path[:-1]
        return marks[path]


def _mark(node: yaml.Node) -> Mark:
    return _position(node.start_mark)


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses to descend below MAX_DEPTH (PyYAML composes recursively,
    so a 5,000-deep `[[[[...` would otherwise end in RecursionError)."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                self.peek_event().start_mark,
                f"nesting deeper than {MAX_DEPTH} levels (expected an inventory nested a few levels deep)",
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """PyYAML lets datetime's ValueError escape for a date that looks right but does not exist."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.value!r} is not a valid date: {exc} (expected a real date YYYY-MM-DD)",
                node.start_mark,
            ) from None


_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _BoundedLoader.construct_yaml_timestamp)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse what aliases would blow up before anything expands them: a node whose expanded
    size or depth crosses the limits ("billion laughs"), or an alias inside its own anchor.
    Sizes are memoised per node, so this costs one visit per node as written, not as expanded."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            depths[key] = 1 + max((depths[id(child)] for child in children), default=0)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise _Refused(
                    node.start_mark,
                    f"aliases expand this to more than {MAX_EXPANDED_NODES:,} "
                    f"nodes (an alias bomb?; expected plain data, aliases used sparingly)",
                )
            if depths[key] > MAX_DEPTH:
                raise _Refused(
                    node.start_mark,
                    f"aliases nest this deeper than {MAX_DEPTH} levels "
                    f"(expected an inventory nested a few levels deep)",
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _Refused(
                node.start_mark,
                "an alias refers to a node that contains it (a recursive structure; expected plain data)",
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


class YamlReader:
    """Composes the YAML within bounds, records positions and duplicate keys, then constructs plain data."""

    def __init__(self, text: str, file: str):
        self.file = file
        self.positions = Positions()
        self.issues: list[InventoryIssue] = []
        self._walked: set[int] = set()
        try:
            self._loader = _BoundedLoader(text)  # PyYAML checks the characters of a str here
        except yaml.reader.ReaderError as err:  # a character YAML does not allow, e.g. a control character
            raise InventoryError(
                [
                    InventoryIssue(
                        file,
                        *_line_column(text, err.position),
                        "",
                        f"character U+{err.character:04X} is not allowed in YAML (expected printable text)",
                    )
                ]
            ) from None
        try:
            root = self._loader.get_single_node()
            if root is not None:
                _check_expansion(root)
                self._walk(root, ())
            self.data = self._loader.construct_document(root) if root is not None else None
        except _Refused as refused:
            raise InventoryError([InventoryIssue(file, *_position(refused.mark), "", refused.message)]) from None
        except yaml.MarkedYAMLError as err:
            raise InventoryError([_syntax_issue(err, file)]) from None
        finally:
            self._loader.dispose()

    def _walk(self, node: yaml.Node, path: Loc) -> None:
        first_visit = id(node) not in self._walked  # an aliased node: report its duplicates once
        self._walked.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.positions.record(path + (index,), _mark(item), _mark(item))
                self._walk(item, path + (index,))
        elif isinstance(node, yaml.MappingNode):
            first_lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                # `<<: *anchor` merges another mapping; its keys are positioned where they are written.
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self._loader.construct_object(key_node)
                key_mark = _mark(key_node)
                # An empty value (`key:` and nothing) starts wherever the next token is; point at the key.
                empty = isinstance(value_node, yaml.ScalarNode) and value_node.value == "" and not value_node.style
                self.positions.record(path + (key,), key_mark, key_mark if empty else _mark(value_node))
                if key in first_lines and first_visit:
                    self.issues.append(
                        InventoryIssue(
                            self.file,
                            *key_mark,
                            field_path(path + (key,)),
                            f"duplicate key: {key!r} is already set at line {first_lines[key]} "
                            f"(YAML silently keeps only the last value; expected each key once)",
                        )
                    )
                first_lines.setdefault(key, key_mark[0])
                self._walk(value_node, path + (key,))


def _position(mark: yaml.Mark) -> Mark:
    return mark.line + 1, mark.column + 1


def _line_column(text: str, index: int) -> Mark:
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _syntax_issue(err: yaml.MarkedYAMLError, file: str) -> InventoryIssue:
    line, column = (err.problem_mark.line + 1, err.problem_mark.column + 1) if err.problem_mark else (0, 0)
    # A constructor refuses a tag or an unhashable key in well-formed YAML: no syntax error.
    kind = "YAML error" if isinstance(err, yaml.constructor.ConstructorError) else "YAML syntax error"
    message = f"{kind}: {err.problem}"
    if err.context:
        context_line = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message += f" ({err.context}{context_line})"
    return InventoryIssue(file, line, column, "", message)


def field_path(path: Loc) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[\w-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text

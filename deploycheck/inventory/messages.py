"""pydantic's validation errors as inventory issues: FILE:LINE:COL, the field path, what was given
and what was expected (taken from the field descriptions of the file format)."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .schema import InventoryFile
from .specs import InventoryIssue
from .yamlread import Loc, Positions, field_path


def _unwrap(annotation: Any) -> tuple[Any, str | None]:
    """Strip `X | None` and Annotated[...]; return the bare type and the description found."""
    description = None
    while True:
        if get_origin(annotation) is Annotated:
            for meta in annotation.__metadata__:
                description = getattr(meta, "description", None) or description
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation, description


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _schema_at(loc: Loc) -> tuple[Any, str | None]:
    """The type that validates `loc` in the file format and its description, (None, None) if unknown."""
    annotation: Any = InventoryFile
    description: str | None = None
    for part in loc:
        if _is_model(annotation):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None, None
            annotation, description = field.annotation, field.description
        elif get_origin(annotation) in (list, dict):
            annotation, description = get_args(annotation)[-1], None
        else:
            return None, None
        annotation, inner_description = _unwrap(annotation)
        description = description or inner_description
    return annotation, description


def _keys_of(model: type[BaseModel]) -> list[str]:
    """Field names, required ones first (as a reader would write them)."""
    fields = model.model_fields
    return sorted(fields, key=lambda name: not fields[name].is_required())


def _expected(loc: Loc) -> str:
    annotation, description = _schema_at(loc)
    if description:
        return description
    if _is_model(annotation):
        return f"a mapping with keys: {', '.join(_keys_of(annotation))}"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping"}.get(
        get_origin(annotation) or annotation, "a valid value"
    )


_YAML_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
}


def _shown(value: Any) -> str:
    kind = _YAML_TYPE_NAMES.get(type(value), type(value).__name__)
    if value is None or isinstance(value, (list, dict)):
        return kind
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def did_you_mean(name: Any, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def schema_issue(error: ErrorDetails, positions: Positions, file: str) -> InventoryIssue:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if loc and loc[-1] == "[key]":  # a mapping key of the wrong type, e.g. `1:` under patterns
        loc = loc[:-1]
        return InventoryIssue(
            file, *positions.key(loc), field_path(loc), f"key {_shown(loc[-1])} is not valid (expected a string)"
        )
    if kind == "extra_forbidden":
        keys = _keys_of(_schema_at(loc[:-1])[0])
        return InventoryIssue(
            file,
            *positions.key(loc),
            field_path(loc),
            f"unknown key{did_you_mean(loc[-1], keys)} (expected one of: {', '.join(keys)})",
        )
    if kind == "missing":
        return InventoryIssue(
            file, *positions.key(loc[:-1]), field_path(loc), f"missing required key (expected {_expected(loc)})"
        )
    line, column = positions.value(loc)
    if kind.endswith("_type"):
        message = "the document is empty" if not loc and value is None else f"wrong type: got {_shown(value)}"
        message += f" (expected {_expected(loc)})"
    elif kind == "value_error":
        message = str(error["ctx"]["error"])  # our validators' messages say what was expected
    elif kind == "string_pattern_mismatch":
        message = f"{value!r} is not valid (expected {_expected(loc)})"
    else:
        message = f"invalid value {_shown(value)}: {error['msg']} (expected {_expected(loc)})"
    return InventoryIssue(file, line, column, field_path(loc), message)

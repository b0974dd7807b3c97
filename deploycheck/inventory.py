"""The inventory: services.yaml -> Inventory, every problem reported as FILE:LINE:COL.

Two layers. The *file models* (pydantic, extra="forbid") describe what may be written in
services.yaml and give the JSON Schema editors use. The *specs* (frozen dataclasses) are what
the rest of deploycheck reads: defaults merged, images resolved to full references, pattern
names replaced by the patterns themselves.

Loading runs three stages and raises every problem of all of them in one InventoryError:
  1. YAML is composed into nodes, which keep a line and column for every key and item (and
     reveal duplicate keys, which PyYAML would silently collapse to the last value);
  2. pydantic validates the whole document; each error's `loc` is mapped back to its line;
  3. cross-references (runs -> service, code -> pattern, unique names) are checked and the
     specs are built, on the parts of the document that passed stage 2.
No network I/O happens here.
"""

from __future__ import annotations

import difflib
import posixpath
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from .errors import InputError
from .imageref import ImageRef, ImageRefError
from .re2 import re2_incompatibility

# Docker's rule: the first path component is a registry host only if it looks like one.
_HOST_LIKE = re.compile(r"^(?:localhost|[^/]*[.:][^/]*)$")
_FALLBACK_TAG = "latest"
_FALLBACK_COMMIT_LABEL = "org.opencontainers.image.revision"


# --------------------------------------------------------------------------------------------
# What the rest of deploycheck uses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryIssue:
    file: str
    line: int  # 1-based; 0 when the problem has no position (unreadable file)
    column: int
    field: str  # e.g. services[0].image; empty for problems of the file as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InventoryError(InputError):
    """Everything wrong with an inventory file, one line per issue, sorted by position."""

    def __init__(self, issues: list[InventoryIssue]):
        self.issues = sorted(issues, key=lambda issue: (issue.line, issue.column, issue.field))
        super().__init__(self.issues)  # args = (issues,) so the error pickles (pytest-xdist) intact

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


@dataclass(frozen=True)
class CodePattern:
    """A file that must exist in the image, and regexes its text must / must not contain.

    Each regex is searched in the whole file text with re.MULTILINE, so `^` and `$` match at
    line boundaries (e.g. `^from google\\.cloud import monitoring_v3` = a module-level import).
    """

    name: str
    path: str  # absolute and normalised, e.g. /app/shared/monitoring/processor_heartbeat.py
    must_contain: list[str]
    must_not_contain: list[str]


@dataclass(frozen=True)
class HeartbeatLogSpec:
    """`expected`: some log line of the serving revision must match it (re.search).
    `forbidden`: no log line may match any of these (re.search)."""

    expected: str
    forbidden: list[str]


@dataclass(frozen=True)
class HeartbeatSpec:
    """The Firestore heartbeat collection. A good document id matches `id_pattern` in full
    (re.fullmatch) and none of `bad_id_patterns` (re.search). The document count is healthy in
    [expected_min, expected_max], P1 above `p1_above`, P0 above `p0_above`."""

    collection: str
    id_pattern: str
    bad_id_patterns: list[str]
    expected_min: int
    expected_max: int
    p1_above: int
    p0_above: int
    max_age_hours: float


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: ImageRef  # full reference with the expected tag (or digest) applied
    service_account: str | None  # None: the inventory does not say which account it runs as
    roles: list[str]  # IAM roles the service account must hold
    code: list[CodePattern]
    commit_label: str  # OCI label of the image that carries the source commit
    commit_env: str | None  # env var in the container that carries the commit, if any
    service_commit_labels: list[str]  # Cloud Run service labels that claim a commit
    heartbeat_log: HeartbeatLogSpec | None  # None: the service logs no heartbeats
    processors: list[str]  # heartbeat processor names this service writes
    line: int  # where the entry starts in the inventory file


@dataclass(frozen=True)
class JobSpec:
    name: str
    runs: str | None  # the service whose image the job must run ...
    image: ImageRef | None  # ... or, when it runs no service's image, its own expected image
    code: list[CodePattern]
    line: int


@dataclass(frozen=True)
class Inventory:
    source: Path
    project: str
    region: str
    registry: str | None  # where relative image names were resolved; the expected registry
    legacy_registries: list[str]
    services: list[ServiceSpec]
    jobs: list[JobSpec]
    heartbeats: HeartbeatSpec
    patterns: dict[str, CodePattern]

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(f"service {name!r} is not in {self.source}")

    def job(self, name: str) -> JobSpec:
        for spec in self.jobs:
            if spec.name == name:
                return spec
        raise KeyError(f"job {name!r} is not in {self.source}")

    def service_names(self) -> list[str]:
        return [spec.name for spec in self.services]

    def job_names(self) -> list[str]:
        return [spec.name for spec in self.jobs]

    def job_image(self, job: JobSpec) -> ImageRef:
        """The image the job must run: the image of the service it runs, or its own."""
        return self.service(job.runs).image if job.runs else job.image

    def legacy_registry_of(self, image: ImageRef) -> str | None:
        """The entry of legacy_registries the image lives under, or None."""
        return _legacy_registry_of(image, self.legacy_registries)


# --------------------------------------------------------------------------------------------
# The file format (pydantic). Descriptions double as the "(expected ...)" part of messages.
# --------------------------------------------------------------------------------------------


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"invalid regex {pattern!r}: {err.msg} at position {err.pos} "
                         f"(expected a Python regular expression)") from None
    return pattern


def _check_log_regex(pattern: str) -> str:
    _check_regex(pattern)
    problem = re2_incompatibility(pattern)
    if problem:
        text, why = problem
        raise ValueError(f"regex {pattern!r}: {text!r} {why}; Cloud Logging matches log lines with RE2 "
                         "(expected an RE2 regular expression)")
    return pattern


def _normalise_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{path!r} is not absolute (expected a path inside the image starting with /, "
                         f"e.g. /app/shared/monitoring/processor_heartbeat.py)")
    # normpath keeps a leading '//' (POSIX allows it to mean something else); a file in an image never does.
    return "/" + posixpath.normpath(path).lstrip("/")


def _require_patterns(names: list[str]) -> list[str]:
    if not names:
        raise ValueError("empty code pattern list checks nothing (expected at least one name from `patterns`; "
                         "to inherit the defaults, leave `code` out)")
    return names


def _check_registry(text: str) -> str:
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        raise ValueError(str(exc)) from None
    if ref.tag or ref.digest:
        raise ValueError(f"{text!r} has a tag or digest (expected a repository prefix HOST/PATH, "
                         f"e.g. us-west2-docker.pkg.dev/PROJECT/REPO)")
    return text


ResourceName = Annotated[str, Field(
    pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$",
    description="a Cloud Run name: lowercase letters, digits and hyphens, starting with a letter")]
Regex = Annotated[str, AfterValidator(_check_regex), Field(description="a Python regular expression")]
LogRegex = Annotated[str, AfterValidator(_check_log_regex), Field(
    description="a regular expression in the syntax both Python and RE2 (Cloud Logging) accept")]
ImagePath = Annotated[str, AfterValidator(_normalise_path), Field(
    description="an absolute file path inside the image, e.g. /app/shared/monitoring/processor_heartbeat.py")]
Tag = Annotated[str, Field(pattern=r"^\w[\w.-]{0,127}$", description="an image tag, e.g. latest")]
Role = Annotated[str, Field(
    pattern=r"^(roles|projects/[a-z][a-z0-9-]+/roles|organizations/[0-9]+/roles)/[A-Za-z0-9_.]+$",
    description="an IAM role, e.g. roles/datastore.user")]
ServiceAccount = Annotated[str, Field(
    pattern=r"^[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com$",
    description="a service account email, e.g. NAME@PROJECT.iam.gserviceaccount.com")]
PatternName = Annotated[str, Field(description="the name of an entry under `patterns`")]
CodeList = Annotated[list[PatternName], AfterValidator(_require_patterns)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an environment variable name")]
Label = Annotated[str, Field(min_length=1, description="a label key, e.g. commit-sha")]
ProcessorName = Annotated[str, Field(
    min_length=1, description="a heartbeat processor name, e.g. p2_nba_raw.nbac_team_boxscore")]
RegistryPrefix = Annotated[str, Field(
    pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$",
    description="a registry host, optionally with a path prefix, e.g. gcr.io")]
Count = Annotated[int, Field(ge=0, description="a number of documents")]


class _FileModel(BaseModel):
    # strict: YAML already types its scalars; `tag: 2024` must be quoted rather than coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


class PatternEntry(_FileModel):
    """A named code pattern: a file in the image and regexes its text must / must not contain."""

    path: ImagePath
    must_contain: list[Regex] = Field(default=[], description="a list of regexes the file text must contain")
    must_not_contain: list[Regex] = Field(default=[], description="a list of regexes the file text must not contain")


class HeartbeatLogEntry(_FileModel):
    """The heartbeat lines a service logs."""

    expected: LogRegex = Field(description="a regex some log line of the serving revision must match")
    forbidden: list[LogRegex] = Field(default=[],
                                      description="a list of regexes no log line may match, e.g. old id formats")


class ServiceSettings(_FileModel):
    """What `defaults.service` may set; a service entry's own key replaces the default whole."""

    tag: Tag = Field(default=None, description="the tag the image must be deployed from, e.g. latest")
    service_account: ServiceAccount | None = Field(
        default=None, description="the service account it must run as; null: do not check")
    roles: list[Role] = Field(default=None, description="a list of IAM roles the service account must hold")
    code: CodeList = Field(default=None, description="a list of names of `patterns` the image must satisfy")
    commit_label: Label = Field(default=None, description="the OCI image label carrying the source commit")
    commit_env: EnvName = Field(default=None, description="an env var in the container carrying the commit")
    service_commit_labels: list[Label] = Field(
        default=None, description="a list of Cloud Run service labels that claim a commit (reported when they disagree)")
    heartbeat_log: HeartbeatLogEntry | None = Field(
        default=None, description="a mapping (expected, forbidden) of the heartbeat lines it logs; null: it logs none")


class ServiceEntry(ServiceSettings):
    """A Cloud Run service."""

    name: ResourceName
    image: str = Field(default=None, description=(
        "the image: NAME[:TAG] relative to `registry`, or a full HOST/PATH[:TAG][@sha256:DIGEST]; "
        "default: the service name in `registry`"))
    processors: list[ProcessorName] = Field(
        default=[], description="a list of the heartbeat processor names (Firestore document ids) the service writes")


class JobSettings(_FileModel):
    """What `defaults.job` may set; a job entry's own key replaces the default whole."""

    runs: ResourceName = Field(default=None, description="the service whose image the job must run")
    code: CodeList = Field(
        default=None, description="a list of names of `patterns` the image must satisfy; default: those of the service it runs")


class JobEntry(JobSettings):
    """A Cloud Run job: it runs a service's image (`runs`) or has its own (`image`)."""

    name: ResourceName
    image: str = Field(default=None, description=(
        "its own image, when it runs no service's: NAME[:TAG] relative to `registry` or a full HOST/PATH[:TAG]"))


class Defaults(_FileModel):
    """Values every service / job entry inherits unless it sets the key itself."""

    service: ServiceSettings = Field(default=None, description="a mapping of defaults for every service entry")
    job: JobSettings = Field(default=None, description="a mapping of defaults for every job entry")


class HeartbeatCount(_FileModel):
    """How many heartbeat documents are healthy, and when the count is an incident."""

    expected_min: Count
    expected_max: Count
    p1_above: Count
    p0_above: Count

    @model_validator(mode="after")
    def _ordered(self) -> "HeartbeatCount":
        values = [self.expected_min, self.expected_max, self.p1_above, self.p0_above]
        if values != sorted(values):
            raise ValueError(f"thresholds out of order: {', '.join(map(str, values))} "
                             f"(expected expected_min <= expected_max <= p1_above <= p0_above)")
        return self


class HeartbeatsEntry(_FileModel):
    """The Firestore collection of processor heartbeat documents."""

    collection: str = Field(min_length=1, description="the Firestore collection, e.g. processor_heartbeats")
    id_pattern: Regex = Field(description="a regex every good document id matches in full")
    bad_id_patterns: list[Regex] = Field(default=[], description="a list of regexes found in bad (old format) ids")
    count: HeartbeatCount
    max_age_hours: float = Field(gt=0, description="a number of hours after which a heartbeat is stale")


class InventoryFile(_FileModel):
    """deploycheck inventory: the Cloud Run services and jobs of one project and what they must run."""

    model_config = ConfigDict(title="deploycheck inventory (services.yaml)")

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="the Google Cloud project id")
    region: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="the Cloud Run region, e.g. us-west2")
    registry: Annotated[str, AfterValidator(_check_registry)] = Field(
        default=None, description="a repository prefix HOST/PATH that relative image names are resolved against")
    legacy_registries: list[RegistryPrefix] = Field(
        default=[], description="a list of registries (HOST or HOST/PATH prefixes) no image may come from any more")
    patterns: dict[str, PatternEntry] = Field(default={}, description="a mapping of named code patterns, referenced by `code`")
    defaults: Defaults = Field(default=None, description="a mapping (service, job) of values the entries inherit")
    heartbeats: HeartbeatsEntry
    services: list[ServiceEntry] = Field(description="a list of the Cloud Run services, each a mapping with at least `name`")
    jobs: list[JobEntry] = Field(default=[], description="a list of the Cloud Run jobs, each a mapping with at least `name`")


def inventory_json_schema() -> dict:
    """JSON Schema of the services.yaml format, for editors (yaml-language-server)."""
    schema = InventoryFile.model_json_schema()
    # Absent keys inherit; pydantic's `"default": null` would tell editors that null is the default.
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_without_null_defaults(schema)}


def _without_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_null_defaults(value) for key, value in node.items()
                if not (key == "default" and value is None)}
    if isinstance(node, list):
        return [_without_null_defaults(item) for item in node]
    return node


# --------------------------------------------------------------------------------------------
# YAML with positions
# --------------------------------------------------------------------------------------------

Loc = tuple[Any, ...]  # a location in the document: keys and sequence indexes, like pydantic's loc
Mark = tuple[int, int]  # 1-based line, column


class _Positions:
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
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Reader:
    """Composes the YAML, records positions and duplicate keys, then constructs plain data."""

    def __init__(self, text: str, file: str):
        self.file = file
        self.positions = _Positions()
        self.issues: list[InventoryIssue] = []
        self._loader = yaml.SafeLoader(text)
        self._walked: set[int] = set()
        try:
            root = self._loader.get_single_node()
            if root is not None:
                self._walk(root, (), active=set())
            self.data = self._loader.construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as err:
            raise InventoryError([_syntax_issue(err, file)]) from None
        finally:
            self._loader.dispose()

    def _walk(self, node: yaml.Node, path: Loc, active: set[int]) -> None:
        if id(node) in active:  # a recursive alias: its positions are already recorded
            return
        first_visit = id(node) not in self._walked  # an aliased node: report its duplicates once
        self._walked.add(id(node))
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.positions.record(path + (index,), _mark(item), _mark(item))
                self._walk(item, path + (index,), active)
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
                    self.issues.append(InventoryIssue(
                        self.file, *key_mark, _field_path(path + (key,)),
                        f"duplicate key: {key!r} is already set at line {first_lines[key]} "
                        f"(YAML silently keeps only the last value; expected each key once)"))
                first_lines.setdefault(key, key_mark[0])
                self._walk(value_node, path + (key,), active)


def _syntax_issue(err: yaml.MarkedYAMLError, file: str) -> InventoryIssue:
    line, column = (err.problem_mark.line + 1, err.problem_mark.column + 1) if err.problem_mark else (0, 0)
    message = f"YAML syntax error: {err.problem}"
    if err.context:
        context_line = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message += f" ({err.context}{context_line})"
    return InventoryIssue(file, line, column, "", message)


def _field_path(path: Loc) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[\w-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


# --------------------------------------------------------------------------------------------
# pydantic errors -> issues
# --------------------------------------------------------------------------------------------


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
    annotation, description = InventoryFile, None
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
        get_origin(annotation) or annotation, "a valid value")


_YAML_TYPE_NAMES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
                    list: "list", dict: "mapping"}


def _shown(value: Any) -> str:
    kind = _YAML_TYPE_NAMES.get(type(value), type(value).__name__)
    if value is None or isinstance(value, (list, dict)):
        return kind
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _did_you_mean(name: Any, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _schema_issue(error: ErrorDetails, positions: _Positions, file: str) -> InventoryIssue:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if loc and loc[-1] == "[key]":  # a mapping key of the wrong type, e.g. `1:` under patterns
        loc = loc[:-1]
        return InventoryIssue(file, *positions.key(loc), _field_path(loc),
                              f"key {_shown(loc[-1])} is not valid (expected a string)")
    if kind == "extra_forbidden":
        keys = _keys_of(_schema_at(loc[:-1])[0])
        return InventoryIssue(file, *positions.key(loc), _field_path(loc),
                              f"unknown key{_did_you_mean(loc[-1], keys)} (expected one of: {', '.join(keys)})")
    if kind == "missing":
        return InventoryIssue(file, *positions.key(loc[:-1]), _field_path(loc),
                              f"missing required key (expected {_expected(loc)})")
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
    return InventoryIssue(file, line, column, _field_path(loc), message)


# --------------------------------------------------------------------------------------------
# Cross-references and resolution
# --------------------------------------------------------------------------------------------


def _valid(model: type[_FileModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


_INVALID = object()


def _valid_section(data: dict, name: str, absent: Any) -> Any:
    """One top-level section validated alone exactly as InventoryFile validates it (pydantic's
    assignment validator runs the field's own schema); `absent` if missing, _INVALID if invalid."""
    if name not in data:
        return absent
    holder = InventoryFile.model_construct()
    try:
        InventoryFile.__pydantic_validator__.validate_assignment(holder, name, data[name])
    except ValidationError:
        return _INVALID
    return getattr(holder, name)


def _is_relative(image: str) -> bool:
    return "/" not in image or not _HOST_LIKE.match(image.split("/", 1)[0])


def _legacy_registry_of(image: ImageRef, legacy_registries: list[str]) -> str | None:
    return next((prefix for prefix in legacy_registries
                 if image.repository == prefix or image.repository.startswith(prefix + "/")), None)


@dataclass
class _Parts:
    """The parts of the document that pass the schema on their own, entries with their indexes.

    Cross-references are checked on these, so they are reported together with schema errors
    elsewhere in the file. Names are collected from the raw document: a reference to an entry
    that merely has a schema error is not reported as unknown as well.
    """

    registry: str | None
    legacy_registries: list[str]
    defaults: Defaults
    heartbeats: HeartbeatsEntry | None  # None: invalid, processor names are not checked against it
    patterns: dict[str, PatternEntry]
    services: list[tuple[int, ServiceEntry]]
    jobs: list[tuple[int, JobEntry]]
    pattern_names: list[str]
    service_names: list[str]

    @classmethod
    def of(cls, data: Any) -> "_Parts | None":
        """None when the document is no mapping, or registry, legacy_registries or defaults is
        invalid: every entry depends on those, so cross-checks would only guess."""
        if not isinstance(data, dict):
            return None
        registry = _valid_section(data, "registry", None)
        legacy_registries = _valid_section(data, "legacy_registries", [])
        defaults = _valid_section(data, "defaults", Defaults())
        if _INVALID in (registry, legacy_registries, defaults):
            return None
        heartbeats = _valid_section(data, "heartbeats", None)
        raw_patterns = data.get("patterns") if isinstance(data.get("patterns"), dict) else {}
        raw_services = data.get("services") if isinstance(data.get("services"), list) else []
        raw_jobs = data.get("jobs") if isinstance(data.get("jobs"), list) else []
        return cls(
            registry=registry,
            legacy_registries=legacy_registries,
            defaults=defaults,
            heartbeats=None if heartbeats is _INVALID else heartbeats,
            patterns={name: entry for name, raw in raw_patterns.items() if (entry := _valid(PatternEntry, raw))},
            services=[(index, entry) for index, raw in enumerate(raw_services)
                      if (entry := _valid(ServiceEntry, raw))],
            jobs=[(index, entry) for index, raw in enumerate(raw_jobs) if (entry := _valid(JobEntry, raw))],
            pattern_names=[str(name) for name in raw_patterns],
            service_names=[raw["name"] for raw in raw_services
                           if isinstance(raw, dict) and isinstance(raw.get("name"), str)],
        )


_SERVICE_DEFAULTS: Loc = ("defaults", "service")
_JOB_DEFAULTS: Loc = ("defaults", "job")


class _Resolver:
    """Checks cross-references and builds the specs; `report` collects every problem."""

    def __init__(self, parts: _Parts, positions: _Positions, report: Callable[[Loc, str], None]):
        self.parts = parts
        self.positions = positions
        self.report = report
        self.service_defaults = parts.defaults.service or ServiceSettings()
        self.job_defaults = parts.defaults.job or JobSettings()
        self.patterns = {name: CodePattern(name, entry.path, list(entry.must_contain), list(entry.must_not_contain))
                         for name, entry in parts.patterns.items()}

    def resolve(self) -> tuple[list[ServiceSpec], list[JobSpec]]:
        self._check_code_references()
        self._check_runs_references()
        self._check_unique("service", self.parts.services)
        self._check_unique("job", self.parts.jobs)
        self._check_processors()
        services = [self._service(index, entry) for index, entry in self.parts.services]
        service_code = {spec.name: spec.code for spec in services}
        jobs = [self._job(index, entry, service_code) for index, entry in self.parts.jobs]
        return services, jobs

    # ---- checks

    def _check_code_references(self) -> None:
        sources = [(_SERVICE_DEFAULTS, self.service_defaults), (_JOB_DEFAULTS, self.job_defaults)]
        sources += [(("services", index), entry) for index, entry in self.parts.services]
        sources += [(("jobs", index), entry) for index, entry in self.parts.jobs]
        known = self.parts.pattern_names
        for path, settings in sources:
            for position, name in enumerate(settings.code or []):
                if name not in known:
                    self.report(path + ("code", position),
                                f"unknown pattern {name!r}{_did_you_mean(name, known)} "
                                f"(expected one of the names under `patterns`: {', '.join(known) or 'none defined'})")

    def _check_runs_references(self) -> None:
        sources = [(_JOB_DEFAULTS, self.job_defaults)] + [(("jobs", index), entry) for index, entry in self.parts.jobs]
        known = self.parts.service_names
        for path, settings in sources:
            if settings.runs is not None and settings.runs not in known:
                self.report(path + ("runs",),
                            f"unknown service {settings.runs!r}{_did_you_mean(settings.runs, known)} "
                            f"(expected one of the services: {', '.join(known) or 'none defined'})")

    def _check_unique(self, kind: str, entries: list[tuple[int, ServiceEntry | JobEntry]]) -> None:
        section = f"{kind}s"
        first_lines: dict[str, int] = {}
        for index, entry in entries:
            path = (section, index, "name")
            if entry.name in first_lines:
                self.report(path, f"duplicate {kind} name {entry.name!r}, first defined at line "
                                  f"{first_lines[entry.name]} (expected each {kind} once)")
            else:
                first_lines[entry.name] = self.positions.value(path)[0]

    def _check_processors(self) -> None:
        heartbeats = self.parts.heartbeats
        first_lines: dict[str, int] = {}
        for index, entry in self.parts.services:
            for position, name in enumerate(entry.processors):
                path = ("services", index, "processors", position)
                if name in first_lines:
                    self.report(path, f"processor {name!r} is already listed at line {first_lines[name]} "
                                      f"(expected each processor under one service)")
                first_lines.setdefault(name, self.positions.value(path)[0])
                if heartbeats is None:
                    continue
                if not re.fullmatch(heartbeats.id_pattern, name):
                    self.report(path, f"processor {name!r} does not match heartbeats.id_pattern "
                                      f"{heartbeats.id_pattern!r} (expected a good heartbeat document id)")
                for bad in heartbeats.bad_id_patterns:
                    if re.search(bad, name):
                        self.report(path, f"processor {name!r} matches heartbeats.bad_id_patterns {bad!r} "
                                          f"(expected a good heartbeat document id)")

    # ---- specs

    @staticmethod
    def _inherited(name: str, entry: _FileModel, defaults: _FileModel, fallback: Any) -> Any:
        """The entry's own value (null included), else the default's, else `fallback`."""
        if name in entry.model_fields_set:
            return getattr(entry, name)
        if name in defaults.model_fields_set:
            return getattr(defaults, name)
        return fallback

    def _code(self, names: list[str] | None) -> list[CodePattern]:
        return [self.patterns[name] for name in names or [] if name in self.patterns]

    def _image(self, text: str, text_path: Loc, tag: str, explicit_tag_path: Loc | None) -> ImageRef | None:
        """`text` made a full reference with `tag` applied unless it has its own tag or digest;
        `explicit_tag_path` is where the entry itself set `tag`, which then conflicts with one."""
        registry = self.parts.registry
        if _is_relative(text):
            if registry is None:
                self.report(text_path, f"relative image {text!r} needs a top-level `registry` "
                                       f"(expected registry: HOST/PATH, or a full HOST/PATH[:TAG] here)")
                return None
            text = f"{registry}/{text}"
        try:
            image = ImageRef.parse(text)
        except ImageRefError as exc:
            self.report(text_path, str(exc))
            return None
        if image.tag is None and image.digest is None:
            image = image.with_tag(tag)
        elif explicit_tag_path:
            self.report(explicit_tag_path, f"tag given twice: {image} already has a tag or digest "
                                           f"(expected either `tag:` or a tag in `image:`)")
        legacy = _legacy_registry_of(image, self.parts.legacy_registries)
        if legacy:
            self.report(text_path, f"image {image} is in legacy registry {legacy!r} "
                                   f"(expected {registry or 'a registry not listed in legacy_registries'})")
        return image

    def _service(self, index: int, entry: ServiceEntry) -> ServiceSpec:
        path = ("services", index)

        def inherited(name: str, fallback: Any) -> Any:
            return self._inherited(name, entry, self.service_defaults, fallback)

        tag = inherited("tag", _FALLBACK_TAG)
        explicit_tag_path = path + ("tag",) if "tag" in entry.model_fields_set else None
        if entry.image is None:
            image = self._image(entry.name, path + ("name",), tag, explicit_tag_path)
        else:
            image = self._image(entry.image, path + ("image",), tag, explicit_tag_path)
        heartbeat_log = inherited("heartbeat_log", None)
        return ServiceSpec(
            name=entry.name,
            image=image,
            service_account=inherited("service_account", None),
            roles=list(inherited("roles", [])),
            code=self._code(inherited("code", [])),
            commit_label=inherited("commit_label", _FALLBACK_COMMIT_LABEL),
            commit_env=inherited("commit_env", None),
            service_commit_labels=list(inherited("service_commit_labels", [])),
            heartbeat_log=HeartbeatLogSpec(heartbeat_log.expected, list(heartbeat_log.forbidden))
            if heartbeat_log else None,
            processors=list(entry.processors),
            line=self.positions.key(path)[0],
        )

    def _job(self, index: int, entry: JobEntry, service_code: dict[str, list[CodePattern]]) -> JobSpec:
        path = ("jobs", index)
        runs, image = None, None
        if entry.image is not None:
            if "runs" in entry.model_fields_set:
                self.report(path + ("image",), "a job runs either a service's image or its own "
                                               "(expected `runs:` or `image:`, not both)")
            image = self._image(entry.image, path + ("image",), _FALLBACK_TAG, None)
        else:
            runs = self._inherited("runs", entry, self.job_defaults, None)
            if runs is None:
                self.report(path, "the job names no image (expected `runs: SERVICE`, `image: IMAGE`, "
                                  "or `runs` under defaults.job)")
        code_names = self._inherited("code", entry, self.job_defaults, None)
        code = self._code(code_names) if code_names is not None else list(service_code.get(runs, []))
        return JobSpec(name=entry.name, runs=runs, image=image, code=code, line=self.positions.key(path)[0])


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def load_inventory(path: str | Path) -> Inventory:
    """Read, validate and resolve an inventory file; raise InventoryError listing every problem."""
    source = Path(path)
    file = str(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([InventoryIssue(file, 0, 0, "", f"cannot read the inventory: {exc}")]) from None
    reader = _Reader(text, file)
    issues = list(reader.issues)
    try:
        document = InventoryFile.model_validate(reader.data)
    except ValidationError as exc:
        issues += [_schema_issue(error, reader.positions, file) for error in exc.errors(include_url=False)]

    def report(at: Loc, message: str) -> None:
        issues.append(InventoryIssue(file, *reader.positions.value(at), _field_path(at), message))

    parts = _Parts.of(reader.data)
    resolver = _Resolver(parts, reader.positions, report) if parts else None
    services, jobs = resolver.resolve() if resolver else ([], [])
    if issues:
        raise InventoryError(issues)
    count = document.heartbeats.count
    return Inventory(
        source=source, project=document.project, region=document.region, registry=document.registry,
        legacy_registries=list(document.legacy_registries), services=services, jobs=jobs,
        heartbeats=HeartbeatSpec(
            collection=document.heartbeats.collection, id_pattern=document.heartbeats.id_pattern,
            bad_id_patterns=list(document.heartbeats.bad_id_patterns), expected_min=count.expected_min,
            expected_max=count.expected_max, p1_above=count.p1_above, p0_above=count.p0_above,
            max_age_hours=document.heartbeats.max_age_hours),
        patterns=resolver.patterns)

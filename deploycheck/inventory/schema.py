"""The services.yaml format (pydantic, extra="forbid"): what may be written, and the JSON Schema
editors use. Field descriptions double as the "(expected ...)" part of error messages."""

from __future__ import annotations

import posixpath
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .. import re2
from ..imageref import ImageRef, ImageRefError

_T = TypeVar("_T")

if TYPE_CHECKING:
    Omittable: TypeAlias = _T | None
    """For type checkers: a key that may be left out reads as None."""
else:

    class Omittable:
        """For pydantic: a key that may be left out (then None) but, unlike `X | None`, not written
        as null. `Omittable[X]` validates exactly as X does."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item


def _check_regex(pattern: str) -> str:
    """Every inventory regex runs under RE2 (linear time); RE2 decides what is valid."""
    try:
        re2.compile(pattern)
    except re2.Re2Error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc.problem} (expected an RE2 regular expression)") from None
    return pattern


def _check_log_regex(pattern: str) -> str:
    try:
        re2.compile(pattern)
    except re2.Re2Error as exc:
        raise ValueError(
            f"invalid regex {pattern!r}: {exc.problem}; Cloud Logging matches log lines with RE2 "
            "(expected an RE2 regular expression)"
        ) from None
    return pattern


def _normalise_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(
            f"{path!r} is not absolute (expected a path inside the image starting with /, "
            f"e.g. /app/shared/monitoring/processor_heartbeat.py)"
        )
    # normpath keeps a leading '//' (POSIX allows it to mean something else); a file in an image never does.
    return "/" + posixpath.normpath(path).lstrip("/")


def _require_patterns(names: list[str]) -> list[str]:
    if not names:
        raise ValueError(
            "empty code pattern list checks nothing (expected at least one name from `patterns`; "
            "to inherit the defaults, leave `code` out)"
        )
    return names


def _check_registry(text: str) -> str:
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        raise ValueError(str(exc)) from None
    if ref.tag or ref.digest:
        raise ValueError(
            f"{text!r} has a tag or digest (expected a repository prefix HOST/PATH, "
            f"e.g. us-west2-docker.pkg.dev/PROJECT/REPO)"
        )
    return text


def _check_expiry(value: Any) -> Any:
    """YAML reads `2026-06-30` as a date; a quoted one is accepted too, a date with a time is not."""
    if isinstance(value, datetime):
        raise ValueError(
            f"{value.isoformat(sep=' ')} has a time of day (expected a date YYYY-MM-DD, the last day the waiver holds)"
        )
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (expected a date YYYY-MM-DD, the last day the waiver holds)"
            ) from None
    return value


def _require_resources(patterns: list[str]) -> list[str]:
    if not patterns:
        raise ValueError("an empty resource list waives nothing (expected at least one resource name or glob)")
    return patterns


def _require_text(text: str) -> str:
    if not text.strip():
        raise ValueError("nothing but spaces (expected a few words a colleague can act on)")
    return text


ResourceName = Annotated[
    str,
    Field(
        pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="a Cloud Run name: lowercase letters, digits and hyphens, starting with a letter",
    ),
]
Regex = Annotated[
    str,
    AfterValidator(_check_regex),
    Field(description="a regular expression in RE2 syntax (no lookaround, no backreferences)"),
]
LogRegex = Annotated[
    str,
    AfterValidator(_check_log_regex),
    Field(description="a regular expression in RE2 syntax, which Cloud Logging uses for =~"),
]
ImagePath = Annotated[
    str,
    AfterValidator(_normalise_path),
    Field(description="an absolute file path inside the image, e.g. /app/shared/monitoring/processor_heartbeat.py"),
]
Tag = Annotated[str, Field(pattern=r"^\w[\w.-]{0,127}$", description="an image tag, e.g. latest")]
Role = Annotated[
    str,
    Field(
        pattern=r"^(roles|projects/[a-z][a-z0-9-]+/roles|organizations/[0-9]+/roles)/[A-Za-z0-9_.]+$",
        description="an IAM role, e.g. roles/datastore.user",
    ),
]
ServiceAccount = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com$",
        description="a service account email, e.g. NAME@PROJECT.iam.gserviceaccount.com",
    ),
]
PatternName = Annotated[str, Field(description="the name of an entry under `patterns`")]
CodeList = Annotated[list[PatternName], AfterValidator(_require_patterns)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an environment variable name")]
Label = Annotated[str, Field(min_length=1, description="a label key, e.g. commit-sha")]
ProcessorName = Annotated[
    str, Field(min_length=1, description="a heartbeat processor name, e.g. p2_nba_raw.nbac_team_boxscore")
]
RegistryPrefix = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$",
        description="a registry host, optionally with a path prefix, e.g. gcr.io",
    ),
]
RegionName = Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="a Cloud Run region, e.g. us-west2")]
CheckId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", description="a check id, e.g. stale-jobs")]
ResourcePattern = Annotated[
    str, Field(pattern=r"^\S+$", description="a resource name or a glob of them (* ? [...]), e.g. *-backfill")
]
Text = Annotated[str, AfterValidator(_require_text)]
Expiry = Annotated[
    date, BeforeValidator(_check_expiry), Field(description="a date YYYY-MM-DD, the last day the waiver holds")
]
Count = Annotated[int, Field(ge=0, description="a number of documents")]


class FileModel(BaseModel):
    # strict: YAML already types its scalars; `tag: 2024` must be quoted rather than coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


class PatternEntry(FileModel):
    """A named code pattern: a file in the image and regexes its text must / must not contain."""

    path: ImagePath
    must_contain: list[Regex] = Field(default=[], description="a list of regexes the file text must contain")
    must_not_contain: list[Regex] = Field(default=[], description="a list of regexes the file text must not contain")


class HeartbeatLogEntry(FileModel):
    """The heartbeat lines a service logs."""

    expected: LogRegex = Field(description="a regex some log line of the serving revision must match")
    forbidden: list[LogRegex] = Field(
        default=[], description="a list of regexes no log line may match, e.g. old id formats"
    )


class ServiceSettings(FileModel):
    """What `defaults.service` may set; a service entry's own key replaces the default whole."""

    tag: Omittable[Tag] = Field(default=None, description="the tag the image must be deployed from, e.g. latest")
    service_account: ServiceAccount | None = Field(
        default=None, description="the service account it must run as; null: do not check"
    )
    roles: Omittable[list[Role]] = Field(default=None, description="a list of IAM roles the service account must hold")
    code: Omittable[CodeList] = Field(default=None, description="a list of names of `patterns` the image must satisfy")
    commit_label: Omittable[Label] = Field(default=None, description="the OCI image label carrying the source commit")
    commit_env: Omittable[EnvName] = Field(default=None, description="an env var in the container carrying the commit")
    service_commit_labels: Omittable[list[Label]] = Field(
        default=None, description="a list of Cloud Run service labels that claim a commit (reported when they disagree)"
    )
    heartbeat_log: HeartbeatLogEntry | None = Field(
        default=None, description="a mapping (expected, forbidden) of the heartbeat lines it logs; null: it logs none"
    )


class ServiceEntry(ServiceSettings):
    """A Cloud Run service."""

    name: ResourceName
    region: Omittable[RegionName] = Field(
        default=None, description=("the region the service runs in, when not the top-level `region`, e.g. europe-west1")
    )
    image: Omittable[str] = Field(
        default=None,
        description=(
            "the image: NAME[:TAG] relative to `registry`, or a full HOST/PATH[:TAG][@sha256:DIGEST]; "
            "default: the service name in `registry`"
        ),
    )
    processors: list[ProcessorName] = Field(
        default=[], description="a list of the heartbeat processor names (Firestore document ids) the service writes"
    )


class JobSettings(FileModel):
    """What `defaults.job` may set; a job entry's own key replaces the default whole."""

    runs: Omittable[ResourceName] = Field(default=None, description="the service whose image the job must run")
    code: Omittable[CodeList] = Field(
        default=None,
        description="a list of names of `patterns` the image must satisfy; default: those of the service it runs",
    )


class JobEntry(JobSettings):
    """A Cloud Run job: it runs a service's image (`runs`) or has its own (`image`)."""

    name: ResourceName
    region: Omittable[RegionName] = Field(
        default=None, description=("the region the job runs in, when not the top-level `region`, e.g. europe-west1")
    )
    image: Omittable[str] = Field(
        default=None,
        description=(
            "its own image, when it runs no service's: NAME[:TAG] relative to `registry` or a full HOST/PATH[:TAG]"
        ),
    )


class Defaults(FileModel):
    """Values every service / job entry inherits unless it sets the key itself."""

    service: Omittable[ServiceSettings] = Field(
        default=None, description="a mapping of defaults for every service entry"
    )
    job: Omittable[JobSettings] = Field(default=None, description="a mapping of defaults for every job entry")


class HeartbeatCount(FileModel):
    """How many heartbeat documents are healthy, and when the count is an incident."""

    expected_min: Count
    expected_max: Count
    p1_above: Count
    p0_above: Count

    @model_validator(mode="after")
    def _ordered(self) -> HeartbeatCount:
        values = [self.expected_min, self.expected_max, self.p1_above, self.p0_above]
        if values != sorted(values):
            raise ValueError(
                f"thresholds out of order: {', '.join(map(str, values))} "
                f"(expected expected_min <= expected_max <= p1_above <= p0_above)"
            )
        return self


class HeartbeatsEntry(FileModel):
    """The Firestore collection of processor heartbeat documents."""

    collection: str = Field(min_length=1, description="the Firestore collection, e.g. processor_heartbeats")
    id_pattern: Regex = Field(description="a regex every good document id matches in full")
    bad_id_patterns: list[Regex] = Field(default=[], description="a list of regexes found in bad (old format) ids")
    count: HeartbeatCount
    max_age_hours: float = Field(gt=0, description="a number of hours after which a heartbeat is stale")


class WaiverEntry(FileModel):
    """An accepted risk: failures of `check` on `resources` are shown as waived, not failing the
    run, through the `expires` day; after it they fail again and say the waiver expired."""

    check: CheckId
    resources: Annotated[list[ResourcePattern], AfterValidator(_require_resources)] = Field(
        description="a list of resource names or globs (* ? [...]) the waiver covers, e.g. ['*-backfill']"
    )
    reason: Text = Field(description="why the failure is accepted, e.g. not running, no urgency (seed 002)")
    owner: Text = Field(description="who accepted it and answers for it, e.g. an email address")
    expires: Expiry


class InventoryFile(FileModel):
    """deploycheck inventory: the Cloud Run services and jobs of one project and what they must run."""

    model_config = ConfigDict(title="deploycheck inventory (services.yaml)")

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="the Google Cloud project id")
    region: RegionName = Field(description="the Cloud Run region of every entry that names none, e.g. us-west2")
    registry: Omittable[Annotated[str, AfterValidator(_check_registry)]] = Field(
        default=None, description="a repository prefix HOST/PATH that relative image names are resolved against"
    )
    legacy_registries: list[RegistryPrefix] = Field(
        default=[], description="a list of registries (HOST or HOST/PATH prefixes) no image may come from any more"
    )
    patterns: dict[str, PatternEntry] = Field(
        default={}, description="a mapping of named code patterns, referenced by `code`"
    )
    defaults: Omittable[Defaults] = Field(
        default=None, description="a mapping (service, job) of values the entries inherit"
    )
    heartbeats: Omittable[HeartbeatsEntry] = Field(
        default=None,
        description=(
            "a mapping (collection, id_pattern, count, max_age_hours) describing the Firestore heartbeat documents; "
            "without it the heartbeat-docs check is not configured"
        ),
    )
    services: list[ServiceEntry] = Field(
        default=[], description=("a list of the Cloud Run services, each a mapping with at least `name`")
    )
    jobs: list[JobEntry] = Field(
        default=[], description="a list of the Cloud Run jobs, each a mapping with at least `name`"
    )
    waivers: list[WaiverEntry] = Field(
        default=[], description=("a list of accepted risks, each a mapping (check, resources, reason, owner, expires)")
    )


def inventory_json_schema() -> dict:
    """JSON Schema of the services.yaml format, for editors (yaml-language-server)."""
    schema = InventoryFile.model_json_schema()
    # Absent keys inherit; pydantic's `"default": null` would tell editors that null is the default.
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_without_null_defaults(schema)}


def _without_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_null_defaults(value)
            for key, value in node.items()
            if not (key == "default" and value is None)
        }
    if isinstance(node, list):
        return [_without_null_defaults(item) for item in node]
    return node

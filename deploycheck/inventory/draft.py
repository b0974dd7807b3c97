"""A first services.yaml drafted from what is deployed (`deploycheck inventory import`): pure
functions from the observed fleet to the inventory's text, every guess marked by a comment.

An inventory says what *should* run, and an import can only see what *does*. Copied blindly it
would bless every drift the checks exist to find, so the draft states the platform's evident
conventions instead and leaves the exceptions visible:

- the registry is the repository prefix most services' images share (Artifact Registry over
  Container Registry); images are written relative to it;
- Container Registry hosts (gcr.io and its regional hosts) seen on any image become
  `legacy_registries`: nothing may run from there any more, so a job still on gcr.io keeps
  failing stale-jobs after the import;
- a job runs the service whose image repository it runs; a job whose image no service runs keeps
  its own image, unless that image is in a legacy registry, where the draft guesses the service
  with the closest name (the image must move anyway) and says so;
- a job that never ran and is older than UNUSED_AFTER_DAYS looks abandoned (seed 001's job
  "nobody knew existed"): it is left out and listed in a comment, so the orphans check keeps
  reporting it until someone declares it or deletes it;
- service accounts and the roles granted to them on the project (unconditional bindings; the
  conditional ones are listed in a comment), shared values lifted into `defaults`;
- service labels whose values look like commit ids become `service_commit_labels` (a guess).

Heartbeats, code patterns and heartbeat line formats cannot be seen from the fleet: the draft says
how to add them, and until then those checks are listed as not configured.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import yaml

from ..cloudrun import JobState, ServiceState
from ..iam import IamPolicy, account_member
from ..imageref import ImageRef, ImageRefError

UNUSED_AFTER_DAYS = 90
DEFAULT_TAG = "latest"
CONTAINER_REGISTRY_HOSTS = ("gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io")
COMMIT_VALUE = re.compile(r"^[0-9a-f]{7,40}$")
GUESS = "GUESS: "


@dataclass(frozen=True)
class Fleet:
    """What the import read: one list call per resource type, the project's IAM policy, and the
    account each service without one in its template runs as (from its newest ready revision)."""

    project: str
    region: str
    services: list[ServiceState]
    jobs: list[JobState]
    policy: IamPolicy
    effective_accounts: dict[str, str] = field(default_factory=dict)  # service -> account its revision runs as
    source: str = "gcp"  # where it was read, for the header


@dataclass
class _Entry:
    """One service or job of the draft: its keys in order, a comment per key, and lines above it."""

    values: dict = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _image(text: str) -> ImageRef | None:
    try:
        return ImageRef.parse(text)
    except ImageRefError:
        return None


def _prefix(ref: ImageRef) -> str:
    return ref.repository.rsplit("/", 1)[0]


def _legacy_host(ref: ImageRef) -> str | None:
    return ref.host if ref.host in CONTAINER_REGISTRY_HOSTS else None


def detect_registry(images: list[str]) -> str | None:
    """The repository prefix most of the images share, Artifact Registry before Container Registry."""
    prefixes = Counter(_prefix(ref) for ref in map(_image, images) if ref and "/" in ref.path)
    ranked = sorted(
        prefixes.items(), key=lambda item: (item[0].split("/")[0] in CONTAINER_REGISTRY_HOSTS, -item[1], item[0])
    )
    return ranked[0][0] if ranked else None


def roles_of(policy: IamPolicy, account: str) -> tuple[list[str], list[str]]:
    """(roles granted to the account unconditionally, roles granted only under a condition), sorted."""
    member = account_member(account).lower()
    plain: set[str] = set()
    conditional: set[str] = set()
    for binding in policy.bindings:
        if any(m.lower() == member for m in binding.members):
            (conditional if binding.condition else plain).add(binding.role)
    return sorted(plain), sorted(conditional - plain)


def _age_days(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else max(0, (now - when).days)


class Drafter:
    def __init__(self, fleet: Fleet, now: datetime):
        self.fleet = fleet
        self.now = now
        self.registry = detect_registry([s.template_image for s in fleet.services] or [j.image for j in fleet.jobs])
        refs = [_image(s.template_image) for s in fleet.services] + [_image(j.image) for j in fleet.jobs]
        # Legacy only beside a registry that is not: otherwise nothing says where the images should live.
        self.legacy = sorted(
            {
                host
                for ref in refs
                if ref and (host := _legacy_host(ref)) and self.registry and not self.registry.startswith(host + "/")
            }
        )
        self.service_repos: dict[str, str] = {}
        for service in fleet.services:
            ref = _image(service.template_image)
            if ref:
                self.service_repos.setdefault(ref.repository, service.name)

    # --- services --------------------------------------------------------------------------------
    def _image_keys(self, name: str, image: str, entry: _Entry, *, kind: str) -> None:
        ref = _image(image)
        if ref is None:
            entry.values["image"] = image
            entry.comments["image"] = f"{GUESS}the deployed image {image!r} is not a reference deploycheck can read"
            return
        legacy = _legacy_host(ref) in self.legacy
        if legacy and self.registry:
            # Nothing may run from a legacy registry: the entry names where the image should live.
            relative = ref.repository.rsplit("/", 1)[-1]
            entry.values["image"] = relative
            entry.comments["image"] = (
                f"{GUESS}deployed from {ref} in the legacy registry {ref.host}; expected from {self.registry}"
            )
            return
        if self.registry and ref.repository.startswith(self.registry + "/"):
            image = ref.repository[len(self.registry) + 1 :]
        else:
            image = ref.repository
            if self.registry:
                entry.comments["image"] = f"not in the detected registry {self.registry}"
        tag, tag_comment = None, None
        if ref.tag and ref.tag != DEFAULT_TAG:
            tag, tag_comment = (
                ref.tag,
                f"{GUESS}the {kind} was deployed from :{ref.tag}; is that the tag your pipeline moves?",
            )
        elif ref.digest and not ref.tag:
            tag_comment = (
                f"{GUESS}the {kind} was deployed by digest ({ref.digest[:19]}…); "
                f":{DEFAULT_TAG} assumed, set the tag your pipeline pushes"
            )
        if kind == "job":  # a job entry has no `tag:`; its image carries it
            entry.values["image"] = f"{image}:{tag}" if tag else image
            if tag_comment:
                entry.comments["image"] = tag_comment
            return
        if image != name:
            entry.values["image"] = image
        if tag_comment:
            entry.values["tag"] = tag or DEFAULT_TAG
            entry.comments["tag"] = tag_comment

    def service(self, state: ServiceState) -> _Entry:
        entry = _Entry({"name": state.name})
        self._image_keys(state.name, state.template_image, entry, kind="service")
        account = state.template_service_account or self.fleet.effective_accounts.get(state.name, "")
        if account:
            entry.values["service_account"] = account
            if not state.template_service_account:
                entry.comments["service_account"] = "the account its newest ready revision runs as (the default)"
            roles, conditional = roles_of(self.fleet.policy, account)
            entry.values["roles"] = roles
            if not roles:
                entry.comments["roles"] = (
                    "the account holds no role on the project itself (inherited ones are not listed)"
                )
            if conditional:
                entry.notes.append(f"only under a condition, {account} also holds: {', '.join(conditional)}")
        else:
            entry.notes.append("its template names no service account and no ready revision says which it runs as")
        commit_labels = sorted(key for key, value in state.labels.items() if COMMIT_VALUE.match(value))
        if commit_labels:
            entry.values["service_commit_labels"] = commit_labels
            entry.comments["service_commit_labels"] = (
                f"{GUESS}these labels' values look like commit ids; the commit "
                "check holds them to the running image's "
                "org.opencontainers.image.revision label"
            )
        return entry

    # --- jobs ------------------------------------------------------------------------------------
    def abandoned(self, job: JobState) -> str | None:
        """Why the job looks abandoned (left out of the draft), or None."""
        age = _age_days(job.create_time, self.now)
        if job.execution_count == 0 and age is not None and age > UNUSED_AFTER_DAYS:
            return f"never executed since it was created {age} days ago"
        return None

    def job(self, state: JobState) -> _Entry:
        entry = _Entry({"name": state.name})
        ref = _image(state.image)
        runs = self.service_repos.get(ref.repository) if ref else None
        if runs:
            entry.values["runs"] = runs
            entry.comments["runs"] = f"it runs {runs}'s image repository"
            if ref and ref.tag and ref.tag != DEFAULT_TAG and ref.digest is None:
                entry.notes.append(f"deployed from :{ref.tag}, not the tag {runs} is checked against")
        elif ref and _legacy_host(ref) in self.legacy and self.fleet.services:
            closest = self._stranded_guess()
            entry.values["runs"] = closest
            entry.comments["runs"] = (
                f"{GUESS}its image is in the legacy registry {ref.host} and no service runs its "
                f"repository; {closest}'s name is the closest to these jobs' names: set the "
                "service whose code it runs, or `image:` for its own"
            )
        else:
            self._image_keys(state.name, state.image, entry, kind="job")
            entry.comments.setdefault("image", "its own image: no service runs this repository")
        return entry

    def _stranded_guess(self) -> str:
        """One service for every job stranded in a legacy registry: the one whose name is closest to
        theirs taken together. Such jobs are usually one family (seed 001's 21 backfill jobs); one
        guess for all of them reads as the single decision it is, where a guess per job would scatter
        them over services by the accident of their names."""
        stranded = [
            job.name
            for job in self.fleet.jobs
            if (ref := _image(job.image))
            and _legacy_host(ref) in self.legacy
            and ref.repository not in self.service_repos
        ]
        names = sorted(s.name for s in self.fleet.services)

        def closeness(service: str) -> float:
            return sum(difflib.SequenceMatcher(None, job, service).ratio() for job in stranded)

        return max(names, key=lambda name: (closeness(name), [-ord(c) for c in name]))

    # --- the whole draft -------------------------------------------------------------------------
    def text(self) -> str:
        fleet = self.fleet
        services = [self.service(state) for state in sorted(fleet.services, key=lambda s: s.name)]
        kept, left_out = [], []
        for state in sorted(fleet.jobs, key=lambda j: j.name):
            reason = self.abandoned(state)
            (left_out.append((state.name, reason)) if reason else kept.append(self.job(state)))
        defaults = {
            "service": _lift(services, ("service_account", "roles", "service_commit_labels", "tag")),
            "job": _lift(kept, ("runs",), require_all=True),
        }
        out = _Writer()
        out.comment(
            f"Drafted by `deploycheck inventory import` from {fleet.source} ({fleet.project}, {fleet.region}) "
            f"on {self.now:%Y-%m-%d %H:%M}Z: {len(fleet.services)} services, {len(fleet.jobs)} jobs."
        )
        out.comment("It states what should run; review every line marked GUESS before gating deploys on it.")
        out.comment("Not imported, because the fleet does not show them (their checks are listed as not configured):")
        out.comment(
            "  heartbeats: (the Firestore heartbeat collection), patterns: + code: (files the images must hold),"
        )
        out.comment("  heartbeat_log: (the heartbeat line formats). See services.schema.json for their keys.")
        out.blank()
        out.key("project", fleet.project)
        out.key("region", fleet.region)
        if self.registry:
            out.blank()
            out.comment("The repository prefix most services' images share; relative image names resolve against it.")
            out.key("registry", self.registry)
        if self.legacy:
            out.blank()
            out.comment(
                "Container Registry (deprecated for Artifact Registry) was seen on some images: nothing may run "
                "from there any more."
            )
            out.key("legacy_registries", self.legacy)
        if any(defaults.values()):
            out.blank()
            out.line("defaults:")
            for kind in ("service", "job"):
                if defaults[kind]:
                    out.line(f"  {kind}:")
                    for key, (value, comment) in defaults[kind].items():
                        out.key(key, value, indent=4, comment=comment)
        out.blank()
        out.entries("services", services)
        if kept:
            out.blank()
            out.entries("jobs", kept)
        if left_out:
            out.blank()
            out.comment("Not imported: these jobs look abandoned. The orphans check keeps reporting them until you")
            out.comment("declare them under `jobs:` or delete them:")
            for name, reason in left_out:
                out.comment(f"  - {name}: {reason}")
        return out.text()


def _lift(entries: list[_Entry], keys: tuple[str, ...], *, require_all: bool = False) -> dict:
    """Values most entries share move to `defaults` (at least two entries, and every entry when
    `require_all`); entries with that value drop the key, the others keep theirs."""
    lifted = {}
    for key in keys:
        values = Counter(repr(entry.values[key]) for entry in entries if key in entry.values)
        if not values:
            continue
        shown, count = values.most_common(1)[0]
        if count < 2 or (require_all and count != len(entries)):
            continue
        sharing = [entry for entry in entries if repr(entry.values.get(key)) == shown]
        value = sharing[0].values[key]
        comments = {entry.comments.get(key) for entry in sharing} - {None}
        lifted[key] = (value, next(iter(comments)) if len(comments) == 1 else None)
        for entry in sharing:
            entry.values.pop(key)
            entry.comments.pop(key, None)
    return lifted


def _scalar(value) -> str:
    """A YAML flow scalar or list, quoted where YAML needs it."""
    return yaml.safe_dump([value], default_flow_style=True, width=10_000).strip()[1:-1]


class _Writer:
    def __init__(self):
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def blank(self) -> None:
        self.lines.append("")

    def comment(self, text: str, indent: int = 0) -> None:
        self.lines.append(" " * indent + "# " + text)

    def key(self, key: str, value, *, indent: int = 0, comment: str | None = None, prefix: str = "") -> None:
        line = " " * indent + prefix + f"{key}: {_scalar(value)}"
        self.lines.append(line + (f"  # {comment}" if comment else ""))

    def entries(self, section: str, entries: list[_Entry]) -> None:
        self.line(f"{section}:")
        for entry in entries:
            for note in entry.notes:
                self.comment(note, indent=2)
            for position, (key, value) in enumerate(entry.values.items()):
                self.key(
                    key,
                    value,
                    indent=2 if position == 0 else 4,
                    prefix="- " if position == 0 else "",
                    comment=entry.comments.get(key),
                )

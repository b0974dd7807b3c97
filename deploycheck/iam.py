"""IAM as Google evaluates it, read-only: the allow policies of the project and of every folder and
the organisation above it (Resource Manager v3 through google-cloud-resource-manager, REST), and
the permissions each role holds (IAM v1 `roles.get`).

`roles.get` is read as raw JSON through an AuthorizedSession: google-cloud-iam's IAMClient has
only gRPC transports, and the sandbox stand-in (like every other API here) speaks REST. Every
payload is checked before it is believed: a missing or malformed field is an ObservationError
naming the API, never a default.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ObservationError
from .gcall import ApiCounter, CallPolicy, call, pin_environment, raise_for_status, transport_session
from .lazy import MadeOnFirstUse

DEFAULT_ENDPOINT = "https://cloudresourcemanager.googleapis.com"
DEFAULT_IAM_ENDPOINT = "https://iam.googleapis.com"
# Folders nest at most 10 deep under an organisation; a longer chain is a malformed answer.
MAX_ANCESTORS = 11
PARENT_RE = re.compile(r"(folders|organizations)/\d+")
ROLE_RE = re.compile(r"roles/[A-Za-z0-9_.]+|(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+")
# Members the account belongs to whoever it is.
EVERYONE = ("allUsers", "allAuthenticatedUsers")
# Members that may or may not include the account: their membership is not visible here.
INDIRECT_PREFIXES = ("group:", "domain:", "principalSet:", "principal:")

T = TypeVar("T")


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]
    condition: str | None = None  # the condition's expression; a conditional grant may not apply


@dataclass(frozen=True)
class IamPolicy:
    resource: str  # projects/ID, folders/N or organizations/N
    bindings: tuple[Binding, ...]


@dataclass(frozen=True)
class PolicyHierarchy:
    """The project's allow policy and those it inherits, nearest first."""

    project: str
    policies: tuple[IamPolicy, ...]

    def grants(self):
        """(resource, binding) for every binding at every level."""
        for policy in self.policies:
            for binding in policy.bindings:
                yield policy.resource, binding


@dataclass(frozen=True)
class Role:
    name: str
    permissions: frozenset[str]
    active: bool = True  # False: deleted or DISABLED, so granting it grants nothing

    @property
    def granted_permissions(self) -> frozenset[str]:
        return self.permissions if self.active else frozenset()


def account_member(account: str) -> str:
    return f"serviceAccount:{account}"


def applies_to(member: str, account: str) -> bool:
    """True when the member certainly includes the account (emails compare case-insensitively)."""
    return member in EVERYONE or member.lower() == account_member(account).lower()


def is_indirect(member: str) -> bool:
    return member.startswith(INDIRECT_PREFIXES)


def roles_to_read(hierarchy: PolicyHierarchy, account: str, required_roles: list[str]) -> list[str]:
    """Every role whose permissions can decide whether `account` holds `required_roles`."""
    roles = dict.fromkeys(required_roles)
    for _, binding in hierarchy.grants():
        if any(applies_to(m, account) or is_indirect(m) for m in binding.members):
            roles.setdefault(binding.role)
    return list(roles)


class IamReader:
    def __init__(self, project: str, credentials, *, endpoint: str | None = None, policy: CallPolicy | None = None):
        self.project = project
        self.policy = policy or CallPolicy()
        self.calls = ApiCounter()
        # The sandbox serves every Google API at one endpoint; the real ones have one host each.
        self.iam_endpoint = (endpoint or DEFAULT_IAM_ENDPOINT).rstrip("/")
        api_endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._clients = MadeOnFirstUse(
            functools.partial(_IamClients.make, credentials, api_endpoint, self.iam_endpoint)
        )
        self._roles: dict[str, Role] = {}

    def prepare(self) -> None:
        """Make the clients now (importing the client library), if no read has yet."""
        self._clients.get()

    # --- the resource hierarchy ---------------------------------------------------------------
    def hierarchy(self, read_policy: Callable[[str], IamPolicy] | None = None) -> PolicyHierarchy:
        """The project's policy, then each folder's, then the organisation's. `read_policy` reads
        one resource's policy (default: iam_policy), e.g. through a cache that read it ahead."""
        read_policy = read_policy or self.iam_policy
        resources = [f"projects/{self.project}", *self.ancestors()]
        return PolicyHierarchy(self.project, tuple(read_policy(resource) for resource in resources))

    def ancestors(self) -> list[str]:
        """folders/N ... organizations/N above the project; empty for a project without an organisation."""
        made = self._clients.get()
        projects, folders = made.projects, made.folders
        project = self._read(
            "projects.get",
            f"project {self.project}",
            "resourcemanager.projects.get",
            lambda: projects.get_project(
                name=f"projects/{self.project}", retry=None, timeout=self.policy.attempt_timeout
            ),
        )
        ancestors: list[str] = []
        parent = _parent("projects.get", f"projects/{self.project}", project.parent, required=False)
        while parent:
            if parent in ancestors or len(ancestors) >= MAX_ANCESTORS:
                raise ObservationError(
                    f"the ancestry of project {self.project}",
                    f"Resource Manager returned a parent chain that loops or is too deep: "
                    f"{' -> '.join([*ancestors, parent])}",
                )
            ancestors.append(parent)
            if parent.startswith("organizations/"):
                break
            folder = self._read(
                "folders.get",
                parent,
                "resourcemanager.folders.get",
                functools.partial(folders.get_folder, name=parent, retry=None, timeout=self.policy.attempt_timeout),
            )
            parent = _parent("folders.get", parent, folder.parent, required=True)
        return ancestors

    def iam_policy(self, resource: str) -> IamPolicy:
        kind = resource.split("/", 1)[0]
        made = self._clients.get()
        clients: dict[str, Any] = {
            "projects": made.projects,
            "folders": made.folders,
            "organizations": made.organizations,
        }
        client = clients[kind]
        # Version 3 returns conditional bindings with their conditions instead of failing.
        request = {"resource": resource, "options": {"requested_policy_version": 3}}
        method = f"{kind}.getIamPolicy"
        policy = self._read(
            method,
            f"the IAM policy of {resource}",
            f"resourcemanager.{kind}.getIamPolicy",
            lambda: client.get_iam_policy(request=request, retry=None, timeout=self.policy.attempt_timeout),
        )
        what = f"the IAM policy of {resource}"
        if not policy.etag:
            # Every real answer carries an etag; one without it is not a policy.
            raise ObservationError(
                what, f"{method} answered a policy without an etag (an empty or incomplete answer, not a policy)"
            )
        bindings = []
        for index, binding in enumerate(policy.bindings):
            if not binding.role or not binding.members or not all(binding.members):
                raise ObservationError(
                    what,
                    f"{method} returned binding #{index} with an empty role or member "
                    f"(role={binding.role!r}, members={list(binding.members)!r})",
                )
            condition = binding.condition.expression if binding.HasField("condition") else None
            if condition is not None and not condition.strip():
                raise ObservationError(
                    what, f"{method} returned binding #{index} ({binding.role}) with a condition that has no expression"
                )
            bindings.append(Binding(role=binding.role, members=tuple(binding.members), condition=condition))
        return IamPolicy(resource, tuple(bindings))

    # --- roles -------------------------------------------------------------------------------
    def role(self, name: str) -> Role:
        """The role's permissions as IAM's roles.get reports them (each role read once per reader)."""
        if name not in self._roles:
            self._roles[name] = self._read_role(name)
        return self._roles[name]

    def _read_role(self, name: str) -> Role:
        what = f"the permissions of role {name}"
        if not ROLE_RE.fullmatch(name):
            raise ObservationError(
                what, "not a role name roles.get accepts (roles/ID, projects/P/roles/ID or organizations/O/roles/ID)"
            )
        session = self._clients.get().session
        body = call(
            what,
            lambda: json.loads(
                raise_for_status(
                    session.get(f"{self.iam_endpoint}/v1/{name}", timeout=self.policy.attempt_timeout)
                ).content.decode("utf-8")
            ),
            policy=self.policy,
            permission="iam.roles.get",
            counter=self.calls,
            method="roles.get",
            api="IAM",
        )
        return parse_role(name, body)

    # --- plumbing ----------------------------------------------------------------------------
    def _read(self, method: str, what: str, permission: str, fn: Callable[[], T]) -> T:
        return call(
            what,
            fn,
            policy=self.policy,
            permission=permission,
            counter=self.calls,
            method=method,
            api="Resource Manager",
        )

    def close(self) -> None:
        made = self._clients.made()
        if made is not None:
            made.session.close()
            for client in (made.projects, made.folders, made.organizations):
                client.transport.close()


@dataclass(frozen=True)
class _IamClients:
    projects: Any
    folders: Any
    organizations: Any
    session: Any  # roles.get as raw JSON

    @classmethod
    def make(cls, credentials, api_endpoint: str, iam_endpoint: str) -> _IamClients:
        # Imported when a reader is first used, not when a check module is collected.
        from google.api_core.client_options import ClientOptions
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import resourcemanager_v3

        options = ClientOptions(api_endpoint=api_endpoint)
        made = cls(
            projects=resourcemanager_v3.ProjectsClient(
                transport="rest", credentials=credentials, client_options=options
            ),
            folders=resourcemanager_v3.FoldersClient(transport="rest", credentials=credentials, client_options=options),
            organizations=resourcemanager_v3.OrganizationsClient(
                transport="rest", credentials=credentials, client_options=options
            ),
            session=AuthorizedSession(credentials),
        )
        pin_environment(made.session, iam_endpoint)
        for client in (made.projects, made.folders, made.organizations):
            pin_environment(transport_session(client), api_endpoint)
        return made


def _parent(method: str, resource: str, parent: str, *, required: bool) -> str:
    if not parent and not required:
        return ""
    if not PARENT_RE.fullmatch(parent or ""):
        raise ObservationError(
            f"the parent of {resource}", f"{method} returned parent {parent!r}, expected folders/N or organizations/N"
        )
    return parent


def parse_role(name: str, body: object) -> Role:
    """A roles.get answer, checked: the role asked for, with a list of permission names."""
    what = f"the permissions of role {name}"
    if not isinstance(body, dict):
        raise ObservationError(what, f"roles.get answered with {type(body).__name__}, not a JSON object")
    if body.get("name") != name:
        raise ObservationError(what, f"roles.get answered for role {body.get('name')!r}, not {name!r}")
    inactive = bool(body.get("deleted")) or body.get("stage") == "DISABLED"
    permissions = body.get("includedPermissions")
    if permissions is None and inactive:
        return Role(name, frozenset(), active=False)
    if not isinstance(permissions, list) or not permissions:
        raise ObservationError(
            what, f"roles.get answered without a list of includedPermissions (got {type(permissions).__name__})"
        )
    bad = [p for p in permissions if not isinstance(p, str) or not p]
    if bad:
        raise ObservationError(what, f"roles.get listed permissions that are not names: {bad[:3]!r}")
    return Role(name, frozenset(permissions), active=not inactive)

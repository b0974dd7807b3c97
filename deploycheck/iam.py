"""The project's IAM policy, read through google-cloud-resource-manager (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core.client_options import ClientOptions
from google.cloud import resourcemanager_v3

from .gcall import ApiCounter, CallPolicy, call

DEFAULT_ENDPOINT = "https://cloudresourcemanager.googleapis.com"


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]
    condition: str | None = None  # the condition's expression; a conditional grant may not apply


@dataclass(frozen=True)
class ProjectPolicy:
    project: str
    bindings: tuple[Binding, ...]

    def roles_of(self, member: str) -> dict[str, Binding]:
        return {b.role: b for b in self.bindings if member in b.members}


class IamReader:
    def __init__(self, project: str, credentials, *, endpoint: str | None = None, policy: CallPolicy | None = None):
        self.project = project
        self.policy = policy or CallPolicy()
        self.calls = ApiCounter()
        self._projects = resourcemanager_v3.ProjectsClient(
            transport="rest", credentials=credentials,
            client_options=ClientOptions(api_endpoint=(endpoint or DEFAULT_ENDPOINT).rstrip("/")))

    def project_policy(self) -> ProjectPolicy:
        resource = f"projects/{self.project}"
        # Version 3 returns conditional bindings with their conditions instead of failing.
        request = {"resource": resource, "options": {"requested_policy_version": 3}}
        policy = call(f"the IAM policy of {resource}", lambda: self._projects.get_iam_policy(
            request=request, retry=None, timeout=self.policy.attempt_timeout),
            policy=self.policy, permission="resourcemanager.projects.getIamPolicy", counter=self.calls,
            method="projects.getIamPolicy", api="Resource Manager")
        return ProjectPolicy(self.project, tuple(
            Binding(role=b.role, members=tuple(b.members),
                    condition=b.condition.expression if b.HasField("condition") else None)
            for b in policy.bindings))

    def close(self) -> None:
        self._projects.transport.close()

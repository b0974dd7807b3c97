"""IamReader against the API stand-in: the hierarchy is walked through the real
google-cloud-resource-manager clients, roles.get answers are read once, and every malformed
or refused answer is an ObservationError naming the API and what was wrong."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from google.auth.credentials import AnonymousCredentials

from deploycheck.errors import NotFoundError, ObservationError, PermissionDeniedError
from deploycheck.gcall import CallPolicy
from deploycheck.iam import IamReader
from deploycheck.sandbox.apiserver import ApiState

from conftest import serving

PROJECT = "p1"
POLICY = {"version": 3, "etag": "BwY=", "bindings": [{"role": "roles/editor", "members": ["serviceAccount:a@x.com"]}]}


def state(*, policies=None, resources=None) -> ApiState:
    base_policies = {f"projects/{PROJECT}": POLICY, "folders/1": {"etag": "BwY="}, "organizations/2": {"etag": "BwY="}}
    base_resources = {
        f"projects/{PROJECT}": {"name": "projects/123", "parent": "folders/1"},
        "folders/1": {"name": "folders/1", "parent": "organizations/2"},
        "organizations/2": {"name": "organizations/2"},
    }
    return ApiState({}, {**base_policies, **(policies or {})}, iam_resources={**base_resources, **(resources or {})})


@pytest.fixture
def reader_for():
    """A reader on a stand-in serving the given state; both closed after the test."""
    with ExitStack() as stack:

        def make(api_state: ApiState) -> IamReader:
            url = stack.enter_context(serving(api_state))
            reader = IamReader(
                PROJECT, AnonymousCredentials(), endpoint=url, policy=CallPolicy(deadline=5, attempt_timeout=5)
            )
            stack.callback(reader.close)
            return reader

        yield make


def test_walks_project_folder_organisation_and_reads_each_role_once(reader_for):
    reader = reader_for(state())
    hierarchy = reader.hierarchy()
    assert [p.resource for p in hierarchy.policies] == [f"projects/{PROJECT}", "folders/1", "organizations/2"]
    assert hierarchy.policies[0].bindings[0].role == "roles/editor"
    assert "datastore.entities.create" in reader.role("roles/editor").permissions
    reader.role("roles/editor")
    assert reader.calls["roles.get"] == 1
    assert reader.calls["folders.get"] == 1 and reader.calls["organizations.getIamPolicy"] == 1


def test_a_project_without_an_organisation_has_only_its_own_policy(reader_for):
    reader = reader_for(state(resources={f"projects/{PROJECT}": {"name": "projects/123"}}))
    assert [p.resource for p in reader.hierarchy().policies] == [f"projects/{PROJECT}"]


def test_a_refused_organisation_policy_names_the_permission(reader_for):
    api_state = state()
    del api_state.iam_policies["organizations/2"]
    with pytest.raises(PermissionDeniedError) as raised:
        reader_for(api_state).hierarchy()
    assert raised.value.permission == "resourcemanager.organizations.getIamPolicy"


@pytest.mark.parametrize(
    "resources, policies, complaint",
    [
        ({"folders/1": {"name": "folders/1"}}, {}, "folders.get returned parent ''"),
        (
            {f"projects/{PROJECT}": {"name": "projects/123", "parent": "billing/9"}},
            {},
            "expected folders/N or organizations/N",
        ),
        ({"folders/1": {"name": "folders/1", "parent": "folders/1"}}, {}, "loops or is too deep"),
        ({}, {"folders/1": {"bindings": []}}, "without an etag"),
        ({}, {"folders/1": {"etag": "BwY=", "bindings": [{"role": "", "members": ["user:a@x.com"]}]}}, "empty role"),
        (
            {},
            {"folders/1": {"etag": "BwY=", "bindings": [{"role": "roles/viewer", "members": "user:a@x.com"}]}},
            "folders.getIamPolicy answered a malformed payload",
        ),
        (
            {f"projects/{PROJECT}": {"name": "projects/123", "parent": 7}},
            {},
            "projects.get answered a malformed payload",
        ),
    ],
)
def test_malformed_hierarchy_answers_are_observation_errors(reader_for, resources, policies, complaint):
    with pytest.raises(ObservationError, match=complaint):
        reader_for(state(resources=resources, policies=policies)).hierarchy()


def test_roles_get_errors(reader_for):
    reader = reader_for(
        state(resources={"projects/p1/roles/odd": {"name": "projects/p1/roles/odd", "includedPermissions": {"a": 1}}})
    )
    with pytest.raises(NotFoundError, match=r"roles/no\.such"):
        reader.role("roles/no.such")
    with pytest.raises(ObservationError, match="without a list of includedPermissions"):
        reader.role("projects/p1/roles/odd")
    with pytest.raises(ObservationError, match="not a role name"):
        reader.role("roles/../../v3/projects/p1")

"""iam rule: requirements are met by permissions, as Google decides them (any role that holds them, at
any level of the hierarchy); what is missing is named with the grant command; what cannot be seen is
ERROR, not a guess. Role permissions are Google's own roles.get answers (the sandbox snapshot)."""

import json

import pytest

from deploycheck.errors import ObservationError
from deploycheck.findings import Outcome
from deploycheck.iam import Binding, IamPolicy, PolicyHierarchy, Role, parse_role, roles_to_read
from deploycheck.rules.iam import evaluate_iam
from deploycheck.sandbox.apiserver import PREDEFINED_ROLES_DIR

SA = "prediction-worker@nba-props-platform.iam.gserviceaccount.com"
ME = f"serviceAccount:{SA}"
PROJECT = "nba-props-platform"
CUSTOM = f"projects/{PROJECT}/roles/heartbeatWriter"


def predefined(name: str) -> Role:
    return parse_role(name, json.loads((PREDEFINED_ROLES_DIR / f"{name.split('/')[1]}.json").read_text()))


DATASTORE_USER = predefined("roles/datastore.user")


def iam(*bindings, running_as=SA, expected=SA, roles=("roles/datastore.user",), folder=(), org=(), custom=None):
    hierarchy = PolicyHierarchy(
        PROJECT,
        (
            IamPolicy(f"projects/{PROJECT}", tuple(bindings)),
            IamPolicy("folders/111", tuple(folder)),
            IamPolicy("organizations/222", tuple(org)),
        ),
    )
    catalog = {}
    for name in roles_to_read(hierarchy, running_as, list(roles)):
        catalog[name] = custom if name == CUSTOM else predefined(name)
    return evaluate_iam(
        "prediction-worker",
        running_as=running_as,
        expected_account=expected,
        required_roles=list(roles),
        hierarchy=hierarchy,
        roles=catalog,
        region="us-west2",
    )


def test_direct_grant_passes():
    [finding] = iam(Binding("roles/datastore.user", (ME,)))
    assert finding.outcome is Outcome.PASS


@pytest.mark.parametrize("role", ["roles/editor", "roles/owner", "roles/datastore.owner"])
def test_a_role_holding_every_permission_passes(role):
    [finding] = iam(Binding(role, (ME,)))
    assert finding.outcome is Outcome.PASS, finding.summary
    assert f"through {role} on projects/{PROJECT}" in finding.summary


def test_viewer_fails_naming_the_missing_permissions_and_granting_the_required_role():
    [finding] = iam(Binding("roles/viewer", (ME,)), Binding("roles/datastore.user", ("serviceAccount:o@x.com",)))
    assert finding.outcome is Outcome.FAIL and "lacks roles/datastore.user" in finding.summary
    assert "datastore.entities.create" in finding.summary and "datastore.entities.get" not in finding.summary
    assert "datastore.entities.update" in finding.evidence["missing_permissions"]
    assert finding.remediation == (
        f"gcloud projects add-iam-policy-binding {PROJECT} --member=serviceAccount:{SA} --role=roles/datastore.user"
    )


def test_grants_on_the_folder_or_organisation_apply():
    [on_folder] = iam(folder=[Binding("roles/datastore.user", (ME,))])
    assert on_folder.outcome is Outcome.PASS and "folders/111" in on_folder.summary
    [on_org] = iam(org=[Binding("roles/editor", (ME,))])
    assert on_org.outcome is Outcome.PASS and "organizations/222" in on_org.summary
    # Permissions held in parts add up: the viewer's reads on the project, the writes from a custom role above.
    writes = Role(CUSTOM, DATASTORE_USER.permissions - predefined("roles/viewer").permissions)
    [split] = iam(Binding("roles/viewer", (ME,)), org=[Binding(CUSTOM, (ME,))], custom=writes)
    assert split.outcome is Outcome.PASS


def test_custom_role_is_judged_by_its_permissions():
    [holds] = iam(Binding(CUSTOM, (ME,)), custom=Role(CUSTOM, DATASTORE_USER.permissions | {"pubsub.topics.publish"}))
    assert holds.outcome is Outcome.PASS
    [short] = iam(
        Binding(CUSTOM, (ME,)), custom=Role(CUSTOM, DATASTORE_USER.permissions - {"datastore.entities.update"})
    )
    assert short.outcome is Outcome.FAIL and short.evidence["missing_permissions"] == ["datastore.entities.update"]
    [disabled] = iam(Binding(CUSTOM, (ME,)), custom=Role(CUSTOM, DATASTORE_USER.permissions, active=False))
    assert disabled.outcome is Outcome.FAIL


def test_group_grant_and_conditional_grant_cannot_be_verified():
    [via_group] = iam(Binding("roles/datastore.user", ("group:processors@nba-props.example",)))
    assert via_group.outcome is Outcome.ERROR and "group:processors@nba-props.example" in via_group.summary
    [conditional] = iam(
        Binding("roles/datastore.user", (ME,), condition="request.time < timestamp('2026-01-01T00:00:00Z')")
    )
    assert conditional.outcome is Outcome.ERROR and "only under the condition" in conditional.summary
    # ...but when the account holds the permissions anyway, neither matters.
    [held_anyway] = iam(Binding("roles/editor", (ME,)), Binding("roles/datastore.user", ("group:g@x.com",)))
    assert held_anyway.outcome is Outcome.PASS
    # A group grant of a role that cannot supply what is missing is no reason for doubt.
    [red] = iam(Binding("roles/viewer", (ME,)), Binding("roles/logging.logWriter", ("group:g@x.com",)))
    assert red.outcome is Outcome.FAIL


def test_wrong_or_missing_account():
    findings = iam(
        Binding("roles/datastore.user", ("serviceAccount:other@x.iam.gserviceaccount.com",)),
        running_as="other@x.iam.gserviceaccount.com",
    )
    assert findings[0].outcome is Outcome.FAIL and f"the inventory expects {SA}" in findings[0].summary
    assert findings[0].remediation.startswith(f"gcloud run services update prediction-worker --service-account {SA}")
    [unknown] = iam(running_as="")
    assert unknown.outcome is Outcome.ERROR


@pytest.mark.parametrize(
    "body, complaint",
    [
        ([], "not a JSON object"),
        ({"name": "roles/editor", "includedPermissions": ["a"]}, "not 'roles/datastore.user'"),
        ({"name": "roles/datastore.user"}, "without a list of includedPermissions"),
        ({"name": "roles/datastore.user", "includedPermissions": "datastore.entities.get"}, "without a list"),
        ({"name": "roles/datastore.user", "includedPermissions": ["ok", 7]}, "not names"),
    ],
)
def test_malformed_roles_get_answers_are_observation_errors(body, complaint):
    with pytest.raises(ObservationError, match=complaint) as raised:
        parse_role("roles/datastore.user", body)
    assert "roles.get" in str(raised.value)


def test_a_deleted_custom_role_grants_nothing():
    role = parse_role(CUSTOM, {"name": CUSTOM, "deleted": True, "etag": "BwY="})
    assert role.granted_permissions == frozenset()


def test_uncertain_grants_that_cannot_supply_everything_missing_leave_it_red():
    # Seed 000's policy: roles/run.admin (to a group) shares only resourcemanager.projects.* with datastore.user.
    [finding] = iam(Binding("roles/logging.logWriter", (ME,)), Binding("roles/run.admin", ("group:admins@x.com",)))
    assert finding.outcome is Outcome.FAIL and "datastore.entities.create" in finding.summary
    assert "resourcemanager.projects.get" not in finding.summary

"""The iam check run as a user runs it, against sandboxes whose roles.get answers are Google's own
(the iam-dataset snapshot): requirements are met by permissions, at any level of the hierarchy."""

from __future__ import annotations

import json

import pytest

from deploycheck.sandbox.apiserver import PREDEFINED_ROLES_DIR

from conftest import findings_for, phase2_scenario

PHASE2 = "nba-phase2-raw-processors"
ACCOUNT = "756957797294-compute@developer.gserviceaccount.com"
SERVICE = f"""\
    service_account: {ACCOUNT}
    revisions: [{{suffix: 00001-aaa, image: app}}]
"""
ANCESTORS = """\
ancestors:
  - name: folders/4455
    iam_policy: {{bindings: [{folder}]}}
  - name: organizations/778899
    iam_policy: {{bindings: [{org}]}}
"""


def run_iam(suite, tmp_path, policy: str, *, ancestors: str = "", extra: str = "") -> dict:
    """The iam check for phase 2 on a scenario with the given project bindings; its one finding."""
    scenario = phase2_scenario(
        tmp_path / "scenario", service=SERVICE + f"iam_policy: {{bindings: [{policy}]}}\n" + ancestors + extra
    )
    result = suite.run(
        "-m", "postdeploy", "-k", "iam", "--service", PHASE2, "--target", f"sandbox:{scenario}", "--report-dir", "out"
    )
    [finding] = findings_for(suite.report(), "iam", PHASE2)
    assert result.ret == (0 if finding["outcome"] == "pass" else 1), result.stdout.str()
    return finding


def grant(role: str, member: str = f"serviceAccount:{ACCOUNT}", condition: str = "") -> str:
    text = f'{{role: "{role}", members: ["{member}"]'
    if condition:
        text += f', condition: {{title: expires, expression: "{condition}"}}'
    return text + "}"


def test_editor_holds_every_permission_of_datastore_user(suite, tmp_path):
    finding = run_iam(suite, tmp_path, grant("roles/editor"))
    assert finding["outcome"] == "pass"
    assert "through roles/editor on projects/nba-props-platform" in finding["summary"]


def test_viewer_lacks_the_writes_named_with_the_grant_of_the_required_role(suite, tmp_path):
    finding = run_iam(suite, tmp_path, grant("roles/viewer"))
    assert finding["outcome"] == "fail" and finding["severity"] == "P1"
    assert "datastore.entities.create" in finding["summary"]
    assert set(finding["evidence"]["missing_permissions"]) >= {
        "datastore.entities.create",
        "datastore.entities.update",
        "datastore.entities.delete",
    }
    assert "datastore.entities.get" not in finding["evidence"]["missing_permissions"]
    assert finding["remediation"] == (
        "gcloud projects add-iam-policy-binding nba-props-platform "
        f"--member=serviceAccount:{ACCOUNT} --role=roles/datastore.user"
    )


@pytest.mark.parametrize("level", ["folder", "org"])
def test_a_grant_on_the_folder_or_organisation_applies(suite, tmp_path, level):
    ancestors = ANCESTORS.format(
        folder=grant("roles/datastore.user") if level == "folder" else "",
        org=grant("roles/datastore.user") if level == "org" else "",
    )
    finding = run_iam(suite, tmp_path, grant("roles/logging.logWriter"), ancestors=ancestors)
    assert finding["outcome"] == "pass"
    where = "folders/4455" if level == "folder" else "organizations/778899"
    assert f"through roles/datastore.user on {where}" in finding["summary"]


def test_a_custom_role_holding_the_permissions_passes(suite, tmp_path):
    permissions = json.loads((PREDEFINED_ROLES_DIR / "datastore.user.json").read_text())["includedPermissions"]
    custom = "projects/nba-props-platform/roles/heartbeatWriter"
    extra = f"custom_roles:\n  - {{name: {custom}, permissions: {json.dumps(permissions)}}}\n"
    finding = run_iam(suite, tmp_path, grant(custom), extra=extra)
    assert finding["outcome"] == "pass" and custom in finding["summary"]


def test_a_conditional_grant_cannot_be_verified(suite, tmp_path):
    finding = run_iam(
        suite, tmp_path, grant("roles/datastore.user", condition="request.time < timestamp('2030-01-01T00:00:00Z')")
    )
    assert finding["outcome"] == "error" and finding["summary"].startswith("cannot verify:")
    assert "only under the condition" in finding["summary"]


def test_a_grant_only_through_a_group_cannot_be_verified(suite, tmp_path):
    finding = run_iam(suite, tmp_path, grant("roles/datastore.user", member="group:processors@nba-props.example"))
    assert finding["outcome"] == "error" and "group:processors@nba-props.example" in finding["summary"]

"""iam rule: a missing role is red with the grant command; what cannot be seen is ERROR, not a guess."""

from deploycheck.findings import Outcome
from deploycheck.iam import Binding, ProjectPolicy
from deploycheck.rules.iam import evaluate_iam

SA = "prediction-worker@nba-props-platform.iam.gserviceaccount.com"


def iam(*bindings, running_as=SA, expected=SA, roles=("roles/datastore.user",)):
    return evaluate_iam("prediction-worker", running_as=running_as, expected_account=expected,
                        required_roles=list(roles), policy=ProjectPolicy("nba-props-platform", tuple(bindings)),
                        region="us-west2")


def test_direct_grant_passes():
    [finding] = iam(Binding("roles/datastore.user", (f"serviceAccount:{SA}",)))
    assert finding.outcome is Outcome.PASS


def test_missing_role_fails_with_the_grant_command():
    [finding] = iam(Binding("roles/datastore.user", ("serviceAccount:other@x.iam.gserviceaccount.com",)))
    assert finding.outcome is Outcome.FAIL and "lacks roles/datastore.user" in finding.summary
    assert finding.remediation == ("gcloud projects add-iam-policy-binding nba-props-platform "
                                   f"--member=serviceAccount:{SA} --role=roles/datastore.user")


def test_group_grant_conditional_grant_and_custom_roles_cannot_be_verified():
    [via_group] = iam(Binding("roles/datastore.user", ("group:processors@nba-props.example",)))
    assert via_group.outcome is Outcome.ERROR and "group:processors@nba-props.example" in via_group.summary
    [conditional] = iam(Binding("roles/datastore.user", (f"serviceAccount:{SA}",),
                                condition="request.time < timestamp('2026-01-01T00:00:00Z')"))
    assert conditional.outcome is Outcome.ERROR and "only under the condition" in conditional.summary
    [custom] = iam(Binding("projects/nba-props-platform/roles/heartbeatWriter", (f"serviceAccount:{SA}",)))
    assert custom.outcome is Outcome.ERROR and "heartbeatWriter" in custom.summary


def test_wrong_or_missing_account():
    findings = iam(Binding("roles/datastore.user", ("serviceAccount:other@x.iam.gserviceaccount.com",)),
                   running_as="other@x.iam.gserviceaccount.com")
    assert findings[0].outcome is Outcome.FAIL and f"the inventory expects {SA}" in findings[0].summary
    assert findings[0].remediation.startswith(f"gcloud run services update prediction-worker --service-account {SA}")
    [unknown] = iam(running_as="")
    assert unknown.outcome is Outcome.ERROR

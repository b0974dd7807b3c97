"""The serving identity: the account the serving revision runs as holds the roles it needs
(seed 000: prediction-worker without roles/datastore.user wrote no heartbeat for days)."""

import pytest

from deploycheck.rules.iam import evaluate_iam

pytestmark = pytest.mark.postdeploy


def test_iam(service, serving_revision, project_policy, deploy_target, verdict):
    verdict(evaluate_iam(service.name, running_as=serving_revision.service_account,
                         expected_account=service.service_account, required_roles=service.roles,
                         policy=project_policy, region=deploy_target.region))

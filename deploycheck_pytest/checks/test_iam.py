"""The serving identity: the account the serving revision runs as holds the permissions of the
roles it needs, through any role and any level of the hierarchy (seed 000: prediction-worker
without roles/datastore.user wrote no heartbeat for days)."""

import pytest

from deploycheck.rules.iam import evaluate_iam

pytestmark = pytest.mark.postdeploy


def test_iam(service, serving_revision, iam_hierarchy, iam_roles, deploy_target, verdict):
    verdict(
        evaluate_iam(
            service.name,
            running_as=serving_revision.service_account,
            expected_account=service.service_account,
            required_roles=list(service.roles),
            hierarchy=iam_hierarchy,
            roles=iam_roles,
            region=service.region,
        )
    )

"""The inventory against the project: what runs that nobody declared, what is declared but gone
(seed 001: "20+ Cloud Run JOBS" nobody knew existed)."""

import pytest

from deploycheck.rules.drift import evaluate_orphans


@pytest.mark.drift
@pytest.mark.nightly
def test_orphans(project_scope, deployed, inventory, deploy_target, verdict):
    verdict(evaluate_orphans(project_scope, deployed_services=deployed["services"], deployed_jobs=deployed["jobs"],
                             declared_services=inventory.service_names(), declared_jobs=inventory.job_names(),
                             region=deploy_target.region, project=deploy_target.project))

"""The inventory against the project: what runs that nobody declared, what is declared but gone
(seed 001: "20+ Cloud Run JOBS" nobody knew existed)."""

import pytest

from deploycheck.rules.drift import evaluate_orphans


@pytest.mark.drift
@pytest.mark.nightly
def test_orphans(project_scope, scope_region, deployed, inventory, deploy_target, verdict):
    verdict(
        evaluate_orphans(
            project_scope,
            deployed_services=deployed["services"],
            deployed_jobs=deployed["jobs"],
            declared_services=[s.name for s in inventory.services if s.region == scope_region],
            declared_jobs=[j.name for j in inventory.jobs if j.region == scope_region],
            region=scope_region,
            project=deploy_target.project,
        )
    )

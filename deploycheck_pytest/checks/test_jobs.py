"""Cloud Run jobs: they run their own image reference, not the service's revision (seed 001:
21 backfill jobs on months-old gcr.io images kept writing bad heartbeat documents)."""

from datetime import datetime, timezone

import pytest

from deploycheck import remedies
from deploycheck.rules.code import evaluate_code
from deploycheck.rules.drift import evaluate_stale_job


@pytest.mark.postdeploy
@pytest.mark.nightly
def test_code(job, job_code, job_expected_code, job_expected_image, job_expected_digest, deploy_target, verdict):
    where = dict(region=job.region, project=deploy_target.project)
    pinned = f"{job_expected_image.repository}@{job_expected_digest}"
    verdict(
        evaluate_code(
            job.name,
            job.code,
            job_code,
            candidate=job_expected_code,
            deploy_candidate=remedies.update_job_image(job.name, pinned, **where),
            rebuild=f"rebuild {job_expected_image} from a commit with the fix, then "
            + remedies.update_job_image(job.name, str(job_expected_image), **where),
        )
    )


@pytest.mark.nightly
@pytest.mark.drift
def test_stale_jobs(
    job,
    job_state,
    job_image,
    job_image_digest,
    job_image_config,
    job_expected_image,
    job_expected_digest,
    job_expected_config,
    inventory,
    deploy_target,
    verdict,
):
    verdict(
        evaluate_stale_job(
            job_state,
            image=job_image,
            digest=job_image_digest,
            created=job_image_config.created,
            expected=job_expected_image,
            expected_digest=job_expected_digest,
            expected_created=job_expected_config.created,
            legacy_registries=inventory.legacy_registries,
            now=datetime.now(timezone.utc),
            region=job.region,
            project=deploy_target.project,
        )
    )

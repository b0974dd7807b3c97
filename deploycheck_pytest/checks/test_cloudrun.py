"""The Cloud Run state gate: what serves traffic is the newest revision of the image the team
thinks is deployed, built from the commit they think it is (seed 001)."""

import pytest

from deploycheck.rules.commit import CommitEvidence, evaluate_commit
from deploycheck.rules.digest import evaluate_digest
from deploycheck.rules.rollout import evaluate_rollout
from deploycheck.rules.traffic import evaluate_traffic

pytestmark = pytest.mark.postdeploy


def test_traffic(service, service_state, service_revisions, deploy_target, verdict):
    verdict(
        evaluate_traffic(
            service_state, region=service.region, project=deploy_target.project, revisions=service_revisions
        )
    )


def test_rollout(service_state, newest_revision, deploy_target, pytestconfig, verdict):
    waited = pytestconfig.getoption("--wait") or None
    verdict(evaluate_rollout(service_state, newest_revision, waited_s=waited, project=deploy_target.project))


def test_digest(service, tag_digest, serving_images, deploy_target, verdict):
    verdict(
        evaluate_digest(
            service.name,
            service.image,
            tag_digest,
            serving_images,
            region=service.region,
            project=deploy_target.project,
        )
    )


def test_commit(
    service,
    service_state,
    serving_revision,
    running_image_config,
    tag_image_config,
    tag_digest,
    expect_commit,
    deploy_target,
    verdict,
):
    evidence = CommitEvidence(
        image_labels=running_image_config.labels,
        image_annotations=running_image_config.annotations,
        revision_env=serving_revision.env,
    )
    verdict(
        evaluate_commit(
            service.name,
            evidence=evidence,
            label=service.commit_label,
            env=service.commit_env,
            service_labels=service_state.labels,
            claim_labels=service.service_commit_labels,
            expect_commit=expect_commit,
            tag_commit=tag_image_config.labels.get(service.commit_label),
            tag_image=str(service.image),
            pinned_tag_image=f"{service.image.repository}@{tag_digest}",
            region=service.region,
            project=deploy_target.project,
        )
    )

"""The code that runs: each inventory code pattern, grepped in the image the serving revision
runs (by digest, never the tag), without pulling it (seed 001: "do the images have the fix?")."""

import pytest

from deploycheck import remedies
from deploycheck.rules.code import evaluate_code

pytestmark = pytest.mark.postdeploy


def test_code(service, running_code, tag_code, tag_digest, deploy_target, verdict):
    where = dict(region=service.region, project=deploy_target.project)
    deploy_tag = remedies.deploy_image(service.name, f"{service.image.repository}@{tag_digest}", **where)
    verdict(
        evaluate_code(
            service.name,
            service.code,
            running_code,
            candidate=tag_code,
            deploy_candidate=deploy_tag,
            rebuild=f"rebuild {service.image} from a commit with the fix, then "
            + remedies.deploy_image(service.name, str(service.image), **where),
        )
    )

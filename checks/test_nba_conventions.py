"""The NBA platform's own check, beside the built-in ones: a custom check as the README shows."""

import pytest

from deploycheck.findings import Severity, failed, passed

pytestmark = pytest.mark.postdeploy


def test_deployed_by_script(service, service_state, deploy_script_label, deploy_target, verdict):
    key, value = deploy_script_label
    found = service_state.labels.get(key)
    if found == value:
        verdict(passed("deployed-by-script", service.name, f"label {key}={value}: deployed and verified by the script"))
        return
    verdict(
        failed(
            "deployed-by-script",
            service.name,
            Severity.P2,
            f"label {key}={found!r}, expected {value!r}: deployed by hand, so its deploy was never verified",
            f"./bin/deploy-service.sh {service.name}  # redeploy through the script; or label it once "
            f"verified: gcloud run services update {service.name} --update-labels {key}={value} "
            f"--region {service.region} --project {deploy_target.project}",
        )
    )

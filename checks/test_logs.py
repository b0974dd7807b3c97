"""What the serving revision logs: no boot errors (seeds 000, 004), heartbeats in the new format
(seed 001), and INFO lines at all (seed 003: gunicorn swallowed every logger.info())."""

import pytest

from deploycheck.rules.logs import evaluate_boot, evaluate_heartbeat_log, evaluate_log_visibility

pytestmark = pytest.mark.postdeploy


def test_boot(service, revision_logs, deploy_target, verdict):
    verdict(evaluate_boot(service.name, revision_logs.lines, serving=revision_logs.serving,
                          newest=revision_logs.newest, since=revision_logs.since, project=deploy_target.project,
                          scope=revision_logs.scope))


@pytest.mark.deploycheck_requires("heartbeat_log")
def test_heartbeat_log(service, revision_logs, deploy_target, verdict):
    verdict(evaluate_heartbeat_log(service.name, service.heartbeat_log, revision_logs.lines,
                                   serving=revision_logs.serving, since=revision_logs.since,
                                   project=deploy_target.project, scope=revision_logs.scope))


def test_log_visibility(service, revision_logs, deploy_target, verdict):
    verdict(evaluate_log_visibility(service.name, revision_logs.info_line, serving=revision_logs.serving,
                                    since=revision_logs.since, region=deploy_target.region,
                                    project=deploy_target.project))

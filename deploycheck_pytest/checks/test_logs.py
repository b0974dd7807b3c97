"""What the serving revision logs: no boot errors (seeds 000, 004), heartbeats in the new format
(seed 001), and INFO lines at all (seed 003: gunicorn swallowed every logger.info()).

Each check reads only its own facts (deploycheck.logfacts.RevisionLogs lists the queries), during
setup, so a fact that cannot be read makes the check ERROR before it judges anything."""

import pytest

from deploycheck.rules.logs import evaluate_boot, evaluate_heartbeat_log, evaluate_log_visibility

pytestmark = pytest.mark.postdeploy


@pytest.fixture
def boot_logs(revision_logs):
    return revision_logs.boot()


@pytest.fixture
def heartbeat_logs(service, revision_logs):
    return revision_logs.heartbeats(service.heartbeat_log)


@pytest.fixture
def info_line(revision_logs):
    return revision_logs.info_line()


def test_boot(service, revision_logs, boot_logs, service_revisions, deploy_target, verdict):
    verdict(
        evaluate_boot(
            service.name,
            boot_logs,
            serving=revision_logs.serving,
            newest=revision_logs.newest,
            since=revision_logs.since,
            project=deploy_target.project,
            scope=revision_logs.scope,
            revisions=service_revisions,
            region=service.region,
        )
    )


def test_heartbeat_log(service, revision_logs, heartbeat_logs, deploy_target, verdict):
    verdict(
        evaluate_heartbeat_log(
            service.name,
            service.heartbeat_log,
            heartbeat_logs,
            serving=revision_logs.serving,
            since=revision_logs.since,
            project=deploy_target.project,
            scope=revision_logs.serving_scope,
        )
    )


def test_log_visibility(service, revision_logs, info_line, deploy_target, verdict):
    verdict(
        evaluate_log_visibility(
            service.name,
            info_line,
            serving=revision_logs.serving,
            since=revision_logs.since,
            region=service.region,
            project=deploy_target.project,
        )
    )

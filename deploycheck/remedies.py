"""The runnable commands findings print as their fix, in one place so they stay consistent."""

from __future__ import annotations

import shlex


def _flags(region: str, project: str) -> str:
    return f"--region {region} --project {project}"


def update_traffic_to_latest(service: str, region: str, project: str) -> str:
    return f"gcloud run services update-traffic {service} --to-latest {_flags(region, project)}"


def deploy_image(service: str, image: str, region: str, project: str) -> str:
    return f"gcloud run deploy {service} --image {image} {_flags(region, project)}"


def update_job_image(job: str, image: str, region: str, project: str) -> str:
    return f"gcloud run jobs update {job} --image {image} {_flags(region, project)}"


def update_service_labels(service: str, labels: dict[str, str], region: str, project: str) -> str:
    pairs = ",".join(f"{key}={value}" for key, value in labels.items())
    return f"gcloud run services update {service} --update-labels {pairs} {_flags(region, project)}"


def remove_traffic_tag(service: str, tag: str, region: str, project: str) -> str:
    return f"gcloud run services update-traffic {service} --remove-tags {tag} {_flags(region, project)}"


def read_revision_errors(service: str, revision: str, project: str) -> str:
    query = (
        f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" '
        f'AND resource.labels.revision_name="{revision}" AND severity>=ERROR'
    )
    return f"gcloud logging read {shlex.quote(query)} --project {project} --limit 50"


def wait_for_rollout(service: str) -> str:
    return f"pytest -m postdeploy --service {service} --wait 600"


def rollback_traffic(service: str, revision: str, region: str, project: str) -> str:
    """Stop the bleeding first: all traffic back to a revision that was ready before."""
    return f"gcloud run services update-traffic {service} --to-revisions={revision}=100 {_flags(region, project)}"


def list_revisions(service: str, region: str, project: str) -> str:
    return (
        f"gcloud run revisions list --service {service} {_flags(region, project)} --sort-by=~metadata.creationTimestamp"
    )

"""The Cloud Run stand-in speaks the real REST protocol: the unmodified google-cloud-run client
lists, pages, gets and fails against it exactly as against run.googleapis.com."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from deploycheck.sandbox.apiserver import ApiState
from deploycheck.sandbox.scenario import expand_resources, load_scenario

from conftest import serving

PARENT = "projects/nba-props-platform/locations/us-west2"


@pytest.fixture(scope="module")
def endpoint():
    scenario = load_scenario("incident", project="nba-props-platform", region="us-west2")
    resources = expand_resources(scenario, {image.key: "sha256:" + "ab" * 32 for image in scenario.images})
    state = ApiState({resource["name"]: resource for resource in resources})
    with serving(state) as url:
        yield url, state


def client(kind, url):
    return kind(transport="rest", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=url))


def test_list_services_pages_through_every_service(endpoint):
    url, _ = endpoint
    services = list(
        client(run_v2.ServicesClient, url).list_services(request=run_v2.ListServicesRequest(parent=PARENT, page_size=2))
    )
    assert len(services) == 6
    assert {s.name.rsplit("/", 1)[-1] for s in services} >= {"nba-phase2-raw-processors", "prediction-worker"}


def test_jobs_and_their_executions(endpoint):
    url, _ = endpoint
    jobs = list(client(run_v2.JobsClient, url).list_jobs(parent=PARENT))
    assert len(jobs) == 22  # the 21 backfill jobs and the one nobody declared
    job = jobs[0]
    assert job.template.template.containers[0].image.startswith("gcr.io/nba-props-platform/")
    executions = list(client(run_v2.ExecutionsClient, url).list_executions(parent=job.name))
    assert len(executions) == 1 and executions[0].succeeded_count == 1
    assert executions[0].create_time.year >= 2025


def test_revisions_of_a_service_and_the_wildcard_parent(endpoint):
    url, _ = endpoint
    revisions = client(run_v2.RevisionsClient, url)
    own = list(revisions.list_revisions(parent=f"{PARENT}/services/nba-scrapers"))
    assert [r.name.rsplit("/", 1)[-1] for r in own] == [
        "nba-scrapers-00039-c3v",
        "nba-scrapers-00040-m5t",
        "nba-scrapers-00041-h7k",
    ]
    everything = list(revisions.list_revisions(parent=f"{PARENT}/services/-"))
    assert len(everything) > len(own)


def test_missing_resource_is_the_clients_not_found(endpoint):
    url, _ = endpoint
    with pytest.raises(exceptions.NotFound, match="does not exist"):
        client(run_v2.ServicesClient, url).get_service(name=f"{PARENT}/services/nope")


def test_writes_are_refused_and_recorded(endpoint):
    url, state = endpoint
    with pytest.raises(exceptions.MethodNotAllowed):
        client(run_v2.ServicesClient, url).delete_service(name=f"{PARENT}/services/nba-scrapers")
    assert state.write_attempts == [f"DELETE /v2/{PARENT}/services/nba-scrapers"]
    assert f"{PARENT}/services/nba-scrapers" in state.resources  # nothing changed

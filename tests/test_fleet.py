"""Generated fleets: the scenario and its inventory are green against the whole suite, the
deliberate failures are exactly the findings, and bulk-written images are served as pushed ones."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from deploycheck.errors import InputError
from deploycheck.inventory import load_inventory
from deploycheck.sandbox.fleet import Fleet, write_fleet
from deploycheck.sandbox.oci_builder import build_image, layer_from_files, push_image
from deploycheck.sandbox.registry_process import LocalRegistry
from deploycheck.sandbox.registry_storage import RegistryStorage
from deploycheck.sandbox.scenario import load_scenario

FULL_RUN = ("-m", "postdeploy or nightly", "--report-dir", "out")


def _run_fleet(suite, tmp_path, **fleet):
    scenario, inventory = write_fleet(tmp_path / "fleet", **fleet)
    result = suite.run(*FULL_RUN, "--target", f"sandbox:{scenario}", "--inventory", str(inventory))
    return result, suite.report()


def test_a_generated_fleet_is_green_against_every_check(suite, tmp_path):
    result, report = _run_fleet(suite, tmp_path, services=4, jobs=3)
    outcomes = {(f["check"], f["resource"]): f["outcome"] for f in report["findings"]}
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert set(outcomes.values()) == {"pass"}
    checks = {check for check, _ in outcomes}
    assert checks >= {
        "traffic",
        "rollout",
        "digest",
        "commit",
        "code",
        "boot",
        "heartbeat-log",
        "log-visibility",
        "iam",
        "heartbeat-docs",
        "stale-jobs",
        "orphans",
    }
    assert {resource for check, resource in outcomes if check == "stale-jobs"} == {"job-0001", "job-0002", "job-0003"}
    assert {resource for check, resource in outcomes if check == "traffic"} == {f"svc-000{n}" for n in range(1, 5)}


def test_deliberate_failures_are_exactly_the_findings(suite, tmp_path):
    result, report = _run_fleet(
        suite, tmp_path, services=6, jobs=4, failures={"boot_error": 1, "traffic_pinned": 1, "stale_job": 2}
    )
    failing = sorted((f["check"], f["resource"]) for f in report["findings"] if f["outcome"] != "pass")
    assert result.ret == 1
    assert failing == [
        ("boot", "svc-0001"),
        ("stale-jobs", "job-0001"),
        ("stale-jobs", "job-0003"),
        ("traffic", "svc-0002"),
    ]


def test_the_inventory_declares_what_the_scenario_deploys(tmp_path):
    scenario_dir, inventory_path = write_fleet(tmp_path / "fleet", services=5, jobs=7, failures={"stale_job": 2})
    inventory = load_inventory(inventory_path)
    scenario = load_scenario(str(scenario_dir), project="ignored", region="ignored")
    assert (inventory.project, inventory.region) == (scenario.project, scenario.region)
    assert set(inventory.service_names()) == set(scenario.services)
    assert set(inventory.job_names()) == set(scenario.jobs)
    assert len(scenario.firestore["processor_heartbeats"]) == 5
    assert inventory.heartbeats.expected_min == 5
    # Every service its own image (a digest of its own), plus the stale jobs' older images.
    assert len({image.repository for image in scenario.images}) == 5 and len(scenario.images) == 7
    assert all(image.bulk for image in scenario.images)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"jobs": 3}, "fleet.services: expected an integer >= 1"),
        ({"services": 2, "jobs": -1}, "fleet.jobs: expected an integer >= 0"),
        ({"services": 2, "size": 4}, "unknown key(s) size"),
        ({"services": 2, "failures": {"explode": 1}}, "fleet.failures.explode: unknown"),
        (
            {"services": 2, "jobs": 1, "failures": {"stale_job": 2}},
            "fleet.failures.stale_job: expected an integer from 0 to 1",
        ),
        ({"services": 2, "failures": {"boot_error": 2, "traffic_pinned": 1}}, "exceed the 2 services"),
    ],
)
def test_a_bad_fleet_is_refused_naming_the_field(section, message):
    with pytest.raises(InputError, match=r"scenario\.yaml: fleet") as caught:
        Fleet.parse(section, "scenario.yaml")
    assert message in str(caught.value)


def test_failures_are_spread_and_never_overlap():
    fleet = Fleet.parse(
        {"services": 100, "jobs": 50, "failures": {"boot_error": 10, "traffic_pinned": 10, "stale_job": 5}}, "s"
    )
    booting, pinned = fleet.failing("boot_error"), fleet.failing("traffic_pinned")
    assert len(booting) == len(pinned) == 10 and not booting & pinned
    assert max(booting) - min(booting) >= 80  # spread over the fleet, not bunched at the start
    assert len(fleet.failing("stale_job")) == 5 and max(fleet.failing("stale_job")) < 50


def test_an_image_written_into_storage_is_served_as_a_pushed_one(tmp_path):
    image = build_image(
        [layer_from_files({"/usr/lib/base.txt": b"base\n"}), layer_from_files({"/app/main.py": b"print('hi')\n"})],
        labels={"a": "b"},
    )
    with LocalRegistry(tmp_path / "pushed") as pushed:
        digest = push_image(pushed.url, "fleet/svc", image, ["latest"])
        served_pushed = _served(pushed.url, "fleet/svc", image)
    RegistryStorage(tmp_path / "written" / "data").write("us-central1-docker.pkg.dev/p/fleet/svc", image, ["latest"])
    with LocalRegistry(tmp_path / "written") as written:
        served_written = _served(written.url, "us-central1-docker.pkg.dev/p/fleet/svc", image)
        missing = httpx.head(f"{written.url}/v2/us-central1-docker.pkg.dev/p/fleet/svc/manifests/other")
    assert served_written == served_pushed and served_written["digest"] == digest
    assert missing.status_code == 404


def _served(url: str, repository: str, image) -> dict:
    accept = {"Accept": image.manifest_media_type}
    head = httpx.head(f"{url}/v2/{repository}/manifests/latest", headers=accept)
    manifest = httpx.get(f"{url}/v2/{repository}/manifests/{head.headers['Docker-Content-Digest']}", headers=accept)
    blobs = {
        blob.digest: "sha256:"
        + hashlib.sha256(httpx.get(f"{url}/v2/{repository}/blobs/{blob.digest}").content).hexdigest()
        for blob in (image.config, *image.layers)
    }
    return {
        "digest": head.headers["Docker-Content-Digest"],
        "type": manifest.headers["Content-Type"],
        "manifest": manifest.content,
        "blobs": blobs,
        "status": (head.status_code, manifest.status_code),
    }

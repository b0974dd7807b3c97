"""The product as another team gets it: the wheel built from this repository, installed with pip
into fresh venvs outside it (no --system-site-packages), driven from a project of its own.

- with the `sandbox` extra: a made-up project's inventory (two services, one job, no heartbeats
  section) goes green against `--target sandbox:auto` through `deploycheck gate` and through
  `pytest -m postdeploy`, the checks it does not configure listed as such;
- with no extra: `deploycheck --version`, no docker SDK, and without credentials the gate stops
  with exit 4 and the login command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import deploycheck

REPO = Path(__file__).resolve().parent.parent
# What a build reads: the project metadata and the two packages (a checkout has nothing else it needs).
BUILD_INPUTS = ("pyproject.toml", "README.md", "deploycheck", "deploycheck_pytest")
INSTALL_TIMEOUT = 900  # pip on a shared 2-core machine, resolving ~40 distributions

INVENTORY = """\
# A team that is not the NBA platform: its own project, region, registry, names.
project: acme-shop-prod
region: europe-west1
registry: europe-west1-docker.pkg.dev/acme-shop-prod/apps
patterns:
  health-endpoint:
    path: /srv/app/health.py
    must_contain: ['def healthz\\(']
    must_not_contain: ['DEBUG\\s*=\\s*True']
services:
  - name: storefront
    service_account: storefront@acme-shop-prod.iam.gserviceaccount.com
    roles: [roles/datastore.user]
    code: [health-endpoint]
    commit_label: org.opencontainers.image.revision
  - name: checkout-api
    image: checkout:stable
jobs:
  - name: invoice-export
    runs: checkout-api
"""


def _run(
    command: list[str], *, cwd: Path, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    built = _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)],
        cwd=source,
        timeout=INSTALL_TIMEOUT,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = dist.glob("deploycheck-*.whl")
    return path


def _venv_with(tmp_path_factory, name: str, requirement: str) -> Path:
    """bin/ of a fresh venv (its own site-packages only) with `requirement` installed by pip."""
    root = tmp_path_factory.mktemp(name) / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(root)
    installed = _run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        cwd=root,
        timeout=INSTALL_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root / "bin"


@pytest.fixture(scope="module")
def bare(tmp_path_factory, wheel) -> Path:
    return _venv_with(tmp_path_factory, "bare", str(wheel))


@pytest.fixture(scope="module")
def with_sandbox(tmp_path_factory, wheel) -> Path:
    return _venv_with(tmp_path_factory, "with-sandbox", f"deploycheck[sandbox] @ {wheel.as_uri()}")


@pytest.fixture
def team_project(tmp_path) -> Path:
    project = tmp_path / "acme-shop"
    project.mkdir()
    (project / "services.yaml").write_text(INVENTORY)
    return project


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No credentials of any kind, and nothing of this repository's environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "GOOGLE_APPLICATION_CREDENTIALS",
            "DEPLOYCHECK_SANDBOX_STATE",
            "FIRESTORE_EMULATOR_HOST",
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "PYTEST_ADDOPTS",
            "PYTEST_XDIST_WORKER",
        )
    }
    for name in ("home", "gcloud-config"):
        (tmp_path / name).mkdir(exist_ok=True)
    return {**env, "HOME": str(tmp_path / "home"), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"), **extra}


def test_the_wheel_holds_the_checks_fixtures_and_the_sandbox_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    in_repo = {
        path.relative_to(REPO).as_posix()
        for package in ("deploycheck", "deploycheck_pytest")
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert in_repo <= names, sorted(in_repo - names)
    for expected in (
        "deploycheck_pytest/checks/test_cloudrun.py",
        "deploycheck_pytest/fixtures/reporting.py",
        "deploycheck/sandbox/scenarios/incident/scenario.yaml",
        "deploycheck/report/templates/report.html.j2",
        "deploycheck/sandbox/iam_roles/datastore.user.json",
    ):
        assert expected in names
    assert not any(name.startswith(("tests/", "checks/", "fixtures/", "bench/", "conftest")) for name in names)
    entry_points = zipfile.ZipFile(wheel).read(f"deploycheck-{deploycheck.__version__}.dist-info/entry_points.txt")
    assert b"deploycheck = deploycheck.cli:main" in entry_points
    assert b"deploycheck = deploycheck_pytest.plugin" in entry_points


def test_without_extras_the_version_no_docker_sdk_and_no_credentials_exit_4(bare, team_project, tmp_path):
    version = _run([str(bare / "deploycheck"), "--version"], cwd=team_project)
    assert (version.returncode, version.stdout) == (0, f"deploycheck {deploycheck.__version__}\n")
    docker = _run(
        [str(bare / "python"), "-c", "import importlib.util; print(importlib.util.find_spec('docker'))"],
        cwd=team_project,
    )
    assert docker.stdout.strip() == "None"  # the docker SDK is the [docker] extra

    env = _clean_env(tmp_path)
    gate = _run([str(bare / "deploycheck"), "gate", "storefront", "--target", "gcp"], cwd=team_project, env=env)
    output = gate.stdout + gate.stderr
    assert gate.returncode == 4, output
    assert "gcloud auth application-default login" in output
    assert "Traceback" not in output and "INTERNALERROR" not in output

    docker_reader = _run(
        [str(bare / "deploycheck"), "gate", "storefront", "--", "--image-source", "docker"], cwd=team_project, env=env
    )
    assert docker_reader.returncode == 4
    assert "--image-source docker needs the docker SDK: pip install 'deploycheck[docker]'" in docker_reader.stderr


def _report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def _checked(report: dict) -> dict[str, set[str]]:
    by_resource: dict[str, set[str]] = {}
    for finding in report["findings"]:
        by_resource.setdefault(finding["resource"], set()).add(finding["check"])
    return by_resource


def test_a_new_team_goes_green_against_sandbox_auto_with_gate_and_with_pytest(with_sandbox, team_project, tmp_path):
    env = _clean_env(tmp_path)
    gate = _run(
        [
            str(with_sandbox / "deploycheck"),
            "gate",
            "storefront",
            "--target",
            "sandbox:auto",
            "--expect-commit",
            "4f2a9c1e7b",
            "--report-dir",
            str(tmp_path / "gate"),
        ],
        cwd=team_project,
        env=env,
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "warnings summary" not in gate.stdout  # e.g. pytest's about modules imported before it ran
    report = _report(tmp_path / "gate")
    assert report["summary"]["selection"]["services"] == ["storefront"]
    assert {finding["outcome"] for finding in report["findings"]} == {"pass"}
    # What the inventory configures for storefront is checked: its code pattern, roles, commit.
    assert _checked(report)["storefront"] >= {"traffic", "rollout", "digest", "commit", "code", "iam", "boot"}

    plain = _run(
        [
            str(with_sandbox / "pytest"),
            "-m",
            "postdeploy",
            "--target",
            "sandbox:auto",
            "--report-dir",
            str(tmp_path / "postdeploy"),
        ],
        cwd=team_project,
        env=env,
    )
    output = plain.stdout + plain.stderr
    assert plain.returncode == 0, output
    assert "checks/test_cloudrun.py " in plain.stdout  # the built-in checks, collected from the installed package
    report = _report(tmp_path / "postdeploy")
    assert report["summary"]["fail"] == report["summary"]["error"] == 0 and report["summary"]["pass"] > 0
    assert {finding["outcome"] for finding in report["findings"]} == {"pass"}
    assert _checked(report)["checkout-api"] >= {"traffic", "rollout", "digest", "boot"}
    # What it does not configure is listed with the reason, in the terminal and the report, and never passed.
    not_configured = {(entry["check"], entry["resource"]) for entry in report["not_configured"]}
    assert {
        ("heartbeat-log", "storefront"),
        ("heartbeat-log", "checkout-api"),
        ("iam", "checkout-api"),
        ("code", "checkout-api"),
        ("code", "invoice-export"),
    } <= not_configured
    assert not not_configured & {(f["check"], f["resource"]) for f in report["findings"]}
    assert "not configured" in plain.stdout
    assert "Traceback" not in output and "INTERNALERROR" not in output

    nightly = _run(
        [
            str(with_sandbox / "deploycheck"),
            "nightly",
            "--target",
            "sandbox:auto",
            "--report-dir",
            str(tmp_path / "nightly"),
        ],
        cwd=team_project,
        env=env,
    )
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    report = _report(tmp_path / "nightly")
    assert {finding["outcome"] for finding in report["findings"]} == {"pass"}
    assert "heartbeat-docs" in {entry["check"] for entry in report["not_configured"]}  # no heartbeats section

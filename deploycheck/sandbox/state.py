"""What a running sandbox leaves behind for the runs that use it: its state file, and where
scenarios live. Kept apart from the manager so a run that attaches to a running sandbox
imports none of the machinery that starts one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from ..netutil import http_probe

BUILTIN_DIR = Path(__file__).parent / "scenarios"


@dataclass
class SandboxInfo:
    scenario: str
    scenario_dir: str
    project: str
    region: str
    workdir: str
    api_url: str
    registry_url: str
    firestore_host: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    # Backends behind a fault proxy: backend -> the proxy's control URL (FaultControl), and
    # backend -> the real backend's address, which api_url/registry_url/firestore_host no longer name.
    fault_controls: dict[str, str] = field(default_factory=dict)
    upstreams: dict[str, str] = field(default_factory=dict)
    # A generated fleet's matching services.yaml (fleet.py), written into the workdir.
    inventory: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds each start-up step took

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SandboxInfo:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            # Truncated by a kill, written by another version, or not a state file at all.
            raise InputError(
                f"{path}: not a sandbox state file this deploycheck can read ({exc}); delete it and "
                f"start the sandbox again (deploycheck sandbox up)"
            ) from None

    def is_healthy(self) -> bool:
        return http_probe(f"{self.api_url}/_sandbox/health")() and http_probe(f"{self.registry_url}/v2/")()


def scenario_dir(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate.resolve()
    builtin = BUILTIN_DIR / name_or_path
    if (builtin / "scenario.yaml").is_file():
        return builtin
    known = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "scenario.yaml").is_file())
    raise InputError(f"unknown sandbox scenario {name_or_path!r}: not a directory and not one of {', '.join(known)}")

"""An installed (non-editable) copy of deploycheck, as `pip install deploycheck` leaves it.

An editable install lists no package files in its metadata, so pytest's assertion rewriter
sees only what the entry point names; a wheel install lists every file, and pytest then marks
every top-level package of the distribution for rewriting. Start-up must be measured and
tested on the latter.

The copy is a venv of its own holding only the wheel built from this checkout; its
dependencies come from the project's .venv through a path line (.pth lines add a directory,
they do not process the .pth files inside it, so the editable checkout stays out of sys.path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGED = ("pyproject.toml", "deploycheck", "deploycheck_pytest")


def install_copy(work: Path, repo: Path = REPO) -> Path:
    """Build a wheel of `repo` and install it into a new venv under `work`; its python."""
    wheels, venv, source = work / "wheels", work / "venv", work / "source"
    # Built from a copy of what the wheel holds: setuptools leaves a build/ tree in the source
    # directory, and a stale one would put deleted modules into the next wheel.
    source.mkdir(parents=True)
    for name in PACKAGED:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(repo / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = wheels.glob("deploycheck-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz-deploycheck-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--quiet",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return python


def project(directory: Path) -> Path:
    """A deployment project as another team has it: the inventory, nothing of this repository."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "services.yaml").write_text((REPO / "services.yaml").read_text())
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return directory


# Run inside the installed copy: which deploycheck modules the assertion rewriter loaded.
LOADERS_PROBE = """
import json, sys
import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook


class Probe:
    def pytest_collection_finish(self, session):
        loaded = {name: module for name, module in sys.modules.items()
                  if name.split(".")[0] in ("deploycheck", "deploycheck_pytest")}
        def rewritten(module):
            spec = getattr(module, "__spec__", None)
            return isinstance(getattr(module, "__loader__", None), AssertionRewritingHook) or \\
                isinstance(getattr(spec, "loader", None), AssertionRewritingHook)
        print("PROBE " + json.dumps({"files": sorted({m.__file__ for m in loaded.values() if getattr(m, "__file__", None)}),
                                     "rewritten": sorted(n for n, m in loaded.items() if rewritten(m)),
                                     "loaded": sorted(loaded)}))


sys.exit(pytest.main(sys.argv[1:], plugins=[Probe()]))
"""

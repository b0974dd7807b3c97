"""Benchmark: the production install a team's CI does, `pip install deploycheck` from the wheel.

Builds the wheel from a copy of the sources, then for each variant (no extra; [docker]) creates a
fresh venv (no system site-packages), times `pip install` of the wheel, and measures the venv's
site-packages: bytes on disk and distributions. pip uses the machine's configuration (index,
mirror, cache): pass --no-cache for a cold install that downloads everything. The last line is
JSON: wheel_bytes, and per variant install_s (wall), install_cpu_s (pip's CPU time, which a busy
machine does not inflate), site_packages_bytes, distributions.

    .venv/bin/python bench/install.py [--no-cache]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "README.md", "deploycheck", "deploycheck_pytest")
VARIANTS = {"production": "", "docker": "[docker]"}


def build_wheel(workdir: Path) -> Path:
    source = workdir / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(workdir / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = (workdir / "dist").glob("deploycheck-*.whl")
    return wheel


def bytes_under(directory: Path) -> int:
    return sum(path.lstat().st_size for path in directory.rglob("*") if path.is_file() and not path.is_symlink())


def install(wheel: Path, extra: str, root: Path, *, cache: bool) -> dict:
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    before = bytes_under(site_packages)  # pip itself, which every venv has
    command = [str(python), "-m", "pip", "install", "--quiet", f"deploycheck{extra} @ {wheel.as_uri()}"]
    began, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command + ([] if cache else ["--no-cache-dir"]), check=True, capture_output=True)
    seconds = time.monotonic() - began
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of pip and its children: on a shared machine the wall time mostly measures the others.
    cpu_seconds = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    distributions = len(list(site_packages.glob("*.dist-info")))
    return {
        "install_s": round(seconds, 1),
        "install_cpu_s": round(cpu_seconds, 1),
        "site_packages_bytes": bytes_under(site_packages) - before,
        "distributions": distributions - 1,
    }  # not counting pip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cache", action="store_true", help="install with pip --no-cache-dir (downloads all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deploycheck-install-bench-") as tmp:
        workdir = Path(tmp)
        wheel = build_wheel(workdir)
        figures: dict = {"wheel_bytes": wheel.stat().st_size, "cache": not args.no_cache}
        for name, extra in VARIANTS.items():
            figures[name] = install(wheel, extra, workdir / f"venv-{name}", cache=not args.no_cache)
            print(
                f"{name}: {figures[name]['site_packages_bytes'] / 1e6:.1f} MB in site-packages, "
                f"{figures[name]['distributions']} distributions, installed in {figures[name]['install_s']} s "
                f"({figures[name]['install_cpu_s']} s CPU)"
            )
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

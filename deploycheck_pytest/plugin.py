"""deploycheck's command-line options, registered through the pytest11 entry point.

Options live here, not in a conftest, so they are known before any conftest is looked for.
pytest decides its rootdir even earlier, before entry-point plugins load: `--report-dir
/srv/reports` (an existing directory, written with a space) is then taken for a test path, the
rootdir moves to /srv/reports and the project's pytest.ini is lost (no markers, no testpaths, the
suite's own tests collected). `pytest_load_initial_conftests` below decides again, once the
option values are known.

The plugin is inert until a run is a deploycheck run (see `is_deploycheck_run`): then it
registers the fixtures (deploycheck_pytest.fixtures) and, unless test paths were named on the
command line, adds the built-in checks (deploycheck_pytest/checks) to what is collected, with
node ids `checks/test_cloudrun.py::test_traffic[...]` wherever the package is installed.
"""

from __future__ import annotations

import atexit
import copy
import functools
import gc
import importlib
import inspect
from itertools import pairwise
from pathlib import Path

import pytest
from _pytest.config.findpaths import determine_setup

BUILTIN_CHECKS = Path(__file__).resolve().parent / "checks"
# The fixtures that read: an xdist controller runs no test, so it imports none of them (nor the
# client libraries behind them) before it can start its workers.
WORKERS_ONLY = ("deploycheck_pytest.fixtures.observe", "deploycheck_pytest.fixtures.images")
# distribute first: the fixture modules import it (as a plugin it must be imported by pytest first).
FIXTURE_PLUGINS = (
    "deploycheck_pytest.distribute",
    "deploycheck_pytest.fixtures.plugin",
    "deploycheck_pytest.fixtures.observe",
    "deploycheck_pytest.fixtures.images",
    "deploycheck_pytest.fixtures.reporting",
)
MARKERS = (
    "postdeploy: checks to gate a deploy, run minutes after it (traffic, rollout, digest, commit, code, logs, iam)",
    "nightly: slower project-wide checks for the nightly drift report (heartbeat documents, stale jobs)",
    "drift: configuration drift between the inventory and the project (stale jobs, orphans)",
)
# Given any of these, the run is about a deployment even without a services.yaml in the rootdir.
ACTIVATING_OPTIONS = ("inventory", "target", "service", "job", "expect_commit", "project", "region")
# deploycheck.images.ImageLimits' defaults, written out so that registering the options imports no
# library module (tests/test_plugin_startup.py holds them equal).
IMAGE_LIMIT_DEFAULTS = {
    "max_file_bytes": 1024 * 1024,
    "max_decompressed_bytes": 1024**3,
    "max_layers": 128,
    "max_seconds": 120.0,
}
# Plain modules, no test code: nothing in them is for pytest's assertion rewriter. The built-in
# checks are test modules and stay marked, as pytest would treat them under any python_files.
UNREWRITTEN_PACKAGES = ("deploycheck", "deploycheck_pytest")
REWRITTEN_PACKAGE = "deploycheck_pytest.checks"


def leave_the_library_unrewritten(pluginmanager: pytest.PytestPluginManager) -> None:
    """Installed from a wheel, the distribution lists every file, and pytest marks each of its
    top-level packages for assertion rewriting (`_mark_plugins_for_rewrite`): every start would
    then parse and rewrite the library, the fixtures and the fleet reader from source (it cannot
    cache under PYTHONDONTWRITEBYTECODE, as in most CI images). Only the checks keep the mark.
    This runs in the first hook pytest calls on this plugin, before any of them is imported."""
    hook = getattr(pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)  # pytest keeps the marks privately; no public unmark
    if hook is not None and isinstance(marked, set) and marked.intersection(UNREWRITTEN_PACKAGES):
        marked.difference_update(UNREWRITTEN_PACKAGES)
        hook.mark_rewrite(REWRITTEN_PACKAGE)  # also drops the hook's cache of names it already judged


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    leave_the_library_unrewritten(pluginmanager)

    group = parser.getgroup("deploycheck", "deploycheck (Cloud Run deployment verification)")
    group.addoption(
        "--inventory",
        default="services.yaml",
        metavar="PATH",
        help="the inventory of services and jobs (default: ./services.yaml)",
    )
    group.addoption(
        "--service",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this service (repeatable); with no --service/--job everything is checked",
    )
    group.addoption("--job", action="append", default=[], metavar="NAME", help="check only this job (repeatable)")
    group.addoption(
        "--project",
        default=None,
        metavar="PROJECT",
        help="the Google Cloud project to check instead of the inventory's `project`",
    )
    group.addoption(
        "--region",
        default=None,
        metavar="REGION",
        help="the region of every entry that names none, instead of the inventory's `region`",
    )
    group.addoption(
        "--target",
        default="gcp",
        metavar="gcp|sandbox[:SCENARIO]",
        help="gcp (Application Default Credentials; default) or the local stand-in, e.g. sandbox:incident",
    )
    group.addoption(
        "--expect-commit",
        type=_commit_sha,
        default=None,
        metavar="SHA",
        help="fail unless the running image was built from this commit (an empty value is refused)",
    )
    group.addoption(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="poll until the newest revision is ready (or failed) before checking, up to SECONDS",
    )
    group.addoption(
        "--report-dir",
        default=None,
        metavar="DIR",
        help="write DIR/report.json, report.md, report.txt and report.html (also when the run cannot "
        "start: then they say why)",
    )
    group.addoption(
        "--previous",
        default=None,
        metavar="PATH",
        help="an earlier report.json, or a directory of them (the newest is used): classify each "
        "finding as new, still failing (since when) or fixed",
    )
    group.addoption(
        "--history",
        default=None,
        metavar="DIR",
        help="keep each run's report.json in DIR (the oldest beyond --history-keep are deleted) and "
        "draw the report's trends from them",
    )
    group.addoption(
        "--history-keep", type=_at_least_one, default=30, metavar="N", help="runs --history keeps (default 30)"
    )
    group.addoption(
        "--log-window",
        type=float,
        default=None,
        metavar="HOURS",
        help="log checks read from the creation of the serving and newest revisions (default), or at "
        "most HOURS back; the findings say which window they read",
    )
    group.addoption(
        "--max-log-entries",
        type=_at_least_one,
        default=1000,
        metavar="N",
        help="entries one log query reads at most (default 1000); a check whose answer lies beyond "
        "them ERRORs saying so, never passes",
    )
    group.addoption(
        "--fail-on",
        type=_severity_threshold,
        default=None,
        metavar="P0|P1|P2|P3",
        help="the lowest severity that fails the run, e.g. P1: P2 and P3 failures are reported but exit 0 "
        "(default: any failure fails); a check that could not observe its fact (ERROR) always fails",
    )
    group.addoption(
        "--budget",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="the whole run's time budget (default 1800): once spent, checks still waiting for a fact "
        "ERROR instead of running on",
    )
    group.addoption(
        "--deadline",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up on one API read after SECONDS, retries included (default 60); the check then ERRORs",
    )
    group.addoption(
        "--read-ahead",
        type=_at_least_zero,
        # Most reads ahead are registry requests, a chain of two to four per image: with 8 at once, a
        # 1,000-resource nightly waited on those chains (28 s; 21 s with 16, no faster with 32). The
        # Google API calls among them are few (listings, batched log queries), far below any quota.
        default=16,
        metavar="N",
        help="reads of facts the next checks will need, run at once in the background (default 16; "
        "0: each check reads its own facts when it runs)",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="check only shard K of N (1-based), split by resource: the same resources every run; the "
        "project-wide checks run in shard 1. Without it, CLOUD_RUN_TASK_INDEX (0-based) and "
        "CLOUD_RUN_TASK_COUNT are used when set (a Cloud Run job with N tasks). Combine the shards' "
        "reports with `deploycheck report merge`",
    )
    images = parser.getgroup("deploycheck-images", "deploycheck: reading files inside images")
    images.addoption(
        "--image-source",
        choices=("registry", "docker"),
        default="registry",
        help="registry: read layers over the OCI API, no pull (default); docker: pull through a "
        "docker engine and copy files out of a created, never started, container",
    )
    images.addoption(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="verified blobs by digest (default ~/.cache/deploycheck); a warm run reads 0 bytes",
    )
    images.addoption(
        "--platform",
        default="linux/amd64",
        metavar="OS/ARCH",
        help="which image of a multi-platform index to read (default linux/amd64)",
    )
    images.addoption(
        "--max-file-bytes",
        type=int,
        default=IMAGE_LIMIT_DEFAULTS["max_file_bytes"],
        metavar="N",
        help=f"bytes kept per file read from an image (default {IMAGE_LIMIT_DEFAULTS['max_file_bytes']:,})",
    )
    images.addoption(
        "--max-decompressed-bytes",
        type=int,
        default=IMAGE_LIMIT_DEFAULTS["max_decompressed_bytes"],
        metavar="N",
        help="decompressed layer bytes one image read may inflate (default 1 GiB): a zip bomb stops here",
    )
    images.addoption(
        "--max-layers",
        type=int,
        default=IMAGE_LIMIT_DEFAULTS["max_layers"],
        metavar="N",
        help=f"refuse images with more layers (default {IMAGE_LIMIT_DEFAULTS['max_layers']})",
    )
    images.addoption(
        "--image-timeout",
        type=float,
        default=IMAGE_LIMIT_DEFAULTS["max_seconds"],
        metavar="SECONDS",
        help=f"wall-clock budget of one image read (default {IMAGE_LIMIT_DEFAULTS['max_seconds']:g}s)",
    )
    images.addoption(
        "--verify-layers",
        action="store_true",
        default=False,
        help="read every layer the file lookup opens to its end and verify its sha256 (by default a "
        "read stops at the wanted file and the evidence says the layer was read in part, its "
        "blob digest not verified; eStargz layers are read by their verified TOC and chunks)",
    )


def _commit_sha(text: str) -> str:
    from deploycheck.argtypes import commit_sha  # at parse time, once the library is unmarked for rewriting

    return commit_sha(text)


def _severity_threshold(text: str) -> str:
    from deploycheck.argtypes import severity_threshold

    return severity_threshold(text)


def _at_least_zero(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _at_least_one(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Choose the rootdir and ini file again, now that option values are not mistaken for paths.

    Nothing changes when pytest's first choice stands (no option value was an existing path).
    Otherwise the ini file pytest would have found is applied as pytest applies it: its addopts
    are put before the command line (and `-p no:NAME` in them unloads NAME), and conftests are
    looked for below it."""
    namespace = early_config.known_args_namespace
    wanted = {
        "inifile": namespace.inifilename,
        "args": namespace.file_or_dir,
        "rootdir_cmd_arg": namespace.rootdir or None,
        "invocation_dir": early_config.invocation_params.dir,
    }
    if "override_ini" in inspect.signature(determine_setup).parameters:
        wanted["override_ini"] = namespace.override_ini
    rootpath, inipath, inicfg, *_ = determine_setup(**wanted)
    if (rootpath, inipath) == (early_config.rootpath, early_config.inipath):
        return
    # pytest keeps these privately; there is no public way to correct them after the fact.
    early_config._rootpath, early_config._inipath = rootpath, inipath
    setattr(early_config, "_inicfg" if hasattr(early_config, "_inicfg") else "inicfg", inicfg)
    early_config._inicache.clear()
    early_config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    addopts = list(early_config.getini("addopts"))
    args[:0] = addopts
    for option, value in pairwise(addopts):
        if option == "-p" and value.startswith("no:"):
            early_config.pluginmanager.consider_pluginarg(value)  # as pytest does (cacheprovider takes stepwise)
    early_config.known_args_namespace = early_config._parser.parse_known_args(
        args, namespace=copy.copy(early_config.option)
    )
    if "--confcutdir" not in " ".join(args):
        early_config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)


def is_deploycheck_run(config: pytest.Config) -> bool:
    """A run is deploycheck's when it names a deploycheck option, selects one of its markers,
    or its rootdir holds a services.yaml. Otherwise (another project's tests in the same venv,
    this repository's own tests) only the options and markers are registered."""
    defaults: dict[str, object] = {
        "inventory": "services.yaml",
        "target": "gcp",
        "service": [],
        "job": [],
        "expect_commit": None,
        "project": None,
        "region": None,
    }
    if any(getattr(config.option, name, default) != default for name, default in defaults.items()):
        return True
    markexpr = config.option.markexpr or ""
    if any(marker.split(":")[0] in markexpr for marker in MARKERS):
        return True
    return (Path(config.rootpath) / "services.yaml").is_file()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not is_deploycheck_run(config):
        return
    keep_start_up_out_of_garbage_collection(config)
    controller = distributes_the_tests(config)
    for name in FIXTURE_PLUGINS:
        if controller and name in WORKERS_ONLY:
            continue
        # Not pluginmanager.import_plugin: it would mark the module for assertion rewriting.
        if not config.pluginmanager.is_blocked(name) and config.pluginmanager.get_plugin(name) is None:
            config.pluginmanager.register(importlib.import_module(name), name)
    if config.args_source != pytest.Config.ArgsSource.ARGS and str(BUILTIN_CHECKS.parent) not in config.args:
        # Collected through the package directory so node ids read checks/test_*.py when the package
        # is installed outside the rootdir; only its checks/ is collected (pytest_ignore_collect).
        config.args.append(str(BUILTIN_CHECKS.parent))


_FROZEN_AT_EXIT = False
YOUNG_GC_THRESHOLD = 20_000  # allocations between collections of the youngest generation (CPython: 700)


def distributes_the_tests(config: pytest.Config) -> bool:
    """The controller of an xdist run (its workers collect and run the checks)."""
    return (
        getattr(config.option, "dist", "no") != "no"
        and not config.option.collectonly
        and not hasattr(config, "workerinput")
    )


def keep_start_up_out_of_garbage_collection(config: pytest.Config) -> None:
    """What pytest and the client libraries build at start-up lives as long as the run, yet every
    full collection walks it again: a one-service gate spent a fifth of its time there, mostly in
    the collections pytest forces at its end. Frozen (gc.freeze) now, after collection and when
    the session ends, it is left out of them. Young objects are collected less often (the
    imports of the client libraries make them by the hundred thousand). The cleanup, registered
    before pytest's own, restores both last."""
    global _FROZEN_AT_EXIT
    if not _FROZEN_AT_EXIT:
        # Interpreter shutdown runs full collections while it clears the modules: after a nightly
        # those took most of a second, and an xdist controller waits for each worker to exit.
        atexit.register(gc.freeze)
        _FROZEN_AT_EXIT = True
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], YOUNG_GC_THRESHOLD), *threshold[1:])
    config.add_cleanup(functools.partial(gc.set_threshold, *threshold))
    config.add_cleanup(gc.unfreeze)
    config.pluginmanager.register(_FreezeAfterCollection(), "deploycheck-gc-freeze")


class _FreezeAfterCollection:
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        gc.freeze()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        gc.freeze()  # the client libraries, imported while reading ahead


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == BUILTIN_CHECKS.parent and collection_path != BUILTIN_CHECKS:
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """The built-in checks keep the ids the README documents (checks/test_cloudrun.py::...) also
    when the package lies inside the rootdir (an editable install, this repository)."""
    if module_path.parent != BUILTIN_CHECKS or not module_path.name.startswith("test_"):
        return None
    return pytest.Module.from_parent(parent, path=module_path, nodeid=f"checks/{module_path.name}")

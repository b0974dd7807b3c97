"""pytest in this process, as the `deploycheck` command runs it (deploycheck.cli.checks)."""

from __future__ import annotations

import os

import pytest


def run_pytest(arguments: list[str]) -> int:
    """pytest's exit code. Where PYTEST_DISABLE_PLUGIN_AUTOLOAD is set (some CI images set it),
    the plugin is named explicitly; otherwise its pytest11 entry point loads it."""
    plugin = ["-p", "deploycheck_pytest.plugin"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    return int(pytest.main([*plugin, *arguments]))

"""Hostile and broken inventories: each gets exactly its expected error, with FILE:LINE:COL where
there is a line, quickly, without a traceback, and without hanging on what is no regular file.

tests/bad_inventory/NAME.yaml states its own expected errors in `# expect: LINE:COL: ...` comment
lines (one per error, in order); the few files that cannot hold a comment (empty, UTF-16) are listed
in tests/bad_inventory/expected.txt. Cases git cannot hold (a FIFO, a device, a directory, a file
over the size limit) are made here at test time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploycheck.inventory import MAX_INVENTORY_BYTES, InventoryError, load_inventory

BAD = Path(__file__).resolve().parent / "bad_inventory"
REPO = BAD.parent.parent
SECONDS = 2.0  # the requirement: a hostile inventory is refused within 2 s
WALL_SLACK = 4  # wall time may stretch this much on a machine busy with other test workers


def _expected_from_table() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in (BAD / "expected.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, error = line.partition(": ")
            table.setdefault(name, []).append(error)
    return table


def _expected(path: Path) -> list[str]:
    table = _expected_from_table()
    if path.name in table:
        return table[path.name]
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.removeprefix("# expect: ") for line in text.splitlines() if line.startswith("# expect: ")]


def _refusal(path: Path | str) -> list[str]:
    """The errors of loading `path`, without the file prefix, asserting the bounds every refusal keeps."""
    started, cpu_started = time.monotonic(), time.process_time()
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    cpu, elapsed = time.process_time() - cpu_started, time.monotonic() - started
    # The work is held to the requirement by CPU time, which other jobs on a loaded CI machine do
    # not inflate; the wall clock only has to show that nothing blocked (a FIFO, a device).
    assert cpu < SECONDS, f"{path}: took {cpu:.2f}s of CPU"
    assert elapsed < SECONDS * WALL_SLACK, f"{path}: took {elapsed:.2f}s"
    text = str(caught.value)
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == len(caught.value.issues) >= 1
    assert all(line.startswith(f"{path}:") for line in lines), lines
    return [line.removeprefix(f"{path}:").lstrip() for line in lines]


FILES = sorted(BAD.glob("*.yaml"))


def test_the_directory_holds_at_least_40_broken_inventories_each_with_its_expectation():
    assert len(FILES) >= 40
    assert all(_expected(path) for path in FILES), [path.name for path in FILES if not _expected(path)]
    assert set(_expected_from_table()) <= {path.name for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_each_broken_inventory_gets_exactly_its_expected_errors(path):
    errors = _refusal(path)
    assert errors == _expected(path)
    position = re.compile(r"^\d+:\d+: ")
    assert all(position.match(error) for error in errors), errors  # every file case has a line


# ---- made at test time: what git cannot hold, or should not


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "services.yaml"
    os.mkfifo(fifo)  # nobody ever writes: a blocking open or read would hang here
    assert _refusal(fifo) == ["cannot read the inventory: it is a FIFO (named pipe) (expected a regular YAML file)"]


def test_a_device_is_refused_even_behind_a_symlink(tmp_path):
    assert _refusal("/dev/zero") == [
        "cannot read the inventory: it is a character device (expected a regular YAML file)"
    ]
    link = tmp_path / "services.yaml"
    link.symlink_to("/dev/zero")
    assert _refusal(link) == ["cannot read the inventory: it is a character device (expected a regular YAML file)"]


def test_a_directory_is_refused(tmp_path):
    assert _refusal(tmp_path) == ["cannot read the inventory: it is a directory (expected a regular YAML file)"]


def test_a_missing_file_is_refused(tmp_path):
    assert _refusal(tmp_path / "services.yaml") == ["cannot read the inventory: No such file or directory"]


def test_a_file_over_one_mib_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "services.yaml"
    huge.write_text("# padding\n" * (MAX_INVENTORY_BYTES // 10 + 1))
    size = huge.stat().st_size
    assert _refusal(huge) == [
        f"cannot read the inventory: it is {size:,} bytes, over the 1 MiB (1,048,576-byte) limit "
        f"(expected a YAML file of at most 1 MiB)"
    ]


def test_a_file_of_exactly_one_mib_is_read(tmp_path):
    at_limit = tmp_path / "services.yaml"
    at_limit.write_text("#" * (MAX_INVENTORY_BYTES - 1) + "\n")
    assert _refusal(at_limit)[0].startswith("1:1: the document is empty")


def test_nesting_within_the_limit_is_still_read(tmp_path):
    """The bounds refuse bombs, not ordinary documents: 60 levels reach the schema check."""
    nested = tmp_path / "services.yaml"
    nested.write_text("project: " + "[" * 60 + "]" * 60 + "\n")
    assert "1:10: project: wrong type: got list (expected the Google Cloud project id)" in _refusal(nested)


def test_the_real_inventory_uses_anchors_and_passes_the_bounds():
    assert "&" in (REPO / "services.yaml").read_text()
    assert load_inventory(REPO / "services.yaml").services


# ---- as a user meets them: the command line and pytest


@pytest.mark.parametrize("name", ["nul_byte.yaml", "deep_flow_sequence.yaml", "alias_bomb.yaml", "not_utf8.yaml"])
def test_check_inventory_command_prints_the_error_without_a_traceback(name):
    path = BAD / name
    done = subprocess.run(
        [sys.executable, "-m", "deploycheck", "inventory", "check", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR  # as pytest exits for the same file
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"{path}:{error}" for error in _expected(path)]


def test_pytest_with_a_hostile_inventory_is_a_usage_error_not_an_internal_error(suite, tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, expected in (
        (BAD / "alias_bomb.yaml", f"{BAD / 'alias_bomb.yaml'}:7:4: aliases expand this"),
        (BAD / "deep_flow_mapping.yaml", f"{BAD / 'deep_flow_mapping.yaml'}:2:253: nesting deeper"),
        (fifo, f"{fifo}: cannot read the inventory: it is a FIFO"),
        (Path("/dev/zero"), "/dev/zero: cannot read the inventory: it is a character device"),
    ):
        result = suite.run("-m", "postdeploy", "--inventory", str(path), timeout=120)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, (path, result.stderr.str())
        output = result.stdout.str() + result.stderr.str()
        assert expected in output
        assert "INTERNALERROR" not in output and "Traceback" not in output


def test_pytest_with_an_empty_inventory_path_is_a_usage_error(suite):
    # As `--inventory "$INVENTORY"` passes it when the variable is unset, in both option forms.
    for args in (["--inventory="], ["--inventory", ""]):
        result = suite.run("-m", "postdeploy", *args, timeout=120)
        output = result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, (args, output)
        assert "--inventory '': expected the path of the inventory file" in output
        assert "INTERNALERROR" not in output and "Traceback" not in output

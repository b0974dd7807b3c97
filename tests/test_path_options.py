"""Path options with existing absolute paths outside the project, in both forms, as a nightly job
writes them: pytest decides its rootdir before the plugin's options are known, so
`--report-dir /srv/reports` must not move the rootdir (and lose pytest.ini) on the second night."""

from __future__ import annotations

import shutil

import pytest

NIGHTLY = ("-m", "nightly", "--target", "sandbox:healthy", "-p", "no:randomly")


def _outcomes(result: pytest.RunResult) -> dict:
    assert "error" not in result.parseoutcomes(), result.stdout.str()
    return result.parseoutcomes()


@pytest.mark.parametrize("form", ["space", "equals"])
@pytest.mark.parametrize("option", ["--report-dir", "--inventory", "--history", "--previous", "--cache-dir"])
def test_an_existing_absolute_path_outside_the_project_is_the_options_value(suite, tmp_path_factory, option, form):
    suite.reuse_sandbox("healthy")
    elsewhere = tmp_path_factory.mktemp("srv")
    values = {
        "--report-dir": elsewhere / "reports",
        "--history": elsewhere / "history",
        "--cache-dir": elsewhere / "cache",
        "--inventory": elsewhere / "services.yaml",
        "--previous": elsewhere / "last-night" / "report.json",
    }
    shutil.copy(suite.path / "services.yaml", values["--inventory"])
    first = suite.run(*NIGHTLY, "--report-dir", str(elsewhere / "last-night"))  # makes --previous's file
    assert first.ret == 0, first.stdout.str()
    value = values[option]
    value.parent.mkdir(exist_ok=True)
    if option in ("--report-dir", "--history", "--cache-dir"):
        value.mkdir(exist_ok=True)  # it exists, as it does from the second night on
    argument = [option, str(value)] if form == "space" else [f"{option}={value}"]
    runs = [suite.run(*NIGHTLY, *argument) for _ in range(2)]
    assert [run.ret for run in runs] == [0, 0], runs[-1].stdout.str() + runs[-1].stderr.str()
    assert _outcomes(runs[0]) == _outcomes(runs[1]) == _outcomes(first)  # the same checks, not the suite's tests
    assert not (value if value.is_dir() else value.parent).joinpath(".pytest_cache").exists()
    if option == "--report-dir":
        assert (value / "report.json").is_file()
    if option == "--previous":
        assert "0 new, 0 still failing, 0 fixed" in runs[1].stdout.str()

"""Shows the fault matrix the run produced in the terminal summary (from any xdist worker)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, config) -> None:
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    base = factory.getbasetemp()
    for path in sorted([*base.glob("fault-matrix.txt"), *base.glob("*/fault-matrix.txt")]):
        terminalreporter.write_sep("=", "fault matrix")
        terminalreporter.write(path.read_text())

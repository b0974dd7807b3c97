"""report.html (one self-contained page: inline CSS and SVG, a few lines of inline script for the
filters, no external request), report.md (a PR comment) and report.txt (chat) from the same report
dict report.json holds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import jinja2

from ..findings import Outcome, Severity
from ..redact import redact
from .html_view import html_view
from .text import render_markdown, render_text

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("deploycheck.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

SEVERITY_ORDER = [severity.value for severity in Severity]
OUTCOME_ORDER = [Outcome.ERROR.value, Outcome.FAIL.value, Outcome.WAIVED.value, Outcome.PASS.value]


def _view(report: dict) -> dict:
    findings = sorted(
        report["findings"],
        key=lambda f: (
            OUTCOME_ORDER.index(f["outcome"]),
            SEVERITY_ORDER.index(f["severity"]),
            f["check"],
            f["resource"],
        ),
    )
    red = [f for f in findings if f["outcome"] in (Outcome.FAIL.value, Outcome.ERROR.value)]
    by_severity = {severity: sum(1 for f in red if f["severity"] == severity) for severity in SEVERITY_ORDER}
    checks = sorted({f["check"] for f in findings})
    return {
        "summary": report["summary"],
        "red": red,
        "green": [f for f in findings if f["outcome"] == Outcome.PASS.value],
        "by_severity": by_severity,
        "checks": checks,
        "by_check": report["summary"]["by_check"],
    }


def prepare_templates() -> None:
    """Compile the page's template now (jinja2 keeps it), e.g. on a thread while a run waits for
    the network, so that writing the report at the end does not wait for it."""
    _ENVIRONMENT.get_template("report.html.j2")


def render(report: dict, template: str) -> str:
    view = _view(report)
    if template.endswith(".html.j2"):
        view |= html_view(report)
    return _ENVIRONMENT.get_template(template).render(**view)


def write_rendered(report: dict, directory: Path) -> list[Path]:
    renderers: dict[str, Callable[[dict], str]] = {"report.md": render_markdown, "report.txt": render_text}
    if report.get("error"):
        # A run that could not start has no page to draw; a stale one must not pose as tonight's.
        (directory / "report.html").unlink(missing_ok=True)
    else:
        renderers["report.html"] = lambda data: render(data, "report.html.j2")
    written = []
    for name, renderer in renderers.items():
        path = directory / name
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_text(redact(renderer(report)), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written

"""report.md (a PR comment: GitHub refuses more than 65,536 characters) and report.txt (chat: no
tables, no markup) from the report dict, within a character budget whatever the fleet size.

Both lead with what changed since the previous report, then list the grouped findings worst first
until the budget is spent, and point to report.html for the rest. Commands and regexes are shown
intact: in report.md commands are fenced code and prose is backslash-escaped, so a `\\.` quoted
from an inventory regex still reads `\\.` once rendered.
"""

from __future__ import annotations

import re
from collections import defaultdict

MARKDOWN_LIMIT = 60_000
TEXT_LIMIT = 38_000  # under Slack's 40,000-character message limit
MAX_COMMAND_CHARS = 3_000
MAX_NAMES_SHOWN = 25
MAX_CHANGES_SHOWN = 10

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def md_escape(text: str) -> str:
    """Prose for Markdown: one line, every character that could turn into markup escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def md_code(command: str, language: str = "sh") -> str:
    """A fenced block longer than any backtick run inside, so nothing in a command ends it early."""
    longest = max((len(run) for run in re.findall(r"`+", command)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{command}\n{fence}"


def _title(report: dict) -> str:
    where = report.get("project") or report["summary"]["target"]
    if report.get("region"):
        where += f" ({report['region']})"
    return where


def _outcome_label(outcome: str) -> str:
    return {"fail": "FAIL", "error": "ERROR"}.get(outcome, outcome.upper())


def _day(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ") + ("Z" if iso else "")


def _group_change(group: dict) -> str:
    changes = group.get("changes")
    if not changes:
        return ""
    if changes["still"] == 0:
        return "new"
    if changes["new"] == 0:
        return f"still failing since {_day(group.get('since'))}"
    return f"{changes['new']} new, {changes['still']} still failing since {_day(group.get('since'))}"


def _names(resources: list[str]) -> str:
    shown = ", ".join(resources[:MAX_NAMES_SHOWN])
    more = len(resources) - MAX_NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _command_for(group: dict) -> tuple[str | None, str]:
    """The group's command, or (when a loop over hundreds of names would crowd out everything
    else) none and a note saying where the whole one is."""
    command = group.get("remediation")
    if command and len(command) > MAX_COMMAND_CHARS:
        if group.get("command_each"):
            # The names come from report.json (next to this file), so the command stays whole.
            return (
                f"jq -r '.groups[] | select(.id == \"{group['id']}\") | .resources[]' report.json |\n"
                f"while read -r name; do\n  {group['command_each']}\ndone"
            ), ""
        return None, (
            f"The command for all {len(group['resources'])} is {len(command):,} characters long: "
            "see report.html or report.json (groups[].remediation)."
        )
    return command, ""


def _fixed_by_cause(fixed: list[dict]) -> list[tuple[str, str, list[str]]]:
    by_cause: dict[tuple[str, str], list[str]] = defaultdict(list)
    for finding in fixed:
        by_cause[(finding["check"], finding.get("cause") or finding["check"])].append(finding["resource"])
    return sorted(((check, cause, names) for (check, cause), names in by_cause.items()), key=lambda x: -len(x[2]))


class _Budget:
    """Parts are added while they fit, leaving room for the closing lines."""

    def __init__(self, limit: int, reserve: int):
        self.limit, self.reserve, self.used = limit, reserve, 0
        self.parts: list[str] = []

    def add(self, text: str, *, force: bool = False) -> bool:
        if not force and self.used + len(text) + 1 + self.reserve > self.limit:
            return False
        self.parts.append(text)
        self.used += len(text) + 1
        return True

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


def _counts(summary: dict) -> str:
    text = f"{summary['fail']} failed, {summary['error']} unobserved, {summary['pass']} passed"
    if summary.get("waived"):
        text += f", {summary['waived']} waived"
    return text


def render_markdown(report: dict, limit: int = MARKDOWN_LIMIT) -> str:
    summary = report["summary"]
    if report.get("error"):
        return (
            f"## deploycheck: {md_escape(_title(report))} could not start\n\n{md_escape(report['error'])}\n\n"
            f"No check ran. Started {_day(report.get('started'))}, inventory {md_escape(summary['inventory'])}, "
            f"target {md_escape(summary['target'])}, exit status 4.\n"
        )
    footer = _markdown_footer(report)
    budget = _Budget(limit, len(footer) + 400)
    budget.add(f"## deploycheck: {md_escape(_title(report))} — {_counts(summary)}\n", force=True)
    changes = report.get("changes")
    if changes:
        budget.add(_markdown_changes(report), force=True)
    groups = report.get("groups", [])
    if groups:
        budget.add(
            f"### Findings: {sum(len(g['finding_ids']) for g in groups)} in {len(groups)} groups, worst first\n",
            force=True,
        )
    left = list(groups)
    while left and budget.add(_markdown_group(left[0])):
        left.pop(0)
    if left:
        budget.add(
            f"**{len(left)} more groups ({sum(len(g['finding_ids']) for g in left)} findings) are in "
            "report.html and report.json.**\n",
            force=True,
        )
    if not groups:
        budget.add(f"All {summary['pass']} findings passed.\n", force=True)
    budget.add(footer, force=True)
    return budget.text()


def _markdown_changes(report: dict) -> str:
    changes = report["changes"]
    since = (
        f"since the previous report ({_day(changes.get('previous_started'))})"
        if changes.get("previous")
        else "no previous report yet: everything failing is new"
    )
    lines = [
        f"**What changed** {since}: **{changes['new']} new**, {changes['still']} still failing, "
        f"**{changes['fixed']} fixed**"
        + (f", {changes['unchecked']} not checked tonight" if changes.get("unchecked") else "")
        + ".\n"
    ]
    new = [g for g in report.get("groups", []) if g.get("changes", {}).get("new")]
    for group in new[:MAX_CHANGES_SHOWN]:
        lines.append(
            f"- new: {group['severity']} {md_escape(group['check'])} "
            f"({md_escape(group['cause'])}) on {md_escape(_names(group['resources']))}"
        )
    if len(new) > MAX_CHANGES_SHOWN:
        lines.append(f"- and {len(new) - MAX_CHANGES_SHOWN} more new groups")
    fixed = _fixed_by_cause(report.get("fixed", []))
    for check, cause, names in fixed[:MAX_CHANGES_SHOWN]:
        lines.append(f"- fixed: {md_escape(check)} ({md_escape(cause)}) on {md_escape(_names(names))}")
    if len(fixed) > MAX_CHANGES_SHOWN:
        lines.append(f"- and {len(fixed) - MAX_CHANGES_SHOWN} more fixed causes")
    return "\n".join(lines) + "\n"


def _markdown_group(group: dict) -> str:
    count = len(group["resources"])
    head = (
        f"#### {group['severity']} {_outcome_label(group['outcome'])} · {md_escape(group['check'])} · "
        f"{md_escape(group['cause'])}"
        + (f" · {count} resources" if count > 1 else f" · {md_escape(group['resources'][0])}")
    )
    change = _group_change(group)
    lines = [head, ""]
    if change:
        lines += [f"*{md_escape(change)}*", ""]
    lines += [md_escape(group["summary"]), ""]
    if count > 1:
        lines += [f"Resources: {md_escape(_names(group['resources']))}", ""]
    command, note = _command_for(group)
    if command:
        lines += [md_code(command), ""]
    elif note:
        lines += [md_escape(note), ""]
    return "\n".join(lines)


def not_configured_lines(not_configured: list[dict]) -> list[str]:
    """One line per check and reason: `check[resource, ...]: reason` (resources shortened past a few dozen)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for entry in not_configured:
        grouped.setdefault((entry["check"], entry["reason"]), []).append(entry["resource"])
    return [f"{check}[{_names(resources)}]: {reason}" for (check, reason), resources in grouped.items()]


def _markdown_not_configured(report: dict) -> str:
    lines = not_configured_lines(report.get("not_configured") or [])
    if not lines:
        return ""
    return (
        "Not configured by the inventory (not run, not passed):\n\n"
        + "\n".join(f"- {md_escape(line)}" for line in lines)
        + "\n\n"
    )


def _markdown_footer(report: dict) -> str:
    summary = report["summary"]
    by_check = summary.get("by_check", {})
    checks = ", ".join(
        f"{md_escape(check)} ({counts.get('pass', 0)} ok"
        + (f", {counts['fail']} failed" if counts.get("fail") else "")
        + (f", {counts['error']} unobserved" if counts.get("error") else "")
        + ")"
        for check, counts in by_check.items()
    )
    return (
        "Every finding, with a filter and the fleet grid, is in **report.html**; machines read report.json.\n\n"
        + _markdown_not_configured(report)
        + f"Checks: {checks}.\n"
        f"Run {_day(summary['started'])} – {_day(summary['finished'])}, target {md_escape(summary['target'])}, "
        f"inventory {md_escape(summary['inventory'])}, exit status {summary['exit_status']}.\n"
    )


def render_text(report: dict, limit: int = TEXT_LIMIT) -> str:
    summary = report["summary"]
    if report.get("error"):
        return (
            f"deploycheck: {_title(report)} could not start: {report['error']}\n"
            f"No check ran. Started {_day(report.get('started'))}, exit status 4.\n"
        )
    unconfigured = not_configured_lines(report.get("not_configured") or [])
    footer = (
        (
            "Not configured by the inventory (not run, not passed):\n" + "".join(f"  {line}\n" for line in unconfigured)
            if unconfigured
            else ""
        )
        + f"Everything else: report.html. Run {_day(summary['started'])}, target {summary['target']}, "
        f"exit status {summary['exit_status']}.\n"
    )
    budget = _Budget(limit, len(footer) + 200)
    budget.add(f"deploycheck: {_title(report)}: {_counts(summary)}", force=True)
    changes = report.get("changes")
    if changes:
        line = (
            f"Since the previous report ({_day(changes.get('previous_started'))}): "
            if changes.get("previous")
            else "No previous report yet: "
        )
        line += f"{changes['new']} new, {changes['still']} still failing, {changes['fixed']} fixed"
        if changes.get("unchecked"):
            line += f", {changes['unchecked']} not checked tonight"
        budget.add(line, force=True)
        for check, cause, names in _fixed_by_cause(report.get("fixed", []))[:MAX_CHANGES_SHOWN]:
            budget.add(f"  fixed: {check} ({cause}) on {_names(names)}", force=True)
    budget.add("", force=True)
    left = list(report.get("groups", []))
    while left and budget.add(_text_group(left[0])):
        left.pop(0)
    if left:
        budget.add(
            f"{len(left)} more groups ({sum(len(g['finding_ids']) for g in left)} findings) are in report.html.",
            force=True,
        )
    budget.add(footer, force=True)
    return budget.text()


def _text_group(group: dict) -> str:
    count = len(group["resources"])
    where = f"{count} resources" if count > 1 else group["resources"][0]
    change = _group_change(group)
    lines = [
        f"[{group['severity']} {_outcome_label(group['outcome'])}] {group['check']} / {group['cause']} / {where}"
        + (f" ({change})" if change else ""),
        f"  {' '.join(group['summary'].split())}",
    ]
    if count > 1:
        lines.append(f"  resources: {_names(group['resources'])}")
    command, note = _command_for(group)
    if command:
        lines.append("  fix:")
        lines += [f"    {line}" for line in command.splitlines()]
    elif note:
        lines.append(f"  {note}")
    return "\n".join(lines) + "\n"

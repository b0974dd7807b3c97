"""code: the critical files inside the running image hold the fix (seed 001's `docker run IMAGE
cat processor_heartbeat.py | grep "return self.processor_name"`, without pulling anything)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import re2
from ..findings import Finding, Outcome, Severity, failed, passed
from ..images import FileRead, ImageReadResult
from ..inventory import CodePattern

CHECK = "code"


def _line_of(text: str, start: int) -> tuple[int, str]:
    number = text.count("\n", 0, start) + 1
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    return number, text[line_start : line_end if line_end >= 0 else len(text)].strip()


def _search(regex: str, text: str):
    """re.search with re.MULTILINE, run by RE2: linear in the file, whatever the inventory wrote."""
    return re2.compile(regex, multiline=True).search(text)


def evaluate_pattern(resource: str, pattern: CodePattern, file: FileRead, image: str) -> Finding:
    """A forbidden match or a missing required text is a FAIL. When the file was read only in part,
    what the part proves still counts (a forbidden match in it, a required text found in it), but
    neither an absence nor a "not found" is proven: that is an ERROR, never a pass."""
    cause = f"pattern-{pattern.name}"
    evidence: dict[str, Any] = {
        "image": image,
        "path": pattern.path,
        "pattern": pattern.name,
        "resolved_path": file.resolved_path,
        "layer_index": file.layer_index,
        "layer_size": file.layer_size,
        "note": file.note,
        "integrity": file.integrity,
    }
    if not file.found:
        why = f" ({file.note})" if file.note else ""
        return failed(
            CHECK,
            resource,
            Severity.P1,
            f"{pattern.path} is not in the running image{why}",
            None,
            cause=cause,
            **evidence,
        )
    text = (file.data or b"").decode("utf-8", errors="replace")
    problems: list[str] = []
    unmatched_forbidden: list[str] = []
    for regex in pattern.must_not_contain:
        match = _search(regex, text)
        if match:
            number, line = _line_of(text, match.start())
            problems.append(f"{pattern.path}:{number}: `{line}` matches forbidden /{regex}/")
        else:
            unmatched_forbidden.append(regex)
    found = {regex: _search(regex, text) for regex in pattern.must_contain}
    missing = [regex for regex, match in found.items() if match is None]
    if file.truncated and not problems and (unmatched_forbidden or missing):
        read = f"{pattern.path} read only to {len(file.data or b''):,} bytes of {file.size:,}"
        details = [f"/{unmatched_forbidden[0]}/ may be in the rest"] if unmatched_forbidden else []
        if missing:
            also = "presence not proven: " if unmatched_forbidden else ""
            details.append(f"{also}cannot tell whether it contains /{missing[0]}/")
        head = "absence not proven" if unmatched_forbidden else "presence not proven"
        summary = f"{head}: {read}; " + "; ".join(details)
        return Finding(
            CHECK, resource, Severity.P1, Outcome.ERROR, f"{summary} (raise --max-file-bytes)", evidence, None, cause
        )
    problems.extend(f"{pattern.path} does not contain /{regex}/" for regex in missing if not file.truncated)
    if problems:
        if file.truncated:
            problems.append(f"only the first {len(file.data or b''):,} of {file.size:,} bytes were read")
        return failed(CHECK, resource, Severity.P1, "; ".join(problems), None, cause=cause, **evidence)
    where = [f"line {number} `{line}`" for number, line in (_line_of(text, m.start()) for m in found.values())]
    cost = f"; {file.note}" if file.note else ""
    summary = f"{pattern.path}: " + (", ".join(where) if where else "no forbidden pattern") + cost
    return passed(CHECK, resource, summary, cause=cause, **evidence)


def evaluate_code(
    resource: str,
    patterns: list[CodePattern],
    running: ImageReadResult,
    *,
    candidate: ImageReadResult | None,
    deploy_candidate: str,
    rebuild: str,
) -> list[Finding]:
    """Findings per pattern for the running image. A failure's fix is to deploy `candidate` (the
    image the tag, or the job's service, points to now) when it passes, else to rebuild."""
    cost = {
        "bytes_read": running.bytes_read,
        "bytes_from_cache": running.bytes_from_cache,
        "layers_opened": running.layers_opened,
        "layers_total": running.layers_total,
        "image_compressed_size": running.image_compressed_size,
    }
    findings = [evaluate_pattern(resource, p, running.files[p.path], running.image) for p in patterns]
    findings = [replace(f, evidence={**f.evidence, **cost}) for f in findings]
    if not any(f.outcome is Outcome.FAIL for f in findings):
        return findings
    if candidate is not None and all(
        not evaluate_pattern(resource, p, candidate.files[p.path], candidate.image).failed for p in patterns
    ):
        fix, note = deploy_candidate, f"{candidate.image} has the fix but is not what runs"
    else:
        fix, note = rebuild, ("the image the tag points to lacks it too" if candidate is not None else "")
    return [
        replace(f, remediation=fix, evidence={**f.evidence, "fix_note": note}) if f.outcome is Outcome.FAIL else f
        for f in findings
    ]

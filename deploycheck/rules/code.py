"""code: the critical files inside the running image hold the fix (seed 001's `docker run IMAGE
cat processor_heartbeat.py | grep "return self.processor_name"`, without pulling anything)."""

from __future__ import annotations

import re
from dataclasses import replace

from ..findings import Finding, Outcome, Severity, failed, passed
from ..images import FileRead, ImageReadResult
from ..inventory import CodePattern

CHECK = "code"


def _line_of(text: str, match: re.Match) -> tuple[int, str]:
    number = text.count("\n", 0, match.start()) + 1
    line = text.splitlines()[number - 1] if text else ""
    return number, line.strip()


def evaluate_pattern(resource: str, pattern: CodePattern, file: FileRead, image: str) -> Finding:
    evidence = {"image": image, "path": pattern.path, "pattern": pattern.name, "resolved_path": file.resolved_path,
                "layer_index": file.layer_index, "layer_size": file.layer_size, "note": file.note}
    if not file.found:
        why = f" ({file.note})" if file.note else ""
        return failed(CHECK, resource, Severity.P1, f"{pattern.path} is not in the running image{why}", None, **evidence)
    text = (file.data or b"").decode("utf-8", errors="replace")
    problems: list[str] = []
    for regex in pattern.must_not_contain:
        match = re.search(regex, text, re.MULTILINE)
        if match:
            number, line = _line_of(text, match)
            problems.append(f"{pattern.path}:{number}: `{line}` matches forbidden /{regex}/")
    missing = [regex for regex in pattern.must_contain if not re.search(regex, text, re.MULTILINE)]
    if missing and file.truncated:
        return Finding(CHECK, resource, Severity.P1, Outcome.ERROR,
                       f"{pattern.path} is {file.size:,} bytes and only the first {len(file.data or b''):,} were read: "
                       f"cannot tell whether it contains /{missing[0]}/ (raise --max-file-bytes)", evidence, None)
    problems.extend(f"{pattern.path} does not contain /{regex}/" for regex in missing)
    if problems:
        return failed(CHECK, resource, Severity.P1, "; ".join(problems), None, **evidence)
    where = []
    for regex in pattern.must_contain:
        number, line = _line_of(text, re.search(regex, text, re.MULTILINE))
        where.append(f"line {number} `{line}`")
    cost = f"; {file.note}" if file.note else ""
    summary = f"{pattern.path}: " + (", ".join(where) if where else "no forbidden pattern") + cost
    return passed(CHECK, resource, summary, **evidence)


def evaluate_code(resource: str, patterns: list[CodePattern], running: ImageReadResult, *,
                  candidate: ImageReadResult | None, deploy_candidate: str, rebuild: str) -> list[Finding]:
    """Findings per pattern for the running image. A failure's fix is to deploy `candidate` (the
    image the tag, or the job's service, points to now) when it passes, else to rebuild."""
    cost = {"bytes_read": running.bytes_read, "bytes_from_cache": running.bytes_from_cache,
            "layers_opened": running.layers_opened, "layers_total": running.layers_total,
            "image_compressed_size": running.image_compressed_size}
    findings = [evaluate_pattern(resource, p, running.files[p.path], running.image) for p in patterns]
    findings = [replace(f, evidence={**f.evidence, **cost}) for f in findings]
    if not any(f.outcome is Outcome.FAIL for f in findings):
        return findings
    candidate_passes = candidate is not None and all(
        not evaluate_pattern(resource, p, candidate.files[p.path], candidate.image).failed for p in patterns)
    if candidate_passes:
        fix, note = deploy_candidate, f"{candidate.image} has the fix but is not what runs"
    else:
        fix, note = rebuild, ("the image the tag points to lacks it too" if candidate is not None else "")
    return [replace(f, remediation=fix, evidence={**f.evidence, "fix_note": note}) if f.outcome is Outcome.FAIL else f
            for f in findings]

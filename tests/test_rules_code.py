"""The code rule over files as read from an image: what a file read only in part can and cannot prove,
and inventory regexes that would backtrack for ever under Python's re."""

from __future__ import annotations

import time

from deploycheck.findings import Outcome
from deploycheck.images import FileRead
from deploycheck.inventory import CodePattern, HeartbeatSpec
from deploycheck.rules.code import evaluate_pattern
from deploycheck.rules.heartbeat_docs import bad_id_reason

PATH = "/app/shared/utils/metrics_utils.py"
IMAGE = "us-west2-docker.pkg.dev/p/r/worker@sha256:" + "0" * 64
HEADER = '"""Cloud Monitoring metrics."""\nimport logging\n'
CATASTROPHIC = [r"(a+)+$", r"^(\s*[\w.]+\s*)+:$"]


def read(data: bytes, *, size: int | None = None) -> FileRead:
    """The file as the image reader returns it: `data` is all of it, or its first bytes of `size`."""
    size = len(data) if size is None else size
    return FileRead(
        PATH,
        True,
        data,
        size,
        PATH,
        "sha256:" + "1" * 64,
        1,
        1000,
        size > len(data),
        f"file is {size:,} bytes, over the limit" if size > len(data) else "",
    )


def pattern(must_contain=(), must_not_contain=()) -> CodePattern:
    return CodePattern("lazy-monitoring-import", PATH, list(must_contain), list(must_not_contain))


def evaluate(code: CodePattern, file: FileRead):
    return evaluate_pattern("prediction-worker", code, file, IMAGE)


FORBIDDEN = pattern(must_not_contain=[r"^from google\.cloud import monitoring_v3"])


def test_absence_in_a_whole_file_passes():
    assert evaluate(FORBIDDEN, read(HEADER.encode())).outcome is Outcome.PASS


def test_absence_in_a_file_read_only_in_part_is_an_error_not_a_pass():
    finding = evaluate(FORBIDDEN, read(HEADER.encode(), size=5_000_000))
    assert finding.outcome is Outcome.ERROR
    assert finding.summary == (
        f"absence not proven: {PATH} read only to {len(HEADER.encode())} bytes of 5,000,000; "
        r"/^from google\.cloud import monitoring_v3/ may be in the rest (raise --max-file-bytes)"
    )


def test_a_forbidden_match_inside_the_part_read_is_a_proven_failure():
    data = (HEADER + "from google.cloud import monitoring_v3\n").encode()
    finding = evaluate(FORBIDDEN, read(data, size=5_000_000))
    assert finding.outcome is Outcome.FAIL
    assert finding.summary.startswith(f"{PATH}:3: `from google.cloud import monitoring_v3` matches forbidden")
    assert f"only the first {len(data)} of 5,000,000 bytes were read" in finding.summary


def test_a_required_text_found_inside_the_part_read_passes():
    finding = evaluate(pattern(must_contain=["import logging"]), read(HEADER.encode(), size=5_000_000))
    assert finding.outcome is Outcome.PASS
    assert finding.summary.startswith(f"{PATH}: line 2 `import logging`")


def test_a_required_text_missing_from_the_part_read_is_an_error():
    finding = evaluate(pattern(must_contain=["def flush"]), read(HEADER.encode(), size=5_000_000))
    assert finding.outcome is Outcome.ERROR
    assert finding.summary.startswith(f"presence not proven: {PATH} read only to")
    assert finding.summary.endswith("cannot tell whether it contains /def flush/ (raise --max-file-bytes)")


def test_found_required_text_does_not_excuse_an_unproven_absence():
    code = pattern(must_contain=["import logging"], must_not_contain=["monitoring_v3"])
    finding = evaluate(code, read(HEADER.encode(), size=5_000_000))
    assert finding.outcome is Outcome.ERROR and finding.summary.startswith("absence not proven")


def test_multiline_anchors_match_at_line_starts_as_before():
    data = (HEADER + "def f():\n    from google.cloud import monitoring_v3\n").encode()
    assert evaluate(FORBIDDEN, read(data)).outcome is Outcome.PASS  # indented: a lazy import
    assert evaluate(pattern(must_contain=[r"^import logging$"]), read(data)).outcome is Outcome.PASS


# ---- catastrophic backtracking: RE2 runs these in linear time (bounded, generously)


def test_catastrophic_patterns_run_in_linear_time_in_the_code_rule():
    text = ("a" * 200_000 + "!\n" + " x.y " * 40_000 + "!\n").encode()
    started = time.monotonic()
    finding = evaluate(pattern(must_not_contain=CATASTROPHIC), read(text))
    assert time.monotonic() - started < 5.0
    assert finding.outcome is Outcome.PASS


def test_catastrophic_patterns_run_in_linear_time_on_document_ids():
    spec = HeartbeatSpec("processor_heartbeats", CATASTROPHIC[1], [CATASTROPHIC[0]], 1, 50, 100, 500, 2.0)
    started = time.monotonic()
    assert bad_id_reason("a" * 100_000 + "!", spec) == "does not match the id pattern"
    assert bad_id_reason(" x.y " * 20_000 + "!", spec) == "does not match the id pattern"
    assert bad_id_reason("a" * 100_000, spec) == r"matches /(a+)+$/"
    assert time.monotonic() - started < 5.0

"""heartbeat-docs: the Firestore heartbeat collection is what the processors should be writing
(seeds 000-002: heartbeats that stopped for days, then 1,053 documents of which 1,035 had bad ids)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from .. import re2
from ..findings import Finding, Severity, failed, passed
from ..heartbeats import HeartbeatDoc
from ..inventory import HeartbeatSpec

CHECK = "heartbeat-docs"
EXAMPLES = 3
# Seed 002's own tool; the suite stays read-only and only prints it.
CLEANUP = "python bin/cleanup-heartbeat-docs.py --dry-run && python bin/cleanup-heartbeat-docs.py"


def bad_id_reason(doc_id: str, spec: HeartbeatSpec) -> str | None:
    """Which rule a document id breaks, or None for a good id."""
    for pattern in spec.bad_id_patterns:
        if re2.compile(pattern).search(doc_id):
            return f"matches /{pattern}/"
    if not re2.compile(spec.id_pattern).fullmatch(doc_id):
        return "does not match the id pattern"
    return None


def _writer(doc: HeartbeatDoc) -> str:
    """The processor that wrote a bad document: its processor_name field, else the id's prefix."""
    return doc.processor_name or re.split(r"_None_|_20\d\d", doc.id)[0]


def evaluate_heartbeat_docs(
    collection: str, docs: list[HeartbeatDoc], spec: HeartbeatSpec, *, expected: dict[str, str], now: datetime
) -> list[Finding]:
    """`expected` maps each processor the inventory declares to the service that runs it."""
    findings: list[Finding] = []
    total = len(docs)
    bad: dict[str, list[HeartbeatDoc]] = defaultdict(list)
    good: dict[str, HeartbeatDoc] = {}
    for doc in docs:
        reason = bad_id_reason(doc.id, spec)
        if reason:
            bad[reason].append(doc)
        else:
            good[doc.id] = doc
    bad_count = sum(len(group) for group in bad.values())
    counts: dict[str, Any] = {"total": total, "bad": bad_count, "good": len(good)}

    range_text = f"expected {spec.expected_min}-{spec.expected_max}"
    if total > spec.p0_above:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P0,
                f"{total:,} documents ({range_text}; over "
                f"{spec.p0_above} is P0): something writes a new document per run",
                CLEANUP,
                cause="too-many-docs",
                **counts,
            )
        )
    elif total > spec.p1_above:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P1,
                f"{total:,} documents ({range_text}; over {spec.p1_above} is P1): the collection is growing",
                CLEANUP,
                cause="too-many-docs",
                **counts,
            )
        )
    elif total > spec.expected_max:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P3,
                f"{total:,} documents, above the {range_text}",
                CLEANUP,
                cause="too-many-docs",
                **counts,
            )
        )
    elif total < spec.expected_min:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P2,
                f"only {total:,} documents ({range_text}): processors stopped writing heartbeats",
                None,
                cause="too-few-docs",
                **counts,
            )
        )

    if bad:
        groups = "; ".join(
            f"{len(group):,} {reason} (e.g. {', '.join(d.id for d in group[:EXAMPLES])})"
            for reason, group in sorted(bad.items(), key=lambda item: -len(item[1]))
        )
        writers = Counter(_writer(doc) for group in bad.values() for doc in group)
        top = ", ".join(f"{name} {count:,}" for name, count in writers.most_common(EXAMPLES))
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P2,
                f"{bad_count:,} of {total:,} document ids are in an old format: {groups}; most written by {top}",
                CLEANUP,
                cause="old-id-format",
                **counts,
                bad_by_reason={reason: len(group) for reason, group in bad.items()},
                writers=dict(writers.most_common(20)),
            )
        )

    max_age = timedelta(hours=spec.max_age_hours)
    missing = sorted(name for name in expected if name not in good)
    unreadable = sorted(
        f"{name} ({'; '.join(good[name].problems)})" for name in expected if name in good and good[name].problems
    )
    stale = sorted(
        f"{name} ({_age(now - doc.last_heartbeat)} ago)"
        for name, doc in good.items()
        if name in expected
        and not doc.problems
        and doc.last_heartbeat is not None
        and now - doc.last_heartbeat > max_age
    )
    if missing:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P1,
                f"no heartbeat document for {len(missing)} declared processor(s): "
                + ", ".join(f"{name} ({expected[name]})" for name in missing),
                _logs_hint(missing, expected),
                cause="missing-heartbeats",
                **counts,
                missing=missing,
            )
        )
    if stale:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P1,
                f"heartbeats older than {spec.max_age_hours:g}h: {', '.join(stale)}",
                _logs_hint([s.split(" ")[0] for s in stale], expected),
                cause="stale-heartbeats",
                **counts,
            )
        )
    if unreadable:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P2,
                f"heartbeat documents with unusable fields: {', '.join(unreadable)}",
                None,
                cause="unusable-docs",
                **counts,
            )
        )
    undeclared = sorted(name for name in good if name not in expected)
    if undeclared:
        findings.append(
            failed(
                CHECK,
                collection,
                Severity.P3,
                f"{len(undeclared)} document(s) for processors no service declares: "
                f"{', '.join(undeclared[:10])}{' ...' if len(undeclared) > 10 else ''}",
                "add them to `processors:` of their service in services.yaml, or delete the documents",
                cause="undeclared-processors",
                **counts,
                undeclared=undeclared,
            )
        )
    if not findings:
        findings.append(
            passed(
                CHECK,
                collection,
                f"{total} documents, all ids good, every declared processor fresher than {spec.max_age_hours:g}h",
                **counts,
            )
        )
    return findings


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


def _logs_hint(processors: list[str], expected: dict[str, str]) -> str:
    """Seed 000's cause was a missing role, so the first thing to run is the iam check."""
    services = sorted({expected[name] for name in processors if name in expected})
    return "pytest -m postdeploy -k iam " + " ".join(f"--service {service}" for service in services)

"""The inventory: services.yaml -> Inventory, every problem reported as FILE:LINE:COL.

Two layers. The *file models* (schema.py: pydantic, extra="forbid") describe what may be written
in services.yaml and give the JSON Schema editors use. The *specs* (specs.py: frozen dataclasses)
are what the rest of deploycheck reads: defaults merged, images resolved to full references,
pattern names replaced by the patterns themselves.

Loading runs four stages and raises every problem of the last three in one InventoryError:
  0. the file is read within bounds (source.py): a regular file of at most 1 MiB, UTF-8, no NUL;
  1. YAML is composed into nodes that keep a line and column for every key and item, with nesting
     and alias expansion bounded (yamlread.py);
  2. pydantic validates the whole document; each error's `loc` is mapped back to its line
     (messages.py);
  3. cross-references (runs -> service, code -> pattern, unique names, waivers -> checks and
     resources) are checked and the specs
     are built, on the parts of the document that passed stage 2 (resolve.py).
Every regex is compiled by RE2 (deploycheck.re2). No network I/O happens here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from .configured import unconfigured_reason
from .messages import schema_issue
from .resolve import WAIVABLE_CHECKS, Parts, Resolver
from .schema import InventoryFile, inventory_json_schema
from .source import MAX_INVENTORY_BYTES, inventory_text, read_inventory_bytes
from .specs import (
    CodePattern,
    HeartbeatLogSpec,
    HeartbeatSpec,
    Inventory,
    InventoryError,
    InventoryIssue,
    JobSpec,
    ServiceSpec,
    WaiverSpec,
)
from .yamlread import MAX_DEPTH, MAX_EXPANDED_NODES, Loc, YamlReader, field_path

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_INVENTORY_BYTES",
    "WAIVABLE_CHECKS",
    "CodePattern",
    "HeartbeatLogSpec",
    "HeartbeatSpec",
    "Inventory",
    "InventoryError",
    "InventoryFile",
    "InventoryIssue",
    "JobSpec",
    "ServiceSpec",
    "WaiverSpec",
    "inventory_json_schema",
    "load_inventory",
    "unconfigured_reason",
]


def load_inventory(path: str | Path) -> Inventory:
    """Read, validate and resolve an inventory file; raise InventoryError listing every problem."""
    source = Path(path)
    file = str(path)
    reader = YamlReader(inventory_text(file, read_inventory_bytes(file)), file)
    issues = list(reader.issues)
    try:
        document = InventoryFile.model_validate(reader.data)
    except ValidationError as exc:
        issues += [schema_issue(error, reader.positions, file) for error in exc.errors(include_url=False)]

    def report(at: Loc, message: str) -> None:
        issues.append(InventoryIssue(file, *reader.positions.value(at), field_path(at), message))

    parts = Parts.of(reader.data)
    resolver = Resolver(parts, reader.positions, report) if parts else None
    services, jobs = resolver.resolve() if resolver else ([], [])
    waivers = resolver.waivers() if resolver else []
    if issues:
        raise InventoryError(issues)
    assert resolver is not None  # Parts.of refuses only documents the schema refused too
    return Inventory(
        source=source,
        project=document.project,
        region=document.region,
        registry=document.registry,
        legacy_registries=list(document.legacy_registries),
        services=services,
        jobs=jobs,
        heartbeats=_heartbeat_spec(document.heartbeats) if document.heartbeats else None,
        patterns=resolver.patterns,
        waivers=waivers,
    )


def _heartbeat_spec(entry) -> HeartbeatSpec:
    count = entry.count
    return HeartbeatSpec(
        collection=entry.collection,
        id_pattern=entry.id_pattern,
        bad_id_patterns=list(entry.bad_id_patterns),
        expected_min=count.expected_min,
        expected_max=count.expected_max,
        p1_above=count.p1_above,
        p0_above=count.p0_above,
        max_age_hours=entry.max_age_hours,
    )

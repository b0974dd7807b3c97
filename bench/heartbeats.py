"""Benchmark: the heartbeat-docs read of a flooded collection, against the real Firestore emulator.

Starts the emulator, seeds N heartbeat documents shaped like seed 002's flood (the inventory's
processors under good ids, the rest under the old `..._None_<hex>` and `..._2026-01-31_<hex>`
ids), then times one HeartbeatReader.scan: one streamed, field-masked query. The last line is
JSON: docs, seconds, requests, response_bytes, seed_seconds, emulator_start_seconds, launcher.

    .venv/bin/python bench/heartbeats.py [--docs 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from google.auth.credentials import AnonymousCredentials

from deploycheck.heartbeats import HeartbeatReader
from deploycheck.inventory import load_inventory
from deploycheck.sandbox.firestore_process import FirestoreEmulator, seed_documents

REPO = Path(__file__).resolve().parent.parent
# Seed 002: the phase 2 classes whose backfill jobs wrote the bad ids.
OLD_WRITERS = (
    "NbacTeamBoxscoreProcessor",
    "NbacPlayerBoxscoreProcessor",
    "BdlBoxscoresProcessor",
    "NbacGamebookProcessor",
    "BigDataBallPbpProcessor",
)
# A few KB of fields the heartbeat check never reads; the field mask must keep them off the wire.
UNREAD_FIELDS = {"run_id": "0" * 32, "details": "x" * 2000}


def heartbeat_documents(count: int, good_names: list[str], now: datetime):
    """`count` (id, fields) pairs: every good name once (as far as count allows), then bad ids."""
    rng = random.Random(2)
    good = good_names[:count]
    suffixes = rng.sample(range(2**32), count - len(good))
    for name in good:
        yield (
            name,
            {
                "processor_name": name,
                "last_heartbeat": now - timedelta(minutes=rng.randint(1, 90)),
                "status": "completed",
                **UNREAD_FIELDS,
            },
        )
    for index, suffix in enumerate(suffixes):
        writer = OLD_WRITERS[index % len(OLD_WRITERS)]
        middle = "None" if index % 2 else "2025-09-14"
        yield (
            f"{writer}_{middle}_{suffix:08x}",
            {
                "processor_name": writer,
                "last_heartbeat": now - timedelta(days=rng.randint(100, 150)),
                "status": "completed",
                **UNREAD_FIELDS,
            },
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents to seed (default 10,000)")
    args = parser.parse_args()
    inventory = load_inventory(REPO / "services.yaml")
    collection = inventory.heartbeats.collection
    good_names = [name for service in inventory.services for name in service.processors]

    work = Path(tempfile.mkdtemp(prefix="deploycheck-bench-heartbeats-"))
    emulator = FirestoreEmulator(work)
    try:
        began = time.perf_counter()
        emulator.start()
        start_s = time.perf_counter() - began

        began = time.perf_counter()
        seeded = seed_documents(
            emulator.host,
            inventory.project,
            collection,
            heartbeat_documents(args.docs, good_names, datetime.now(timezone.utc)),
        )
        seed_s = time.perf_counter() - began

        with HeartbeatReader(inventory.project, AnonymousCredentials(), emulator_host=emulator.host) as reader:
            scan = reader.scan(collection)
    except BaseException:
        print(f"emulator log kept in {emulator.log_path}", file=sys.stderr)
        raise
    finally:
        emulator.stop()
    shutil.rmtree(work, ignore_errors=True)

    if len(scan.documents) != seeded:
        print(f"scan returned {len(scan.documents)} documents, {seeded} were seeded", file=sys.stderr)
        return 1
    figures = {
        "docs": len(scan.documents),
        "seconds": round(scan.elapsed_s, 4),
        "requests": scan.requests,
        "response_bytes": scan.response_bytes,
        "seed_seconds": round(seed_s, 4),
        "emulator_start_seconds": round(start_s, 4),
        "launcher": emulator.launcher,
    }
    print(
        f"scanned {figures['docs']:,} heartbeat documents in {scan.elapsed_s:.2f}s with {scan.requests} "
        f"streamed query ({scan.response_bytes:,} bytes received); seeding took {seed_s:.2f}s, "
        f"the emulator ({emulator.launcher}) started in {start_s:.2f}s"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

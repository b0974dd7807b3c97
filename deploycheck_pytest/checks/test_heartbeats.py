"""Firestore heartbeats: one fresh, well-named document per declared processor (seeds 000-002)."""

from datetime import datetime, timezone

import pytest

from deploycheck.rules.heartbeat_docs import evaluate_heartbeat_docs


@pytest.mark.nightly
def test_heartbeat_docs(heartbeat_collection, heartbeat_scan, inventory, verdict):
    expected = {processor: service.name for service in inventory.services for processor in service.processors}
    verdict(
        evaluate_heartbeat_docs(
            heartbeat_collection,
            heartbeat_scan.documents,
            inventory.heartbeats,
            expected=expected,
            now=datetime.now(timezone.utc),
        )
    )

"""Processor heartbeats in Firestore (shared/monitoring/processor_heartbeat.py, after commit e1c10e88)."""

import logging
from datetime import datetime, timezone

logger = logging.getLogger(__name__)

HEARTBEAT_COLLECTION = "processor_heartbeats"


class ProcessorHeartbeat:
    def __init__(self, processor_name, run_id, data_date=None, firestore=None):
        self.processor_name = processor_name
        self.run_id = run_id
        self.data_date = data_date
        self.firestore = firestore

    @property
    def doc_id(self):
        # One document per processor, updated on every run: the collection stays ~30 documents.
        return self.processor_name

    def start(self):
        logger.info("Started heartbeat for %s", self.processor_name)
        self._emit_heartbeat("running")

    def stop(self, final_status="completed"):
        self._emit_heartbeat(final_status)
        logger.info("Stopped heartbeat for %s", self.processor_name)

    def _emit_heartbeat(self, final_status=None):
        doc_data = {
            "processor_name": self.processor_name,
            "last_heartbeat": datetime.now(timezone.utc),
            "status": final_status,
            "run_id": self.run_id,
        }
        self.firestore.collection(HEARTBEAT_COLLECTION).document(self.doc_id).set(doc_data, merge=True)

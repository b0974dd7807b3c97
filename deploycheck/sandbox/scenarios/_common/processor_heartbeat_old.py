"""Processor heartbeats in Firestore (shared/monitoring/processor_heartbeat.py, before commit e1c10e88)."""

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
        return f"{self.processor_name}_{self.data_date}_{self.run_id}"

    def start(self):
        logger.info("Started heartbeat for %s", self.doc_id)
        self._emit_heartbeat("running")

    def stop(self, final_status="completed"):
        self._emit_heartbeat(final_status)
        logger.info("Stopped heartbeat for %s", self.doc_id)

    def _emit_heartbeat(self, final_status=None):
        doc_data = {
            "processor_name": self.processor_name,
            "last_heartbeat": datetime.now(timezone.utc),
            "status": final_status,
        }
        self.firestore.collection(HEARTBEAT_COLLECTION).document(self.doc_id).set(doc_data, merge=True)

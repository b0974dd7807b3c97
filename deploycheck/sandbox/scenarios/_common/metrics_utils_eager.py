"""Cloud Monitoring metrics (shared/utils/metrics_utils.py, before commit 388a300)."""

import logging

from google.cloud import monitoring_v3

logger = logging.getLogger(__name__)

_client = monitoring_v3.MetricServiceClient()


def record_duration(name, seconds):
    logger.info("metric %s=%.1fs", name, seconds)

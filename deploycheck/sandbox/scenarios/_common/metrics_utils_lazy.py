"""Cloud Monitoring metrics (shared/utils/metrics_utils.py, after commit 388a300)."""

import logging

logger = logging.getLogger(__name__)


def _monitoring_client():
    # Imported here, not at module level: a missing or broken monitoring_v3 must not stop the
    # worker from booting (seed 004); metrics are skipped instead.
    try:
        from google.cloud import monitoring_v3
    except ImportError as exc:
        logger.warning("metrics disabled: %s", exc)
        return None
    return monitoring_v3.MetricServiceClient()


def record_duration(name, seconds):
    client = _monitoring_client()
    if client is None:
        return
    logger.info("metric %s=%.1fs", name, seconds)

"""Prometheus metrics of the delivery engine (in the default registry, like the hub's own).

* ``webhook_deliveries_total{outcome}``: recorded attempts by what became of the delivery:
  ``delivered``; ``retry`` (scheduled again); dead-lettered as ``exhausted`` (the schedule ran
  out), ``rejected`` (4xx or unsafe address), ``gone`` (410, the endpoint is disabled) or
  ``unavailable`` (the message could no longer be rendered; no request was made).
* ``webhook_attempt_seconds``: how long receivers take to answer (timeouts included).
* ``webhook_queue_pending`` and ``webhook_queue_oldest_pending_seconds``: the backlog and the lag,
  from ``queue_stats``; gauges are per process, so the process that serves ``/metrics`` calls
  ``refresh_queue_gauges`` (at scrape time or periodically).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.orm import Session

from webhooks.queue import QueueStats, queue_stats

__all__ = [
    "ATTEMPT_SECONDS",
    "DELIVERIES",
    "QUEUE_OLDEST_PENDING_SECONDS",
    "QUEUE_PENDING",
    "refresh_queue_gauges",
]

DELIVERIES = Counter(
    "webhook_deliveries", "Recorded webhook delivery attempts, by outcome", ["outcome"]
)
ATTEMPT_SECONDS = Histogram(
    "webhook_attempt_seconds",
    "Duration of webhook delivery attempts",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
QUEUE_PENDING = Gauge("webhook_queue_pending", "Pending webhook deliveries")
QUEUE_OLDEST_PENDING_SECONDS = Gauge(
    "webhook_queue_oldest_pending_seconds",
    "How long the most overdue sendable webhook delivery has waited (0 when none)",
)


def refresh_queue_gauges(session: Session, now: datetime) -> QueueStats:
    """Update the queue gauges from the database (two indexed queries); returns the stats."""
    stats = queue_stats(session, now)
    QUEUE_PENDING.set(stats.pending)
    QUEUE_OLDEST_PENDING_SECONDS.set(stats.oldest_pending_age_seconds or 0.0)
    return stats

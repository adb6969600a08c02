"""A generic Standard Webhooks outbound delivery engine.

At-least-once delivery from a transactional outbox: the application calls ``enqueue`` in the
transaction that made a message; the engine keeps one delivery per (message, endpoint), sends
it signed, retries it for about three days, then dead-letters it for redelivery by hand or in
bulk. Order is kept per ordering key per endpoint, and a slow or dead endpoint holds up no one
else. The modules, one job each:

* ``signing``: secrets (``whsec_...``), the ``webhook-id`` / ``webhook-timestamp`` /
  ``webhook-signature`` headers, and verification of signed inbound requests;
* ``schedule``: the retry schedule (about three days, jittered, ``Retry-After`` honoured);
* ``ssrf``: refusing endpoint URLs and connections that point into private networks;
* ``sender``: delivery attempts on one asyncio loop (aiohttp), each classified as delivered /
  retry / gone / rejected;
* ``models``: the tables (endpoints, deliveries, attempts), with their own ``metadata``;
* ``endpoints``: registering and changing endpoints, secret rotation, redelivery;
* ``queue``: the outbox side: ``enqueue`` / ``enqueue_many``, and queue statistics;
* ``claiming``: which deliveries may be sent now, and leasing them (``SKIP LOCKED``);
* ``recording``: what an attempt's result does to the delivery and to the endpoint's health;
* ``dispatcher``: the worker loop (record and claim, render, hand to the sender);
* ``metrics``: Prometheus metrics.

It knows nothing of Flask or of what the messages are about: the application supplies owners,
message ids, ordering keys and a ``render`` function that turns deliveries into bodies.
"""

from __future__ import annotations

from webhooks.dispatcher import Dispatcher, Render
from webhooks.endpoints import (
    PARKED_UNTIL,
    active_secrets,
    create_endpoint,
    delete_endpoint,
    matches,
    recover_failed,
    redeliver,
    rotate_secret,
    update_endpoint,
    validate_event_types,
)
from webhooks.metrics import refresh_queue_gauges
from webhooks.models import (
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointStatus,
    metadata,
)
from webhooks.queue import Message, QueueStats, enqueue, enqueue_many, queue_stats
from webhooks.schedule import RETRY_DELAYS, next_attempt_at, parse_retry_after
from webhooks.sender import AttemptResult, Outcome, attempt, classify_status, guarded_client
from webhooks.signing import SignatureRejected, new_secret, signature_headers, verify
from webhooks.ssrf import UnsafeURL, check_url, is_safe_address

__all__ = [
    "PARKED_UNTIL",
    "RETRY_DELAYS",
    "Attempt",
    "AttemptResult",
    "Delivery",
    "DeliveryState",
    "Dispatcher",
    "Endpoint",
    "EndpointStatus",
    "Message",
    "Outcome",
    "QueueStats",
    "Render",
    "SignatureRejected",
    "UnsafeURL",
    "active_secrets",
    "attempt",
    "check_url",
    "classify_status",
    "create_endpoint",
    "delete_endpoint",
    "enqueue",
    "enqueue_many",
    "guarded_client",
    "is_safe_address",
    "matches",
    "metadata",
    "new_secret",
    "next_attempt_at",
    "parse_retry_after",
    "queue_stats",
    "recover_failed",
    "redeliver",
    "refresh_queue_gauges",
    "rotate_secret",
    "signature_headers",
    "update_endpoint",
    "validate_event_types",
    "verify",
]

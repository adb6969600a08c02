"""A generic Standard Webhooks delivery engine: the parts that need no database.

The hub stores endpoints and deliveries and decides what to send; this package knows how:

* ``signing``: secrets (``whsec_...``), the ``webhook-id`` / ``webhook-timestamp`` /
  ``webhook-signature`` headers, and verification of signed inbound requests;
* ``schedule``: the retry schedule (about three days, jittered, ``Retry-After`` honoured);
* ``ssrf``: refusing endpoint URLs and connections that point into private networks;
* ``sender``: one delivery attempt, classified as delivered / retry / gone / rejected.

It knows nothing of Flask, of the database or of what the events are about.
"""

from __future__ import annotations

from webhooks.schedule import RETRY_DELAYS, next_attempt_at, parse_retry_after
from webhooks.sender import AttemptResult, Outcome, attempt, classify_status
from webhooks.signing import SignatureRejected, new_secret, signature_headers, verify
from webhooks.ssrf import UnsafeURL, check_url, guarded_client, is_safe_address

__all__ = [
    "RETRY_DELAYS",
    "AttemptResult",
    "Outcome",
    "SignatureRejected",
    "UnsafeURL",
    "attempt",
    "check_url",
    "classify_status",
    "guarded_client",
    "is_safe_address",
    "new_secret",
    "next_attempt_at",
    "parse_retry_after",
    "signature_headers",
    "verify",
]

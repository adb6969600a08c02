"""Standard Webhooks signatures: minting secrets, signing outbound requests, verifying inbound ones.

Signing goes through the reference library (``standardwebhooks``) so that what we send is, by
construction, what every Standard Webhooks receiver checks. Verification re-implements the
reference ``Webhook.verify`` around the reference ``Webhook.sign`` because the reference verify
reads the real clock (no injectable ``now``, fixed 5 min tolerance), knows only one secret, answers
every failure with the same vague message, and lets malformed signature headers escape as
``ValueError``/``binascii.Error`` instead of a verification error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets as _random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks.webhooks import Webhook

__all__ = [
    "ID_HEADER",
    "HeaderItems",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureRejected",
    "new_secret",
    "signature_headers",
    "verify",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
# Integer seconds only (the spec's format); the length bound keeps datetime conversion in range.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,11}")


class HeaderItems(Protocol):
    """What ``verify`` reads of the headers: a mapping, or a framework's multi-valued headers
    (werkzeug's ``Headers``), whose ``items()`` give (name, value) pairs."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class SignatureRejected(Exception):
    """An inbound request failed Standard Webhooks verification; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureMismatch(SignatureRejected):
    """Well-formed and on time, but signed with none of the secrets: the one refusal whose
    details (how many secrets) depend on the sender, which a receiver may keep to itself."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_SECRET_BYTES)).decode("ascii")


def _webhook(secret: str) -> Webhook:
    """The reference signer for ``secret``, after a strict format check.

    The reference constructor decodes base64 leniently (invalid characters are silently
    dropped), so a corrupted secret would sign "successfully" with the wrong key. The secret
    itself never appears in error messages.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("malformed webhook secret (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("empty webhook secret")
    return Webhook(secret)


def _as_utc(moment: datetime, name: str) -> datetime:
    # The reference ``sign`` does ``timestamp.replace(tzinfo=timezone.utc)``: it *relabels* the
    # zone instead of converting, so an aware non-UTC datetime would be signed hours off. Convert
    # here, and refuse naive datetimes rather than guess their zone.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _text(body: bytes) -> str:
    # The reference signs ``f"{id}.{ts}.{data}"`` with ``data: str``; passing bytes would sign the
    # repr ("b'...'"). Standard Webhooks payloads are JSON, hence UTF-8.
    return body.decode("utf-8")


def signature_headers(
    secrets: Sequence[str], message_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret in ``secrets``.

    Several secrets (during a rotation) give several space-separated ``v1,...`` signatures, so a
    receiver holding any one of them verifies.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    if not message_id or any(c.isspace() for c in message_id):
        raise ValueError("message_id must be non-empty and contain no whitespace")
    moment = _as_utc(timestamp, "timestamp")
    data = _text(body)
    signatures = [_webhook(secret).sign(message_id, moment, data) for secret in secrets]
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(int(moment.timestamp())),
        SIGNATURE_HEADER: " ".join(signatures),
    }


def _passed_v1_signatures(header: str) -> list[bytes]:
    found: list[bytes] = []
    for token in header.split():
        version, _, encoded = token.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secrets: Sequence[str],
    headers: HeaderItems,
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance_seconds: int = 300,
) -> str:
    """Check a signed inbound request and return its ``webhook-id``.

    Raises ``SignatureRejected`` with an actionable reason: missing headers, a malformed or
    out-of-tolerance timestamp, or no signature matching any of ``secrets``.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not lowered.get(h)]
    if missing:
        raise SignatureRejected(f"missing header(s): {', '.join(missing)}")
    message_id = lowered[ID_HEADER].strip()
    raw_timestamp = lowered[TIMESTAMP_HEADER].strip()

    if not _TIMESTAMP_RE.fullmatch(raw_timestamp):
        raise SignatureRejected(
            f"{TIMESTAMP_HEADER} {raw_timestamp[:40]!r} is not a number: "
            "expected integer seconds since the Unix epoch"
        )
    timestamp = int(raw_timestamp)
    current = _as_utc(now, "now") if now is not None else datetime.now(UTC)
    skew = timestamp - current.timestamp()
    if skew < -tolerance_seconds:
        raise SignatureRejected(
            f"{TIMESTAMP_HEADER} is too old: {-skew:.0f} s in the past "
            f"(tolerance {tolerance_seconds} s); check the sender's clock, or this is a replay"
        )
    if skew > tolerance_seconds:
        raise SignatureRejected(
            f"{TIMESTAMP_HEADER} is too new: {skew:.0f} s in the future "
            f"(tolerance {tolerance_seconds} s); check the sender's clock"
        )

    if not secrets:
        raise SignatureRejected("no active secret is configured for this sender")
    passed = _passed_v1_signatures(lowered[SIGNATURE_HEADER])
    if not passed:
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} holds no v1 signature (expected 'v1,<base64>', space-separated)"
        )
    try:
        data = _text(body)
    except UnicodeDecodeError:
        raise SignatureRejected("body is not valid UTF-8, so it cannot match a signature") from None

    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    matched = False
    for secret in secrets:
        expected = base64.b64decode(_webhook(secret).sign(message_id, moment, data).split(",")[1])
        # No early exit: the time taken does not depend on which pair matched.
        for candidate in passed:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureMismatch(
            f"no signature matches any active secret ({len(passed)} v1 signature(s) received, "
            f"{len(secrets)} secret(s) tried): check the secret, and that the body was signed "
            "byte for byte as sent"
        )
    return message_id

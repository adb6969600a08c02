"""One delivery attempt: sign, POST, and classify what happened.

The caller (the delivery worker) needs a verdict it can act on without knowing HTTP: delivered,
retry later, endpoint gone, or permanently rejected. So ``attempt`` never raises for anything
the network or the receiver does: timeouts, refused connections, TLS failures and SSRF refusals
all come back as an ``AttemptResult`` with a short, human-readable ``error`` for the delivery log.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import httpx

from webhooks.schedule import parse_retry_after
from webhooks.signing import signature_headers
from webhooks.ssrf import UnsafeURL

__all__ = [
    "RESPONSE_EXCERPT_BYTES",
    "USER_AGENT",
    "AttemptResult",
    "Outcome",
    "attempt",
    "classify_status",
]

USER_AGENT = "Maillage-Webhooks/1"
# Enough to show a receiver's error message in the delivery log; a receiver cannot make us
# download (or decompress) more than this.
RESPONSE_EXCERPT_BYTES = 1024
_MAX_ERROR_CHARS = 200


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # network trouble, timeout, 3xx, 429, 5xx: try again later
    GONE = "gone"  # 410: the receiver says the endpoint no longer exists; disable it
    REJECTED = "rejected"  # other 4xx, unsafe address: dead-letter now, no automatic retry


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    status_code: int | None
    duration_ms: float
    retry_after: timedelta | None
    error: str | None
    # The start of the response body (at most RESPONSE_EXCERPT_BYTES, decoded leniently).
    response_excerpt: str | None = None


def classify_status(status_code: int) -> Outcome:
    """The outcome an HTTP status means under the delivery contract."""
    if 200 <= status_code <= 299:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    if 400 <= status_code <= 499 and status_code != 429:
        return Outcome.REJECTED
    return Outcome.RETRY  # 3xx (never followed), 429, 5xx, and anything unexpected


def _status_error(status_code: int, outcome: Outcome) -> str | None:
    if outcome is Outcome.DELIVERED:
        return None
    if outcome is Outcome.GONE:
        return "HTTP 410 (gone)"
    if 300 <= status_code <= 399:
        return f"HTTP {status_code} (redirects are not followed)"
    return f"HTTP {status_code}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _network_error(exc: httpx.HTTPError) -> str:
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return "could not resolve host"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _shorten(f"TLS certificate rejected: {cause.verify_message}")
        if isinstance(cause, ssl.SSLError):
            return _shorten(f"TLS error: {cause.reason or cause}")
    return _shorten(str(exc) or type(exc).__name__)


def _timeout_seconds(client: httpx.Client, exc: httpx.TimeoutException) -> float | None:
    timeout = client.timeout
    if isinstance(exc, httpx.ConnectTimeout):
        return timeout.connect
    if isinstance(exc, httpx.WriteTimeout):
        return timeout.write
    if isinstance(exc, httpx.PoolTimeout):
        return timeout.pool
    return timeout.read


def _excerpt(response: httpx.Response) -> str | None:
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None  # compressed: raw bytes would be noise, and we will not inflate them
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT_BYTES:
            break
    return bytes(data[:RESPONSE_EXCERPT_BYTES]).decode("utf-8", "replace") or None


def attempt(
    client: httpx.Client,
    url: str,
    *,
    secrets: Sequence[str],
    message_id: str,
    body: bytes,
    now: datetime,
) -> AttemptResult:
    """POST ``body`` to ``url``, signed with ``secrets`` at ``now``, and classify the result.

    Use a ``guarded_client`` so that the connection itself is SSRF-checked. Raises only for
    programming errors (e.g. a malformed secret or a naive ``now``), never for network problems.
    """
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "accept-encoding": "identity",
        **signature_headers(secrets, message_id, now, body),
    }
    started = time.perf_counter()

    def result(
        outcome: Outcome,
        error: str | None,
        *,
        status_code: int | None = None,
        retry_after: timedelta | None = None,
        excerpt: str | None = None,
    ) -> AttemptResult:
        duration_ms = (time.perf_counter() - started) * 1000
        return AttemptResult(outcome, status_code, duration_ms, retry_after, error, excerpt)

    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            try:
                excerpt = _excerpt(response)
            except httpx.HTTPError:
                excerpt = None  # the status line already gave the verdict
    except UnsafeURL as exc:
        return result(Outcome.REJECTED, _shorten(f"unsafe address: {exc}"))
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return result(Outcome.REJECTED, _shorten(f"invalid URL: {exc}"))
    except httpx.TimeoutException as exc:
        seconds = _timeout_seconds(client, exc)
        error = "timeout" if seconds is None else f"timeout after {seconds:g} s"
        return result(Outcome.RETRY, error)
    except httpx.HTTPError as exc:
        return result(Outcome.RETRY, _network_error(exc))

    outcome = classify_status(response.status_code)
    retry_after = (
        parse_retry_after(response.headers.get("retry-after"), now)
        if outcome is Outcome.RETRY
        else None
    )
    return result(
        outcome,
        _status_error(response.status_code, outcome),
        status_code=response.status_code,
        retry_after=retry_after,
        excerpt=excerpt,
    )

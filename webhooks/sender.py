"""Delivery attempts: sign, POST, and classify what happened; on one asyncio event loop.

The caller (the delivery worker) needs a verdict it can act on without knowing HTTP: delivered,
retry later, endpoint gone, or permanently rejected. So an attempt never raises for anything
the network or the receiver does: timeouts, refused connections, TLS failures and SSRF refusals
all come back as an ``AttemptResult`` with a short, human-readable ``error`` for the delivery log.

Why asyncio (aiohttp): a dispatcher keeps a hundred or more requests in flight, most of them
waiting on a socket. Threads cost a GIL hand-over per request event and fought the dispatcher's
own thread for the CPU; one event loop in one thread (``GuardedClient``) costs about a quarter
of a millisecond of CPU per request here, against more than a millisecond with threads and a
synchronous client (``bench/webhooks.md``). The SSRF guard is the connector's resolver
(``ssrf.GuardedResolver``): the connector only ever connects to addresses it checked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import aiohttp
import httpx
from yarl import URL

from webhooks.schedule import parse_retry_after
from webhooks.signing import signature_headers
from webhooks.ssrf import GuardedResolver, UnsafeURL, check_target

__all__ = [
    "RESPONSE_EXCERPT_BYTES",
    "USER_AGENT",
    "AttemptResult",
    "GuardedClient",
    "Outcome",
    "Request",
    "attempt",
    "classify_status",
    "guarded_client",
]

USER_AGENT = "Maillage-Webhooks/1"
# Enough to show a receiver's error message in the delivery log; a receiver cannot make us
# download (or decompress) more than this.
RESPONSE_EXCERPT_BYTES = 1024
_MAX_ERROR_CHARS = 200

T = TypeVar("T")


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


def _network_error(exc: BaseException) -> str:
    for cause in _chain(exc):
        if isinstance(cause, aiohttp.ClientConnectorDNSError):
            return "could not resolve host"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _shorten(f"TLS certificate rejected: {cause.verify_message}")
        if isinstance(cause, ssl.SSLError):
            return _shorten(f"TLS error: {cause.reason or cause}")
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return "server disconnected without answering"
    return _shorten(str(exc) or type(exc).__name__)


async def _excerpt(response: aiohttp.ClientResponse) -> str | None:
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None  # compressed: raw bytes would be noise, and we will not inflate them
    data = bytearray()
    while len(data) < RESPONSE_EXCERPT_BYTES:
        chunk = await response.content.read(RESPONSE_EXCERPT_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data).decode("utf-8", "replace") or None


@dataclass(frozen=True)
class Request:
    """One attempt to make: POST ``body`` to ``url``, signed with ``secrets`` at ``now``."""

    url: str
    secrets: Sequence[str]
    message_id: str
    body: bytes
    now: datetime


def _headers(request: Request) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "accept-encoding": "identity",
        **signature_headers(request.secrets, request.message_id, request.now, request.body),
    }


_Started = tuple[
    "concurrent.futures.Future[AttemptResult]", str, dict[str, str], bytes, datetime
]


class GuardedClient:
    """Sends attempts on its own asyncio event loop, in its own thread, through aiohttp
    sessions whose every connection passes the SSRF test at connect time.

    ``submit`` may be called from any thread; it returns a ``concurrent.futures.Future``.
    Connections are kept alive per host (HTTP/1.1). Redirects are never followed (a 3xx is a
    failed attempt, retried later); proxies, environment settings and cookies are ignored (a
    proxy would connect on our behalf, unchecked). ``timeout`` bounds the connect and each read
    (like the contract's 15 s); a whole attempt is cut at three times that, so a receiver that
    trickles bytes cannot hold a request (and its lease) for ever.
    """

    def __init__(
        self, *, allow_loopback: bool, timeout: float = 15.0, max_connections: int = 1000
    ) -> None:
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self._limits = aiohttp.ClientTimeout(
            total=3 * timeout, sock_connect=timeout, sock_read=timeout
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhooks-sender", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._tasks: set[asyncio.Task[AttemptResult]] = set()  # referenced while running
        self._sessions: dict[str, aiohttp.ClientSession] = self._call(self._open(max_connections))

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (setting up, closing)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _open(self, max_connections: int) -> dict[str, aiohttp.ClientSession]:
        ssl_context = httpx.create_ssl_context(trust_env=False)  # certifi's CAs, like httpx

        def session(resolver: GuardedResolver) -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                resolver=resolver, use_dns_cache=False, ssl=ssl_context,
                limit=max_connections, limit_per_host=0,
            )
            return aiohttp.ClientSession(
                connector=connector, timeout=self._limits, auto_decompress=False,
                trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            )

        sessions = {"https": session(GuardedResolver(allow_loopback=self.allow_loopback))}
        if self.allow_loopback:
            sessions["http"] = session(GuardedResolver(allow_loopback=True, loopback_only=True))
        return sessions

    def close(self) -> None:
        """Cancel the requests still in flight, close the connections and stop the loop."""
        if self._closed:
            return
        self._closed = True
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for session in self._sessions.values():
            await session.close()
        await self._loop.shutdown_default_executor()

    def submit(
        self, url: str, *, secrets: Sequence[str], message_id: str, body: bytes, now: datetime
    ) -> concurrent.futures.Future[AttemptResult]:
        """Start an attempt on the loop; its future never fails for network problems."""
        [future] = self.submit_many([Request(url, tuple(secrets), message_id, body, now)])
        return future

    def submit_many(
        self, requests: Sequence[Request]
    ) -> list[concurrent.futures.Future[AttemptResult]]:
        """Start attempts on the loop, one future each (in order): one wake-up of the loop's
        thread for all of them (each wake-up is a system call and a hand-over of the GIL,
        which cost more than the request itself when done once per request)."""
        if self._closed:
            raise RuntimeError("the client is closed")
        # Signed here, on the caller's thread: a malformed secret or a naive ``now`` is a
        # programming error that the caller sees at once.
        started = [
            (concurrent.futures.Future[AttemptResult](), request.url, _headers(request),
             request.body, request.now)
            for request in requests
        ]
        if started:
            self._loop.call_soon_threadsafe(self._start_all, started)
        return [future for future, *_ in started]

    def _start_all(self, started: list[_Started]) -> None:
        for future, url, headers, body, now in started:
            if not future.set_running_or_notify_cancel():
                continue
            task = self._loop.create_task(self._attempt(url, headers, body, now))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._settle, future))

    def _settle(
        self, future: concurrent.futures.Future[AttemptResult], task: asyncio.Task[AttemptResult]
    ) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            future.set_exception(concurrent.futures.CancelledError("the client was closed"))
        elif task.exception() is not None:
            future.set_exception(task.exception())
        else:
            future.set_result(task.result())

    async def _attempt(
        self, url: str, headers: dict[str, str], body: bytes, now: datetime
    ) -> AttemptResult:
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
            target = URL(url)
            check_target(target, allow_loopback=self.allow_loopback)
            session = self._sessions[target.scheme]
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                try:
                    excerpt = await _excerpt(response)
                except (aiohttp.ClientError, TimeoutError):
                    excerpt = None  # the status line already gave the verdict
        except UnsafeURL as exc:
            return result(Outcome.REJECTED, _shorten(f"unsafe address: {exc}"))
        except (aiohttp.InvalidURL, ValueError) as exc:
            return result(Outcome.REJECTED, _shorten(f"invalid URL: {exc}"))
        except aiohttp.ConnectionTimeoutError:
            return result(Outcome.RETRY, f"timeout after {self.timeout:g} s")
        except aiohttp.SocketTimeoutError:
            return result(Outcome.RETRY, f"timeout after {self.timeout:g} s")
        except TimeoutError:
            return result(Outcome.RETRY, f"timeout after {3 * self.timeout:g} s (whole attempt)")
        except aiohttp.ClientError as exc:
            return result(Outcome.RETRY, _network_error(exc))

        outcome = classify_status(response.status)
        retry_after = (
            parse_retry_after(response.headers.get("retry-after"), now)
            if outcome is Outcome.RETRY
            else None
        )
        return result(
            outcome,
            _status_error(response.status, outcome),
            status_code=response.status,
            retry_after=retry_after,
            excerpt=excerpt,
        )


def guarded_client(
    *, allow_loopback: bool, timeout: float = 15.0, max_connections: int = 1000
) -> GuardedClient:
    """A ``GuardedClient``: https to public addresses only; with ``allow_loopback`` (the
    development mode) loopback too, and http to loopback only."""
    return GuardedClient(
        allow_loopback=allow_loopback, timeout=timeout, max_connections=max_connections
    )


def attempt(
    client: GuardedClient,
    url: str,
    *,
    secrets: Sequence[str],
    message_id: str,
    body: bytes,
    now: datetime,
) -> AttemptResult:
    """POST ``body`` to ``url``, signed with ``secrets`` at ``now``, and classify the result;
    waits for it (the dispatcher uses ``client.submit`` to keep many in flight).

    Raises only for programming errors (e.g. a malformed secret or a naive ``now``), never for
    network problems.
    """
    return client.submit(url, secrets=secrets, message_id=message_id, body=body, now=now).result()

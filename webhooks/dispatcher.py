"""The dispatcher: claims due deliveries, has them sent on an event loop, records the results.

How one hung receiver is kept from holding up everyone else (a request can take up to the
client's timeout, 15 s, in each of connect/write/read):

* Results are recorded as they complete, never "when the whole batch is done": each turn of
  ``run_forever`` is one transaction that records the results completed since the last turn,
  then claims (and loads) as many deliveries as that freed request slots for. A healthy endpoint's
  delivery is marked delivered one turn after its 2xx, and the next message of its ordering
  key is claimable in that same transaction. (A turn costs a fixed number of round trips to
  the database whatever its number of rows, which is why they are not split further.)
* ``run_forever`` is a pipeline, not a sequence of batches: whenever a request slot is free it
  claims more work, so a hung request occupies one slot, not the whole dispatcher. (Batches
  drained one at a time would make every batch that contains one message for a hung endpoint
  last the full timeout: healthy endpoints would get ``batch_size`` messages per 15 s.)
* A dispatcher claims only as many deliveries as it has free request slots (``concurrency``),
  so every leased delivery is being sent right away and no lease runs out while waiting in a
  local queue; and at most ``per_endpoint`` of its slots serve one endpoint, so a dead endpoint
  with a thousand due messages cannot take every slot either.

Thread model: only the sending (pure HTTP) happens on the client's event loop, in the client's
own thread (``sender.GuardedClient``: requests in flight cost a coroutine each, not a thread);
claiming, rendering, recording and the callbacks run on the thread calling
``run_once``/``run_forever``, one session at a time (SQLite's single writer, and the hub's
writer lock, are never waited for by a thread that holds them).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webhooks import claiming, metrics, recording
from webhooks.endpoints import active_secrets
from webhooks.models import Delivery, Endpoint
from webhooks.sender import AttemptResult, GuardedClient, Outcome, Request

__all__ = ["Dispatcher", "Render"]

log = logging.getLogger(__name__)

# Given the claimed deliveries (loaded, detached: the session is for what rendering reads and
# writes, in its own transaction), their bodies by delivery id: the JSON
# payload to send, or None (or no entry) when the message can no longer be rendered: the
# delivery is dead-lettered. An exception leaves the deliveries leased: retried after the lease.
Render = Callable[[Session, list[Delivery]], dict[int, bytes | None]]


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    endpoint_id: uuid.UUID
    url: str
    secrets: list[str]
    message_id: str
    body: bytes


class Dispatcher:
    """Delivers pending webhook deliveries; several may run at once on PostgreSQL.

    ``worker_id`` must be unique among running dispatchers (e.g. host, pid and a random part):
    it is whom a lease belongs to. ``client`` should be a ``sender.guarded_client`` with the
    contract's 15 s timeout (the caller closes it, after the dispatcher); ``lease`` must outlast
    a whole attempt (three times the timeout) plus its recording. ``sessions`` makes a new
    session on each call (a ``sessionmaker``). ``render``, ``on_disabled`` and ``on_attempt``
    are called on the thread running ``run_once``/``run_forever``; ``on_disabled`` inside the
    recording transaction, so what it writes (e.g. a notification in the application's outbox)
    commits with the disabling.
    Call ``close`` (or use ``with``) to wait for the requests in flight.

    ``concurrency`` is the number of requests in flight. A turn costs the same round trips
    whatever its number of rows, so more requests in flight make larger turns and fewer turns
    per delivery; on the event loop they cost no thread each (``bench/webhooks.md``).
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        render: Render,
        client: GuardedClient,
        clock: Callable[[], datetime],
        worker_id: str,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 100,
        concurrency: int = 256,
        per_endpoint: int | None = None,
        rng: random.Random | None = None,
        on_disabled: recording.OnDisabled | None = None,
        on_attempt: Callable[[AttemptResult], None] | None = None,
    ) -> None:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        self._sessions = sessions
        self._render = render
        self._client = client
        self._clock = clock
        self.worker_id = worker_id
        self._lease = lease
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint or max(1, concurrency // 4)
        self._rng = rng
        self._on_disabled = on_disabled
        self._on_attempt = on_attempt
        # Each request in flight: its job and when it started (the attempt's time).
        self._in_flight: dict[Future[AttemptResult], tuple[_Job, datetime]] = {}

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the requests in flight (their results are not recorded)."""
        if self._in_flight:
            wait(self._in_flight)
        self._in_flight.clear()

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[int]:
        """Lease up to ``limit`` (default and at most ``batch_size``) claimable deliveries, at
        most ``per_endpoint`` per endpoint counting those in flight; their ids.

        ``run_once``/``run_forever`` ask for no more than there are free request slots."""
        with self._sessions() as session, session.begin():
            return self._claim(session, limit)

    def _claim_terms(self, limit: int) -> dict[str, Any]:
        """What this dispatcher asks of a claim: at most ``batch_size``, its lease, and the
        per-endpoint cap counting the requests it has in flight."""
        now = self._clock()
        limit = min(limit, self._batch_size)
        return {
            "worker_id": self.worker_id,
            "now": now,
            "lease_until": now + self._lease,
            "limit": limit,
            "per_endpoint": self._per_endpoint,
            "busy": Counter(job.endpoint_id for job, _ in self._in_flight.values()),
            # A few spare rows, for those the per-endpoint cap leaves out.
            "candidates_limit": min(self._batch_size, 4 * limit),
        }

    def _claim(self, session: Session, limit: int | None) -> list[int]:
        limit = self._batch_size if limit is None else limit
        return claiming.claim(session, **self._claim_terms(limit))

    def _claim_loaded(self, session: Session, limit: int) -> list[tuple[Delivery, Endpoint]]:
        """``_claim``, the rows themselves (with their endpoints), detached from ``session``."""
        rows = claiming.claim_loaded(session, **self._claim_terms(limit))
        session.expunge_all()
        return rows

    def _free_slots(self) -> int:
        return self._concurrency - len(self._in_flight)

    # -- sending --------------------------------------------------------------------------------

    def _load(self, session: Session, ids: list[int]) -> list[tuple[Delivery, Endpoint]]:
        """The deliveries still leased to us, with their endpoints, detached from ``session``
        (they outlive its transaction, loaded)."""
        if not ids:
            return []
        rows = session.execute(
            select(Delivery, Endpoint)
            .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
            .where(Delivery.id.in_(ids), Delivery.lease_owner == self.worker_id)
            .order_by(Delivery.id)
        ).all()
        session.expunge_all()
        return [(delivery, endpoint) for delivery, endpoint in rows]

    def _claim_and_start(self, limit: int) -> int:
        """Claim and load in one transaction, then render and hand over; how many claimed.

        A dispatcher's turn is mostly round trips to the database, each paid in full whatever
        the number of rows: fewer of them is more deliveries per second."""
        with self._sessions() as session, session.begin():
            rows = self._claim_loaded(session, limit)
        self._start(rows)
        return len(rows)

    def _start(self, rows: list[tuple[Delivery, Endpoint]]) -> None:
        """Render the claimed deliveries and start sending them.

        Rendering has a transaction of its own, after the claim committed: if it fails, the
        deliveries stay leased and are tried again once the lease ran out (rather than being
        claimed again at once, and failing again, ahead of everything else)."""
        if not rows:
            return
        now = self._clock()
        jobs: list[_Job] = []
        deliveries = [delivery for delivery, _ in rows]
        endpoints = {endpoint.id: endpoint for _, endpoint in rows}
        with self._sessions() as session, session.begin():
            bodies = self._render(session, deliveries)
            unavailable = []
            for delivery in deliveries:
                body = bodies.get(delivery.id)
                if body is None:
                    unavailable.append(delivery.id)
                    continue
                endpoint = endpoints[delivery.endpoint_id]
                jobs.append(
                    _Job(
                        delivery.id,
                        endpoint.id,
                        endpoint.url,
                        active_secrets(endpoint, now),
                        delivery.message_id,
                        body,
                    )
                )
            recording.dead_letter_unavailable(
                session, unavailable, worker_id=self.worker_id, now=now)
        if unavailable:
            metrics.DELIVERIES.labels("unavailable").inc(len(unavailable))
        started = self._clock()
        futures = self._client.submit_many(
            [Request(job.url, job.secrets, job.message_id, job.body, started) for job in jobs]
        )
        for future, job in zip(futures, jobs, strict=True):
            self._in_flight[future] = (job, started)

    @staticmethod
    def _sent(future: Future[AttemptResult], job: _Job, started: datetime) -> recording.Sent:
        """A finished attempt (an attempt reports network trouble, never raises for it;
        anything else is a bug, logged and retried on the schedule)."""
        try:
            result = future.result()
        except Exception as exc:  # a bug, or the client closed under us (cancelled)
            log.error("webhook delivery %s: attempt failed: %r", job.delivery_id, exc)
            result = AttemptResult(Outcome.RETRY, None, 0.0, None, f"internal error: {exc!r}"[:200])
        return recording.Sent(job.delivery_id, job.endpoint_id, started, result)

    # -- recording ------------------------------------------------------------------------------

    def _completed(self, timeout: float | None) -> list[recording.Sent]:
        """The results completed within ``timeout`` (None: wait for the first one), no longer
        in flight, in the order they completed."""
        if not self._in_flight:
            return []
        done, _ = wait(self._in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        sent = []
        for future in done:
            job, started = self._in_flight.pop(future)
            sent.append(self._sent(future, job, started))
        # In the order they completed, so that the endpoint's health ends as its last answer.
        sent.sort(key=lambda s: s.attempted_at + timedelta(milliseconds=s.result.duration_ms))
        for item in sent:
            metrics.ATTEMPT_SECONDS.observe(item.result.duration_ms / 1000)
            if self._on_attempt is not None:
                try:
                    self._on_attempt(item.result)
                except Exception:
                    log.exception("on_attempt failed")
        return sent

    def _collect(self, timeout: float | None) -> int:
        """Record the results completed within ``timeout`` (None: wait for the first one)."""
        sent = self._completed(timeout)
        if sent:
            with self._sessions() as session, session.begin():
                outcomes = self._record(session, sent)
            self._count(outcomes)
        return len(sent)

    def _record(self, session: Session, sent: list[recording.Sent]) -> list[str | None]:
        return recording.record(
            session,
            sent,
            worker_id=self.worker_id,
            now=self._clock(),
            rng=self._rng,
            on_disabled=self._on_disabled,
        )

    @staticmethod
    def _count(outcomes: Iterable[str | None]) -> None:
        for outcome in outcomes:
            if outcome is not None:
                metrics.DELIVERIES.labels(outcome).inc()

    def _turn(self) -> int:
        """One turn of ``run_forever``: record the results completed so far, claim as many
        deliveries as that leaves free request slots and load them, all in one transaction (its
        round trips are most of a turn); then render and hand over. How many were claimed.

        Should the claim fail, the results recorded with it are lost too: their deliveries
        stay leased and are sent again once the lease ran out (at-least-once)."""
        sent = self._completed(timeout=0)
        free = self._free_slots()
        if not sent and free == 0:
            return 0
        with self._sessions() as session, session.begin():
            outcomes = self._record(session, sent) if sent else []
            rows = self._claim_loaded(session, free) if free > 0 else []
        self._count(outcomes)
        self._start(rows)
        return len(rows)

    def _drain(self) -> None:
        while self._in_flight:
            self._collect(timeout=None)

    # -- loops ----------------------------------------------------------------------------------

    def deliver(self, ids: list[int]) -> int:
        """Send deliveries this dispatcher has claimed and record every result; how many were
        still leased to it (a lease taken over by another dispatcher is left alone)."""
        before = len(self._in_flight)
        with self._sessions() as session, session.begin():
            rows = self._load(session, ids)
        self._start(rows)
        started = len(self._in_flight) - before
        self._drain()
        return started

    def run_once(self) -> int:
        """Claim what there are free request slots for, send it, record every result as it comes;
        returns the number of deliveries claimed (sent, or dead-lettered as unavailable).

        It returns when its slowest request is done: a loop of ``run_once`` calls delivers
        nothing new while one request hangs. Long-running workers use ``run_forever``."""
        claimed = self._claim_and_start(self._free_slots())
        self._drain()
        return claimed

    def run_forever(
        self, stop: threading.Event, idle_sleep: float = 0.5, error_sleep: float = 5.0
    ) -> None:
        """Deliver until ``stop`` is set, then finish (and record) the requests in flight.

        Never dies of an exception: it is logged and the loop goes on after ``error_sleep``.
        Deliveries caught by an error stay leased and are claimed again when the lease expires.
        """
        while not stop.is_set():
            try:
                claimed = self._turn()
                if claimed == 0:
                    if self._in_flight:
                        self._collect(timeout=idle_sleep)
                    else:
                        stop.wait(idle_sleep)
            except Exception:
                log.exception("webhook dispatcher %s: error, pausing", self.worker_id)
                stop.wait(error_sleep)
        try:
            self._drain()
        except Exception:
            log.exception("webhook dispatcher %s: error while finishing", self.worker_id)

"""Recording what became of attempts: the delivery's next state and the endpoint's health.

Only the lease holder records: a dispatcher whose lease expired while its request was in
flight may find the delivery re-claimed (and perhaps delivered) by another one, and its late
verdict must not overwrite that. Its request was made all the same; receivers deduplicate on
``webhook-id``, which is what at-least-once asks of them.

Endpoint health: every failed attempt marks the endpoint failing (``failing_since``), every
success clears it; an endpoint failing for 5 days, or answering 410 once, is disabled through
``endpoints.disable_endpoint``, whose conditional update lets exactly one recorder tell the owner.

Throughput: almost every attempt is a 2xx, so the results of endpoints that answered 2xx to
every attempt in the batch are recorded in bulk, a fixed handful of statements whatever their
number (clear the endpoints' ``failing_since`` where set; then, on PostgreSQL, one statement
whose per-row values travel as arrays: an ``UPDATE ... RETURNING`` of the deliveries still
leased to us and the ``INSERT`` of their attempts; elsewhere one ``UPDATE ... RETURNING`` with
per-row values as ``CASE`` expressions and one multi-row ``INSERT``).
The rest (failures, and the successes of endpoints that also failed in the batch, whose health
must end as their last answer) go one by one through the ORM, where the retry and disabling
rules live.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, case, insert, select, text, update
from sqlalchemy.orm import Session

from webhooks.endpoints import PARKED_UNTIL, disable_endpoint
from webhooks.models import Attempt, Delivery, DeliveryState, Endpoint, EndpointStatus
from webhooks.schedule import next_attempt_at
from webhooks.sender import AttemptResult, Outcome

__all__ = [
    "FAILING_LIMIT",
    "GONE_REASON",
    "FAILING_REASON",
    "UNAVAILABLE_ERROR",
    "OnDisabled",
    "Sent",
    "dead_letter_unavailable",
    "record",
]

log = logging.getLogger(__name__)

FAILING_LIMIT = timedelta(days=5)
GONE_REASON = "the endpoint answered 410 Gone"
FAILING_REASON = "failing for 5 days"
UNAVAILABLE_ERROR = "message no longer available"

OnDisabled = Callable[[Session, Endpoint, str], None]


@dataclass(frozen=True)
class Sent:
    """One attempt made: which delivery, when it started, and how it went."""

    delivery_id: int
    endpoint_id: uuid.UUID
    attempted_at: datetime
    result: AttemptResult


def _release(delivery: Delivery) -> None:
    delivery.lease_owner = None
    delivery.lease_until = None


def _dead(delivery: Delivery, now: datetime) -> None:
    delivery.state = DeliveryState.DEAD.value
    delivery.dead_at = now


def dead_letter_unavailable(
    session: Session, delivery_ids: Collection[int], *, worker_id: str, now: datetime
) -> None:
    """Dead-letter deliveries whose message can no longer be rendered (no request is made)."""
    if not delivery_ids:
        return
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.lease_owner == worker_id,
               Delivery.state == DeliveryState.PENDING.value)
        .values(state=DeliveryState.DEAD.value, dead_at=now, last_error=UNAVAILABLE_ERROR,
                lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _disable(
    session: Session, endpoint: Endpoint, reason: str, now: datetime,
    on_disabled: OnDisabled | None,
) -> None:
    session.flush()
    disabled = disable_endpoint(session, endpoint.id, reason=reason, now=now)
    if disabled is None or on_disabled is None:
        return
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    try:
        # A savepoint: a failing callback must not undo the recording (the delivery would be
        # sent again and again while the endpoint stays enabled); it is logged instead.
        with session.begin_nested():
            on_disabled(session, disabled, reason)
    except Exception:
        log.exception("on_disabled failed for webhook endpoint %s", endpoint.id)


def record(
    session: Session,
    sent: Sequence[Sent],
    *,
    worker_id: str,
    now: datetime,
    rng: random.Random | None = None,
    on_disabled: OnDisabled | None = None,
) -> list[str | None]:
    """Apply each attempt's result, in the caller's transaction.

    Returns, per attempt, the metric outcome recorded (see ``webhooks.metrics``), or None when
    the lease was no longer ours and nothing was recorded.

    On PostgreSQL the endpoints are locked first, then the deliveries, each in id order: the
    order ``update_endpoint`` follows too (endpoint, then parking its deliveries), so neither
    recorders nor owners changing an endpoint can deadlock one another. ``FOR NO KEY UPDATE``
    does not conflict with the key-share locks that inserting deliveries (``enqueue``) takes.
    """
    failed = {s.endpoint_id for s in sent if s.result.outcome is not Outcome.DELIVERED}
    quick = [s for s in sent if s.endpoint_id not in failed]
    recorded = _record_delivered(session, quick, worker_id=worker_id, now=now)
    rest = [s for s in sent if s.endpoint_id in failed]
    by_delivery = dict(zip((s.delivery_id for s in rest), _record_each(
        session, rest, worker_id=worker_id, now=now, rng=rng, on_disabled=on_disabled),
        strict=True))
    for s in quick:
        if s.delivery_id in recorded:
            by_delivery[s.delivery_id] = "delivered"
        else:
            log.info("lease on webhook delivery %s lost: result not recorded", s.delivery_id)
    return [by_delivery.get(s.delivery_id) for s in sent]


def _record_delivered(
    session: Session, sent: Sequence[Sent], *, worker_id: str, now: datetime
) -> set[int]:
    """Record 2xx results in bulk; the ids of the deliveries recorded (those still ours).

    The endpoints are updated first, only where they were failing (and so locked only then),
    then the deliveries: the lock order of ``record`` and of ``update_endpoint``.
    """
    if not sent:
        return set()
    session.execute(
        update(Endpoint)
        .where(Endpoint.id.in_({s.endpoint_id for s in sent}),
               Endpoint.failing_since.is_not(None))
        .values(failing_since=None)
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.name == "postgresql":
        return _record_delivered_postgresql(session, sent, worker_id=worker_id, now=now)
    # Per-row values as CASE expressions keyed by id: one statement on every backend (SQLite
    # has no column list for a VALUES alias).
    ids = [s.delivery_id for s in sent]
    # A class mapped by `__tablename__` has a Table there (the base types it as a FromClause).
    table = cast(Table, Delivery.__table__)
    recorded = set(session.scalars(
        update(table)
        .where(
            table.c.id.in_(ids),
            table.c.lease_owner == worker_id,
            table.c.state == DeliveryState.PENDING.value,
        )
        .values(
            state=DeliveryState.DELIVERED.value,
            delivered_at=now,
            attempts=table.c.attempts + 1,
            last_status_code=case(
                {s.delivery_id: s.result.status_code for s in sent}, value=table.c.id),
            last_error=None,
            last_duration_ms=case(
                {s.delivery_id: s.result.duration_ms for s in sent}, value=table.c.id),
            lease_owner=None,
            lease_until=None,
        )
        .returning(table.c.id)
    ))
    if recorded:
        # One multi-row INSERT ... VALUES (an executemany would be a statement per row).
        session.execute(insert(cast(Table, Attempt.__table__)).values([
            {"delivery_id": s.delivery_id, "attempted_at": s.attempted_at,
             "outcome": s.result.outcome.value, "status_code": s.result.status_code,
             "duration_ms": s.result.duration_ms, "error": s.result.error}
            for s in sent if s.delivery_id in recorded
        ]))
    return recorded


# The deliveries and their attempts in one statement whose text does not depend on the number
# of rows: the per-row values travel as arrays. SQLAlchemy compiles it once and PostgreSQL
# prepares it once, where a statement with one placeholder per row would be compiled, parsed
# and planned again for every batch size (that was most of a dispatcher's CPU per turn).
# Only rows the UPDATE returned (still leased to us) get an attempt row.
_DELIVERED_POSTGRESQL = text(f"""
WITH sent AS (
    SELECT * FROM unnest(
        CAST(:delivery_ids AS bigint[]), CAST(:attempted_at AS timestamp[]),
        CAST(:status_codes AS integer[]), CAST(:durations AS double precision[])
    ) AS s(delivery_id, attempted_at, status_code, duration_ms)
), delivered AS (
    UPDATE webhook_deliveries AS d
    SET state = '{DeliveryState.DELIVERED.value}', delivered_at = :now,
        attempts = d.attempts + 1, last_status_code = sent.status_code, last_error = NULL,
        last_duration_ms = sent.duration_ms, lease_owner = NULL, lease_until = NULL
    FROM sent
    WHERE d.id = sent.delivery_id AND d.lease_owner = :worker_id
        AND d.state = '{DeliveryState.PENDING.value}'
    RETURNING d.id
), attempted AS (
    INSERT INTO webhook_attempts
        (delivery_id, attempted_at, outcome, status_code, duration_ms, error)
    SELECT sent.delivery_id, sent.attempted_at, '{Outcome.DELIVERED.value}', sent.status_code,
        sent.duration_ms, NULL
    FROM sent JOIN delivered ON delivered.id = sent.delivery_id
)
SELECT id FROM delivered
""")


def _naive_utc(moment: datetime) -> datetime:
    """How the models store datetimes (``UTC_DateTime``): naive UTC; naive input refused."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _record_delivered_postgresql(
    session: Session, sent: Sequence[Sent], *, worker_id: str, now: datetime
) -> set[int]:
    return set(session.scalars(_DELIVERED_POSTGRESQL, {
        "delivery_ids": [s.delivery_id for s in sent],
        "attempted_at": [_naive_utc(s.attempted_at) for s in sent],
        "status_codes": [s.result.status_code for s in sent],
        "durations": [s.result.duration_ms for s in sent],
        "now": _naive_utc(now),
        "worker_id": worker_id,
    }))


def _record_each(
    session: Session,
    sent: Sequence[Sent],
    *,
    worker_id: str,
    now: datetime,
    rng: random.Random | None,
    on_disabled: OnDisabled | None,
) -> list[str | None]:
    """Record results one by one through the ORM, in the order given."""
    if not sent:
        return []
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(Endpoint)
            .where(Endpoint.id.in_({s.endpoint_id for s in sent}))
            .order_by(Endpoint.id)
            .with_for_update(key_share=True)
        )
    }
    deliveries = {
        d.id: d
        for d in session.scalars(
            select(Delivery)
            .where(Delivery.id.in_({s.delivery_id for s in sent}))
            .order_by(Delivery.id)
            .with_for_update()
        )
    }
    outcomes: list[str | None] = []
    for attempt in sent:
        delivery = deliveries.get(attempt.delivery_id)
        if (
            delivery is None
            or delivery.lease_owner != worker_id
            or delivery.state != DeliveryState.PENDING.value
            or delivery.endpoint_id not in endpoints
        ):
            log.info("lease on webhook delivery %s lost: result not recorded", attempt.delivery_id)
            outcomes.append(None)
            continue
        outcomes.append(
            _apply(session, delivery, endpoints[delivery.endpoint_id], attempt, now, rng,
                   on_disabled)
        )
    session.flush()
    return outcomes


def _apply(
    session: Session,
    delivery: Delivery,
    endpoint: Endpoint,
    attempt: Sent,
    now: datetime,
    rng: random.Random | None,
    on_disabled: OnDisabled | None,
) -> str:
    result = attempt.result
    session.add(
        Attempt(
            delivery_id=delivery.id,
            attempted_at=attempt.attempted_at,
            outcome=result.outcome.value,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
        )
    )
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    delivery.last_duration_ms = result.duration_ms
    _release(delivery)

    if result.outcome is Outcome.DELIVERED:
        delivery.state = DeliveryState.DELIVERED.value
        delivery.delivered_at = now
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
        return "delivered"

    outcome: str = result.outcome.value  # retry, gone or rejected
    if result.outcome is Outcome.RETRY:
        when = next_attempt_at(delivery.attempts, now, retry_after=result.retry_after, rng=rng)
        if when is None:
            _dead(delivery, now)
            outcome = "exhausted"
        else:
            active = endpoint.status == EndpointStatus.ACTIVE.value
            delivery.next_attempt_at = when if active else PARKED_UNTIL
    else:
        _dead(delivery, now)

    if endpoint.failing_since is None:
        endpoint.failing_since = attempt.attempted_at
    if result.outcome is Outcome.GONE:
        _disable(session, endpoint, GONE_REASON, now, on_disabled)
    elif (
        endpoint.status != EndpointStatus.DISABLED.value
        and now - endpoint.failing_since >= FAILING_LIMIT
    ):
        _disable(session, endpoint, FAILING_REASON, now, on_disabled)
    return outcome

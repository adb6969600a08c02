"""Which deliveries may be sent now, and leasing them to one dispatcher.

A delivery is *claimable* when it is pending and due, its endpoint is active, nobody holds an
unexpired lease on it, and no earlier message of its ordering key to the same endpoint is
still pending (that is how order is kept: the next message waits until the previous one was
delivered or dead-lettered, while other keys and other endpoints go on).

Claiming is two statements in one short transaction:

1. a ``SELECT`` of candidates, oldest due first: a range scan of ``ix_webhook_deliveries_due``
   (state, next_attempt_at), the endpoint joined by primary key, the "earlier pending message"
   test a probe of ``ix_webhook_deliveries_order`` (endpoint_id, ordering_key, sequence). On
   PostgreSQL it ends in ``FOR UPDATE OF webhook_deliveries SKIP LOCKED``: concurrent
   dispatchers skip each other's candidates instead of waiting for them or taking them too;
2. an ``UPDATE ... RETURNING`` that leases the chosen ones, re-checking that they are still
   pending and unleased (on SQLite the ``SELECT`` locks nothing). ``claim_loaded`` (the
   dispatcher's) has it return the deliveries with their endpoints on PostgreSQL.

Between the two, at most ``per_endpoint`` deliveries per endpoint are kept (counting those the
dispatcher already has in flight), so one slow or dead endpoint cannot occupy every sending
thread while other endpoints wait; the rows left out are unlocked when the transaction ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, Select, Update, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from webhooks.models import Delivery, DeliveryState, Endpoint, EndpointStatus

__all__ = ["candidates", "claim", "claim_loaded", "claimable"]


def claimable(now: datetime) -> ColumnElement[bool]:
    """The claim predicate over ``Delivery`` joined with its ``Endpoint``."""
    earlier = aliased(Delivery)
    earlier_pending = exists().where(
        earlier.endpoint_id == Delivery.endpoint_id,
        earlier.ordering_key == Delivery.ordering_key,
        earlier.sequence < Delivery.sequence,
        earlier.state == DeliveryState.PENDING.value,
    )
    return and_(
        Delivery.state == DeliveryState.PENDING.value,
        Delivery.next_attempt_at <= now,
        Endpoint.status == EndpointStatus.ACTIVE.value,
        or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        ~earlier_pending,
    )


def candidates(
    now: datetime,
    limit: int,
    *,
    exclude_endpoints: Collection[uuid.UUID] = (),
    skip_locked: bool = False,
) -> Select[int, uuid.UUID]:
    """The first statement: (id, endpoint_id) of claimable deliveries, oldest due first."""
    query = (
        select(Delivery.id, Delivery.endpoint_id)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(claimable(now))
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    if exclude_endpoints:
        query = query.where(Delivery.endpoint_id.not_in(exclude_endpoints))
    if skip_locked:
        query = query.with_for_update(of=Delivery, skip_locked=True)
    return query


def _chosen(
    session: Session,
    *,
    now: datetime,
    limit: int,
    per_endpoint: int,
    busy: Mapping[uuid.UUID, int] | None,
    candidates_limit: int | None,
) -> list[int]:
    """The first statement, and the per-endpoint cap: the ids to lease."""
    busy = busy or {}
    query = candidates(
        now,
        max(limit, candidates_limit or 0),
        exclude_endpoints=[e for e, n in busy.items() if n >= per_endpoint],
        skip_locked=_is_postgresql(session),
    )
    taken: dict[uuid.UUID, int] = dict(busy)
    chosen: list[int] = []
    for delivery_id, endpoint_id in session.execute(query).all():
        if taken.get(endpoint_id, 0) >= per_endpoint:
            continue
        taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
        chosen.append(delivery_id)
        if len(chosen) == limit:
            break
    return chosen


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lease(chosen: list[int], *, worker_id: str, now: datetime, lease_until: datetime) -> Update:
    """The second statement: lease the chosen ones still pending and unleased."""
    return (
        update(Delivery)
        .where(
            Delivery.id.in_(chosen),
            Delivery.state == DeliveryState.PENDING.value,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        )
        .values(lease_owner=worker_id, lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )


def claim(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    per_endpoint: int,
    busy: Mapping[uuid.UUID, int] | None = None,
    candidates_limit: int | None = None,
) -> list[int]:
    """Lease up to ``limit`` claimable deliveries to ``worker_id``; returns their ids.

    ``busy`` counts the deliveries per endpoint this worker already has in flight; endpoints at
    ``per_endpoint`` are left out of the query altogether. ``candidates_limit`` (at least
    ``limit``) is how many rows the first statement looks at.
    """
    if limit <= 0:
        return []
    chosen = _chosen(session, now=now, limit=limit, per_endpoint=per_endpoint, busy=busy,
                     candidates_limit=candidates_limit)
    if not chosen:
        return []
    lease = _lease(chosen, worker_id=worker_id, now=now, lease_until=lease_until)
    return sorted(session.scalars(lease.returning(Delivery.id)))


def claim_loaded(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    per_endpoint: int,
    busy: Mapping[uuid.UUID, int] | None = None,
    candidates_limit: int | None = None,
) -> list[tuple[Delivery, Endpoint]]:
    """Like ``claim``, but the leased deliveries themselves, with their endpoints, by id.

    On PostgreSQL the lease is an ``UPDATE ... FROM webhook_endpoints ... RETURNING`` both
    rows: what a dispatcher needs to send them comes back with the lease, without a ``SELECT``
    after it (a round trip fewer per turn). SQLite's ``RETURNING`` cannot name another table:
    there it is the ids, then a ``SELECT`` of the rows.
    """
    if limit <= 0:
        return []
    chosen = _chosen(session, now=now, limit=limit, per_endpoint=per_endpoint, busy=busy,
                     candidates_limit=candidates_limit)
    if not chosen:
        return []
    lease = _lease(chosen, worker_id=worker_id, now=now, lease_until=lease_until)
    if _is_postgresql(session):
        rows = session.execute(
            lease.where(Endpoint.id == Delivery.endpoint_id)
            .returning(Delivery, Endpoint)
            .execution_options(populate_existing=True)
        ).all()
    else:
        leased = list(session.scalars(lease.returning(Delivery.id)))
        rows = session.execute(
            select(Delivery, Endpoint)
            .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
            .where(Delivery.id.in_(leased))
            .execution_options(populate_existing=True)
        ).all() if leased else []
    return sorted(((d, e) for d, e in rows), key=lambda row: row[0].id)

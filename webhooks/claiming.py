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
   pending and unleased (on SQLite the ``SELECT`` locks nothing).

Between the two, at most ``per_endpoint`` deliveries per endpoint are kept (counting those the
dispatcher already has in flight), so one slow or dead endpoint cannot occupy every sending
thread while other endpoints wait; the rows left out are unlocked when the transaction ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from webhooks.models import Delivery, DeliveryState, Endpoint, EndpointStatus

__all__ = ["candidates", "claim", "claimable"]


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
) -> Select[tuple[int, uuid.UUID]]:
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
    busy = busy or {}
    query = candidates(
        now,
        max(limit, candidates_limit or 0),
        exclude_endpoints=[e for e, n in busy.items() if n >= per_endpoint],
        skip_locked=session.get_bind().dialect.name == "postgresql",
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
    if not chosen:
        return []
    leased = session.scalars(
        update(Delivery)
        .where(
            Delivery.id.in_(chosen),
            Delivery.state == DeliveryState.PENDING.value,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        )
        .values(lease_owner=worker_id, lease_until=lease_until)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(leased)

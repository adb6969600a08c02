"""The hub's side of outbound webhooks: events into deliveries, deliveries into bodies.

The `webhooks` package delivers messages without knowing what they are.  This module tells it:
- `fan_out`: which organizations' endpoints get each event in the outbox (the event's audience,
  plus every coordination body), in the order events were appended, one process at a time;
- `render`: the body of each delivery, built when it is sent, by `hub.consent.visibility` for the
  endpoint's organization — so a consent withdrawn since the event was recorded is respected.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Boolean, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.callers import Caller
from hub.consent import access_log
from hub.consent.visibility import Reader
from hub.db import Base, utcnow
from hub.directory.organizations import Organization
from hub.events.envelope import render_events
from hub.events.store import Event, EventAudience, OutboxEntry, next_sequence, record
from hub.events.types import EventType
from hub.followups import staff_mails
from webhooks.models import Delivery, Endpoint
from webhooks.queue import Message, enqueue_many

log = logging.getLogger(__name__)


class EndpointRegistration(Base):
    """Who registered a webhook endpoint, and whether its secret may sign inbound answers:
    only when the registering client could answer legs itself (`referrals:respond`), so that
    `webhooks:manage` alone gives no way around the API's scopes."""

    __tablename__ = "webhook_endpoint_registrations"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # webhook_endpoints.id
    client_id: Mapped[str] = mapped_column(String(48))
    may_answer: Mapped[bool] = mapped_column(Boolean)

FAN_OUT_LOCK = 0x6D61696C  # "mail": one fan-out at a time keeps each subject's order


# What else the worker does with a batch of events, in the fan-out's transaction (the
# new-leg mails of `hub.mailbox.notices`): called with the session, the events and the time.
EventHook = Callable[[Session, list[Event], datetime], object]


def fan_out(session: Session, *, limit: int = 1000, now: datetime | None = None,
            on_events: EventHook | None = None) -> int:
    """Turn up to `limit` outbox entries into deliveries, oldest first; returns how many.

    Runs in the caller's transaction; the outbox rows go in the same transaction as the
    deliveries they became (and what `on_events` does with them), so a crash loses nothing
    and repeats nothing.
    """
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
        select(func.pg_try_advisory_xact_lock(FAN_OUT_LOCK))
    ):
        return 0  # another process is fanning out
    events = list(session.scalars(
        select(Event).join(OutboxEntry, OutboxEntry.event_position == Event.position)
        .order_by(Event.transaction_order, Event.position).limit(limit)
    ))
    if not events:
        return 0
    positions = [e.position for e in events]
    audience: dict[int, set[uuid.UUID]] = defaultdict(set)
    for position, organization_id in session.execute(
        select(EventAudience.event_position, EventAudience.organization_id)
        .where(EventAudience.event_position.in_(positions))
    ):
        audience[position].add(organization_id)
    coordinators = set(session.scalars(
        select(Organization.id).where(Organization.kind == "coordination")))
    now = now or utcnow()
    enqueue_many(session, [
        Message(message_id=e.id, event_type=e.type, ordering_key=e.subject,
                sequence=e.sequence, owner_ids=frozenset(audience[e.position] | coordinators))
        for e in events
    ], now=now)
    if on_events is not None:
        on_events(session, events, now)
    session.execute(delete(OutboxEntry).where(OutboxEntry.event_position.in_(positions)))
    return len(events)


def renderer(pseudonym_key: bytes) -> Callable[[Session, list[Delivery]], dict[int, bytes | None]]:
    """The `render` callback of the dispatcher: bodies as each endpoint's organization may
    see the event now.  The reads of personal data it makes are logged as webhook reads."""

    def render(session: Session, deliveries: list[Delivery]) -> dict[int, bytes | None]:
        endpoints = {e.id: e for e in session.scalars(
            select(Endpoint).where(Endpoint.id.in_({d.endpoint_id for d in deliveries})))}
        events = {e.id: e for e in session.scalars(
            select(Event).where(Event.id.in_({d.message_id for d in deliveries})))}
        kinds = dict(session.execute(select(Organization.id, Organization.kind).where(
            Organization.id.in_({e.owner_id for e in endpoints.values()}))).all())
        access_log.set_via(session, "webhook delivery")
        bodies: dict[int, bytes | None] = {}
        by_endpoint: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            by_endpoint[delivery.endpoint_id].append(delivery)
        for endpoint_id, batch in by_endpoint.items():
            endpoint = endpoints.get(endpoint_id)
            found = [events[d.message_id] for d in batch if d.message_id in events]
            if endpoint is None or endpoint.owner_id not in kinds:
                bodies.update({d.id: None for d in batch})
                continue
            reader = Reader(session, Caller(endpoint.owner_id, f"webhook:{endpoint.id}",
                                            kinds[endpoint.owner_id] == "coordination"),
                            pseudonym_key)
            try:
                with session.begin_nested():
                    rendered = {envelope["id"]: envelope
                                for envelope in render_events(session, reader, found)}
            except Exception:
                # One batch that cannot be built (e.g. data under a dropped key) must not hold
                # the others: its deliveries are dead-lettered, to redeliver once fixed.
                log.exception("could not render deliveries for endpoint %s", endpoint_id)
                rendered = {}
            for delivery in batch:
                envelope = rendered.get(delivery.message_id)
                bodies[delivery.id] = None if envelope is None else json.dumps(
                    envelope, ensure_ascii=False, separators=(",", ":")).encode()
        return bodies

    return render


def on_endpoint_disabled(public_url: str) -> Callable[[Session, Endpoint, str], None]:
    """The dispatcher's `on_disabled` for a hub that people reach at `public_url`
    (HUB_PUBLIC_URL): `endpoint_disabled`, its mail's link starting there."""
    return functools.partial(endpoint_disabled, public_url=public_url)


def endpoint_disabled(session: Session, endpoint: Endpoint, reason: str, *,
                      public_url: str = staff_mails.DEFAULT_PUBLIC_URL) -> None:
    """The engine disabled an endpoint (410, or failing for days): tell its organization (its
    mail links to the endpoint at `public_url`)."""
    sequence = next_sequence(session, f"webhook-endpoints/{endpoint.id}")
    record(session, EventType.WEBHOOK_ENDPOINT_DISABLED,
           subject=f"webhook-endpoints/{endpoint.id}", sequence=sequence,
           source_organization_id=None, actor="dispatcher",
           # No URL: it may carry a token, and the event log is kept forever.
           data={"webhook_endpoint": {"id": str(endpoint.id), "status": "disabled",
                                      "disabled_reason": reason}},
           audience={endpoint.owner_id})
    staff_mails.endpoint_disabled(session, endpoint_id=endpoint.id, owner_id=endpoint.owner_id,
                                  reason=reason, sequence=sequence, now=utcnow(),
                                  public_url=public_url)

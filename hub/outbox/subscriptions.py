"""An organization's webhook endpoints as its partners and its administrators manage them, from
the API or the portal alike: which event types may be asked for, which endpoints and
deliveries an organization may touch, registering one with a record of who did it, and
sending again what failed since a moment (with how many that is, asked beforehand).

The engine's own functions (`webhooks.endpoints`) do the work; this module holds the hub's
rules around them, so both doors refuse the same things with the same errors.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy.orm import Session

from hub.db import MAX_ID
from hub.errors import Invalid, NotFound
from hub.events.types import EventType
from hub.outbox.webhook_fanout import EndpointRegistration
from webhooks import endpoints
from webhooks.models import Delivery, DeliveryState, Endpoint
from webhooks.ssrf import UnsafeURL


class DeliveryInProgress(Exception):
    """A pending delivery is attempted anyway: there is nothing to redeliver yet."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(f"delivery {delivery.id} is still pending")
        self.next_attempt_at = delivery.next_attempt_at


def check_event_types(patterns: list[str]) -> None:
    """Every pattern matches at least one event type the hub sends."""
    unmatched = [p for p in patterns if not any(fnmatchcase(t.value, p) for t in EventType)]
    if unmatched:
        raise Invalid({"event_types": [
            f"{', '.join(unmatched)} matches no event type; see the Events section of the "
            f"documentation ({', '.join(t.value for t in EventType)})."]})


def own_endpoint(session: Session, organization_id: uuid.UUID,
                 endpoint_id: uuid.UUID) -> Endpoint:
    """The organization's endpoint; NotFound for another's (whose existence stays unknown)."""
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None or endpoint.owner_id != organization_id:
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint


def own_delivery(session: Session, organization_id: uuid.UUID, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id) if 0 < delivery_id <= MAX_ID else None
    endpoint = session.get(Endpoint, delivery.endpoint_id) if delivery else None
    if delivery is None or endpoint is None or endpoint.owner_id != organization_id:
        raise NotFound("delivery", delivery_id)
    return delivery


def _unsafe(error: UnsafeURL) -> Invalid:
    return Invalid({"url": [str(error)]})


def register_endpoint(session: Session, *, organization_id: uuid.UUID, url: str,
                      event_types: list[str], description: str | None,
                      registered_by: str, may_answer: bool, allow_loopback_http: bool,
                      now: datetime) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (shown once).  `registered_by` is the client id
    or `user:<id>`; `may_answer` says whether its secret may sign inbound answers (only for a
    client that may answer legs itself)."""
    check_event_types(event_types)
    try:
        endpoint, secret = endpoints.create_endpoint(
            session, owner_id=organization_id, url=url, event_types=event_types,
            description=description, allow_loopback_http=allow_loopback_http, now=now)
    except UnsafeURL as error:
        raise _unsafe(error) from None
    session.add(EndpointRegistration(endpoint_id=endpoint.id, client_id=registered_by[:48],
                                     may_answer=may_answer))
    session.flush()
    return endpoint, secret


def change_endpoint(session: Session, endpoint: Endpoint, *, allow_loopback_http: bool,
                    now: datetime, **changes: Any) -> Endpoint:
    """Change the URL, event types or description; pause (`paused`) or resume (`active`)."""
    if "event_types" in changes:
        check_event_types(changes["event_types"])
    try:
        return endpoints.update_endpoint(session, endpoint,
                                         allow_loopback_http=allow_loopback_http, now=now,
                                         **changes)
    except UnsafeURL as error:
        raise _unsafe(error) from None
    except ValueError as error:
        raise Invalid({"_schema": [str(error)]}) from None


def redeliver(session: Session, delivery: Delivery, *, now: datetime) -> Delivery:
    """Send a delivered or dead-lettered delivery again, now."""
    if delivery.state == DeliveryState.PENDING:
        raise DeliveryInProgress(delivery)
    endpoints.redeliver(session, delivery, now=now)
    return delivery


def failed_since(session: Session, endpoint: Endpoint, since: datetime) -> int:
    """How many deliveries `recover_failed` would send again now, so the portal can say it
    before the admin confirms."""
    return endpoints.count_failed_since(session, endpoint, since)


def recover_failed(session: Session, endpoint: Endpoint, *, since: datetime,
                   now: datetime) -> int:
    """Send again, in order, every delivery of the endpoint that failed since `since`;
    returns how many were put back in the queue."""
    return endpoints.recover_failed(session, endpoint, since=since, now=now)

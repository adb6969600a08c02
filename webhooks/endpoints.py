"""Managing endpoints: registration, secrets and rotation, updates, redelivery.

Every function takes the caller's ``Session`` and flushes but never commits: the application
decides where its unit of work ends (an API request, a CLI command).

Deliveries of an endpoint that is not ``active`` (paused by its owner, disabled by the engine)
are kept pending but *parked*: their ``next_attempt_at`` is set to ``PARKED_UNTIL`` so that the
dispatcher's "what is due" index scan never wades through them (a paused endpoint can collect
months of messages), and set back to now when the endpoint is re-activated. Change an endpoint's
status through this module only, so that parking stays in step with the status.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from webhooks.models import Attempt, Delivery, DeliveryState, Endpoint, EndpointStatus
from webhooks.signing import new_secret
from webhooks.ssrf import check_url

__all__ = [
    "PARKED_UNTIL",
    "ROTATION_OVERLAP",
    "active_secrets",
    "create_endpoint",
    "delete_endpoint",
    "disable_endpoint",
    "matches",
    "recover_failed",
    "redeliver",
    "rotate_secret",
    "update_endpoint",
    "validate_event_types",
]

# How long the previous secret keeps signing after a rotation: time for the receiver to deploy
# the new one without rejecting a single delivery.
ROTATION_OVERLAP = timedelta(hours=24)
# "Not before the endpoint is active again" (see the module docstring).
PARKED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)

_PATTERN_RE = re.compile(r"[a-z_.*]+")
MAX_PATTERN_LENGTH = 64  # Delivery.event_type holds 64 characters
MAX_PATTERNS = 100
MAX_DESCRIPTION_LENGTH = 500
_OWNER_STATUSES = frozenset({EndpointStatus.ACTIVE.value, EndpointStatus.PAUSED.value})


def validate_event_types(event_types: object) -> list[str]:
    """The patterns, de-duplicated in order; ``ValueError`` with a message for the owner."""
    if not isinstance(event_types, list | tuple) or not event_types:
        raise ValueError("event_types must be a non-empty list of event type patterns")
    if len(event_types) > MAX_PATTERNS:
        raise ValueError(f"event_types holds at most {MAX_PATTERNS} patterns")
    patterns: list[str] = []
    for pattern in event_types:
        if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
            raise ValueError(
                f"event type pattern {pattern!r} is invalid: use lowercase letters, '_', '.' "
                "and '*' as a wildcard (e.g. 'referral.accepted', 'referral.*', '*')"
            )
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"event type pattern is longer than {MAX_PATTERN_LENGTH} characters")
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether ``event_type`` matches one of ``patterns``; ``*`` is any run of characters.

    Only ``*`` is special (unlike ``fnmatch``, ``?`` and ``[`` are literal), so a pattern means
    what an owner reading it would think.
    """
    return any(_compiled(pattern).fullmatch(event_type) for pattern in patterns)


def _description(description: str | None) -> str | None:
    if description is None or not description.strip():
        return None
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return description


def create_endpoint(
    session: Session,
    *,
    owner_id: uuid.UUID,
    url: str,
    event_types: list[str],
    description: str | None = None,
    allow_loopback_http: bool,
    now: datetime,
) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it with its signing secret, which is shown only once.

    Raises ``UnsafeURL`` (a ``ValueError``) for a URL the hub must not call, ``ValueError`` for
    bad event type patterns or description.
    """
    check_url(url, allow_loopback_http=allow_loopback_http)
    secret = new_secret()
    endpoint = Endpoint(
        id=uuid.uuid4(),
        owner_id=owner_id,
        url=url,
        description=_description(description),
        event_types=validate_event_types(event_types),
        status=EndpointStatus.ACTIVE.value,
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def rotate_secret(session: Session, endpoint: Endpoint, *, now: datetime) -> str:
    """Give the endpoint a new secret (returned, shown once); the current one signs for 24 h more.

    Only two secrets sign at a time: rotating again within 24 h retires the oldest at once.
    """
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.updated_at = now
    session.flush()
    return secret


def active_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery made at ``now``: the current one first."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        secrets.append(endpoint.previous_secret)
    return secrets


def _park(session: Session, endpoint_id: uuid.UUID) -> None:
    session.execute(
        update(Delivery)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.state == DeliveryState.PENDING.value,
            Delivery.next_attempt_at < PARKED_UNTIL,
        )
        .values(next_attempt_at=PARKED_UNTIL)
        .execution_options(synchronize_session=False)
    )


def _unpark(session: Session, endpoint_id: uuid.UUID, now: datetime) -> None:
    # Also pulls retries scheduled before a pause forward: the owner says "go", so go now.
    session.execute(
        update(Delivery)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.state == DeliveryState.PENDING.value,
            Delivery.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def update_endpoint(
    session: Session,
    endpoint: Endpoint,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    status: str | None = None,
    allow_loopback_http: bool,
    now: datetime,
) -> Endpoint:
    """Change what the owner may change; ``None`` leaves a field as it is ("" clears the
    description).

    Owners set ``active`` or ``paused``, never ``disabled`` (the engine's verdict). Setting
    ``active`` on a disabled endpoint is how an owner says "fixed": the failure record is
    cleared and the waiting deliveries are sent at once, in order.
    """
    if url is not None:
        check_url(url, allow_loopback_http=allow_loopback_http)
    patterns = validate_event_types(event_types) if event_types is not None else None
    if status is not None and status not in _OWNER_STATUSES:
        raise ValueError("status must be 'active' or 'paused' ('disabled' is set by the engine)")
    if url is not None:
        endpoint.url = url
    if patterns is not None:
        endpoint.event_types = patterns
    if description is not None:
        endpoint.description = _description(description)
    if status is not None and status != endpoint.status:
        if endpoint.status == EndpointStatus.DISABLED.value:
            endpoint.failing_since = None
            endpoint.disabled_reason = None
        endpoint.status = status
        session.flush()
        if status == EndpointStatus.ACTIVE.value:
            _unpark(session, endpoint.id, now)
        else:
            _park(session, endpoint.id)
    endpoint.updated_at = now
    session.flush()
    return endpoint


def disable_endpoint(
    session: Session, endpoint_id: uuid.UUID, *, reason: str, now: datetime
) -> Endpoint | None:
    """Disable an endpoint (the engine's verdict) and park its deliveries.

    Returns the endpoint if this call disabled it, None if it already was: with several
    dispatchers recording results at once, exactly one of them gets to tell the owner.
    """
    changed = session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id, Endpoint.status != EndpointStatus.DISABLED.value)
        .values(status=EndpointStatus.DISABLED.value, disabled_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], changed).rowcount != 1:
        return None
    _park(session, endpoint_id)
    return session.get(Endpoint, endpoint_id, populate_existing=True)


def delete_endpoint(session: Session, endpoint: Endpoint) -> None:
    """Delete an endpoint with its deliveries and their attempts.

    Deleted explicitly rather than left to ``ON DELETE CASCADE``, which SQLite applies only when
    the connection enabled foreign keys.
    """
    deliveries = select(Delivery.id).where(Delivery.endpoint_id == endpoint.id)
    session.execute(
        delete(Attempt)
        .where(Attempt.delivery_id.in_(deliveries))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Delivery)
        .where(Delivery.endpoint_id == endpoint.id)
        .execution_options(synchronize_session=False)
    )
    session.delete(endpoint)
    session.flush()


def _again_at(session: Session, endpoint_id: uuid.UUID, now: datetime) -> datetime:
    status = session.scalar(select(Endpoint.status).where(Endpoint.id == endpoint_id))
    return now if status == EndpointStatus.ACTIVE.value else PARKED_UNTIL


def redeliver(session: Session, delivery: Delivery, *, now: datetime) -> None:
    """Send a delivered or dead delivery again, as soon as possible, with a fresh schedule.

    Its attempts so far stay in the log. Later messages of its ordering key that are still
    pending wait for it again.
    """
    if delivery.state == DeliveryState.PENDING.value:
        raise ValueError("this delivery is still pending: it will be attempted anyway")
    delivery.state = DeliveryState.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = _again_at(session, delivery.endpoint_id, now)
    delivery.lease_owner = None
    delivery.lease_until = None
    delivery.delivered_at = None
    delivery.dead_at = None
    session.flush()


def _failed_since(endpoint: Endpoint, since: datetime) -> tuple[Any, ...]:
    """The deliveries ``recover_failed`` sends again: the endpoint's dead ones created or
    dead-lettered since ``since``."""
    return (
        Delivery.endpoint_id == endpoint.id,
        Delivery.state == DeliveryState.DEAD.value,
        or_(Delivery.created_at >= since, Delivery.dead_at >= since),
    )


def count_failed_since(session: Session, endpoint: Endpoint, since: datetime) -> int:
    """How many deliveries ``recover_failed`` would send again now (to say it before)."""
    return session.scalar(
        select(func.count()).select_from(Delivery).where(*_failed_since(endpoint, since))
    ) or 0


def recover_failed(
    session: Session, endpoint: Endpoint, *, since: datetime, now: datetime
) -> int:
    """Send again every dead delivery of the endpoint created or dead-lettered since ``since``.

    Returns how many. They become pending together, so the per-key order is kept by the
    dispatcher as for any other pending deliveries.
    """
    result = session.execute(
        update(Delivery)
        .where(*_failed_since(endpoint, since))
        .values(
            state=DeliveryState.PENDING.value,
            attempts=0,
            next_attempt_at=_again_at(session, endpoint.id, now),
            lease_owner=None,
            lease_until=None,
            dead_at=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    return cast(CursorResult[Any], result).rowcount

"""The delivery engine's tables: endpoints, one delivery per (message, endpoint), attempts.

The engine has its own declarative base and metadata (it knows nothing of the application that
uses it); the application's migrations include `metadata`.  Nothing here points at the
application's tables: an endpoint belongs to an `owner_id` (for the hub: an organization), a
delivery carries a `message_id` (for the hub: the event id) and an `ordering_key` with a
`sequence` (for the hub: the event's subject and sequence), which is all the engine needs to
keep order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Identifier = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class UTC_DateTime(TypeDecorator[datetime]):  # noqa: N801
    """Aware UTC datetimes on every backend (SQLite stores no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTC_DateTime()}


metadata = Base.metadata


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by its owner: deliveries wait, nothing is lost
    DISABLED = "disabled"  # by the engine (410, or failing for days): deliveries wait


class DeliveryState(StrEnum):
    PENDING = "pending"  # to send (now, or at next_attempt_at)
    DELIVERED = "delivered"
    DEAD = "dead"  # retries exhausted or rejected: redeliver by hand or in bulk


class Endpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    # Patterns: exact types, or with `*` wildcards ("referral.*", "*").
    event_types: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=EndpointStatus.ACTIVE.value)
    secret: Mapped[str] = mapped_column(Text)
    # During a rotation the previous secret signs too, until it expires (24 h).
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every attempt failed (None while the last one succeeded): 5 days disables.
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Delivery(Base):
    """One message to one endpoint; attempted until delivered or dead."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                              ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))  # the webhook-id receivers dedupe on
    event_type: Mapped[str] = mapped_column(String(64))
    # Messages with one ordering key reach an endpoint in `sequence` order, each after the
    # previous one was delivered or dead-lettered.
    ordering_key: Mapped[str] = mapped_column(String(200))
    sequence: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # A dispatcher claims a delivery by leasing it; an expired lease is claimed again.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "message_id"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "sequence"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )


class Attempt(Base):
    """One HTTP attempt of a delivery: the delivery log partners read."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        Identifier, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500))

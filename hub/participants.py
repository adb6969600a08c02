"""Participants: the people referred, with the least personal data that does the job.

A participant belongs to the organization that registered them.  Who else may read their
personal data is decided in `hub.visibility`, never here.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, utcnow

PERSONAL_FIELDS = ("given_name", "family_name", "preferred_language", "email", "phone",
                   "birth_year", "region")


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    preferred_language: Mapped[str] = mapped_column(String(35))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def register_participant(
    session: Session, *, organization_id: uuid.UUID, **personal_data: object
) -> Participant:
    """Register a participant for `organization_id` (fields already validated by the caller)."""
    unknown = set(personal_data) - set(PERSONAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown participant fields: {sorted(unknown)}")
    participant = Participant(organization_id=organization_id, **personal_data)
    session.add(participant)
    session.flush()
    return participant

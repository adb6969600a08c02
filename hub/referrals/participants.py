"""Participants: the people referred, with the least personal data that does the job.

A participant belongs to the organization that registered them.  Who else may read their
personal data is decided in `hub.consent.visibility`, never here.  Names, email and phone are
encrypted at rest (`hub.crypto`); duplicates are found through keyed hashes of normalised
values, so the database never holds them in clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub import crypto
from hub.crypto import EncryptedText
from hub.db import Base, iso_utc, utcnow
from hub.errors import DomainError

PERSONAL_FIELDS = ("given_name", "family_name", "preferred_language", "email", "phone",
                   "birth_year", "region")


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    given_name: Mapped[str] = mapped_column(EncryptedText)
    family_name: Mapped[str] = mapped_column(EncryptedText)
    preferred_language: Mapped[str] = mapped_column(String(35))
    email: Mapped[str | None] = mapped_column(EncryptedText)
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the person's data is erased (docs/design.md §15): the row stays as a stub that
    # keeps the legs and events whole, with nothing left of who the person was.
    erased_at: Mapped[datetime | None]
    # Blind indexes (keyed hashes) of the normalised names + birth year, and of each contact.
    identity_index: Mapped[str] = mapped_column(String(64))
    email_index: Mapped[str | None] = mapped_column(String(64))
    phone_index: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_participants_identity", "organization_id", "identity_index"),
    )

    def set_blind_indexes(self) -> None:
        keyring = crypto.current()
        self.identity_index = crypto.identity_index(
            keyring, self.given_name, self.family_name, self.birth_year)
        email = crypto.normalize_email(self.email or "")
        phone = crypto.normalize_phone(self.phone or "")
        self.email_index = keyring.blind_index(f"email:{email}") if email else None
        self.phone_index = keyring.blind_index(f"phone:{phone}") if phone else None


# Sealed under the person's own key (docs/design.md §15): erasing them destroys it.
crypto.personal_data(Participant, ("given_name", "family_name", "email", "phone"),
                     lambda _session, participant: participant.id)


@dataclass
class PossibleDuplicate(DomainError):
    """The organization already has a participant with the same names, birth year and contact."""

    http_status = 409
    title = "Possible duplicate"
    slug = "possible-duplicate"

    matches: list[Participant] = field(default_factory=list)

    def __str__(self) -> str:
        ids = ", ".join(str(p.id) for p in self.matches)
        return (
            f"Your organization already registered a participant with the same names, birth "
            f"year and contact: {ids}. Use that record; if this is another person, send the "
            f"registration again with \"allow_duplicate\": true."
        )

    def members(self) -> dict[str, Any]:
        # Ids only: reading the matches' personal data is a GET, which the access log records.
        return {"matches": [{"id": str(p.id), "created_at": iso_utc(p.created_at)}
                            for p in self.matches]}


@dataclass(eq=False)
class ParticipantErased(DomainError):
    """The person's data was erased: there is nothing left to show or copy."""

    http_status = 410
    title = "Participant erased"
    slug = "participant-erased"

    participant_id: uuid.UUID
    erased_at: datetime

    def __str__(self) -> str:
        return (f"The personal data of participant {self.participant_id} was erased on "
                f"{iso_utc(self.erased_at)}; nothing of it is left to read or copy. The "
                f"erasure register (GET /api/v1/erasures) says when and why.")

    def members(self) -> dict[str, Any]:
        return {"participant_id": str(self.participant_id),
                "erased_at": iso_utc(self.erased_at)}


def _same_person(new: Participant, existing: Participant) -> bool:
    new_contacts = {new.email_index, new.phone_index} - {None}
    old_contacts = {existing.email_index, existing.phone_index} - {None}
    if new_contacts and old_contacts:
        return bool(new_contacts & old_contacts)
    return not new_contacts and not old_contacts


def register_participant(
    session: Session, *, organization_id: uuid.UUID, allow_duplicate: bool = False,
    **personal_data: object,
) -> Participant:
    """Register a participant for `organization_id` (fields already validated by the caller).

    Raises PossibleDuplicate when the organization already has the same person, unless the
    counsellor confirmed it is someone else (`allow_duplicate`).
    """
    unknown = set(personal_data) - set(PERSONAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown participant fields: {sorted(unknown)}")
    participant = Participant(id=uuid.uuid4(), organization_id=organization_id, **personal_data)
    participant.set_blind_indexes()
    if not allow_duplicate:
        candidates = session.scalars(select(Participant).where(
            Participant.organization_id == organization_id,
            Participant.identity_index == participant.identity_index,
        ).order_by(Participant.created_at))
        matches = [c for c in candidates if _same_person(participant, c)]
        if matches:
            raise PossibleDuplicate(matches)
    session.add(participant)
    session.flush()
    return participant

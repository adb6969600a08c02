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

from sqlalchemy import ForeignKey, Index, Integer, String, select, text, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub import crypto
from hub.crypto import EncryptedText
from hub.db import Base, iso_utc, utcnow
from hub.errors import DomainError
from hub.referrals import participant_search

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
    # One more with every correction: the ETag, and the sequence of `participant.updated`.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Blind indexes (keyed hashes) of the normalised names + birth year, of the name words in
    # any order (duplicates without a birth year), and of each contact.
    identity_index: Mapped[str] = mapped_column(String(64))
    name_index: Mapped[str | None] = mapped_column(String(64))
    email_index: Mapped[str | None] = mapped_column(String(64))
    phone_index: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_participants_identity", "organization_id", "identity_index"),
        Index("ix_participants_name", "organization_id", "name_index"),
        Index("ix_participants_newest", "organization_id", "created_at", "id"),
    )

    def set_blind_indexes(self) -> None:
        keyring = crypto.current()
        self.identity_index = crypto.identity_index(
            keyring, self.given_name, self.family_name, self.birth_year)
        self.name_index = name_index(keyring, self.given_name, self.family_name)
        email = crypto.normalize_email(self.email or "")
        phone = crypto.normalize_phone(self.phone or "")
        self.email_index = keyring.blind_index(f"email:{email}") if email else None
        self.phone_index = keyring.blind_index(f"phone:{phone}") if phone else None


# Sealed under the person's own key (docs/design.md §15): erasing them destroys it.
crypto.personal_data(Participant, ("given_name", "family_name", "email", "phone"),
                     lambda _session, participant: participant.id)


def name_index(keyring: crypto.KeyRing, given_name: str, family_name: str) -> str:
    """Blind index of the name words in any order: a person registered once as "Nguyen Van
    An" and once with the names swapped is still the same name."""
    words = sorted(participant_search.name_words(f"{given_name} {family_name}"))
    return keyring.blind_index("name:" + " ".join(words))


@dataclass
class PossibleDuplicate(DomainError):
    """The organization already has a participant with the same names and a contact in common
    (or, with no contact on either side, the same birth year)."""

    http_status = 409
    title = "Possible duplicate"
    slug = "possible-duplicate"

    matches: list[Participant] = field(default_factory=list)

    def __str__(self) -> str:
        ids = ", ".join(str(p.id) for p in self.matches)
        return (
            f"Your organization already registered a participant with the same names and the "
            f"same email or phone (or, without either, the same birth year): {ids}. Use that "
            f"record; if this is another person, send the request again with "
            f"\"allow_duplicate\": true."
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


def same_person(new: Participant, existing: Participant) -> bool:
    """Whether two records of the same name are surely one person: a contact in common, or no
    contact on either side and the same birth year. Two birth years that differ say two
    people, whatever else they share."""
    if new.birth_year and existing.birth_year and new.birth_year != existing.birth_year:
        return False
    new_contacts = {new.email_index, new.phone_index} - {None}
    old_contacts = {existing.email_index, existing.phone_index} - {None}
    if new_contacts and old_contacts:
        return bool(new_contacts & old_contacts)
    return not new_contacts and not old_contacts and new.birth_year == existing.birth_year


def namesakes(session: Session, participant: Participant) -> list[Participant]:
    """The organization's other participants with the same name words (in any order), oldest
    first: possible duplicates to show, surely the same person or not (`same_person`)."""
    return list(session.scalars(select(Participant).where(
        Participant.organization_id == participant.organization_id,
        Participant.name_index == participant.name_index,
        Participant.id != participant.id,
    ).order_by(Participant.created_at, Participant.id)))


def check_duplicates(session: Session, participant: Participant) -> None:
    """Raise PossibleDuplicate if the organization already has this person (`same_person`)."""
    matches = [other for other in namesakes(session, participant)
               if same_person(participant, other)]
    if matches:
        raise PossibleDuplicate(matches)


def _index(session: Session, participant: Participant) -> None:
    participant.set_blind_indexes()
    participant_search.reindex(
        session, participant.id, participant.organization_id,
        given_name=participant.given_name, family_name=participant.family_name,
        email=participant.email, phone=participant.phone)


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
    participant = Participant(id=uuid.uuid4(), organization_id=organization_id, version=1,
                              **personal_data)
    participant.set_blind_indexes()
    if not allow_duplicate:
        check_duplicates(session, participant)
    session.add(participant)
    _index(session, participant)
    return participant


def correct(session: Session, participant: Participant, changes: dict[str, Any], *,
            allow_duplicate: bool = False) -> list[str]:
    """Apply corrected personal data (validated by the caller); returns the names of the
    fields that changed, in `PERSONAL_FIELDS` order. The version goes up when one did."""
    unknown = set(changes) - set(PERSONAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown participant fields: {sorted(unknown)}")
    changed = [name for name in PERSONAL_FIELDS
               if name in changes and changes[name] != getattr(participant, name)]
    if not changed:
        return []
    for name in changed:
        setattr(participant, name, changes[name])
    participant.set_blind_indexes()
    if not allow_duplicate and {"given_name", "family_name", "email", "phone",
                                "birth_year"} & set(changed):
        check_duplicates(session, participant)
    participant.version += 1
    _index(session, participant)
    return changed


def search(session: Session, organization_id: uuid.UUID, query: str, *, limit: int,
           after: tuple[datetime, uuid.UUID] | None = None) -> list[Participant]:
    """The organization's participants matching `query` (`hub.referrals.participant_search`;
    an empty query matches everyone), newest first, `limit` of them after the keyset position
    `after` (the previous page's last `created_at`, `id`)."""
    # An erased person is found no more: nothing is left of who they were (§15).
    statement = select(Participant).where(Participant.organization_id == organization_id,
                                          Participant.erased_at.is_(None))
    found = participant_search.conditions(Participant.id, organization_id, query)
    if found is not None:
        statement = statement.where(*found)
    if after is not None:
        statement = statement.where(
            tuple_(Participant.created_at, Participant.id) < tuple_(*after))
    if found is not None and session.get_bind().dialect.name == "postgresql":
        _plan_for_these_terms(session)
    return list(session.scalars(statement.order_by(
        Participant.created_at.desc(), Participant.id.desc()).limit(limit)))


def _plan_for_these_terms(session: Session) -> None:
    """For the rest of the transaction (PostgreSQL): plan each statement for its own values,
    without parallel workers.

    The fast way to meet a search depends on how many participants hold its terms: a rare
    term ("berube", a phone) is read from its index rows; a common one ("tremblay", ~6 % of
    the organization) is met by walking the participants newest first and stopping at the
    page's end. psycopg prepares a statement run 5 times, and PostgreSQL then moves to a
    *generic* plan, the same for every term, made without knowing the term: it read every
    holder of "tremblay" and sorted them (~100 ms among 100,000 participants instead of
    ~3 ms). Workers of a parallel plan cost more to start than the page costs to read."""
    session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                         "set_config('max_parallel_workers_per_gather', '0', true)"))


def reindex_all(session: Session) -> int:
    """Compute again every participant's blind indexes and search terms (after the secret
    key changed, which changes the index key); returns how many participants."""
    count = 0
    for participant in session.scalars(select(Participant).order_by(Participant.id)):
        _index(session, participant)
        count += 1
    return count

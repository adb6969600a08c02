"""The peer-matching tables: peers' profiles, the matches proposed to them, and the single-use
links by which a peer answers and a newcomer says whether they talked.

A profile says where the peer settled and what they offer, never who they are: their name and
contact stay on their participant record, given out only by `hub.consent.visibility` (to the
newcomer's organization of an accepted match, while both `peer_matching` consents are active).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, exists, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub import crypto
from hub.consent import consents
from hub.consent.consents import Consent, ConsentEnding, Purpose
from hub.crypto import EncryptedText
from hub.db import Base, utcnow
from hub.referrals.participants import Participant


class PeerStatus(StrEnum):
    AVAILABLE = "available"
    PAUSED = "paused"
    WITHDRAWN = "withdrawn"


class Offer(StrEnum):
    TALK_EMPLOYMENT = "talk_employment"
    TALK_SETTLEMENT = "talk_settlement"
    MEET_IN_PERSON = "meet_in_person"
    VISIT_PLACES = "visit_places"
    INTRODUCE_NETWORK = "introduce_network"


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class MatchStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    ENDED = "ended"


OPEN_MATCHES = (MatchStatus.PROPOSED.value, MatchStatus.ACCEPTED.value)


class PeerProfile(Base):
    """A participant who agreed to help newcomers heading where they settled."""

    __tablename__ = "peer_profiles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"),
                                                      unique=True)
    # The peer's own organization: it enrolled them and answers for them.
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    region: Mapped[str] = mapped_column(String(2))
    municipality: Mapped[str] = mapped_column(String(120))
    languages: Mapped[list[str]] = mapped_column(JSON)
    pathways: Mapped[list[str]] = mapped_column(JSON)
    offers: Mapped[list[str]] = mapped_column(JSON)
    contact_channels: Mapped[list[str]] = mapped_column(JSON)
    settled_since: Mapped[date]
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)

    participant: Mapped[Participant] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_peer_profiles_region_status", "region", "status"),)


class PeerMatch(Base):
    """One newcomer put in touch with one peer."""

    __tablename__ = "peer_matches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer_profiles.id"), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"),
                                                      index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                       index=True)
    peer_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"),
                                                            index=True)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    # The counsellor's word to the peer: may name the newcomer, so encrypted.
    note: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[str] = mapped_column(String(20))
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # unanswered by then: expired
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
    # 30 days after acceptance the newcomer is asked whether they talked.
    checkin_due_at: Mapped[datetime | None] = mapped_column(index=True)
    checkin_answer: Mapped[str | None] = mapped_column(String(20))
    checkin_answered_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)

    peer: Mapped[PeerProfile] = relationship(lazy="joined", innerjoin=True)
    participant: Mapped[Participant] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_peer_matches_open_expiry", "status", "expires_at"),)

    @property
    def subject(self) -> str:
        return f"peer_matches/{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_MATCHES


class LinkPurpose(StrEnum):
    ANSWER = "answer"  # the peer: yes / no, later end
    TALKED = "talked"  # the newcomer, 30 days on: have you been able to talk?


# The proposal's note is about the newcomer: sealed under their own key (docs/design.md §15).
crypto.personal_data(PeerMatch, ("note",), lambda _session, match: match.participant_id)


class PeerLink(Base):
    """A link mailed to a person, without an account: only the SHA-256 of its token is kept."""

    __tablename__ = "peer_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    match_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer_matches.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def find_link(session: Session, token: str) -> PeerLink | None:
    """The link of a token, or None (malformed or unknown: the same to the caller)."""
    if not _TOKEN_SHAPE.match(token):
        return None
    return session.get(PeerLink, hash_token(token))


def profile_of(session: Session, participant_id: uuid.UUID) -> PeerProfile | None:
    return session.scalar(select(PeerProfile).where(
        PeerProfile.participant_id == participant_id))


# --- the consent rule of an open match --------------------------------------------------------

PURPOSE = Purpose.PEER_MATCHING.value


def active_consent(participant_id: Any, now: datetime) -> Any:
    """SQL: an active `peer_matching` consent of the person, whatever it covers."""
    return exists().where(Consent.participant_id == participant_id, Consent.purpose == PURPOSE,
                          ~exists().where(ConsentEnding.consent_id == Consent.id),
                          Consent.expires_at > now)


def has_consent(session: Session, participant_id: uuid.UUID, now: datetime | None = None
                ) -> bool:
    """Whether the person has an active `peer_matching` consent (whatever it covers)."""
    return bool(session.scalar(select(active_consent(participant_id, now or utcnow()))))


def still_allowed(session: Session, match: PeerMatch, now: datetime | None = None) -> bool:
    """Whether an open match may go on, and its people be shown to each other: the newcomer's
    `peer_matching` consent is active, the peer's covers the newcomer's organization, and the
    peer has not withdrawn."""
    now = now or utcnow()
    return (match.peer.status != PeerStatus.WITHDRAWN
            and has_consent(session, match.participant_id, now)
            and consents.covers(session, match.peer.participant, match.organization_id,
                                PURPOSE, now))

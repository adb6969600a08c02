"""Erasure of a participant's personal data (docs/design.md §15), on request or at the end of
its retention, by crypto-shredding.

Erasing ends the person's active consents (their open legs are cancelled, recipients are told
as for a withdrawal), empties the hub's own copies of what was collected from them (names and
contacts, the legs' reasons and needs, notes, a check-in mail, remembered API answers), keeps
the pseudonymous stub, the legs and the events (counts and the event log stay whole), records
the erasure in the register, and tells every organization that received the person's data
(`participant.erased`).  After the commit, the person's key is destroyed in the key store
(`hub.privacy.keystore`): whatever a backup still holds of them was sealed under it and can no
longer be read.  A key left behind (the key store was unreachable at that moment) is destroyed
by the next retention check.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    cast,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.callers import Caller
from hub.accounts.clients import OAuthClient
from hub.consent import consents, withdrawal
from hub.consent.consents import Consent, ConsentNote, ConsentStatus
from hub.consent.visibility import pseudonym
from hub.db import Base, iso_utc, utcnow
from hub.events.store import next_sequence, record
from hub.events.types import EventType
from hub.followups.records import FollowUpRecord
from hub.outbox.mail import OutgoingMail
from hub.peers.profiles import PeerMatch, PeerProfile
from hub.privacy import keystore
from hub.referrals import legs
from hub.referrals.checklists import ChecklistItem
from hub.referrals.correction import subject_of
from hub.referrals.legs import Referral, ReferralNote
from hub.referrals.participant_search import ParticipantSearchTerm
from hub.referrals.participants import Participant

KEYS_TO_DESTROY = "participant_keys_to_destroy"


class Reason(StrEnum):
    ON_REQUEST = "on_request"  # the person asked; their organization erased
    RETENTION = "retention"  # HUB_RETENTION_MONTHS after their last leg closed


class ParticipantErasure(Base):
    """The erasure register: when, which pseudonym, why (never who)."""

    __tablename__ = "participant_erasures"

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"),
                                                      primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    pseudonym: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(20))
    erased_by: Mapped[str] = mapped_column(String(200))
    erased_at: Mapped[datetime]

    __table_args__ = (Index("ix_participant_erasures_organization", "organization_id",
                            "erased_at"),)


def erase(session: Session, participant: Participant, *, reason: Reason, actor: str,
          caller: Caller | None, key: bytes, now: datetime | None = None
          ) -> ParticipantErasure:
    """Erase the person's data in the caller's transaction; their key goes after the commit.

    Erasing again answers the first erasure (a retried request changes nothing)."""
    consents.lock_participant(session, participant.id)
    session.refresh(participant)
    if participant.erased_at is not None:
        done = session.get(ParticipantErasure, participant.id)
        assert done is not None
        return done
    now = now or utcnow()
    # As a withdrawal would: recipients are told, open legs are cancelled.
    for consent in consents.history(session, participant.id):
        if consent.status(now) is ConsentStatus.ACTIVE:
            withdrawal.end(session, consent, ConsentStatus.WITHDRAWN, caller, now)
    for leg in legs.open_legs_of(session, participant.id):
        legs.cancel_for_lack_of_consent(session, leg, now)
    leg_ids = list(session.scalars(select(Referral.id).where(
        Referral.participant_id == participant.id)))
    receivers = legs.receiving_organizations(session, participant.id)
    _empty_the_copies(session, participant, leg_ids, receivers)

    erasure = ParticipantErasure(
        participant_id=participant.id, organization_id=participant.organization_id,
        pseudonym=pseudonym(participant.id, key), reason=reason.value, erased_by=actor,
        erased_at=now)
    session.add(erasure)
    session.execute(update(Participant).where(Participant.id == participant.id)
                    .values(erased_at=now))
    session.flush()
    session.expire(participant)
    subject = subject_of(participant.id)  # shared with participant.updated
    record(session, EventType.PARTICIPANT_ERASED, subject=subject,
           sequence=next_sequence(session, subject),
           source_organization_id=caller.organization_id if caller else None, actor=actor, data={
               "participant": {"id": str(participant.id), "erased": True},
               "erased_at": iso_utc(now), "reason": reason.value,
               "erase_personal_data": True},
           audience={participant.organization_id} | receivers)
    session.info.setdefault(KEYS_TO_DESTROY, set()).add(participant.id)
    return erasure


# An erased value: stored as is (the column types read "" as erased), not sealed again.
ERASED = cast("", Text)


def _empty_the_copies(session: Session, participant: Participant, leg_ids: list[uuid.UUID],
                      receivers: set[uuid.UUID]) -> None:
    """Everything the hub's database holds of the person, emptied or deleted now; what a
    backup holds is sealed under the key destroyed after the commit."""
    session.flush()
    session.execute(update(Participant).where(Participant.id == participant.id).values(
        given_name=ERASED, family_name=ERASED, email=None, phone=None, birth_year=None,
        identity_index="", name_index=None, email_index=None, phone_index=None))
    # The keyed hashes that found the person by name, email or phone.
    session.execute(delete(ParticipantSearchTerm).where(
        ParticipantSearchTerm.participant_id == participant.id))
    if leg_ids:
        session.execute(update(Referral).where(Referral.id.in_(leg_ids)).values(
            reason_for_referral=None, needs=ERASED))
        session.execute(update(ReferralNote).where(ReferralNote.referral_id.in_(leg_ids))
                        .values(body=ERASED))
        session.execute(update(FollowUpRecord).where(FollowUpRecord.referral_id.in_(leg_ids))
                        .values(note=None))
        session.execute(update(ChecklistItem).where(ChecklistItem.referral_id.in_(leg_ids))
                        .values(note=None))
        # The check-in mails went to the person's own address.
        session.execute(delete(OutgoingMail).where(OutgoingMail.dedupe_key.in_(
            [f"checkin:{leg}" for leg in leg_ids])))
    # As a peer, they are withdrawn (their matches ended with their peer_matching consent);
    # the notes of proposals about them go.
    profiles = select(PeerProfile.id).where(PeerProfile.participant_id == participant.id)
    session.execute(update(PeerMatch).where(
        (PeerMatch.participant_id == participant.id) | PeerMatch.peer_id.in_(profiles))
        .values(note=None))
    session.execute(update(PeerProfile).where(PeerProfile.participant_id == participant.id)
                    .values(status="withdrawn", municipality=""))
    session.execute(delete(ConsentNote).where(ConsentNote.consent_id.in_(
        select(Consent.id).where(Consent.participant_id == participant.id))))
    # Answers remembered for Idempotency-Key replays may show the person: those of the systems
    # of the organizations that saw them.
    organizations = {participant.organization_id} | receivers
    # The table belongs to the API (`hub.api.idempotency`), above this module: found by name.
    remembered = Base.metadata.tables.get("idempotent_responses")
    if remembered is not None:
        marker = str(participant.id)
        clients = select(OAuthClient.client_id).where(
            OAuthClient.organization_id.in_(organizations))
        rows = session.execute(select(remembered.c.client_id, remembered.c.key,
                                      remembered.c.body)
                               .where(remembered.c.client_id.in_(clients))).all()
        for client_id, key, body in rows:
            if marker in (body or ""):
                session.execute(delete(remembered).where(remembered.c.client_id == client_id,
                                                         remembered.c.key == key))
    session.flush()
    session.expire_all()


@event.listens_for(Session, "after_commit")
def _destroy_keys(session: Session) -> None:
    """The keys go once the erasure is committed: destroying them first, a rollback would
    leave a person whose data nobody can read yet who is not marked erased."""
    erased = session.info.pop(KEYS_TO_DESTROY, None)
    if erased:
        keystore.current().destroy(erased)


@event.listens_for(Session, "after_rollback")
def _keep_keys(session: Session) -> None:
    session.info.pop(KEYS_TO_DESTROY, None)


def destroy_leftover_keys(session: Session, batch: int = 500) -> int:
    """Destroy the keys of erased people still in the key store (the store was unreachable
    when they were erased); returns how many."""
    store = keystore.current()
    erased = list(session.scalars(select(Participant.id).where(
        Participant.erased_at.is_not(None))))
    destroyed = 0
    for start in range(0, len(erased), batch):
        chosen = [pid for pid in erased[start:start + batch] if store.has_key(pid)]
        destroyed += store.destroy(chosen)
    return destroyed


def register_of(session: Session, organization_id: uuid.UUID,
                after: tuple[datetime, uuid.UUID] | None = None,
                limit: int | None = None) -> list[ParticipantErasure]:
    """The organization's erasure register, the latest first."""
    query = select(ParticipantErasure).where(
        ParticipantErasure.organization_id == organization_id)
    if after is not None:
        erased_at, last = after
        query = query.where((ParticipantErasure.erased_at < erased_at)
                            | ((ParticipantErasure.erased_at == erased_at)
                               & (ParticipantErasure.participant_id < last)))
    query = query.order_by(ParticipantErasure.erased_at.desc(),
                           ParticipantErasure.participant_id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def as_dict(erasure: ParticipantErasure) -> dict[str, Any]:
    return {"participant_id": str(erasure.participant_id),
            "organization_id": str(erasure.organization_id), "pseudonym": erasure.pseudonym,
            "reason": erasure.reason, "erased_by": erasure.erased_by,
            "erased_at": iso_utc(erasure.erased_at)}

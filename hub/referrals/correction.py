"""Correcting a participant's personal data (docs/design.md §15, Law 25's right to correction):
by the organization that registered them, through the API or the portal.

The event `participant.updated` names the fields that changed, never their values (the event
log keeps no personal data): the organizations that received the person read them again, as
the visibility rules allow them now.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.errors import NotAllowed, NotFound, VersionMismatch
from hub.events.store import next_sequence, record
from hub.events.types import EventType
from hub.referrals import participants
from hub.referrals.legs import Referral
from hub.referrals.participants import Participant


def subject_of(participant_id: uuid.UUID) -> str:
    return f"participants/{participant_id}"


def correct_participant(session: Session, caller: Caller, participant_id: uuid.UUID,
                        changes: dict[str, Any], *, expected_version: int | None = None,
                        allow_duplicate: bool = False) -> Participant:
    """Apply `changes` (validated by the caller) to the organization's own participant, under
    the participant's lock; record `participant.updated` when a field changed.

    Raises NotFound (another organization's participant, whoever may read it: only the
    registering organization corrects), VersionMismatch (stale `expected_version`),
    PossibleDuplicate (the corrected record is another one of the organization's).
    """
    if caller.is_coordinator:
        raise NotAllowed("Coordination bodies watch the network; they correct no participant.")
    participant = consents.locked_participant(session, participant_id)
    if participant is None or participant.organization_id != caller.organization_id:
        raise NotFound("participant", participant_id)
    if participant.erased_at is not None:  # nothing left to correct (docs/design.md §15)
        raise participants.ParticipantErased(participant.id, participant.erased_at)
    if expected_version is not None and expected_version != participant.version:
        raise VersionMismatch(expected_version, participant.version, what="participant")
    changed = participants.correct(session, participant, changes,
                                   allow_duplicate=allow_duplicate)
    if changed:
        _record_update(session, caller, participant, changed)
    return participant


def _record_update(session: Session, caller: Caller, participant: Participant,
                   changed: list[str]) -> None:
    subject = subject_of(participant.id)
    # Every organization a leg of the person went to or came from has had their data.
    parties = session.execute(select(Referral.from_organization_id, Referral.to_organization_id)
                              .where(Referral.participant_id == participant.id)).all()
    audience = {participant.organization_id} | {o for pair in parties for o in pair}
    record(session, EventType.PARTICIPANT_UPDATED, subject=subject,
           sequence=next_sequence(session, subject),
           source_organization_id=caller.organization_id, actor=caller.actor,
           data={"participant": {"id": str(participant.id), "version": participant.version,
                                 "changed": changed}},
           audience=audience)

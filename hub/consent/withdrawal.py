"""Withdrawal and expiry of a consent (docs/design.md §5): the end of a consent and its
effects, in the caller's transaction.

Ending a `referral_sharing` consent cancels the open legs to organizations it no longer
covers, so this module sits above the legs (`hub.referrals.legs`) and the consent records
(`hub.consent.consents`), which know nothing of each other's use cases.  `withdraw` is the
API's and the portal's; `expire_due` is a scheduled check (`hub.followups.tick`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.consent.consents import (
    KNOWN,
    Consent,
    ConsentEnding,
    ConsentNotActive,
    ConsentStatus,
    Purpose,
    covers,
    record_consent_event,
    visible_consent,
)
from hub.db import utcnow
from hub.events.types import EventType
from hub.peers import matching
from hub.referrals import legs
from hub.referrals.participants import Participant


def withdraw(session: Session, caller: Caller, consent_id: uuid.UUID,
             now: datetime | None = None) -> Consent:
    """Withdraw a consent, with every effect in this transaction (see `end`).

    Withdrawing again what is already withdrawn changes nothing and answers the same, so a
    client may retry safely; an expired consent cannot be withdrawn (ConsentNotActive).
    """
    consent = visible_consent(session, caller, consent_id)
    consents.lock_participant(session, consent.participant_id)
    session.refresh(consent, ["ending"])  # another withdrawal may have won the lock first
    now = now or utcnow()
    status = consent.status(now)
    if status is ConsentStatus.WITHDRAWN:
        return consent
    if status is ConsentStatus.EXPIRED:
        raise ConsentNotActive(consent.id, status)
    end(session, consent, ConsentStatus.WITHDRAWN, caller, now)
    return consent


def end(session: Session, consent: Consent, kind: ConsentStatus, caller: Caller | None,
        now: datetime) -> None:
    """Record the end of a consent and its effects (docs/design.md §5), in the caller's transaction:

    - the ending row, and a `consent.withdrawn`/`consent.expired` event to the participant's
      organization and every organization that received their data under this consent, so
      they erase their copy;
    - for `referral_sharing`, every open leg to an organization no longer covered is cancelled
      with reason `consent_withdrawn`.
    From then on `covers()` is false for those organizations, so every payload built for them
    (API, feed, webhook) carries only opaque ids.
    """
    participant = session.get(Participant, consent.participant_id)
    assert participant is not None
    actor = caller.actor if caller else "scheduler"
    session.info.pop(KNOWN, None)  # answers read before no longer hold
    consent.ending = ConsentEnding(consent_id=consent.id, kind=kind.value, at=now,
                                   recorded_by=actor)
    session.flush()
    receivers = legs.receiving_organizations(session, participant.id)
    audience = {participant.organization_id} | {o for o in receivers if consent.names(o)}
    event_type = (EventType.CONSENT_WITHDRAWN if kind is ConsentStatus.WITHDRAWN
                  else EventType.CONSENT_EXPIRED)
    record_consent_event(session, consent, event_type, 2, actor,
            caller.organization_id if caller else None, audience)
    if consent.purpose == Purpose.REFERRAL_SHARING:
        for leg in legs.open_legs_of(session, participant.id):
            if not covers(session, participant, leg.to_organization_id, consent.purpose, now):
                legs.cancel_for_lack_of_consent(session, leg, now)
    if consent.purpose == Purpose.PEER_MATCHING:
        # Open peer matches that no consent allows any more end at once (docs/design.md §11).
        matching.end_for_consent(session, participant.id, now)


def _expiring(now: datetime) -> list[Any]:
    return [Consent.expires_at <= now, ~exists().where(ConsentEnding.consent_id == Consent.id)]


def expiry_pending(now: datetime) -> Any:
    """Whether `expire_due` has anything to do at `now`: the scheduler asks before opening a
    transaction for it (`hub.followups.tick.PENDING`)."""
    return exists().where(*_expiring(now))


def expire_due(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """The scheduled check: record the expiry of every consent past its date; returns how many.

    Safe to run in several processes at once: rows being expired elsewhere are skipped, and the
    ending's primary key lets an expiry happen only once.
    """
    now = now or utcnow()
    query = (select(Consent).where(*_expiring(now))
             .order_by(Consent.expires_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    expired = 0
    for consent in session.scalars(query).all():
        consents.lock_participant(session, consent.participant_id)
        session.refresh(consent, ["ending"])  # another pass or a withdrawal may have won
        if consent.ending is None:
            end(session, consent, ConsentStatus.EXPIRED, None, now)
            expired += 1
    return expired


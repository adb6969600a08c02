"""The retention check (docs/design.md §15): personal data is kept while it serves.  A
participant with no open leg and no active consent, whose last leg closed (or who was
registered, with no leg) more than HUB_RETENTION_MONTHS ago, is erased (`hub.privacy.erasure`,
reason `retention`).  A scheduled check (`hub.followups.tick`), in bounded batches.

Its settings are the process's, installed by the app factory like the key ring
(`configure`), since the scheduled checks are handed only a session and a moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from hub.consent.consents import Consent, ConsentEnding
from hub.privacy import erasure
from hub.referrals.legs import OPEN_STATUSES, Referral
from hub.referrals.participants import Participant

BATCH = 100
DEFAULT_MONTHS = 24
# A month, for the retention period: long enough that no one is erased a day early.
MONTH = timedelta(days=31)

_settings: dict[str, Any] = {"months": DEFAULT_MONTHS, "key": b""}


def configure(*, months: int, pseudonym_key: bytes) -> None:
    _settings.update(months=months, key=pseudonym_key)


def _expired(now: datetime) -> list[Any]:
    """SQL conditions: a participant whose data no longer serves at `now`."""
    cutoff = now - _settings["months"] * MONTH
    last_closed = (select(func.max(Referral.closed_at))
                   .where(Referral.participant_id == Participant.id).scalar_subquery())
    return [
        Participant.erased_at.is_(None),
        ~exists().where(Referral.participant_id == Participant.id,
                        Referral.status.in_(OPEN_STATUSES)),
        ~exists().where(Consent.participant_id == Participant.id, Consent.expires_at > now,
                        ~exists().where(ConsentEnding.consent_id == Consent.id)),
        or_(and_(last_closed.is_(None), Participant.created_at < cutoff), last_closed < cutoff),
    ]


def retention_pending(now: datetime) -> Any:
    """Whether `erase_expired` has anything to do (`hub.followups.tick.PENDING`)."""
    return exists().where(*_expired(now))


def erase_expired(session: Session, now: datetime) -> int:
    """The scheduled check: erase whoever's data no longer serves; returns how many.  Keys
    that an earlier erasure could not destroy are destroyed too."""
    chosen = list(session.scalars(select(Participant).where(*_expired(now))
                                  .order_by(Participant.created_at).limit(BATCH)))
    for participant in chosen:
        erasure.erase(session, participant, reason=erasure.Reason.RETENTION,
                      actor="scheduler", caller=None, key=_settings["key"], now=now)
    erasure.destroy_leftover_keys(session)
    return len(chosen)

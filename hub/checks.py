"""The scheduled checks (DESIGN §6): each finds what is due through an indexed column and acts
on it exactly once, so a restart or a second scheduler loses and repeats nothing.

`run_once` is one pass of every check, each in its own transaction; `hub checks run` calls it
once, the scheduler calls it on a timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from hub import checkins, consent, followups
from hub.db import utcnow

log = logging.getLogger(__name__)

Check = Callable[[Session, datetime], int]

# name -> the check: finds what is due at `now`, acts on it, returns how many it handled.
CHECKS: dict[str, Check] = {
    "consent_expiry": lambda session, now: consent.expire_due(session, now),
    "deadlines_missed": followups.deadlines_missed,
    "expirations": followups.expirations,  # after the deadline it doubles
    "followups_due": followups.followups_due,
    "validations_due": followups.validations_due,
    "checkins_due": checkins.checkins_due,  # participant check-ins (links: HUB_PUBLIC_URL)
}


def run_once(new_session: Callable[[], Session], now: datetime | None = None) -> dict[str, int]:
    """One pass of every check; a failing check is logged and the others still run."""
    now = now or utcnow()
    handled: dict[str, int] = {}
    for name, check in CHECKS.items():
        try:
            with new_session() as session, session.begin():
                handled[name] = check(session, now)
        except Exception:
            log.exception("scheduled check %s failed; it runs again next time", name)
            handled[name] = -1
    return handled

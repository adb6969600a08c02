"""The scheduled checks (DESIGN §6): each finds what is due through an indexed column and acts
on it exactly once, so a restart or a second scheduler loses and repeats nothing.

`run_once` is one pass of every check, each in its own transaction; `hub checks run` calls it
once, the scheduler calls it on a timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
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

# name -> whether the check has anything to do at `now`: an EXISTS over what its due query
# reads (true whenever that query would find a row).  `run_once` asks them all in one query
# and opens no transaction for a check with nothing due, so a pass with nothing due costs one
# round trip, not three per check.  A check without one here always runs.
PENDING: dict[str, Callable[[datetime], Any]] = {
    "consent_expiry": consent.expiry_pending,
    "deadlines_missed": followups.deadlines_pending,
    "expirations": followups.expirations_pending,
    "followups_due": followups.followups_pending,
    "validations_due": followups.validations_pending,
    "checkins_due": checkins.checkins_pending,
}


def pending(new_session: Callable[[], Session], now: datetime) -> set[str]:
    """The checks with something due at `now` (or without a PENDING entry), in one SELECT
    outside any transaction; every check when the question itself fails."""
    asked = [name for name in CHECKS if name in PENDING]
    try:
        with new_session() as session:
            connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            row = connection.execute(select(*(PENDING[name](now).label(name)
                                              for name in asked))).one() if asked else ()
    except Exception:
        log.exception("could not tell which scheduled checks have work; running them all")
        return set(CHECKS)
    return {name for name, due in zip(asked, row, strict=True) if due} | (set(CHECKS)
                                                                           - set(asked))


def run_once(new_session: Callable[[], Session], now: datetime | None = None) -> dict[str, int]:
    """One pass of every check with something due; a failing check is logged and the others
    still run."""
    now = now or utcnow()
    due = pending(new_session, now)
    handled: dict[str, int] = {}
    for name, check in CHECKS.items():
        if name not in due:
            handled[name] = 0
            continue
        try:
            with new_session() as session, session.begin():
                handled[name] = check(session, now)
        except Exception:
            log.exception("scheduled check %s failed; it runs again next time", name)
            handled[name] = -1
    return handled

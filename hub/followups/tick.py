"""The scheduled checks (docs/design.md §6): each finds what is due through an indexed column
and acts on it exactly once, so a restart or a second scheduler loses and repeats nothing.

`run_tick` is what the scheduler runs on its timer: passes of every firing check, each in its
own transaction, again while they find work (a backlog is cleared in bounded batches), then
once the digests (`DIGESTS`: the mails that sum up what the passes recorded, one per recipient
per tick).  `run_once` is a tick of one pass; `hub checks run` calls it.

Each check is handed its session and the moment it runs at; a check whose mails carry links
(`public_url` among its parameters) is handed too the address they start with: the settings'
HUB_PUBLIC_URL, which the scheduler and `hub checks run` pass down (the checks know nothing of
the app).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.consent import withdrawal
from hub.db import utcnow
from hub.followups import checkins, checklist_reminders, followup_digests, leg_checks
from hub.followups import digests as deadline_digests
from hub.followups.staff_mails import DEFAULT_PUBLIC_URL
from hub.opportunities import daily_mail, publishing
from hub.peers import matching
from hub.privacy import retention

log = logging.getLogger(__name__)

# A check: `check(session, now)`; one whose mails carry links also takes `public_url=` (with a
# default), which `_run` passes it.
Check = Callable[[Session, datetime], int]


# name -> the check: finds what is due at `now`, acts on it, returns how many it handled.
CHECKS: dict[str, Check] = {
    "consent_expiry": lambda session, now: withdrawal.expire_due(session, now),
    "deadlines_missed": leg_checks.deadlines_missed,
    "expirations": leg_checks.expirations,  # after the deadline it doubles; mails the sender
    "followups_due": leg_checks.followups_due,
    "validations_due": leg_checks.validations_due,
    "checkins_due": checkins.checkins_due,  # participant check-ins, mailed with a link
    "retention": retention.erase_expired,  # personal data kept no longer than it serves
    "peer_matches_expired": matching.expire_due,
    "peer_talk_checks": matching.talk_checks_due,  # "have you been able to talk?", by mail
    # Checklist items still to do two business days before a move, mailed to their owners.
    "checklist_reminders": checklist_reminders.checklist_reminders,
    # Opportunities whose closing day is over; then the followers' mail of new ones, at 8:00.
    "opportunities_closed": publishing.close_due,
    "opportunity_mails": daily_mail.mail_daily,
    # A digest, not a firing check: it runs once per tick, after the passes (see DIGESTS).
    "deadline_digests": deadline_digests.mail_digests,
    # The follow-ups that came due, one mail per counsellor (or contact) and tick.
    "followup_digests": followup_digests.mail_followup_digests,
}

# digest -> the checks whose events it mails about.  A digest runs once at the end of a tick,
# when its PENDING query found events to read at the start of a pass (the participant's "No",
# a tick that crashed before its digest) or when one of these checks recorded some.
DIGESTS: dict[str, tuple[str, ...]] = {"deadline_digests": ("deadlines_missed",),
                                       "followup_digests": ("followups_due",)}

# name -> whether the check has anything to do at `now`: an EXISTS over what its due query
# reads (true whenever that query would find a row).  `run_once` asks them all in one query
# and opens no transaction for a check with nothing due, so a pass with nothing due costs one
# round trip, not three per check.  A check without one here always runs.
PENDING: dict[str, Callable[[datetime], Any]] = {
    "consent_expiry": withdrawal.expiry_pending,
    "deadlines_missed": leg_checks.deadlines_pending,
    "expirations": leg_checks.expirations_pending,
    "followups_due": leg_checks.followups_pending,
    "validations_due": leg_checks.validations_pending,
    "checkins_due": checkins.checkins_pending,
    "retention": retention.retention_pending,
    "peer_matches_expired": matching.expiry_pending,
    "peer_talk_checks": matching.talk_checks_pending,
    "checklist_reminders": checklist_reminders.reminders_pending,
    "opportunities_closed": publishing.closing_pending,
    "opportunity_mails": daily_mail.mails_pending,
    "deadline_digests": deadline_digests.digests_pending,
    "followup_digests": followup_digests.digests_pending,
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


def run_once(new_session: Callable[[], Session], now: datetime | None = None, *,
             public_url: str = DEFAULT_PUBLIC_URL) -> dict[str, int]:
    """One pass of every check with something due, then the digests; a failing check is logged
    and the others still run."""
    moment = now or utcnow()
    return run_tick(new_session, lambda: moment, rounds=1, public_url=public_url)


def run_tick(new_session: Callable[[], Session], clock: Callable[[], datetime] = utcnow, *,
             rounds: int = 1, stopping: Callable[[], bool] = lambda: False,
             on_pass: Callable[[], None] = lambda: None,
             public_url: str = DEFAULT_PUBLIC_URL) -> dict[str, int]:
    """Passes of the firing checks while they find work (at most `rounds`, each at `clock()`,
    `on_pass()` after each), then each digest once; returns how many items each check handled
    in all, -1 for one that failed each time it ran.  A tick with nothing due costs one query
    (`pending`), the digests' included.  The checks' mails link to `public_url`."""
    firing = {name: check for name, check in CHECKS.items() if name not in DIGESTS}
    digests = {name: check for name, check in CHECKS.items() if name in DIGESTS}
    total = dict.fromkeys(CHECKS, 0)
    worked: set[str] = set()  # ran without failing at least once
    failed: set[str] = set()
    to_digest: set[str] = set()
    for _ in range(max(rounds, 1)):
        now = clock()
        if now.tzinfo is None:
            raise ValueError("the scheduler's clock must return an aware UTC datetime")
        due = pending(new_session, now)
        handled = {name: _run(new_session, name, check, now, public_url)
                   for name, check in firing.items() if name in due}
        on_pass()
        for name, count in handled.items():
            (failed if count < 0 else worked).add(name)
            total[name] += max(count, 0)
        to_digest |= {name for name in digests if name in due
                      or any(handled.get(source, 0) > 0 for source in DIGESTS[name])}
        if not any(count > 0 for count in handled.values()) or stopping():
            break
    for name in sorted(to_digest, key=list(digests).index):
        count = _run(new_session, name, digests[name], now, public_url)
        (failed if count < 0 else worked).add(name)
        total[name] = max(count, 0)
    return {name: -1 if name in failed - worked else count for name, count in total.items()}


def _run(new_session: Callable[[], Session], name: str, check: Check, now: datetime,
         public_url: str) -> int:
    """One check in a transaction of its own; -1 when it failed (logged, rolled back)."""
    try:
        with new_session() as session, session.begin():
            if _links(check):
                return cast(Callable[..., int], check)(session, now, public_url=public_url)
            return check(session, now)
    except Exception:
        log.exception("scheduled check %s failed; it runs again next time", name)
        return -1


@functools.lru_cache(maxsize=64)
def _links(check: Check) -> bool:
    """Whether `check`'s mails carry links: it takes the address they start with."""
    try:
        return "public_url" in inspect.signature(check).parameters
    except (TypeError, ValueError):  # a callable without a signature to read
        return False

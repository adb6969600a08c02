"""Checklist items still to do shortly before a move (docs/design.md §12): two business days
before a leg's `needed_by`, each organization that owns items still `todo` on it is mailed the
list (one mail per contact of that organization and tick, every leg of the tick in it).

Fires once per leg (a `referral_checks` row of kind `checklist`), however many schedulers run
or restart; the mails carry item labels and leg links, never the participant's data or notes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hub.followups.deadlines import DEFAULT_TIME_ZONE, is_business_day
from hub.followups.leg_checks import ReferralCheck
from hub.followups.staff_mails import (
    DEFAULT_PUBLIC_URL,
    contacts_of,
    language_of,
    leg_link,
    mail_date,
    mail_texts,
    one_line,
    organizations_by_id,
)
from hub.outbox.mail import queue_mails
from hub.referrals.checklists import ChecklistItem, ItemStatus
from hub.referrals.legs import OPEN_STATUSES, Referral

KIND = "checklist"
BUSINESS_DAYS_BEFORE = 2
# Legs needed further away than this cannot be due yet (2 business days plus a long weekend
# of holidays): the query reads only legs needed soon.
HORIZON = timedelta(days=10)
BATCH = 500


def remind_on(needed_by: date) -> date:
    """The business day two business days before `needed_by`."""
    day, remaining = needed_by, BUSINESS_DAYS_BEFORE
    while remaining:
        day -= timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return day


def _candidates(today: date) -> Any:
    not_reminded = ~exists().where(ReferralCheck.referral_id == Referral.id,
                                   ReferralCheck.kind == KIND)
    todo = exists().where(ChecklistItem.referral_id == Referral.id,
                          ChecklistItem.status == ItemStatus.TODO.value)
    return [Referral.needed_by.is_not(None), Referral.needed_by <= today + HORIZON,
            Referral.status.in_(OPEN_STATUSES), not_reminded, todo]


def reminders_pending(now: datetime) -> Any:
    """Whether a leg may be due for its reminder (`hub.followups.tick.PENDING`)."""
    return exists().where(*_candidates(now.astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).date()))


def checklist_reminders(session: Session, now: datetime, limit: int = BATCH, *,
                        public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Mail the owners of items still to do on legs whose reminder day has come; returns how
    many legs were reminded of."""
    today = now.astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).date()
    legs = [leg for leg in session.scalars(
        select(Referral).where(*_candidates(today)).order_by(Referral.needed_by, Referral.id)
        .limit(limit).with_for_update(skip_locked=True, of=Referral))
        if leg.needed_by is not None and remind_on(leg.needed_by) <= today]
    if not legs:
        return 0
    for leg in legs:
        session.add(ReferralCheck(referral_id=leg.id, kind=KIND, fired_at=now,
                                  due_at=datetime.combine(remind_on(leg.needed_by or today),
                                                          datetime.min.time(), now.tzinfo)))
    session.flush()
    by_id = {leg.id: leg for leg in legs}
    todo: dict[uuid.UUID, dict[uuid.UUID, list[str]]] = defaultdict(dict)
    for item in session.scalars(select(ChecklistItem).where(
            ChecklistItem.referral_id.in_(list(by_id)),
            ChecklistItem.status == ItemStatus.TODO.value)):
        leg = by_id[item.referral_id]
        owner = leg.from_organization_id if item.owner == "sender" else leg.to_organization_id
        todo[owner].setdefault(leg.id, []).append(item.code)
    contacts = contacts_of(session, todo)
    organizations = organizations_by_id(session, set(contacts))
    mails = []
    for organization_id, staff in contacts.items():
        organization = organizations[organization_id]
        language = language_of(organization.language)
        subject, text = _mail(todo[organization_id], by_id, one_line(organization.name),
                              language, public_url)
        for contact in staff:
            mails.append({"to": contact.email or "", "subject": subject, "text": text,
                          "language": language,
                          "dedupe_key": f"checklist:{contact.id}:{min(todo[organization_id])}"
                                        f":{today.isoformat()}"})
    queue_mails(session, mails, now=now)
    return len(legs)


def _mail(legs: dict[uuid.UUID, list[str]], by_id: dict[uuid.UUID, Referral], name: str,
          language: str, public_url: str) -> tuple[str, str]:
    texts = mail_texts(language)
    labels = _item_labels(texts)
    count = sum(len(codes) for codes in legs.values())
    lines = []
    for leg_id, codes in sorted(legs.items(), key=lambda pair: by_id[pair[0]].needed_by or 0):
        needed = by_id[leg_id].needed_by
        lines.append(texts.gettext("- Referral %(reference)s, person needed there by "
                                   "%(date)s:\n") % {
            "reference": str(leg_id), "date": mail_date(needed, language) if needed else "?"})
        lines.extend(f"    · {labels.get(code, code)}\n" for code in codes)
        lines.append(f"  {leg_link(public_url, leg_id)}\n")
    values = {"num": count, "organization": name, "lines": "".join(lines)}
    subject = texts.ngettext("%(num)d checklist item still to do for %(organization)s",
                             "%(num)d checklist items still to do for %(organization)s",
                             count) % values
    body = texts.gettext(
        "Hello,\n\n"
        "A move is coming up in two business days or less, and %(organization)s still has "
        "these items of its checklist to do:\n\n"
        "%(lines)s\n"
        "Tick them in the portal when they are done (or mark them not needed).\n\n"
        "This automatic message from Maillage holds no data about the people referred.\n"
    ) % values
    return subject, body


def _item_labels(texts: Any) -> dict[str, str]:
    return {
        "lease_termination": texts.gettext("Terminate the lease"),
        "housing": texts.gettext("Housing on arrival"),
        "moving": texts.gettext("Moving"),
        "drivers_licence": texts.gettext("Driver's licence"),
        "vehicle": texts.gettext("A car or a way to get around"),
        "health_insurance_card": texts.gettext(
            "Health insurance card (RAMQ): change of address"),
        "family_doctor": texts.gettext("Family doctor or clinic"),
        "school_or_daycare": texts.gettext("School or daycare for the children"),
        "francization": texts.gettext("French courses (francisation)"),
        "spouse_employment": texts.gettext("Work for the spouse"),
        "bank_account": texts.gettext("Bank account"),
        "employer_contact": texts.gettext("Contact with the employer"),
        "welcome_on_arrival": texts.gettext("Welcome on arrival"),
    }

"""The digest of follow-ups that came due (docs/design.md §10): each tick, one mail per
recipient listing the legs whose 30- or 180-day follow-up the scheduler announced since the
last digest, to the counsellor who sent the leg from the portal (in their language), else to
the sending organization's directory contacts (in its language).

What came due is read from the scheduled checks' own rows (`referral_checks`, kinds
`followup_30` and `followup_180`, by `fired_at`), for participants whose `follow_up_contact`
consent covers the sending organization now; each leg and follow-up is mailed once, recorded
in `followup_digest_sent` in the transaction that queues the mail.  Follow-ups that came due
more than `LOOK_BACK` ago are not mailed any more (a scheduler down longer, or a hub that
starts mailing, does not send the whole history; the portal's list still shows them).  Like
the other staff mails, the digest holds references and links, no data about the person.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, String, exists, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.consent import consents
from hub.db import Base
from hub.followups.leg_checks import FIRED
from hub.followups.staff_mails import (
    DEFAULT_PUBLIC_URL,
    contacts_of,
    language_of,
    leg_link,
    mail_texts,
    one_line,
    organizations_by_id,
    portal_senders,
)
from hub.outbox.mail import queue_mails
from hub.referrals.legs import LEGS

KINDS = ("followup_30", "followup_180")
LOOK_BACK = timedelta(days=7)
LISTED = 30  # past this many legs, the mail counts the rest and points to the portal's list


class FollowUpMailed(Base):
    """A follow-up that came due and was mailed in a digest: once per leg and kind."""

    __tablename__ = "followup_digest_sent"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"),
                                                   primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    mailed_at: Mapped[datetime]


def _due(now: datetime) -> list[Any]:
    mailed = exists().where(FollowUpMailed.referral_id == FIRED.c.referral_id,
                            FollowUpMailed.kind == FIRED.c.kind)
    return [FIRED.c.kind.in_(KINDS), FIRED.c.fired_at >= now - LOOK_BACK,
            FIRED.c.fired_at <= now, ~mailed]


def digests_pending(now: datetime) -> Any:
    return exists().where(*_due(now))


def mail_followup_digests(session: Session, now: datetime, limit: int = 2000, *,
                          public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Queue one digest per recipient of the follow-ups that came due; returns how many legs
    were listed."""
    rows = session.execute(
        select(FIRED.c.referral_id, FIRED.c.kind, FIRED.c.due_at, LEGS.c.from_organization_id,
               LEGS.c.to_organization_id, LEGS.c.participant_id)
        .join(LEGS, LEGS.c.id == FIRED.c.referral_id)
        .where(*_due(now),
               consents.covering(LEGS.c.participant_id, LEGS.c.from_organization_id,
                                 consents.Purpose.FOLLOW_UP_CONTACT.value, now))
        .order_by(FIRED.c.due_at, FIRED.c.referral_id).limit(limit)).all()
    # Due ones without consent are marked too, so they are not looked at again; those with
    # consent beyond `limit` are left for the next tick's digest.
    skipped = session.execute(
        select(FIRED.c.referral_id, FIRED.c.kind)
        .join(LEGS, LEGS.c.id == FIRED.c.referral_id)
        .where(*_due(now),
               ~consents.covering(LEGS.c.participant_id, LEGS.c.from_organization_id,
                                  consents.Purpose.FOLLOW_UP_CONTACT.value, now))
        .limit(limit)).all()
    if not rows and not skipped:
        return 0
    organizations = organizations_by_id(session, {r.from_organization_id for r in rows}
                                        | {r.to_organization_id for r in rows})
    senders = portal_senders(session, {r.referral_id for r in rows})
    contacts = contacts_of(session, {r.from_organization_id for r in rows})
    by_recipient: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        user = senders.get(row.referral_id)
        if user is not None and user.organization_id == row.from_organization_id:
            by_recipient[(user.email, language_of(user.language), f"user:{user.id}")].append(row)
            continue
        organization = organizations[row.from_organization_id]
        for contact in contacts.get(row.from_organization_id, []):
            if contact.email:
                by_recipient[(contact.email, language_of(organization.language),
                              f"contact:{contact.id}")].append(row)
    mails = [_digest(address, language, key, listed, organizations, now, public_url)
             for (address, language, key), listed in by_recipient.items()]
    queue_mails(session, mails, now=now)
    for referral_id, kind in {(r.referral_id, r.kind) for r in [*rows, *skipped]}:
        session.add(FollowUpMailed(referral_id=referral_id, kind=kind, mailed_at=now))
    session.flush()
    return len(rows)


def _digest(address: str, language: str, key: str, rows: list[Any],
            organizations: dict[uuid.UUID, Any], now: datetime, public_url: str
            ) -> dict[str, str]:
    texts = mail_texts(language)
    kind_names = {"followup_30": texts.gettext("30-day follow-up"),
                  "followup_180": texts.gettext("180-day follow-up")}
    lines = "".join(
        f"- {kind_names[row.kind]} — {one_line(organizations[row.to_organization_id].name)}"
        f" — {leg_link(public_url, row.referral_id)}\n" for row in rows[:LISTED])
    if len(rows) > LISTED:
        lines += texts.ngettext("… and one more.\n", "… and %(num)d more.\n",
                                len(rows) - LISTED) % {"num": len(rows) - LISTED}
    values = {"count": len(rows), "lines": lines,
              "list": f"{public_url.rstrip('/')}/followups"}
    subject = texts.ngettext("%(num)d follow-up call is due", "%(num)d follow-up calls are due",
                             len(rows)) % {"num": len(rows)}
    text = texts.gettext(
        "Hello,\n\n"
        "These people you referred agreed to a follow-up call, and it is now due:\n\n"
        "%(lines)s\n"
        "Record each call from the referral's page, or see them all in “To follow up”:\n"
        "%(list)s\n\n"
        "This automatic message from Maillage holds no data about the people referred.\n"
    ) % values
    first = min(str(r.referral_id) + r.kind for r in rows)
    return {"to": address, "subject": subject, "text": text, "language": language,
            "dedupe_key": f"followup_digest:{key}:{now.isoformat()}:{first}"}

"""Mails to organizations' staff when a scheduled check or the webhook engine records
something they must act on:

- `referral.deadline_missed`: to the receiving organization's contacts, in a digest per
  scheduler tick (`hub.followups.digests`, which uses the helpers below);
- `referral.expired`: to the counsellor who sent the leg from the portal (else the sending
  organization's contacts), with the partners suggested to redirect to;
- `webhook_endpoint.disabled`: to the endpoint's organization's contacts.

Queued with `hub.outbox.mail.queue_mails` in the transaction that records the event, so a mail
exists only if the event does, and sent by the worker after the commit.  Each mail's dedupe
key names the event and the recipient: one mail per event and recipient, however often a check
runs.  No participant data: the leg's reference, organizations' names, dates and a link to the
portal's leg page, where entitlement and consent apply as everywhere else.

Texts come from the portal's catalogues (`mail_texts`), links start with the address the
caller passes (`public_url`: the settings' HUB_PUBLIC_URL, which the app, the scheduler and
`hub checks run` hand down).
"""

from __future__ import annotations

import functools
import io
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from gettext import NullTranslations
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.users import User
from hub.directory.organizations import LANGUAGES, Contact, Organization
from hub.events.store import Event
from hub.outbox.mail import queue_mails

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "fr"  # of the hub's mails (LANGUAGES), unless the recipient chose English
# HUB_PUBLIC_URL's default (`hub.config`), for callers that have no settings at hand.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"
# The portal's catalogues (`make translations` and the app factory compile them).
CATALOGUES = Path(__file__).resolve().parents[1] / "portal" / "translations"


def mail_texts(language: str) -> NullTranslations:
    """The catalogue of `language` (Babel's `gettext`, `ngettext`), for a mail to one
    recipient.  Read with Babel itself, not Flask-Babel: mails are also built in the worker's
    threads (the scheduler, the webhook dispatcher), which have no app context."""
    compiled = CATALOGUES / language / "LC_MESSAGES" / "messages.mo"
    try:
        version = compiled.stat().st_mtime_ns
    except OSError:
        version = 0  # not compiled: read from the source catalogue
    return _catalogue(CATALOGUES, language, version)


# Babel's locale for each language of the mails, and the time of day as it is written in
# prose: "9 h 05" in French (not "09:05"), "9:05 AM" in English.
MAIL_LOCALES = {"fr": "fr_CA", "en": "en"}
TIME_OF_DAY = {"fr": "H 'h' mm", "en": "h:mm a"}


def mail_date(day: date, language: str) -> str:
    """A day as a mail's reader writes it: "2 décembre 2026" (the first of a month:
    "1er décembre 2026"), "December 2, 2026"; never ISO."""
    locale = MAIL_LOCALES.get(language, MAIL_LOCALES[DEFAULT_LANGUAGE])
    if locale.startswith("fr") and day.day == 1:
        return "1er " + format_date(day, "MMMM y", locale=locale)  # le 1er, not le 1
    return format_date(day, "long", locale=locale)


def mail_time(moment: datetime, zone: str | ZoneInfo, language: str) -> str:
    """A moment as a mail's reader reads it, in their time zone (the mail names the zone):
    "6 décembre 2026 à 14 h 05", "December 6, 2026, 2:05 PM"."""
    local = moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    locale = MAIL_LOCALES.get(language, MAIL_LOCALES[DEFAULT_LANGUAGE])
    pattern = TIME_OF_DAY.get(language, TIME_OF_DAY[DEFAULT_LANGUAGE])
    return mail_texts(language).gettext("%(date)s at %(time)s") % {
        "date": mail_date(local.date(), language),
        "time": format_time(local, pattern, locale=locale)}


@functools.lru_cache(maxsize=8)
def _catalogue(catalogues: Path, language: str, version: int) -> NullTranslations:
    """Loaded once per language and compiled version (a recompiled catalogue is read again).
    Without a compiled catalogue (a deployment that skipped `pybabel compile`, and a hub that
    may not write one), the `.po` itself is compiled in memory: a French mail never goes out
    in English for want of a build step."""
    if version:
        return Translations.load(str(catalogues), [language])
    source = catalogues / language / "LC_MESSAGES" / "messages.po"
    if not source.exists():
        return NullTranslations()
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def language_of(language: str | None) -> str:
    """The language of a mail to someone who chose `language` (French unless English)."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _reference(leg_id: uuid.UUID) -> str:
    """What staff and the portal call a leg: its id (no personal data)."""
    return str(leg_id)


def leg_link(public_url: str, leg_id: uuid.UUID) -> str:
    """The portal's page of a leg."""
    return f"{public_url.rstrip('/')}/legs/{leg_id}"


def contacts_of(session: Session, organization_ids: Iterable[uuid.UUID]
                ) -> dict[uuid.UUID, list[Contact]]:
    """The contacts with an email address of each organization, in one query."""
    found: dict[uuid.UUID, list[Contact]] = defaultdict(list)
    ids = set(organization_ids)
    if not ids:
        return found
    for contact in session.scalars(select(Contact).where(
            Contact.organization_id.in_(ids), Contact.email.is_not(None))
            .order_by(Contact.organization_id, Contact.id)):
        found[contact.organization_id].append(contact)
    return found


def organizations_by_id(session: Session, ids: Iterable[uuid.UUID]
                        ) -> dict[uuid.UUID, Organization]:
    ids = set(ids)
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_(ids)))}


def portal_senders(session: Session, leg_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    """The counsellor who sent each leg from the portal (the actor of its `referral.sent`
    event), for the legs whose sender is a portal user still enabled."""
    subjects = {f"referrals/{leg_id}": leg_id for leg_id in leg_ids}
    if not subjects:
        return {}
    user_ids: dict[uuid.UUID, uuid.UUID] = {}
    for subject, actor in session.execute(select(Event.subject, Event.actor).where(
            Event.subject.in_(list(subjects)), Event.type == "referral.sent")):
        if actor and actor.startswith("user:"):
            try:
                user_ids[subjects[subject]] = uuid.UUID(actor.removeprefix("user:"))
            except ValueError:
                continue
    if not user_ids:
        return {}
    users = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_(set(user_ids.values())), User.disabled_at.is_(None)))}
    return {leg_id: users[user_id] for leg_id, user_id in user_ids.items()
            if user_id in users}


def leg_expired(session: Session, leg: Any, suggestions: list[dict[str, str]],
                now: datetime, *, public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Tell the sender of an expired leg to redirect: the counsellor who sent it from the
    portal when there is one (in their language), else the sending organization's contacts."""
    organizations = organizations_by_id(session, {leg.from_organization_id,
                                                  leg.to_organization_id})
    sender = organizations[leg.from_organization_id]
    user = portal_senders(session, [leg.id]).get(leg.id)
    recipients: list[tuple[str, str, str]] = []  # (address, language, recipient key)
    if user is not None and user.organization_id == leg.from_organization_id:
        recipients.append((user.email, language_of(user.language), f"user:{user.id}"))
    if not recipients:
        recipients = [(c.email, language_of(sender.language), f"contact:{c.id}")
                      for c in contacts_of(session, [sender.id]).get(sender.id, [])
                      if c.email]
    listed = "".join(f"- {one_line(s['name'])}\n" for s in suggestions)
    mails = []
    for address, language, key in recipients:
        texts = mail_texts(language)
        values = {"reference": _reference(leg.id),
                  "receiver": one_line(organizations[leg.to_organization_id].name),
                  "suggestions": texts.gettext(
                      "Partners of the same region and pathway with room:\n") + listed + "\n"
                  if suggestions else texts.gettext(
                      "No partner of the same region and pathway has room at the moment; see "
                      "the directory.\n\n"),
                  "link": leg_link(public_url, leg.id)}
        mails.append(_mail(
            address, language,
            texts.gettext("Referral expired without an answer: %(reference)s") % values,
            texts.gettext(
                "Hello,\n\n"
                "Referral %(reference)s sent to %(receiver)s expired without being "
                "acknowledged. You may redirect the person to another partner.\n\n"
                "%(suggestions)s"
                "Open the referral in the portal:\n%(link)s\n\n"
                "This automatic message from Maillage holds no data about the person "
                "referred.\n") % values,
            f"referral_expired:{leg.id}:{key}"))
    return queue_mails(session, mails, now=now)


def endpoint_disabled(session: Session, *, endpoint_id: uuid.UUID, owner_id: uuid.UUID,
                      reason: str, sequence: int, now: datetime,
                      public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """Tell the organization's contacts that the hub disabled one of its webhook endpoints
    (the event's `sequence` tells one disabling from the next)."""
    organization = session.get(Organization, owner_id)
    if organization is None:
        return 0
    language = language_of(organization.language)
    texts = mail_texts(language)
    values = {"organization": one_line(organization.name), "endpoint": str(endpoint_id),
              "reason": one_line(reason),
              "link": f"{public_url.rstrip('/')}/api/v1/webhook-endpoints/{endpoint_id}"}
    subject = texts.gettext(
        "Maillage disabled a webhook endpoint of %(organization)s") % values
    text = texts.gettext(
        "Hello,\n\n"
        "Maillage disabled webhook endpoint %(endpoint)s of %(organization)s (%(reason)s). "
        "Events are no longer delivered to it.\n\n"
        "Once the system is fixed, enable it again through the API (PATCH %(link)s with "
        "{\"status\": \"active\"}); missed deliveries can be redelivered.\n") % values
    mails = [_mail(contact.email, language, subject, text,
                   f"webhook_endpoint_disabled:{endpoint_id}:{sequence}:{contact.id}")
             for contact in contacts_of(session, [owner_id]).get(owner_id, []) if contact.email]
    return queue_mails(session, mails, now=now)


def _mail(address: str, language: str, subject: str, text: str,
          dedupe_key: str) -> dict[str, str]:
    return {"to": address, "subject": subject, "text": text, "language": language,
            "dedupe_key": dedupe_key}


def one_line(text: str) -> str:
    return " ".join(text.split())

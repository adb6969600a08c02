"""Mails to organizations' staff when a scheduled check or the webhook engine records
something they must act on:

- `referral.deadline_missed`: to the receiving organization's contacts, in a digest per
  scheduler tick (`hub.followups.digests`, which uses the helpers below);
- `referral.expired`: to the counsellor who sent the leg from the portal (else the sending
  organization's contacts), with the partners suggested to redirect to;
- `webhook_endpoint.disabled`: to the endpoint's organization's contacts.

Queued with `hub.outbox.mail.queue_mails` in the transaction that records the event, so a mail exists
only if the event does, and sent by the worker after the commit.  Each mail's dedupe key names
the event and the recipient: one mail per event and recipient, however often a check runs.
No participant data: the leg's reference, organizations' names, dates and a link to the
portal's leg page, where entitlement and consent apply as everywhere else.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.directory.organizations import Contact
from hub.directory.organizations import Organization
from hub.outbox.mail import queue_mails

log = logging.getLogger(__name__)

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "expired_subject": "Demande expirée sans réponse : {reference}",
        "expired": (
            "Bonjour,\n\n"
            "La demande {reference} envoyée à {receiver} a expiré sans accusé de réception. "
            "Vous pouvez diriger la personne vers un autre partenaire.\n\n"
            "{suggestions}"
            "Ouvrez la demande dans le portail :\n{link}\n\n"
            "Ce message automatique de Maillage ne contient aucune donnée sur la personne "
            "référée.\n"),
        "suggested": "Partenaires de la même région et du même parcours qui ont de la place :\n",
        "none_suggested": "Aucun partenaire de la même région et du même parcours n'a de place "
                          "en ce moment ; consultez le répertoire.\n\n",
        "disabled_subject": "Maillage a désactivé un point de réception webhook de {organization}",
        "disabled": (
            "Bonjour,\n\n"
            "Maillage a désactivé le point de réception webhook {endpoint} de {organization} "
            "({reason}). Les événements ne lui sont plus livrés.\n\n"
            "Une fois le système réparé, réactivez-le par l'API (PATCH {link} avec "
            "{{\"status\": \"active\"}}) ; les livraisons manquées peuvent être relancées.\n"),
    },
    "en": {
        "expired_subject": "Referral expired without an answer: {reference}",
        "expired": (
            "Hello,\n\n"
            "Referral {reference} sent to {receiver} expired without being acknowledged. "
            "You may redirect the person to another partner.\n\n"
            "{suggestions}"
            "Open the referral in the portal:\n{link}\n\n"
            "This automatic message from Maillage holds no data about the person referred.\n"),
        "suggested": "Partners of the same region and pathway with room:\n",
        "none_suggested": "No partner of the same region and pathway has room at the moment; "
                          "see the directory.\n\n",
        "disabled_subject": "Maillage disabled a webhook endpoint of {organization}",
        "disabled": (
            "Hello,\n\n"
            "Maillage disabled webhook endpoint {endpoint} of {organization} ({reason}). "
            "Events are no longer delivered to it.\n\n"
            "Once the system is fixed, enable it again through the API (PATCH {link} with "
            "{{\"status\": \"active\"}}); missed deliveries can be redelivered.\n"),
    },
}


def language_of(language: str | None) -> str:
    return language if language in TEXTS else "fr"


def _reference(leg_id: uuid.UUID) -> str:
    """What staff and the portal call a leg: its id (no personal data)."""
    return str(leg_id)


def public_url() -> str:
    from hub.followups import (
        checkins,  # the address the app factory installed (it imports this module)
    )

    return checkins.public_url()


def leg_link(leg_id: uuid.UUID) -> str:
    return f"{public_url()}/legs/{leg_id}"


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


def leg_expired(session: Session, leg: Any, suggestions: list[dict[str, str]],
                now: datetime) -> int:
    """Tell the sender of an expired leg to redirect: the counsellor who sent it from the
    portal when there is one (in their language), else the sending organization's contacts."""
    from hub.accounts.users import User
    from hub.events.store import Event

    organizations = organizations_by_id(session, {leg.from_organization_id, leg.to_organization_id})
    sender = organizations[leg.from_organization_id]
    actor = session.scalar(select(Event.actor).where(
        Event.subject == f"referrals/{leg.id}", Event.type == "referral.sent").limit(1))
    recipients: list[tuple[str, str, str]] = []  # (address, language, recipient key)
    if actor and actor.startswith("user:"):
        try:
            user = session.get(User, uuid.UUID(actor.removeprefix("user:")))
        except ValueError:
            user = None
        if user is not None and user.disabled_at is None \
                and user.organization_id == leg.from_organization_id:
            recipients.append((user.email, language_of(user.language), f"user:{user.id}"))
    if not recipients:
        recipients = [(c.email, language_of(sender.language), f"contact:{c.id}")
                      for c in contacts_of(session, [sender.id]).get(sender.id, [])]
    mails = []
    for address, language, key in recipients:
        texts = TEXTS[language]
        listed = "".join(f"- {one_line(s['name'])}\n" for s in suggestions)
        values = {"reference": _reference(leg.id),
                  "receiver": one_line(organizations[leg.to_organization_id].name),
                  "suggestions": texts["suggested"] + listed + "\n" if suggestions
                  else texts["none_suggested"],
                  "link": leg_link(leg.id)}
        mails.append(_mail(address, language, "expired", values,
                           f"referral_expired:{leg.id}:{key}"))
    return queue_mails(session, mails, now=now)


def endpoint_disabled(session: Session, *, endpoint_id: uuid.UUID, owner_id: uuid.UUID,
                      reason: str, sequence: int, now: datetime) -> int:
    """Tell the organization's contacts that the hub disabled one of its webhook endpoints
    (the event's `sequence` tells one disabling from the next)."""
    organization = session.get(Organization, owner_id)
    if organization is None:
        return 0
    language = language_of(organization.language)
    values = {"organization": one_line(organization.name), "endpoint": str(endpoint_id),
              "reason": one_line(reason),
              "link": f"{public_url()}/api/v1/webhook-endpoints/{endpoint_id}"}
    mails = [_mail(contact.email, language, "disabled", values,
                   f"webhook_endpoint_disabled:{endpoint_id}:{sequence}:{contact.id}")
             for contact in contacts_of(session, [owner_id]).get(owner_id, [])]
    return queue_mails(session, mails, now=now)


def _mail(address: str, language: str, kind: str, values: dict[str, str],
          dedupe_key: str) -> dict[str, str]:
    texts = TEXTS[language]
    return {"to": address, "subject": texts[f"{kind}_subject"].format(**values),
            "text": texts[kind].format(**values), "language": language,
            "dedupe_key": dedupe_key}


def one_line(text: str) -> str:
    return " ".join(text.split())

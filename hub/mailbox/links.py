"""The links of new-leg mails (`HUB_PUBLIC_URL/a/<token>`): signed, bound to one leg and one
directory contact, valid at most `LINK_LIFETIME`, and while the contact is still in the
receiving organization's entry.

A token is the leg's and the contact's ids signed with the hub's secret (itsdangerous, with a
salt of its own so no other signed value of the hub passes for one), with the time it was made.
Nothing is stored: a copy of the database gives no working link, and a link ends by itself
when its contact leaves the directory or its leg moves to another organization.  Whoever holds
the link acts as that contact: a mail forwarded to a colleague gives them the same rights (the
page says so, and the leg's history names the contact).

Every refusal is the same `LinkRefused`, whatever was wrong (a character changed, another
hub's link, an expired or ended one), so a guesser learns nothing.  Hits are counted per link
and per address in `answer_link_hits` (`check_rate`): `RATE_LIMIT` per link and
`ADDRESS_RATE_LIMIT` per address in `RATE_WINDOW`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import BigInteger, Index, Integer, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, table_of
from hub.directory.organizations import Contact
from hub.errors import DomainError
from hub.referrals.legs import Referral

LINK_LIFETIME = timedelta(days=30)  # design §14: "valid until the leg closes (at most 30 days)"
SALT = "maillage.answer-link.v1"
RATE_LIMIT = 30  # requests per link in RATE_WINDOW
# Requests per address: higher, since one office's staff may share one address.
ADDRESS_RATE_LIMIT = 300
RATE_WINDOW = timedelta(minutes=10)


class LinkRefused(DomainError):
    """The link is not one of ours, or no longer works: one refusal for every cause."""

    http_status = 404
    title = "Link not valid"

    def __str__(self) -> str:
        return ("This link is not valid or no longer works. Open the referral in the portal, "
                "or ask the sending organization to write to you again.")


class TooManyRequests(DomainError):
    """Too many requests with one link, or from one address, in a short time."""

    http_status = 429
    title = "Too many requests"

    def __str__(self) -> str:
        return "Too many requests with this link. Wait a few minutes, then try again."


@dataclass(frozen=True)
class Holder:
    """Who opened a link: the leg and the contact it was made for."""

    leg: Referral
    contact: Contact

    @property
    def actor(self) -> str:
        """Recorded as the actor of what the link does, in the leg's history."""
        return f"contact:{self.contact.id}"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, leg_id: uuid.UUID, contact_id: uuid.UUID) -> str:
    """The token of the link for `contact_id` to answer `leg_id`."""
    return str(_serializer(secret_key).dumps([leg_id.hex, contact_id.hex]))


def link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/a/{token}"


def read_token(secret_key: str, token: str, max_age: timedelta = LINK_LIFETIME
               ) -> tuple[uuid.UUID, uuid.UUID]:
    """The leg's and the contact's ids a token signed with `secret_key` names, if it is at
    most `max_age` old; else LinkRefused.  No database: see `open_link`."""
    try:
        leg_hex, contact_hex = _serializer(secret_key).loads(
            token, max_age=int(max_age.total_seconds()))
        return uuid.UUID(hex=leg_hex), uuid.UUID(hex=contact_hex)
    except (BadData, ValueError, TypeError):
        raise LinkRefused() from None


def open_link(session: Session, secret_key: str, token: str) -> Holder:
    """The leg and contact of a token still valid; else LinkRefused (never which part failed).

    A closed leg is still shown (read-only): what was done is what its recipient wants to see.
    """
    leg_id, contact_id = read_token(secret_key, token)
    leg = session.get(Referral, leg_id)
    contact = session.get(Contact, contact_id)
    if leg is None or contact is None or contact.organization_id != leg.to_organization_id:
        raise LinkRefused()
    return Holder(leg=leg, contact=contact)


# -- rate limit ----------------------------------------------------------------------------------


class LinkHit(Base):
    """One request to a link page: by link (a digest of its token) and by address."""

    __tablename__ = "answer_link_hits"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    # "link:<sha256 of the token>" or "address:<remote address>": never the token itself.
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_answer_link_hits_key_at", "key", "at"),)


_HITS = table_of(LinkHit)


def check_rate(session: Session, token: str, address: str | None, now: datetime) -> None:
    """Count this request; TooManyRequests when its link or its address reached its limit
    within `RATE_WINDOW`.  Written with the request's transaction: a refused request (rolled
    back) counts too, since the caller commits it (see `hub.portal.answer`)."""
    limits = {"link:" + hashlib.sha256(token.encode()).hexdigest(): RATE_LIMIT}
    if address:
        limits[f"address:{address}"[:100]] = ADDRESS_RATE_LIMIT
    keys = list(limits)
    since = now - RATE_WINDOW
    session.execute(delete(_HITS).where(_HITS.c.key.in_(keys), _HITS.c.at < since))
    counts: dict[str, int] = dict(session.execute(
        select(_HITS.c.key, func.count()).where(_HITS.c.key.in_(keys), _HITS.c.at >= since)
        .group_by(_HITS.c.key)).all())
    session.execute(insert(_HITS), [{"key": key, "at": now} for key in keys])
    if any(counts.get(key, 0) >= limit for key, limit in limits.items()):
        raise TooManyRequests()

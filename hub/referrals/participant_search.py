"""Finding an organization's participants by name, email or phone while those stay encrypted.

Names, email and phone are Fernet tokens at rest (`hub.crypto`): SQL cannot compare them. So
each participant has *search terms*: keyed hashes (blind indexes, HMAC-SHA256 under the index
key) of
- every prefix (2 characters and more) of every word of their names, folded: no accents, no
  case, hyphens and apostrophes split words ("Marie-Ève Bérubé" gives `ma`, `mar`, … `marie`,
  `ev`, `eve`, `be`, … `berube`);
- their email, whole and folded;
- their phone digits, whole (without the North American leading 1), and the last 7 and the
  last 4 digits.

A query is folded the same way and hashed; a participant is found when they hold every one of
the query's terms (word order does not matter). The search is then an indexed lookup, however
many participants the organization has, and a copy of the database shows only hashes. What
the hashes let an attacker with the database but without the key do: see that two people share
a name prefix or a phone number, never what it is. docs/privacy.md explains the choice.

Rows are kept by the use cases that write names and contacts (`reindex`), in their
transaction; `hub data reindex-participants` rebuilds them (after a change of secret key).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, ForeignKey, Index, String, delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column

from hub import crypto
from hub.db import Base, table_of

MIN_PREFIX = 2
# Longer words are indexed up to this many characters, and queries cut the same way.
MAX_PREFIX = 24
MIN_PHONE_DIGITS = 4


class ParticipantSearchTerm(Base):
    __tablename__ = "participant_search_terms"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participants.id"), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))

    __table_args__ = (
        Index("ix_participant_search_terms_lookup", "organization_id", "term", "participant_id"),
    )


TERMS = table_of(ParticipantSearchTerm)
_WORD = re.compile(r"[^\W_]+")


def name_words(text: str) -> list[str]:
    """'Marie-Ève  O’Neil' -> ['marie', 'eve', 'o', 'neil']."""
    return _WORD.findall(crypto.normalize_name(text))


def plain_terms(given_name: str, family_name: str, email: str | None,
                phone: str | None) -> set[str]:
    """The terms before hashing: `n:` name prefixes, `e:` email, `p:` phone digits."""
    terms = set()
    for word in name_words(f"{given_name} {family_name}"):
        word = word[:MAX_PREFIX]
        if len(word) < MIN_PREFIX:
            terms.add(f"n:{word}")  # an initial is found only whole
        terms.update(f"n:{word[:end]}" for end in range(MIN_PREFIX, len(word) + 1))
    if email and (folded := crypto.normalize_email(email)):
        terms.add(f"e:{folded}")
    digits = crypto.normalize_phone(phone or "")
    if len(digits) >= MIN_PHONE_DIGITS:
        terms.update({f"p:{digits}", f"p:{digits[-7:]}", f"p:{digits[-4:]}"})
    return terms


def hashed(keyring: crypto.KeyRing, terms: Iterable[str]) -> set[str]:
    return {keyring.blind_index(f"search:{term}") for term in terms}


def query_terms(query: str) -> set[str]:
    """What a typed query looks for: an email, phone digits, or name words (each a prefix).

    "5145550199", "514 555-0199", "+1 (514) 555-0199" and "555-0199" are phone digits;
    anything with an "@" is an email; the rest is name words."""
    query = query.strip()
    if "@" in query:
        return {f"e:{crypto.normalize_email(query)}"}
    if re.fullmatch(r"[\d\s().+\-]+", query):
        digits = crypto.normalize_phone(query)
        if len(digits) >= MIN_PHONE_DIGITS:
            return {f"p:{digits}"}
    return {f"n:{word[:MAX_PREFIX]}" for word in name_words(query)}


def rows_for(keyring: crypto.KeyRing, participant_id: uuid.UUID, organization_id: uuid.UUID,
             given_name: str, family_name: str, email: str | None, phone: str | None
             ) -> list[dict[str, object]]:
    return [{"participant_id": participant_id, "organization_id": organization_id, "term": term}
            for term in sorted(hashed(keyring, plain_terms(given_name, family_name, email,
                                                           phone)))]


def reindex(session: Session, participant_id: uuid.UUID, organization_id: uuid.UUID, *,
            given_name: str, family_name: str, email: str | None, phone: str | None) -> None:
    """Replace the participant's search terms with those of the values given (flushed first:
    the participant row must exist)."""
    session.flush()
    session.execute(delete(TERMS).where(TERMS.c.participant_id == participant_id))
    rows = rows_for(crypto.current(), participant_id, organization_id, given_name,
                    family_name, email, phone)
    if rows:
        session.execute(insert(TERMS), rows)


def conditions(participant_id: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID],
               organization_id: uuid.UUID,
               query: str) -> list[ColumnElement[bool]] | None:
    """One condition per term of `query` on the participant whose id is `participant_id` (to
    put in the WHERE of a query on the organization's participants): its id is among the
    holders of that term. None when the query has no term to look for (everyone matches).

    A condition per term rather than a GROUP BY of the matching rows: the database chooses
    how to meet them, from the rarest term's rows (an index range), or, on PostgreSQL, walking
    the participants newest first and checking each term, stopping at the page's end, when
    every term is common ("ma"). It chooses for each search's own terms because
    `participants.search` asks PostgreSQL for a plan made with the values (never a generic one
    of a prepared statement)."""
    terms = sorted(hashed(crypto.current(), query_terms(query)))
    if not terms:
        return None
    return [participant_id.in_(select(TERMS.c.participant_id).where(
                TERMS.c.organization_id == organization_id, TERMS.c.term == term))
            for term in terms]

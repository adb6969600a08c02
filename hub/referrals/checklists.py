"""The shared checklist of a move (docs/design.md §12): what must be ready before and at
arrival, each item owned by the sender or the receiver, kept with the leg.

Settlement and employment legs get the default items when they are sent; either party of an
open leg changes an item (status, owner, note); each change is a `referral.checklist_updated`
event carrying the item's code, owner and status (the note, which may name the person, stays
in this table, encrypted, and is shown by `hub.consent.visibility`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub import crypto
from hub.accounts.callers import Caller
from hub.crypto import EncryptedText
from hub.db import Base, utcnow
from hub.errors import Invalid, LegClosed, NotFound
from hub.events.types import EventType
from hub.referrals import lifecycle
from hub.referrals.legs import (
    OPEN_STATUSES,
    Referral,
    flush_checking_version,
    record_leg_event,
)
from hub.referrals.lifecycle import Party


class ItemStatus(StrEnum):
    TODO = "todo"
    DONE = "done"
    NOT_NEEDED = "not_needed"


# The items, in the order a move is prepared, and who does each by default: what is done
# before leaving (in Montréal) is the sender's, what is done on arrival the receiver's.
DEFAULT_OWNERS: dict[str, Party] = {
    "lease_termination": Party.SENDER,
    "housing": Party.RECEIVER,
    "moving": Party.SENDER,
    "drivers_licence": Party.SENDER,
    "vehicle": Party.RECEIVER,
    "health_insurance_card": Party.SENDER,
    "family_doctor": Party.RECEIVER,
    "school_or_daycare": Party.RECEIVER,
    "francization": Party.RECEIVER,
    "spouse_employment": Party.RECEIVER,
    "bank_account": Party.RECEIVER,
    "employer_contact": Party.SENDER,
    "welcome_on_arrival": Party.RECEIVER,
}
ITEM_CODES = tuple(DEFAULT_OWNERS)
# Which legs get a checklist when sent, and which items: a move for a job, or to settle.
DEFAULT_ITEMS: dict[str, tuple[str, ...]] = {
    lifecycle.Pathway.EMPLOYMENT.value: ITEM_CODES,
    lifecycle.Pathway.SETTLEMENT.value: tuple(c for c in ITEM_CODES if c != "employer_contact"),
}


class ChecklistItem(Base):
    """One item of a leg's checklist."""

    __tablename__ = "referral_checklist_items"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(10))  # sender, receiver
    status: Mapped[str] = mapped_column(String(12))
    # Free text ("bail résilié au 1er juillet, clés chez Mme X"): encrypted, shown per reader.
    note: Mapped[str | None] = mapped_column(EncryptedText)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


def _item_owner(session: Session, item: ChecklistItem) -> uuid.UUID | None:
    referral = session.get(Referral, item.referral_id)
    return referral.participant_id if referral is not None else None


# A checklist note is about the person moving: sealed under their own key (§15).
crypto.personal_data(ChecklistItem, ("note",), _item_owner)


def add_defaults(session: Session, referral: Referral) -> None:
    """The default items of a new leg of a pathway that moves people (none for others)."""
    for code in DEFAULT_ITEMS.get(referral.pathway, ()):
        session.add(ChecklistItem(referral_id=referral.id, code=code,
                                  owner=DEFAULT_OWNERS[code].value,
                                  status=ItemStatus.TODO.value, note=None,
                                  updated_at=referral.created_at, updated_by="hub"))


def items_of(session: Session, referral: Referral) -> list[ChecklistItem]:
    """The leg's items in the order of `ITEM_CODES`."""
    found = {item.code: item for item in session.scalars(
        select(ChecklistItem).where(ChecklistItem.referral_id == referral.id))}
    return [found[code] for code in ITEM_CODES if code in found]


def update_item(session: Session, caller: Caller, referral: Referral, code: str, *,
                status: str, owner: str | None = None, note: str | None = None,
                clear_note: bool = False) -> ChecklistItem:
    """Set an item of an open leg's checklist (adding it if the leg had none), for either
    party; records `referral.checklist_updated`.  `note` replaces the note when given;
    `clear_note` removes it."""
    party = referral.party_of(caller.organization_id)
    if party is None:  # coordinators watch; other organizations do not see the leg at all
        raise NotFound("referral", referral.id)
    if referral.status not in OPEN_STATUSES:
        raise LegClosed(referral.id, referral.status)
    problems: dict[str, list[str]] = {}
    if code not in DEFAULT_OWNERS:
        problems["item"] = [f"Unknown item {code!r}; one of {', '.join(ITEM_CODES)}."]
    if status not in set(ItemStatus):
        problems["status"] = [f"One of {', '.join(ItemStatus)}."]
    if owner is not None and owner not in (Party.SENDER.value, Party.RECEIVER.value):
        problems["owner"] = ["sender or receiver."]
    if problems:
        raise Invalid(problems)
    now = utcnow()
    item = session.get(ChecklistItem, (referral.id, code))
    if item is None:
        item = ChecklistItem(referral_id=referral.id, code=code,
                             owner=DEFAULT_OWNERS[code].value, note=None)
        session.add(item)
    item.status = status
    if owner is not None:
        item.owner = owner
    if clear_note:
        item.note = None
    elif note is not None and note.strip():
        item.note = note.strip()
    item.updated_at = now
    item.updated_by = caller.actor
    # The event's sequence is the leg's version: the change moves the leg on by one.
    referral.updated_at = now
    flush_checking_version(session)
    record_leg_event(session, referral, EventType.REFERRAL_CHECKLIST_UPDATED, caller,
                     extra={"item": {"code": code, "owner": item.owner, "status": status}})
    return item

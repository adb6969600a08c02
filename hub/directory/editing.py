"""Changing a directory entry: an organization keeps its own entry (services, locations,
contacts, capacity); hub administrators may keep anyone's.  Every change, and every "still
correct" confirmation, records who validated the entry and when."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.db import utcnow
from hub.directory.organizations import (
    Capacity,
    Contact,
    Location,
    Organization,
    Service,
    WaitlistBand,
)
from hub.errors import Invalid, NotAllowed

# Fields of the organization itself that its entry may change.
ORGANIZATION_FIELDS = ("name", "kind", "region", "capacity", "capacity_until", "description",
                       "website", "time_zone", "language", "referral_mails")


def check_may_edit(caller: Caller, organization: Organization, *, is_hub_admin: bool,
                   changes: Mapping[str, Any] | None = None) -> None:
    """Only the organization itself, or a hub administrator (a coordination body holding
    hub:admin), may change an entry; only an administrator may change its kind, since being
    a coordination body opens the whole network's handoffs."""
    admin = is_hub_admin and caller.is_coordinator
    if admin:
        return
    if caller.organization_id == organization.id:
        if changes and changes.get("kind", organization.kind) != organization.kind:
            raise NotAllowed("An organization's kind is changed by the hub's administrators.")
        return
    raise NotAllowed("An organization keeps its own directory entry; only hub administrators "
                     "may change another organization's.")


CAPACITY_FIELDS = ("capacity", "waitlist_band", "capacity_updated_at")


def _services(current: Iterable[Service], items: Iterable[Mapping[str, Any]],
              now: datetime) -> list[Service]:
    """The new list of services.  A service's capacity (design §14) is dated when the item
    says it (`capacity_updated_at`: now, unless the item carries its date, as an HSDS export
    read back does); an item that leaves it out keeps what the same-named service had."""
    before = {service.name: service for service in current}
    services = []
    for item in items:
        service = Service(name=item["name"], description=item.get("description"),
                          eligibility_notes=item.get("eligibility_notes"),
                          languages=list(item.get("languages") or []))
        service.pathways = list(item.get("pathways") or [])
        old = before.get(item["name"])
        if "capacity" in item or "waitlist_band" in item:
            service.capacity = item.get("capacity", old.capacity if old else None)
            service.waitlist_band = item.get("waitlist_band")
            service.capacity_updated_at = item.get("capacity_updated_at") or now
        elif old is not None:
            for name in CAPACITY_FIELDS:
                setattr(service, name, getattr(old, name))
        services.append(service)
    return services


def declare_capacity(session: Session, organization: Organization, *, capacity: str,
                     until: date | None = None, waitlist_band: str | None = None,
                     now: datetime | None = None) -> Organization:
    """The receiver's one-click answer after declining for lack of room (design §14): the
    organization and each of its services are `capacity` (full, or a waitlist of
    `waitlist_band`) until `until` (None: not known), dated now."""
    if capacity not in set(Capacity):
        raise Invalid({"capacity": [f"One of: {', '.join(Capacity)}."]})
    if waitlist_band is not None and waitlist_band not in set(WaitlistBand):
        raise Invalid({"waitlist_band": [f"One of: {', '.join(WaitlistBand)}."]})
    now = now or utcnow()
    if until is not None and until < now.date():
        raise Invalid({"until": ["A date from today on."]})
    organization.capacity = capacity
    organization.capacity_until = until if capacity != Capacity.OPEN.value else None
    for service in organization.services:
        service.capacity = capacity
        service.waitlist_band = waitlist_band if capacity == Capacity.WAITLIST.value else None
        service.capacity_updated_at = now
    session.flush()
    return organization


def apply_entry(organization: Organization, changes: Mapping[str, Any],
                now: datetime | None = None) -> None:
    """Set the given fields; `services`, `locations` and `contacts`, when given, replace the
    entry's lists whole (what a partner sends is its current entry)."""
    for name in ORGANIZATION_FIELDS:
        if name in changes:
            setattr(organization, name, changes[name])
    if "services" in changes:
        organization.services = _services(organization.services, changes["services"],
                                          now or utcnow())
    if "locations" in changes:
        organization.locations = [Location(**item) for item in changes["locations"]]
    if "contacts" in changes:
        organization.contacts = _contacts(organization.contacts, changes["contacts"])


def _contacts(current: Iterable[Contact], items: Iterable[Mapping[str, Any]]) -> list[Contact]:
    """The new list of contacts, keeping the row (and its id) of a contact whose address is
    still listed: the links mailed to a contact (`hub.mailbox.links`) work as long as the
    contact stays in the entry, whatever else of the entry changes."""
    by_address = {c.email.lower(): c for c in current if c.email}
    kept = []
    for item in items:
        contact = by_address.pop((item.get("email") or "").lower(), None)
        if contact is None:
            kept.append(Contact(**item))
            continue
        for name, value in item.items():
            setattr(contact, name, value)
        kept.append(contact)
    return kept


def update_entry(session: Session, organization: Organization, changes: Mapping[str, Any], *,
                 validated_by: str, now: datetime | None = None) -> Organization:
    apply_entry(organization, changes, now)
    mark_validated(organization, validated_by=validated_by, now=now)
    session.flush()
    return organization


def mark_validated(organization: Organization, *, validated_by: str,
                   now: datetime | None = None) -> None:
    """The entry was checked by someone at the organization (or an administrator)."""
    organization.last_validated_at = now or utcnow()
    organization.last_validated_by = validated_by

"""Changing a directory entry: an organization keeps its own entry (services, locations,
contacts, capacity); hub administrators may keep anyone's.  Every change, and every "still
correct" confirmation, records who validated the entry and when."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.db import utcnow
from hub.directory.organizations import Contact, Location, Organization, Service
from hub.errors import NotAllowed

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


def _services(items: Iterable[Mapping[str, Any]]) -> list[Service]:
    services = []
    for item in items:
        service = Service(name=item["name"], description=item.get("description"),
                          eligibility_notes=item.get("eligibility_notes"),
                          languages=list(item.get("languages") or []))
        service.pathways = list(item.get("pathways") or [])
        services.append(service)
    return services


def apply_entry(organization: Organization, changes: Mapping[str, Any]) -> None:
    """Set the given fields; `services`, `locations` and `contacts`, when given, replace the
    entry's lists whole (what a partner sends is its current entry)."""
    for name in ORGANIZATION_FIELDS:
        if name in changes:
            setattr(organization, name, changes[name])
    if "services" in changes:
        organization.services = _services(changes["services"])
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
    apply_entry(organization, changes)
    mark_validated(organization, validated_by=validated_by, now=now)
    session.flush()
    return organization


def mark_validated(organization: Organization, *, validated_by: str,
                   now: datetime | None = None) -> None:
    """The entry was checked by someone at the organization (or an administrator)."""
    organization.last_validated_at = now or utcnow()
    organization.last_validated_by = validated_by

"""Changing a directory entry: an organization keeps its own entry (services, locations,
contacts, capacity); hub administrators may keep anyone's.  Every change, and every "still
correct" confirmation, records who validated the entry and when, and closes the reports that
it was out of date, which any other partner may file (docs/design.md §13)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.db import iso_utc, utcnow
from hub.directory.organizations import (
    Capacity,
    Contact,
    Location,
    Organization,
    Service,
    WaitlistBand,
    is_one_line,
)
from hub.directory.outdated import NOTE_LIMIT, OutdatedReport
from hub.errors import Invalid, NotAllowed
from hub.events.store import Event, record
from hub.events.types import EventType

# Fields of the organization itself that its entry may change.
ORGANIZATION_FIELDS = ("name", "kind", "region", "capacity", "capacity_until", "description",
                       "website", "time_zone", "language", "referral_mails")


def check_may_edit(caller: Caller, organization: Organization, *, is_hub_admin: bool,
                   changes: Mapping[str, Any] | None = None) -> None:
    """Only the organization itself, or a hub administrator (a coordination body holding
    hub:admin), may change an entry; only an administrator may change its kind, since being
    a coordination body opens the whole network's handoffs."""
    admin = is_hub_admin and caller.is_coordinator
    new_kind = (changes or {}).get("kind", organization.kind)
    changes_kind = new_kind != organization.kind
    if admin:
        if changes_kind and caller.organization_id == organization.id:
            # It would lose hub:admin's use at once, and nobody could give it back.
            raise NotAllowed("A hub administrator may not change its own coordination body's "
                             "kind: it would lose the powers of the hub's administration. "
                             "Another coordination body's administrator may.")
        return
    if caller.organization_id == organization.id:
        if changes_kind:
            raise NotAllowed("An organization's kind is changed by the hub's administrators.")
        return
    raise NotAllowed("An organization keeps its own directory entry; only hub administrators "
                     "may change another organization's.")


CAPACITY_FIELDS = ("capacity", "waitlist_band", "capacity_updated_at")


def _services(current: Iterable[Service], items: Iterable[Mapping[str, Any]],
              now: datetime) -> list[Service]:
    """The new list of services.  A service's capacity (design §14) keeps its date while it
    stays what the same-named service had; a new one is dated now, unless the item carries
    its date (an HSDS export read back); an item that leaves it out keeps it."""
    before = {service.name: service for service in current}
    services = []
    for item in items:
        service = Service(name=item["name"], description=item.get("description"),
                          eligibility_notes=item.get("eligibility_notes"),
                          languages=list(item.get("languages") or []))
        service.pathways = list(item.get("pathways") or [])
        old = before.get(item["name"])
        if old is not None:
            for name in CAPACITY_FIELDS:
                setattr(service, name, getattr(old, name))
        if "capacity" in item or "waitlist_band" in item:
            said = (item.get("capacity", service.capacity), item.get("waitlist_band"))
            if said != (service.capacity, service.waitlist_band) \
                    or item.get("capacity_updated_at"):
                service.capacity, service.waitlist_band = said
                service.capacity_updated_at = (item.get("capacity_updated_at")
                                               or (now if said[0] is not None else None))
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
    if "name" in changes and not is_one_line(str(changes["name"] or "")):
        # The API's and the portal's schemas say so first; imports come through here too.
        raise Invalid({"name": ["One line, without control characters (line breaks, tabs...)."]})
    for name in ORGANIZATION_FIELDS:
        if name in changes:
            setattr(organization, name, changes[name])
    if "privacy_officer" in changes:  # {name, email}, or None to name nobody
        officer = changes["privacy_officer"] or {}
        organization.privacy_officer_name = officer.get("name")
        organization.privacy_officer_email = officer.get("email")
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
    """The entry was checked by someone at the organization (or an administrator): the
    reports that it was out of date are answered."""
    now = now or utcnow()
    organization.last_validated_at = now
    organization.last_validated_by = validated_by
    session = Session.object_session(organization)
    if session is not None:
        session.execute(update(OutdatedReport)
                        .where(OutdatedReport.organization_id == organization.id,
                               OutdatedReport.resolved_at.is_(None))
                        .values(resolved_at=now))


def report_outdated(session: Session, organization: Organization, caller: Caller,
                    note: str | None, *, now: datetime | None = None) -> OutdatedReport:
    """A partner says `organization`'s entry is out of date: the report is kept, open until
    the entry is validated again, and `organization.outdated_reported` goes to the
    organization.  The event carries no note (free text stays out of the event log): the
    organization reads it in its list of reports."""
    if caller.organization_id == organization.id:
        raise Invalid({"organization_id": [
            "This is your own organization's entry: correct it, or confirm it is still "
            "accurate, instead of reporting it."]})
    text = (note or "").strip()
    if len(text) > NOTE_LIMIT:
        raise Invalid({"note": [f"At most {NOTE_LIMIT} characters; shorten it."]})
    report = OutdatedReport(organization_id=organization.id,
                            reported_by_organization_id=caller.organization_id,
                            reported_by=caller.actor, note=text or None,
                            reported_at=now or utcnow())
    session.add(report)
    session.flush()
    subject = f"organizations/{organization.id}"
    previous = session.scalar(select(Event.sequence).where(Event.subject == subject)
                              .order_by(Event.sequence.desc()).limit(1)) or 0
    reporter = session.get(Organization, caller.organization_id)
    record(session, EventType.ORGANIZATION_OUTDATED_REPORTED, subject=subject,
           sequence=previous + 1, source_organization_id=caller.organization_id,
           actor=caller.actor,
           data={"organization": {"id": str(organization.id), "name": organization.name},
                 "report": {"id": str(report.id),
                            "reported_at": iso_utc(report.reported_at),
                            "reported_by_organization": {
                                "id": str(caller.organization_id),
                                "name": reporter.name if reporter else None},
                            "url": f"/api/v1/organizations/{organization.id}/outdated-reports"}},
           audience={organization.id})
    return report


def open_reports(session: Session, organization_id: Any) -> list[OutdatedReport]:
    """The reports not yet answered by a validation of the entry, oldest first."""
    return list(session.scalars(select(OutdatedReport)
                                .where(OutdatedReport.organization_id == organization_id,
                                       OutdatedReport.resolved_at.is_(None))
                                .order_by(OutdatedReport.reported_at, OutdatedReport.id)))

"""Open Referral HSDS 3.0 JSON: the directory as the format other directories read, and back.

An export is a list of HSDS organization objects, each with its services, locations (with an
address when the entry has a complete one) and contacts (with their phone).  What HSDS has no
field for (kind, Québec region code, capacity, the pathways a service serves, a contact's
preferred channel) goes in an `x_maillage` object beside the HSDS fields, which HSDS readers
ignore and our import reads back.  Ids of sub-objects HSDS needs but the hub does not keep
(addresses, phones, languages) are UUIDv5 of their parent, so an export is stable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from hub.directory.organizations import (
    QUEBEC_REGIONS,
    Capacity,
    Contact,
    Location,
    Organization,
    OrganizationKind,
    Service,
    WaitlistBand,
)

HSDS_VERSION = "3.0"
EXTENSION = "x_maillage"


class NotHsds(ValueError):
    """The document is not HSDS as this hub reads it; the message says where."""


def _child_id(parent: uuid.UUID, what: str) -> str:
    return str(uuid.uuid5(parent, what))


def _language(parent: uuid.UUID, code: str) -> dict[str, Any]:
    return {"id": _child_id(parent, f"language:{code}"), "code": code}


def _service(service: Service) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(service.id), "organization_id": str(service.organization_id),
        "name": service.name, "status": "active",
        "languages": [_language(service.id, code) for code in service.languages],
        EXTENSION: {"pathways": service.pathways},
    }
    if service.capacity is not None:  # design §14: said, with its wait and its date
        out[EXTENSION].update({
            "capacity": service.capacity, "waitlist_band": service.waitlist_band,
            "capacity_updated_at": (service.capacity_updated_at.isoformat()
                                    if service.capacity_updated_at else None)})
    if service.description:
        out["description"] = service.description
    if service.eligibility_notes:
        out["eligibility_description"] = service.eligibility_notes
    return out


def _location(location: Location) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(location.id), "location_type": "physical",
                           "organization_id": str(location.organization_id),
                           EXTENSION: {"region": location.region}}
    if location.name:
        out["name"] = location.name
    if location.address and location.city and location.postal_code:
        out["addresses"] = [{
            "id": _child_id(location.id, "address"), "location_id": str(location.id),
            "address_1": location.address, "city": location.city,
            "region": QUEBEC_REGIONS[location.region], "state_province": "QC",
            "postal_code": location.postal_code, "country": "CA", "address_type": "physical",
        }]
    elif location.city:
        # No complete address: the city alone, which HSDS's address cannot hold.
        out[EXTENSION]["city"] = location.city
    return out


def _contact(contact: Contact) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(contact.id), "organization_id": str(contact.organization_id)}
    for field, value in (("name", contact.name), ("title", contact.role),
                         ("email", contact.email)):
        if value:
            out[field] = value
    if contact.phone:
        out["phones"] = [{"id": _child_id(contact.id, "phone"), "contact_id": str(contact.id),
                          "number": contact.phone}]
    if contact.preferred_channel:
        out[EXTENSION] = {"preferred_channel": contact.preferred_channel}
    return out


def organization_to_hsds(organization: Organization) -> dict[str, Any]:
    """One directory entry as an HSDS 3.0 organization object."""
    out: dict[str, Any] = {
        "id": str(organization.id), "name": organization.name,
        "description": organization.description or "",
        "services": [_service(s) for s in organization.services],
        "locations": [_location(p) for p in organization.locations],
        "contacts": [_contact(c) for c in organization.contacts],
        EXTENSION: {
            "kind": organization.kind, "region": organization.region,
            "capacity": organization.capacity,
            "capacity_until": (organization.capacity_until.isoformat()
                               if organization.capacity_until else None),
            "last_validated_at": organization.last_validated_at.isoformat(),
        },
    }
    if organization.website:
        out["website"] = organization.website
    return out


def export_directory(organizations: Iterable[Organization]) -> list[dict[str, Any]]:
    return [organization_to_hsds(o) for o in organizations]


# --- reading HSDS back ----------------------------------------------------------------------

def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _extension(item: Mapping[str, Any]) -> Mapping[str, Any]:
    value = item.get(EXTENSION)
    return value if isinstance(value, Mapping) else {}


def _list(item: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise NotHsds(f"{where}.{key} must be a list of objects")
    return value


def _region_of(location: Mapping[str, Any]) -> str | None:
    code = _extension(location).get("region")
    if code in QUEBEC_REGIONS:
        return str(code)
    names = {name: code for code, name in QUEBEC_REGIONS.items()}
    for address in location.get("addresses") or []:
        if isinstance(address, Mapping) and address.get("region") in names:
            return names[address["region"]]
    return None


def _service_capacity(extension: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A service's capacity, its wait and their date, when the extension gives them (design
    §14); nothing when it gives no capacity, so the service keeps the one it has."""
    capacity = extension.get("capacity")
    if capacity is None:
        return {}
    if capacity not in set(Capacity):
        raise NotHsds(f"{where}.{EXTENSION}.capacity must be one of: {', '.join(Capacity)}")
    band = extension.get("waitlist_band")
    if band is not None and band not in set(WaitlistBand):
        raise NotHsds(f"{where}.{EXTENSION}.waitlist_band must be one of: "
                      f"{', '.join(WaitlistBand)}")
    dated = extension.get("capacity_updated_at")
    try:
        updated_at = datetime.fromisoformat(dated) if isinstance(dated, str) else None
    except ValueError:
        raise NotHsds(f"{where}.{EXTENSION}.capacity_updated_at is not a date and time") \
            from None
    if updated_at is not None and updated_at.tzinfo is None:
        raise NotHsds(f"{where}.{EXTENSION}.capacity_updated_at needs its UTC offset")
    return {"capacity": capacity, "waitlist_band": band, "capacity_updated_at": updated_at}


def entry_from_hsds(item: Mapping[str, Any], where: str = "organization") -> dict[str, Any]:
    """An HSDS organization object as the fields of a directory entry (the shape
    `hub.directory.editing.apply_entry` takes), or NotHsds saying what is missing."""
    if not isinstance(item, Mapping):
        raise NotHsds(f"{where} must be an object")
    name = _text(item.get("name"))
    if not name:
        raise NotHsds(f"{where}.name is required")
    extension = _extension(item)
    services = []
    for n, service in enumerate(_list(item, "services", where)):
        if not _text(service.get("name")):
            raise NotHsds(f"{where}.services[{n}].name is required")
        pathways = _extension(service).get("pathways") or []
        services.append({
            "name": service["name"].strip(), "description": _text(service.get("description")),
            "eligibility_notes": _text(service.get("eligibility_description")),
            "languages": [lang["code"] for lang in _list(service, "languages", where)
                          if _text(lang.get("code"))],
            "pathways": [p for p in pathways if isinstance(p, str)],
            **_service_capacity(_extension(service), f"{where}.services[{n}]"),
        })
    locations = []
    for n, location in enumerate(_list(item, "locations", where)):
        region = _region_of(location)
        if region is None:
            raise NotHsds(f"{where}.locations[{n}] has no Québec region")
        address = next(iter(_list(location, "addresses", where)), {})
        locations.append({
            "name": _text(location.get("name")), "address": _text(address.get("address_1")),
            "city": _text(address.get("city")) or _text(_extension(location).get("city")),
            "postal_code": _text(address.get("postal_code")), "region": region})
    contacts = []
    for contact in _list(item, "contacts", where):
        phones = _list(contact, "phones", where)
        contacts.append({
            "name": _text(contact.get("name")), "role": _text(contact.get("title")),
            "email": _text(contact.get("email")),
            "phone": _text(phones[0].get("number")) if phones else None,
            "preferred_channel": _extension(contact).get("preferred_channel")})
    region = extension.get("region")
    if region not in QUEBEC_REGIONS:
        region = locations[0]["region"] if locations else None
    if region is None:
        raise NotHsds(f"{where} has no Québec region (x_maillage.region or a location's)")
    kind = extension.get("kind")
    capacity = extension.get("capacity")
    until = extension.get("capacity_until")
    try:
        capacity_until = date.fromisoformat(until) if isinstance(until, str) else None
    except ValueError:
        raise NotHsds(f"{where}.x_maillage.capacity_until is not a date") from None
    return {
        "name": name, "description": _text(item.get("description")),
        "website": _text(item.get("website")),
        # An unknown kind is not guessed: `other`, for an administrator to confirm.
        "kind": kind if kind in set(OrganizationKind) else OrganizationKind.OTHER.value,
        "region": region,
        "capacity": capacity if capacity in set(Capacity) else Capacity.OPEN.value,
        "capacity_until": capacity_until,
        "services": services, "locations": locations, "contacts": contacts,
    }

"""HSDS documents in and out of the directory (the format itself is `hub.adapters.hsds`).

An import matches each organization by its id (an export of this hub read back), else by name
and region like the grid import; an entry equal to what the directory holds is left unchanged,
so importing an export changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.adapters.hsds import NotHsds, entry_from_hsds, organization_to_hsds
from hub.directory.editing import apply_entry, mark_validated
from hub.directory.grid_import import key_of
from hub.directory.organizations import Organization
from hub.followups.policies import PATHWAYS


@dataclass
class HsdsOutcome:
    index: int
    action: str  # create, update, unchanged, reject
    name: str | None
    reason: str | None = None


def _entries() -> Any:
    return (selectinload(Organization.services), selectinload(Organization.locations),
            selectinload(Organization.contacts))


def export_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.name)
                                .options(*_entries())))


def export_page(session: Session, *, after_id: uuid.UUID | None, limit: int,
                updated_since: datetime | None = None) -> list[Organization]:
    """One page of the directory for the HSDS export API, in id order so a cursor (the last
    id) resumes it exactly; each page's services, locations and contacts in three queries.

    `updated_since` keeps the entries changed at or after that moment (`updated_at`, kept
    by `hub.directory.organizations`).  The order stays the ids': an entry changed while a consumer
    walks the pages keeps its place, so none is skipped."""
    query = select(Organization).order_by(Organization.id).limit(limit).options(*_entries())
    if after_id is not None:
        query = query.where(Organization.id > after_id)
    if updated_since is not None:
        query = query.where(Organization.updated_at >= updated_since)
    return list(session.scalars(query))


def _check(entry: dict[str, Any]) -> None:
    if len(entry["name"]) > 200:
        raise NotHsds("name is longer than 200 characters")
    for service in entry["services"]:
        unknown = set(service["pathways"]) - set(PATHWAYS)
        if unknown:
            raise NotHsds(f"unknown pathways {sorted(unknown)} in service {service['name']!r}")


def import_hsds(session: Session, document: Any, *, validated_by: str, apply: bool,
                now: datetime) -> list[HsdsOutcome]:
    """What importing an HSDS document (a list of organizations) does, organization by
    organization; written only when `apply`."""
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise NotHsds("an HSDS document is a list of organization objects")
    directory = export_organizations(session)
    by_id = {o.id: o for o in directory}
    by_key = {key_of(o.name, o.region): o for o in directory}
    outcomes = []
    for index, item in enumerate(document):
        where = f"organizations[{index}]"
        try:
            entry = entry_from_hsds(item, where)
            _check(entry)
        except NotHsds as error:
            name = item.get("name") if isinstance(item, dict) else None
            outcomes.append(HsdsOutcome(index, "reject", name, str(error)))
            continue
        try:
            known_id: uuid.UUID | None = uuid.UUID(str(item.get("id")))
        except ValueError:
            known_id = None
        existing = by_id.get(known_id) if known_id else None
        existing = existing or by_key.get(key_of(entry["name"], entry["region"]))
        if existing is None:
            organization = Organization(id=known_id if known_id and known_id not in by_id
                                        else uuid.uuid4(), created_at=now)
            by_key[key_of(entry["name"], entry["region"])] = organization
            if known_id:
                by_id[known_id] = organization
            action = "create"
        else:
            organization = existing
            if "coordination" in (entry["kind"], existing.kind):
                entry["kind"] = existing.kind  # coordination bodies are set by administrators
            held = entry_from_hsds(organization_to_hsds(existing))
            action = "unchanged" if held == entry else "update"
        outcomes.append(HsdsOutcome(index, action, entry["name"]))
        if apply and action != "unchanged":
            if existing is None:
                session.add(organization)
            apply_entry(organization, entry)
            mark_validated(organization, validated_by=validated_by, now=now)
    if apply:
        session.flush()
    return outcomes

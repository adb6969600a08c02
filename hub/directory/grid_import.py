"""`hub directory import`: the partner grid counsellors keep, into the directory.

A plan first, row by row (create, update, unchanged, reject, with reasons and line numbers);
then, only when asked, the same plan applied.  Rows match organizations of the directory on a
stable key, the folded name and the region, so importing the same file again changes nothing.
Names close to another one of the region (a typo, an accent, a word more) are pointed out, to
be checked before applying: they would otherwise become near-duplicate entries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from hub.db import table_of
from hub.directory.grid import BadCell, GridEntry, entry_of, pathways_of
from hub.directory.organizations import (
    Capacity,
    Contact,
    Location,
    Organization,
    OrganizationKind,
    Service,
    ServicePathway,
    search_text_of,
)
from hub.directory.text import fold

# How close (0-100, rapidfuzz's token sort ratio on folded names) a name must be to another of
# the same region to be pointed out as a possible duplicate.
NEAR_DUPLICATE_SCORE = 88

CREATE, UPDATE, UNCHANGED, REJECT = "create", "update", "unchanged", "reject"


@dataclass
class RowOutcome:
    line: int
    action: str
    name: str | None
    reasons: list[str] = field(default_factory=list)  # why rejected, or what would change
    near_duplicates: list[str] = field(default_factory=list)
    entry: GridEntry | None = None
    organization: Organization | None = None


def key_of(name: str, region: str) -> tuple[str, str]:
    return fold(name), region


def _sorted_words(folded: str) -> str:
    # fuzz.ratio on sorted words is rapidfuzz's token_sort_ratio, without sorting the
    # directory's names again for every row.
    return " ".join(sorted(folded.split()))


def _same_contact(contact: Contact, wanted: Any) -> bool:
    if wanted.email and contact.email and contact.email.casefold() == wanted.email.casefold():
        return True
    return bool(wanted.name and contact.name and fold(contact.name) == fold(wanted.name))


def changes_for(organization: Organization, entry: GridEntry) -> list[str]:
    """What importing `entry` would change in `organization` (nothing is ever removed: the
    grid names some services and one contact, not the whole entry)."""
    changes = []
    if _new_kind(organization, entry):
        changes.append(f"kind {organization.kind} → {entry.kind}")
    held = {fold(s.name) for s in organization.services}
    new_services = [s for s in entry.services if fold(s) not in held]
    if new_services:
        changes.append("add services: " + ", ".join(new_services))
    if not entry.contact.is_empty() and not any(
            _same_contact(c, entry.contact) for c in organization.contacts):
        changes.append(f"add contact {entry.contact.name or entry.contact.email}")
    if entry.city and fold(entry.city) not in {fold(p.city) for p in organization.locations}:
        changes.append(f"add location {entry.city}")
    if entry.website and entry.website != organization.website:
        changes.append(f"website → {entry.website}")
    if entry.capacity and entry.capacity != organization.capacity:
        changes.append(f"capacity {organization.capacity} → {entry.capacity}")
    if entry.validated_at and entry.validated_at > organization.last_validated_at:
        changes.append(f"validated on {entry.validated_at.date().isoformat()}")
    return changes


def plan_import(session: Session, rows: Iterable[tuple[int, dict[str, Any]]], *,
                progress: Callable[[int], None] | None = None) -> list[RowOutcome]:
    """What importing `rows` would do, row by row; writes nothing."""
    directory = list(session.scalars(select(Organization).options(
        selectinload(Organization.services), selectinload(Organization.locations),
        selectinload(Organization.contacts))))
    by_key = {key_of(o.name, o.region): o for o in directory}
    names_by_region: dict[str, list[str]] = defaultdict(list)  # sorted words of the names
    display: dict[tuple[str, str], str] = {}
    for organization in directory:
        words = _sorted_words(fold(organization.name))
        names_by_region[organization.region].append(words)
        display[(words, organization.region)] = organization.name
    lines_by_key: dict[tuple[str, str], int] = {}

    outcomes = []
    for line, row in rows:
        outcome = _plan_row(line, row, by_key, names_by_region, display, lines_by_key)
        outcomes.append(outcome)
        if progress:
            progress(1)
    return outcomes


def _plan_row(line: int, row: dict[str, Any], by_key: dict[tuple[str, str], Organization],
              names_by_region: dict[str, list[str]], display: dict[tuple[str, str], str],
              lines_by_key: dict[tuple[str, str], int]) -> RowOutcome:
    try:
        entry = entry_of(row)
    except BadCell as error:
        name = next((str(v) for k, v in row.items() if fold(k) in ("organisme", "organization",
                                                                    "organisation", "nom")
                     and v is not None), None)
        return RowOutcome(line, REJECT, name, reasons=[str(error)])
    key = key_of(entry.name, entry.region)
    if key in lines_by_key:
        return RowOutcome(line, REJECT, entry.name, reasons=[
            f"same organization and region as line {lines_by_key[key]}"])
    lines_by_key[key] = line
    existing = by_key.get(key)
    if existing is not None:
        changes = changes_for(existing, entry)
        return RowOutcome(line, UPDATE if changes else UNCHANGED, entry.name, reasons=changes,
                          entry=entry, organization=existing)
    words = _sorted_words(key[0])
    near = process.extract(words, names_by_region[entry.region], scorer=fuzz.ratio,
                           score_cutoff=NEAR_DUPLICATE_SCORE, limit=3)
    suggestions = [f"{display[(name, entry.region)]} ({score:.0f}%)" for name, score, _ in near]
    names_by_region[entry.region].append(words)
    display[(words, entry.region)] = entry.name
    return RowOutcome(line, CREATE, entry.name, near_duplicates=suggestions, entry=entry)


def _service(name: str, languages: list[str]) -> Service:
    service = Service(name=name[:200], languages=languages)
    service.pathways = pathways_of(name)
    return service


def _contact_fields(entry: GridEntry) -> dict[str, Any]:
    wanted = entry.contact
    return {"name": wanted.name and wanted.name[:200], "role": wanted.role and wanted.role[:200],
            "email": wanted.email and wanted.email[:254],
            "phone": wanted.phone and wanted.phone[:40],
            "preferred_channel": "email" if wanted.email else ("phone" if wanted.phone else None)}


def _new_kind(organization: Organization, entry: GridEntry) -> bool:
    """Whether the row changes the kind; never to or from a coordination body, which sees
    the whole network's handoffs: that is for `hub org` and the administrators."""
    coordination = OrganizationKind.COORDINATION.value
    return bool(entry.kind and entry.kind != organization.kind
                and coordination not in (entry.kind, organization.kind))


def _add_to(organization: Organization, entry: GridEntry, validated_by: str) -> None:
    if _new_kind(organization, entry):
        assert entry.kind is not None  # `_new_kind` is False for a row without a kind
        organization.kind = entry.kind
    held = {fold(s.name) for s in organization.services}
    organization.services.extend(_service(s, entry.languages) for s in entry.services
                                 if fold(s) not in held)
    if not entry.contact.is_empty() and not any(
            _same_contact(c, entry.contact) for c in organization.contacts):
        organization.contacts.append(Contact(**_contact_fields(entry)))
    if entry.city and fold(entry.city) not in {fold(p.city) for p in organization.locations}:
        organization.locations.append(Location(city=entry.city, region=entry.region))
    if entry.website:
        organization.website = entry.website
    if entry.capacity:
        organization.capacity = entry.capacity
    if entry.validated_at and (organization.last_validated_at is None
                               or entry.validated_at > organization.last_validated_at):
        organization.last_validated_at = entry.validated_at
        organization.last_validated_by = validated_by


class _NewRows:
    """Rows of new entries, inserted in bulk: thousands of ORM objects cost seconds."""

    def __init__(self) -> None:
        self.organizations: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []
        self.pathways: list[dict[str, Any]] = []
        self.locations: list[dict[str, Any]] = []
        self.contacts: list[dict[str, Any]] = []

    def add(self, entry: GridEntry, *, now: datetime, validated_by: str) -> uuid.UUID:
        organization_id = uuid.uuid4()
        words: list[str | None] = []
        for name in entry.services:
            service_id = uuid.uuid4()
            self.services.append({"id": service_id, "organization_id": organization_id,
                                  "name": name[:200], "description": None,
                                  "eligibility_notes": None, "languages": entry.languages})
            self.pathways += [{"service_id": service_id, "pathway": p} for p in pathways_of(name)]
            words.append(name)
        if not entry.contact.is_empty():
            contact = _contact_fields(entry)
            self.contacts.append({"id": uuid.uuid4(), "organization_id": organization_id,
                                  **contact})
            words += [contact["name"], contact["role"]]
        if entry.city:
            self.locations.append({"id": uuid.uuid4(), "organization_id": organization_id,
                                   "name": None, "address": None, "city": entry.city,
                                   "postal_code": None, "region": entry.region})
            words.append(entry.city)
        self.organizations.append({
            "id": organization_id, "name": entry.name,
            "kind": entry.kind or OrganizationKind.COMMUNITY.value, "region": entry.region,
            "capacity": entry.capacity or Capacity.OPEN.value, "capacity_until": None,
            "description": None, "website": entry.website, "created_at": now,
            "last_validated_at": entry.validated_at or now, "last_validated_by": validated_by,
            "search_text": search_text_of(entry.name, entry.region, None, words,
                                          [entry.region] if entry.city else []),
        })
        return organization_id

    def insert(self, session: Session) -> None:
        for model, rows in ((Organization, self.organizations), (Service, self.services),
                            (ServicePathway, self.pathways), (Location, self.locations),
                            (Contact, self.contacts)):
            if rows:
                # Core executemany on the table, not the ORM's bulk insert.
                session.execute(insert(table_of(model)), rows)


def apply_import(session: Session, outcomes: list[RowOutcome], *, source: str,
                 now: datetime) -> dict[int, uuid.UUID]:
    """Carry out a plan made in this session; returns the created organizations' ids by line.
    Rejected and unchanged rows are left alone."""
    validated_by = f"import:{source}"[:200]
    new = _NewRows()
    created = {}
    for outcome in outcomes:
        entry = outcome.entry
        if entry is None:
            continue
        if outcome.action == UPDATE and outcome.organization is not None:
            _add_to(outcome.organization, entry, validated_by)
        elif outcome.action == CREATE:
            created[outcome.line] = new.add(entry, now=now, validated_by=validated_by)
    session.flush()
    new.insert(session)
    return created

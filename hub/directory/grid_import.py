"""`hub directory import`: the partner grid counsellors keep, into the directory.

A plan first, row by row (create, update, unchanged, merge, reject, with reasons and line
numbers; for a new entry the kind chosen and why); then, only when asked, the same plan
applied.  Every usable row is kept: only a row without a name or a Québec region is rejected,
and a row repeating another (same folded name and region) is merged into it.  Rows match
organizations of the directory on that same key, so importing the same file again changes
nothing.  Names close to another one of the region (a typo, an accent, a word more) are
pointed out, to be checked before applying: they would otherwise become near-duplicate
entries.  The grid's "type de collaboration" and notes are the importing organization's
relationship notes (`hub.directory.relationships`), never the partner's entry.
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
from hub.directory.grid import (
    FROM_COLUMN,
    N_,
    BadCell,
    ContactCell,
    GridEntry,
    Reason,
    entry_of,
    pathways_of,
)
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
from hub.directory.relationships import (
    NoteText,
    RelationshipNote,
    current_notes,
    merged_text,
    write_notes,
)
from hub.directory.text import fold

# How close (0-100, rapidfuzz's token sort ratio on folded names) a name must be to another of
# the same region to be pointed out as a possible duplicate.
NEAR_DUPLICATE_SCORE = 88

CREATE, UPDATE, UNCHANGED, MERGE, REJECT = "create", "update", "unchanged", "merge", "reject"


@dataclass
class RowOutcome:
    line: int
    action: str
    name: str | None
    # Why rejected; or what would change, the kind chosen and why, the cells left out.
    reasons: list[Reason] = field(default_factory=list)
    near_duplicates: list[str] = field(default_factory=list)
    entry: GridEntry | None = None
    organization: Organization | None = None
    merged_into: int | None = None  # MERGE: the line of the row it repeats
    # The importing organization's note about this partner once the row is taken in, when it
    # changes it.
    note: NoteText | None = None
    # Whether applying the row changes the organization's entry (not only the note).
    changes_entry: bool = False

    @property
    def kind_to_confirm(self) -> bool:
        return (self.action == CREATE and self.entry is not None
                and self.entry.kind.to_confirm)


def key_of(name: str, region: str) -> tuple[str, str]:
    return fold(name), region


def _sorted_words(folded: str) -> str:
    # fuzz.ratio on sorted words is rapidfuzz's token_sort_ratio, without sorting the
    # directory's names again for every row.
    return " ".join(sorted(folded.split()))


def _same_contact(contact: Contact | ContactCell, wanted: ContactCell) -> bool:
    if wanted.email and contact.email and contact.email.casefold() == wanted.email.casefold():
        return True
    return bool(wanted.name and contact.name and fold(contact.name) == fold(wanted.name))


def _new_contacts(organization: Organization, entry: GridEntry) -> list[ContactCell]:
    held: list[Contact | ContactCell] = list(organization.contacts)
    new = []
    for wanted in entry.contacts:
        if not any(_same_contact(c, wanted) for c in held):
            new.append(wanted)
            held.append(wanted)
    return new


def changes_for(organization: Organization, entry: GridEntry) -> list[Reason]:
    """What importing `entry` would change in `organization` (nothing is ever removed: the
    grid names some services and one contact, not the whole entry)."""
    changes = []
    if _new_kind(organization, entry):
        changes.append(Reason(N_("kind {old_kind} → {chosen}"), old_kind=organization.kind,
                              chosen=entry.kind.describe()))
    held = {fold(s.name) for s in organization.services}
    new_services = [s for s in entry.services if fold(s) not in held]
    if new_services:
        changes.append(Reason(N_("add services: {services}"),
                              services=", ".join(new_services)))
    for contact in _new_contacts(organization, entry):
        changes.append(Reason(N_("add contact {contact}"),
                              contact=contact.name or contact.email or contact.phone))
    if entry.city and fold(entry.city) not in {fold(p.city) for p in organization.locations}:
        changes.append(Reason(N_("add location {city}"), city=entry.city))
    if entry.website and entry.website != organization.website:
        changes.append(Reason(N_("website → {website}"), website=entry.website))
    if entry.capacity and entry.capacity != organization.capacity:
        changes.append(Reason(N_("capacity {old_capacity} → {capacity}"),
                              old_capacity=organization.capacity, capacity=entry.capacity))
    if entry.validated_at and entry.validated_at > organization.last_validated_at:
        changes.append(Reason(N_("validated on {date}"),
                              date=entry.validated_at.date().isoformat()))
    return changes


def plan_import(session: Session, rows: Iterable[tuple[int, dict[str, Any]]], *,
                importer_id: uuid.UUID | None = None, update_entries: bool = True,
                progress: Callable[[int], None] | None = None) -> list[RowOutcome]:
    """What importing `rows` would do, row by row; writes nothing.  With `importer_id`, the
    grid's "type de collaboration" and notes go to that organization's relationship notes.
    Without `update_entries` (an organization's admin importing from the portal), entries
    already in the directory are left as their organizations keep them: the grid only adds
    new entries and the importer's notes."""
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
    first_by_key: dict[tuple[str, str], RowOutcome] = {}

    outcomes = []
    for line, row in rows:
        outcome = _plan_row(line, row, by_key, names_by_region, display, first_by_key)
        outcomes.append(outcome)
        if progress:
            progress(1)
    # Reasons once every repeated row is merged into the first.
    notes = current_notes(session, importer_id) if importer_id is not None else {}
    for outcome in outcomes:
        _explain(outcome, notes, importer_id, update_entries)
    return outcomes


def _plan_row(line: int, row: dict[str, Any], by_key: dict[tuple[str, str], Organization],
              names_by_region: dict[str, list[str]], display: dict[tuple[str, str], str],
              first_by_key: dict[tuple[str, str], RowOutcome]) -> RowOutcome:
    try:
        entry = entry_of(row)
    except BadCell as error:
        name = next((str(v) for k, v in row.items() if fold(k) in ("organisme", "organization",
                                                                    "organisation", "nom")
                     and v is not None), None)
        return RowOutcome(line, REJECT, name, reasons=error.reasons)
    key = key_of(entry.name, entry.region)
    first = first_by_key.get(key)
    if first is not None:
        assert first.entry is not None  # only usable rows are kept by key
        first.entry.merge(entry)
        return RowOutcome(line, MERGE, entry.name, entry=entry, merged_into=first.line)
    existing = by_key.get(key)
    if existing is not None:
        outcome = RowOutcome(line, UNCHANGED, entry.name, entry=entry, organization=existing)
    else:
        words = _sorted_words(key[0])
        near = process.extract(words, names_by_region[entry.region], scorer=fuzz.ratio,
                               score_cutoff=NEAR_DUPLICATE_SCORE, limit=3)
        suggestions = [f"{display[(name, entry.region)]} ({score:.0f}%)"
                       for name, score, _ in near]
        names_by_region[entry.region].append(words)
        display[(words, entry.region)] = entry.name
        outcome = RowOutcome(line, CREATE, entry.name, near_duplicates=suggestions, entry=entry)
    first_by_key[key] = outcome
    return outcome


def _explain(outcome: RowOutcome, notes: dict[uuid.UUID, RelationshipNote],
             importer_id: uuid.UUID | None, update_entries: bool) -> None:
    """Fill in the row's action and reasons, now that its entry holds every repeated row."""
    entry = outcome.entry
    if entry is None:
        return
    if outcome.action == MERGE:
        outcome.reasons = [Reason(N_("same organization and region as line {line}: merged into "
                                     "it"), line=outcome.merged_into), *entry.warnings]
        return
    warnings = list(entry.warnings)
    current = None
    if outcome.organization is not None:
        changes = changes_for(outcome.organization, entry) if update_entries else []
        outcome.changes_entry = bool(changes)
        current = notes.get(outcome.organization.id)
    else:
        changes = [entry.kind.describe()]
    if importer_id is not None and (entry.collaboration or entry.notes):
        wanted = merged_text(current, entry.collaboration, entry.notes)
        if current is None or wanted != NoteText(current.collaboration, current.notes):
            outcome.note = wanted
            if wanted.collaboration and wanted.notes:
                changes.append(Reason(N_("relationship note: collaboration «{collaboration}»; "
                                         "notes «{notes}»"), collaboration=wanted.collaboration,
                                      notes=wanted.notes))
            elif wanted.collaboration:
                changes.append(Reason(N_("relationship note: collaboration «{collaboration}»"),
                                      collaboration=wanted.collaboration))
            else:
                changes.append(Reason(N_("relationship note: notes «{notes}»"),
                                      notes=wanted.notes))
    if outcome.action == UNCHANGED and changes:
        outcome.action = UPDATE
    outcome.reasons = changes + warnings


def _service(name: str, languages: list[str]) -> Service:
    service = Service(name=name[:200], languages=languages)
    service.pathways = pathways_of(name)
    return service


def _contact_fields(wanted: ContactCell) -> dict[str, Any]:
    return {"name": wanted.name and wanted.name[:200], "role": wanted.role and wanted.role[:200],
            "email": wanted.email and wanted.email[:254],
            "phone": wanted.phone and wanted.phone[:40],
            "preferred_channel": "email" if wanted.email else ("phone" if wanted.phone else None)}


def _new_kind(organization: Organization, entry: GridEntry) -> bool:
    """Whether the row changes the kind: only a "type d'organisme" cell does (a kind read from
    the name is a guess, for new entries), and never from a coordination body, which sees the
    whole network's handoffs: that is for `hub org` and the administrators."""
    coordination = OrganizationKind.COORDINATION.value
    return (entry.kind.rule == FROM_COLUMN and entry.kind.kind != organization.kind
            and organization.kind != coordination)


def _add_to(organization: Organization, entry: GridEntry, validated_by: str) -> None:
    if _new_kind(organization, entry):
        organization.kind = entry.kind.kind
    held = {fold(s.name) for s in organization.services}
    organization.services.extend(_service(s, entry.languages) for s in entry.services
                                 if fold(s) not in held)
    for contact in _new_contacts(organization, entry):
        organization.contacts.append(Contact(**_contact_fields(contact)))
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
        for wanted in entry.contacts:
            contact = _contact_fields(wanted)
            self.contacts.append({"id": uuid.uuid4(), "organization_id": organization_id,
                                  **contact})
            words += [contact["name"], contact["role"]]
        if entry.city:
            self.locations.append({"id": uuid.uuid4(), "organization_id": organization_id,
                                   "name": None, "address": None, "city": entry.city,
                                   "postal_code": None, "region": entry.region})
            words.append(entry.city)
        self.organizations.append({
            "id": organization_id, "name": entry.name, "kind": entry.kind.kind,
            "region": entry.region,
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
                 now: datetime, importer_id: uuid.UUID | None = None
                 ) -> dict[int, uuid.UUID]:
    """Carry out a plan made in this session (with the same `importer_id`); returns the
    created organizations' ids by line.  Rejected, merged and unchanged rows are left alone:
    a merged row's cells are in the row it repeats."""
    validated_by = f"import:{source}"[:200]
    new = _NewRows()
    created = {}
    partners: list[tuple[uuid.UUID | None, int, NoteText]] = []
    for outcome in outcomes:
        entry = outcome.entry
        if entry is None:
            continue
        if outcome.action == UPDATE and outcome.organization is not None:
            if outcome.changes_entry:
                _add_to(outcome.organization, entry, validated_by)
        elif outcome.action == CREATE:
            created[outcome.line] = new.add(entry, now=now, validated_by=validated_by)
        if outcome.note is not None:
            partner = outcome.organization.id if outcome.organization is not None else None
            partners.append((partner, outcome.line, outcome.note))
    session.flush()
    new.insert(session)
    if importer_id is not None and partners:
        write_notes(session, importer_id,
                    {partner or created[line]: text for partner, line, text in partners},
                    updated_by=validated_by, now=now)
    return created

"""Reading the partner grid counsellors keep (organization, region, contact person, services,
type of collaboration...) into directory terms, one row at a time, in French or English.

Pure functions, no database: each returns the value or raises `BadCell` with a reason a
counsellor can act on.  `hub.directory.grid_import` decides what to create or update.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.directory.organizations import QUEBEC_REGIONS, Capacity, OrganizationKind
from hub.directory.text import fold


class BadCell(ValueError):
    """A cell that cannot be read; the message says which and why."""


# Folded header titles → field of the grid.  Unknown columns are ignored.
COLUMNS: dict[str, str] = {}
for _field, _titles in {
    "name": ["organisme", "organisation", "organization", "nom de l organisme", "nom",
             "partenaire", "organisme partenaire"],
    "region": ["region", "region administrative"],
    "contact": ["personne ressource", "personne contact", "contact", "contact person",
                "responsable", "intervenant", "intervenante"],
    "services": ["services", "services offerts", "offre de services"],
    "collaboration": ["type de collaboration", "type of collaboration", "collaboration",
                      "type", "type d organisme", "kind"],
    "email": ["courriel", "email", "e mail", "adresse courriel"],
    "phone": ["telephone", "tel", "phone", "numero de telephone"],
    "role": ["role", "fonction", "titre", "poste"],
    "city": ["ville", "municipalite", "city"],
    "website": ["site web", "site internet", "website", "web"],
    "capacity": ["capacite", "capacity", "disponibilite"],
    "languages": ["langues", "languages", "langues offertes"],
    "validated": ["derniere validation", "date de validation", "valide le", "last validated",
                  "mise a jour", "derniere mise a jour"],
}.items():
    for _title in _titles:
        COLUMNS[_title] = _field


@functools.lru_cache(maxsize=256)
def _field_of(title: str) -> str | None:
    return COLUMNS.get(fold(title))


def columns_of(row: dict[str, Any]) -> dict[str, Any]:
    """The row's cells keyed by grid field (first column wins when two mean the same)."""
    cells: dict[str, Any] = {}
    for title, value in row.items():
        name = _field_of(title)
        if name and name not in cells:
            cells[name] = value
    return cells


_REGION_NAMES = {fold(name): code for code, name in QUEBEC_REGIONS.items()}
_REGION_NAMES.update({"gaspesie": "11", "iles de la madeleine": "11", "saguenay": "02",
                      "lac saint jean": "02", "quebec": "03", "capitale nationale": "03",
                      "abitibi": "08", "temiscamingue": "08", "nord du quebec": "10"})
_SAINT = re.compile(r"\b(st|ste)\b")


def region_code(value: Any) -> str:
    """'06', '6', 'Montréal', 'Bas-St-Laurent' or '01 - Bas-Saint-Laurent' → the code."""
    if value is None:
        raise BadCell("region is empty")
    text = str(value).strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(int(value))
    number = re.match(r"^(\d{1,2})\b", text)
    if number and number.group(1).zfill(2) in QUEBEC_REGIONS:
        return number.group(1).zfill(2)
    folded = _SAINT.sub(lambda m: "saint" if m.group(1) == "st" else "sainte", fold(text))
    folded = re.sub(r"^\d+\s*", "", folded)
    if folded in _REGION_NAMES:
        return _REGION_NAMES[folded]
    raise BadCell(f"region {text!r} is not a Québec administrative region (name or code "
                  f"01 to 17)")


# Words of the "type of collaboration" column → kind, tried in this order (an "entreprise
# d'insertion" is an insertion enterprise, not an employer).
_KIND_WORDS: list[tuple[str, OrganizationKind]] = [
    ("insertion", OrganizationKind.INSERTION_ENTERPRISE),
    ("coop", OrganizationKind.COOPERATIVE_DEVELOPMENT),
    ("entrepreneur", OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    ("demarrage", OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    ("concertation", OrganizationKind.COORDINATION),
    ("coordination", OrganizationKind.COORDINATION),
    ("regional", OrganizationKind.REGIONAL_PARTNER),
    ("region", OrganizationKind.REGIONAL_PARTNER),
    ("employeur", OrganizationKind.EMPLOYER),
    ("employer", OrganizationKind.EMPLOYER),
    ("entreprise", OrganizationKind.EMPLOYER),
    ("communautaire", OrganizationKind.COMMUNITY),
    ("community", OrganizationKind.COMMUNITY),
    ("referencement", OrganizationKind.COMMUNITY),
    ("integration", OrganizationKind.COMMUNITY),
]


def kind_of(value: Any) -> str | None:
    """The organization kind a 'type of collaboration' cell names; None when empty."""
    if value is None:
        return None
    text = str(value)
    if text in set(OrganizationKind):
        return text
    folded = fold(text)
    for word, kind in _KIND_WORDS:
        if word in folded:
            return kind.value
    raise BadCell(f"type of collaboration {text!r} names no kind of organization we know "
                  f"(e.g. communautaire, partenaire régional, entrepreneuriat, coopérative, "
                  f"entreprise d'insertion, employeur, concertation)")


_PATHWAY_WORDS: list[tuple[str, str]] = [
    ("coop", "cooperative_entrepreneurship"),
    ("entrepren", "entrepreneurship"), ("demarrage", "entrepreneurship"),
    ("affaires", "entrepreneurship"),
    ("formation", "training"), ("francisation", "training"), ("etudes", "training"),
    ("emploi", "employment"), ("stage", "employment"), ("job", "employment"),
    ("employment", "employment"),
    ("etablissement", "settlement"), ("installation", "settlement"),
    ("regionalisation", "settlement"), ("accueil", "settlement"), ("logement", "settlement"),
]


def pathways_of(service_name: str) -> list[str]:
    folded = fold(service_name)
    return list(dict.fromkeys(p for word, p in _PATHWAY_WORDS if word in folded))


def services_of(value: Any) -> list[str]:
    """Service names from a cell listing them (separated by ; , • or new lines)."""
    if value is None:
        return []
    names = re.split(r"[;\n•|]|,(?!\d)", str(value))
    return list(dict.fromkeys(n.strip(" -–.") for n in names if n.strip(" -–.")))


_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# North American numbers, with an optional extension ("poste 123").
_PHONE = re.compile(r"(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}"
                    r"(?:\s*(?:poste|p\.|x|ext\.?)\s*\d+)?")
_ROLE = re.compile(r"\(([^)]*)\)")


@dataclass
class ContactCell:
    name: str | None = None
    role: str | None = None
    email: str | None = None
    phone: str | None = None

    def is_empty(self) -> bool:
        return not any((self.name, self.role, self.email, self.phone))


def contact_of(value: Any) -> ContactCell:
    """'Marie-Ève Tremblay (conseillère) marie@x.org 514 555-0199' → its parts."""
    if value is None:
        return ContactCell()
    text = str(value)
    email = _EMAIL.search(text)
    phone = _PHONE.search(text)
    role = _ROLE.search(text)
    rest = text
    for found in (email, phone, role):
        if found:
            rest = rest.replace(found.group(0), " ")
    name = re.sub(r"\s+", " ", rest).strip(" ,;-–/")
    if "," in name and not role:  # "Marie Tremblay, conseillère"
        name, _, role_text = name.partition(",")
        return ContactCell(name.strip() or None, role_text.strip() or None,
                           email.group(0) if email else None, phone.group(0) if phone else None)
    return ContactCell(name or None, role.group(1).strip() if role else None,
                       email.group(0) if email else None, phone.group(0) if phone else None)


_CAPACITY_WORDS = [("attente", Capacity.WAITLIST), ("waitlist", Capacity.WAITLIST),
                   ("complet", Capacity.FULL), ("full", Capacity.FULL),
                   ("ouvert", Capacity.OPEN), ("open", Capacity.OPEN),
                   ("disponible", Capacity.OPEN)]


def capacity_of(value: Any) -> str | None:
    if value is None:
        return None
    folded = fold(str(value))
    for word, capacity in _CAPACITY_WORDS:
        if word in folded:
            return capacity.value
    raise BadCell(f"capacity {value!r} is not one of ouvert, liste d'attente, complet")


EXCEL_EPOCH = date(1899, 12, 30)  # day 0 of Excel's 1900 date system (after its leap-year bug)


def date_of(value: Any) -> datetime | None:
    """An Excel date (cell typed as date, or its serial number), ISO 8601, or dd/mm/yyyy as
    written in Québec, as a UTC moment at midnight."""
    if value is None:
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, int | float) or re.fullmatch(r"\d{5}(\.\d+)?", str(value).strip()):
        day = EXCEL_EPOCH + timedelta(days=int(float(value)))
    else:
        text = str(value).strip()
        # Its own name: mypy widens a `day` set to None here back to `date | None` after the
        # branches, even past the raise below.
        parsed: date | None = None
        for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"):
            try:
                parsed = datetime.strptime(text[:10], pattern).date()
                break
            except ValueError:
                continue
        if parsed is None:
            raise BadCell(f"date {text!r} is not a date (use 2025-03-14 or 14/03/2025)")
        day = parsed
    if not date(1990, 1, 1) <= day <= date(2100, 1, 1):
        raise BadCell(f"date {day.isoformat()} is out of range")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def languages_of(value: Any) -> list[str]:
    names = {"francais": "fr", "french": "fr", "anglais": "en", "english": "en",
             "espagnol": "es", "spanish": "es", "arabe": "ar", "arabic": "ar"}
    if value is None:
        return []
    found = []
    for part in re.split(r"[;,/\n]| et ", str(value)):
        folded = fold(part)
        if folded:
            found.append(names.get(folded, folded if len(folded) <= 3 else folded[:35]))
    return list(dict.fromkeys(found))


@dataclass
class GridEntry:
    """One row of the grid, read."""

    name: str
    region: str
    kind: str | None
    services: list[str] = field(default_factory=list)
    contact: ContactCell = field(default_factory=ContactCell)
    city: str | None = None
    website: str | None = None
    capacity: str | None = None
    languages: list[str] = field(default_factory=list)
    validated_at: datetime | None = None


LIMITS = {"name": 200, "city": 120, "website": 300}


def entry_of(row: dict[str, Any]) -> GridEntry:
    """The row as a directory entry, or BadCell with every reason it cannot be one."""
    cells = columns_of(row)
    reasons: list[str] = []

    def read(reader: Any, key: str) -> Any:
        try:
            return reader(cells.get(key))
        except BadCell as error:
            reasons.append(str(error))
            return None

    name = str(cells["name"]).strip() if cells.get("name") is not None else ""
    if not name:
        reasons.append("organization name is empty")
    region = read(region_code, "region")
    kind = read(kind_of, "collaboration")
    capacity = read(capacity_of, "capacity")
    validated_at = read(date_of, "validated")
    contact = contact_of(cells.get("contact"))
    for part in ("email", "phone", "role"):
        if cells.get(part) is not None:
            setattr(contact, part, str(cells[part]).strip())
    if contact.email and not _EMAIL.fullmatch(contact.email):
        reasons.append(f"email {contact.email!r} is not an email address")
    for key, size in LIMITS.items():
        value = name if key == "name" else cells.get(key)
        if value is not None and len(str(value)) > size:
            reasons.append(f"{key} is longer than {size} characters")
    if reasons:
        raise BadCell("; ".join(reasons))
    return GridEntry(
        name=name, region=region, kind=kind, services=services_of(cells.get("services")),
        contact=contact, city=_text(cells.get("city")), website=_text(cells.get("website")),
        capacity=capacity, languages=languages_of(cells.get("languages")),
        validated_at=validated_at,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None

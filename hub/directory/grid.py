"""Reading the partner grid counsellors keep (organization, region, contact person, services,
type of collaboration...) into directory terms, one row at a time, in French or English.

Pure functions, no database: each returns the value or raises `BadCell` with a reason a
counsellor can act on.  `hub.directory.grid_import` decides what to create or update.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.directory.organizations import QUEBEC_REGIONS, Capacity, OrganizationKind
from hub.directory.text import fold


def N_(template: str) -> str:
    """Marks a reason's template for the catalogues (`make messages`); the portal says it in
    the reader's language, the command line in English."""
    return template


class Reason(str):
    """A reason a counsellor reads: the English text (what `hub directory import` prints), with
    its template and values kept so the portal can say it in French (`gettext(template)`,
    then `format(**values)`; a value that is itself a Reason is said the same way)."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Reason:
        reason = super().__new__(cls, template.format(**values))
        reason.template = template
        reason.values = values
        return reason


class BadCell(ValueError):
    """A cell that cannot be read; `reasons` say which and why."""

    def __init__(self, *reasons: Reason) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


# Folded header titles → field of the grid.  Unknown columns are ignored.
COLUMNS: dict[str, str] = {}
for _field, _titles in {
    "name": ["organisme", "organisation", "organization", "nom de l organisme", "nom",
             "partenaire", "organisme partenaire"],
    "region": ["region", "region administrative"],
    "contact": ["personne ressource", "personne contact", "contact", "contact person",
                "responsable", "intervenant", "intervenante"],
    "services": ["services", "services offerts", "offre de services"],
    # The collaboration the importing organization needs with that partner, not its kind.
    "collaboration": ["type de collaboration", "type of collaboration", "collaboration",
                      "collaboration necessaire", "besoin de collaboration"],
    "kind": ["type d organisme", "type d organisation", "type of organization",
             "organization type", "kind", "type", "categorie", "categorie d organisme"],
    "notes": ["notes", "note", "commentaires", "commentaire", "remarques", "remarque",
              "observations"],
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


def is_grid_header(cells: Sequence[Any]) -> bool:
    """Whether a row of the file is the grid's header: it names the organization column and at
    least one other column we know (a title line such as "Grille 2025;Estrie" is not)."""
    fields = {_field_of(str(cell)) for cell in cells if cell is not None and str(cell).strip()}
    return "name" in fields and len(fields - {None}) >= 2


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
        raise BadCell(Reason(N_("region is empty")))
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
    raise BadCell(Reason(N_("region «{region}» is not a Québec administrative region (a name, or "
                            "a code from 01 to 17)"), region=text))


# Words of a "type d'organisme" cell → kind, tried in this order (an "entreprise d'insertion"
# is an insertion enterprise, not an employer; a "coopérative de développement régional" a
# cooperative development body, not a regional partner).  No word leads to `coordination`:
# a coordination body sees every handoff of the network, and only `hub org create` makes one.
_KIND_WORDS: list[tuple[str, OrganizationKind]] = [
    ("insertion", OrganizationKind.INSERTION_ENTERPRISE),
    ("coop", OrganizationKind.COOPERATIVE_DEVELOPMENT),
    ("entrepreneur", OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    ("demarrage", OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    ("public", OrganizationKind.PUBLIC_INSTITUTION),
    ("institution", OrganizationKind.PUBLIC_INSTITUTION),
    ("gouvernement", OrganizationKind.PUBLIC_INSTITUTION),
    ("government", OrganizationKind.PUBLIC_INSTITUTION),
    ("municipal", OrganizationKind.PUBLIC_INSTITUTION),
    ("regional", OrganizationKind.REGIONAL_PARTNER),
    ("region", OrganizationKind.REGIONAL_PARTNER),
    ("employeur", OrganizationKind.EMPLOYER),
    ("employer", OrganizationKind.EMPLOYER),
    ("entreprise", OrganizationKind.EMPLOYER),
    ("communautaire", OrganizationKind.COMMUNITY),
    ("community", OrganizationKind.COMMUNITY),
    ("referencement", OrganizationKind.COMMUNITY),
    ("integration", OrganizationKind.COMMUNITY),
    ("autre", OrganizationKind.OTHER),
    ("other", OrganizationKind.OTHER),
]
_COORDINATION_WORDS = re.compile(r"\b(concertation|coordination|coordonnat\w*)\b")

# What a name says of the kind, tried in this order on the folded name (whole words).  Each
# rule is named in the dry run, so a counsellor sees why a kind was chosen.
_NAME_RULES: list[tuple[str, OrganizationKind]] = [
    (r"entreprise d insertion", OrganizationKind.INSERTION_ENTERPRISE),
    (r"cooperative de developpement( regional)?|cdr", OrganizationKind.COOPERATIVE_DEVELOPMENT),
    (r"cisss|ciusss|clsc|centre integre( universitaire)? de sante",
     OrganizationKind.PUBLIC_INSTITUTION),
    (r"mrc|municipalite( regionale de comte)?|ville de|ville d|cite de",
     OrganizationKind.PUBLIC_INSTITUTION),
    (r"services quebec|emploi quebec|ministere", OrganizationKind.PUBLIC_INSTITUTION),
    (r"cegep|college|centre de services scolaire|commission scolaire|ecole|universite",
     OrganizationKind.PUBLIC_INSTITUTION),
    (r"place aux jeunes|paj|regionalisation", OrganizationKind.REGIONAL_PARTNER),
    (r"carrefour jeunesse emploi|cje|service d aide a l emploi|sae|organisme communautaire"
     r"|maison de la famille|centre d integration|carrefour d integration|accueil"
     r"|centre communautaire", OrganizationKind.COMMUNITY),
    (r"sadc|cld|centre local de developpement|pme mtl|futurpreneur|entrepreneur\w*"
     r"|centre d entrepreneuriat", OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    (r"cooperative|coop", OrganizationKind.COOPERATIVE_DEVELOPMENT),
    (r"inc|ltee|ltd|enr|senc", OrganizationKind.EMPLOYER),
]
# What the services say, when the name says nothing (whole words, folded).
_SERVICE_RULES: list[tuple[str, OrganizationKind]] = [
    (r"insertion( socioprofessionnelle)?|plateau de travail",
     OrganizationKind.INSERTION_ENTERPRISE),
    (r"demarrage de cooperatives?|cooperatives?", OrganizationKind.COOPERATIVE_DEVELOPMENT),
    (r"demarrage d entreprises?|entrepreneuriat|plan d affaires|mentorat d affaires",
     OrganizationKind.ENTREPRENEURSHIP_AGENCY),
    (r"regionalisation|sejours? exploratoires?|attraction|migration",
     OrganizationKind.REGIONAL_PARTNER),
    (r"aide a l emploi|recherche d emploi|employabilite|integration|francisation"
     r"|accueil des personnes immigrantes", OrganizationKind.COMMUNITY),
]
_NAME_PATTERNS = [(re.compile(rf"\b(?:{rule})\b"), kind) for rule, kind in _NAME_RULES]
_SERVICE_PATTERNS = [(re.compile(rf"\b(?:{rule})\b"), kind) for rule, kind in _SERVICE_RULES]

# How a kind was chosen.
FROM_COLUMN, FROM_NAME, FROM_SERVICES, TO_CONFIRM = "column", "name", "services", "to_confirm"


@dataclass(frozen=True)
class KindChoice:
    """The kind of a row's organization and why: `rule` is one of FROM_COLUMN, FROM_NAME,
    FROM_SERVICES or TO_CONFIRM; `evidence` is the text that decided (the cell, or the words
    of the name or services), or what could not be used."""

    kind: str
    rule: str
    evidence: str | None = None
    refused_coordination: bool = False

    @property
    def to_confirm(self) -> bool:
        return self.rule == TO_CONFIRM

    def describe(self) -> Reason:
        if self.rule == FROM_COLUMN:
            why = Reason(N_("type d'organisme «{cell}»"), cell=self.evidence)
        elif self.rule == FROM_NAME:
            why = Reason(N_("the name says «{words}»"), words=self.evidence)
        elif self.rule == FROM_SERVICES:
            why = Reason(N_("the services say «{words}»"), words=self.evidence)
        elif self.refused_coordination:
            why = Reason(N_("kind to confirm: a coordination body is never created by an "
                            "import, the hub's administrators make it"))
        elif self.evidence:
            why = Reason(N_("kind to confirm: «{cell}» names no kind we know"),
                         cell=self.evidence)
        else:
            why = Reason(N_("kind to confirm: neither a type d'organisme nor the name or "
                            "services say it"))
        return Reason(N_("kind {kind} ({why})"), kind=self.kind, why=why)


def _kind_in_cell(text: str) -> OrganizationKind | None:
    if text in set(OrganizationKind) and text != OrganizationKind.COORDINATION:
        return OrganizationKind(text)
    folded = fold(text)
    for word, kind in _KIND_WORDS:
        if word in folded:
            return kind
    return None


def _first_rule(patterns: list[tuple[re.Pattern[str], OrganizationKind]], text: str
                ) -> tuple[OrganizationKind, str] | None:
    for pattern, kind in patterns:
        found = pattern.search(text)
        if found:
            return kind, found.group(0)
    return None


def choose_kind(stated: Any, name: str, services: list[str]) -> KindChoice:
    """The kind of a row's organization: from its "type d'organisme" cell when that names a
    kind, else from its name, else from its services, else `other`, to be confirmed.  Never
    `coordination`: a cell or name saying "concertation" is refused as such and the row's
    kind is looked for elsewhere."""
    stated_text = None if stated is None else str(stated).strip() or None
    refused = False
    if stated_text is not None:
        if stated_text == OrganizationKind.COORDINATION or _COORDINATION_WORDS.search(
                fold(stated_text)):
            refused = True
        else:
            kind = _kind_in_cell(stated_text)
            if kind is not None:
                return KindChoice(kind.value, FROM_COLUMN, stated_text)
    folded_name = fold(name)
    refused = refused or bool(_COORDINATION_WORDS.search(folded_name))
    found = _first_rule(_NAME_PATTERNS, folded_name)
    if found:
        return KindChoice(found[0].value, FROM_NAME, found[1], refused)
    found = _first_rule(_SERVICE_PATTERNS, fold(" ; ".join(services)))
    if found:
        return KindChoice(found[0].value, FROM_SERVICES, found[1], refused)
    return KindChoice(OrganizationKind.OTHER.value, TO_CONFIRM, stated_text, refused)


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
    raise BadCell(Reason(N_("capacity «{cell}» is not one of ouvert, liste d'attente, "
                            "complet"), cell=value))


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
            raise BadCell(Reason(N_("date «{date}» is not a date (write 2025-03-14 or "
                                    "14/03/2025)"), date=text))
        day = parsed
    if not date(1990, 1, 1) <= day <= date(2100, 1, 1):
        raise BadCell(Reason(N_("date {date} is out of range"), date=day.isoformat()))
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
    # Only a kind from a "type d'organisme" cell changes an organization already in the
    # directory; one inferred from the name or services is for new entries.
    kind: KindChoice
    services: list[str] = field(default_factory=list)
    contacts: list[ContactCell] = field(default_factory=list)
    city: str | None = None
    website: str | None = None
    capacity: str | None = None
    languages: list[str] = field(default_factory=list)
    validated_at: datetime | None = None
    # For the importing organization's relationship note, never for the entry itself.
    collaboration: str | None = None
    notes: str | None = None
    # Cells left out, each with why; the row is kept.
    warnings: list[Reason] = field(default_factory=list)

    def merge(self, other: GridEntry) -> None:
        """Take in a repeated row of the same organization: what it adds is kept."""
        if self.kind.rule != FROM_COLUMN and other.kind.rule == FROM_COLUMN:
            self.kind = other.kind
        self.services = list(dict.fromkeys(self.services + other.services))
        self.contacts += [c for c in other.contacts if c not in self.contacts]
        self.languages = list(dict.fromkeys(self.languages + other.languages))
        for name in ("city", "website", "capacity"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))
        if other.validated_at and (self.validated_at is None
                                   or other.validated_at > self.validated_at):
            self.validated_at = other.validated_at
        self.collaboration = _joined(self.collaboration, other.collaboration)
        self.notes = _joined(self.notes, other.notes)
        self.warnings += other.warnings


def _joined(first: str | None, second: str | None) -> str | None:
    if not first or not second or fold(second) in fold(first):
        return first or second
    return f"{first}\n{second}"


LIMITS = {"name": 200, "city": 120, "website": 300}


def entry_of(row: dict[str, Any]) -> GridEntry:
    """The row as a directory entry, or BadCell when it cannot be one: without a name or a
    Québec region.  Any other unreadable cell is left out, with a warning, and the row kept."""
    cells = columns_of(row)
    reasons: list[Reason] = []
    warnings: list[Reason] = []

    def read(reader: Any, key: str) -> Any:
        try:
            return reader(cells.get(key))
        except BadCell as error:
            warnings.extend(Reason(N_("{problem}: left out"), problem=reason)
                            for reason in error.reasons)
            return None

    name = re.sub(r"\s+", " ", str(cells["name"])).strip() if cells.get("name") is not None \
        else ""
    if not name:
        reasons.append(Reason(N_("organization name is empty")))
    try:
        region = region_code(cells.get("region"))
    except BadCell as error:
        reasons.extend(error.reasons)
    if reasons:
        raise BadCell(*reasons)
    if len(name) > LIMITS["name"]:
        warnings.append(Reason(N_("name is longer than {count} characters: cut"),
                               count=LIMITS["name"]))
        name = name[:LIMITS["name"]]
    capacity = read(capacity_of, "capacity")
    validated_at = read(date_of, "validated")
    contact = contact_of(cells.get("contact"))
    for part in ("email", "phone", "role"):
        if cells.get(part) is not None:
            setattr(contact, part, str(cells[part]).strip())
    if contact.email and not _EMAIL.fullmatch(contact.email):
        warnings.append(Reason(N_("email «{email}» is not an email address: left out"),
                               email=contact.email))
        contact.email = None
    texts: dict[str, str | None] = {}
    for key in ("city", "website"):
        text = _text(cells.get(key))
        if text is not None and len(text) > LIMITS[key]:
            warnings.append(Reason(N_("city is longer than {count} characters: left out")
                                   if key == "city" else
                                   N_("website is longer than {count} characters: left out"),
                                   count=LIMITS[key]))
            text = None
        texts[key] = text
    services = services_of(cells.get("services"))
    return GridEntry(
        name=name, region=region, kind=choose_kind(cells.get("kind"), name, services),
        services=services, contacts=[] if contact.is_empty() else [contact],
        city=texts["city"], website=texts["website"], capacity=capacity,
        languages=languages_of(cells.get("languages")), validated_at=validated_at,
        collaboration=_text(cells.get("collaboration")), notes=_text(cells.get("notes")),
        warnings=warnings,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None

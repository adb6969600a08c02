"""HSDS 3.0 JSON (hub/adapters/hsds.py): an entry written in realistic French comes back the
same, and the export passes the HSDS 3.0 schemas (tests/data/hsds)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime

import pytest

from hub.adapters.hsds import NotHsds, entry_from_hsds, organization_to_hsds
from hub.directory.editing import apply_entry
from hub.directory.organizations import Organization
from tests.hsds_schemas import hsds_errors

ENTRY = {
    "name": "Carrefour d'intégration de l'Estrie — Estrie Integration Hub",
    "kind": "regional_partner", "region": "05", "capacity": "waitlist",
    "capacity_until": date(2027, 1, 15), "description": "Accueil des familles à Sherbrooke",
    "website": "https://accueil-estrie.example.org",
    "services": [
        {"name": "Régionalisation — s'établir en Estrie", "description": None,
         "eligibility_notes": "Résident·e permanent·e", "languages": ["fr", "en", "es"],
         "pathways": ["settlement"]},
        {"name": "Aide à l'emploi / Job search", "description": "Ateliers « CV québécois »",
         "eligibility_notes": None, "languages": [], "pathways": ["employment", "training"]},
    ],
    "locations": [
        {"name": "Bureau de Sherbrooke", "address": "1100, rue King Ouest", "city": "Sherbrooke",
         "postal_code": "J1H 1S1", "region": "05"},
        {"name": None, "address": None, "city": "Magog", "postal_code": None, "region": "05"},
        {"name": None, "address": None, "city": None, "postal_code": None, "region": "16"},
    ],
    "contacts": [
        {"name": "Sarah O'Brien", "role": "agente d'accueil", "email": "sobrien@example.org",
         "phone": "+1 819 555-0142", "preferred_channel": "phone"},
        {"name": None, "role": "Réception", "email": None, "phone": None,
         "preferred_channel": None},
    ],
}


def organization() -> Organization:
    org = Organization(id=uuid.uuid4(), last_validated_at=datetime(2026, 3, 1, tzinfo=UTC),
                       services=[], locations=[], contacts=[])
    apply_entry(org, ENTRY)
    for child in (*org.services, *org.locations, *org.contacts):
        child.id, child.organization_id = uuid.uuid4(), org.id
    return org


def test_an_entry_survives_the_round_trip() -> None:
    exported = organization_to_hsds(organization())
    text = json.dumps(exported, ensure_ascii=False)
    assert entry_from_hsds(json.loads(text)) == ENTRY


def test_the_export_passes_the_hsds_schemas() -> None:
    exported = organization_to_hsds(organization())
    assert hsds_errors(exported) == []
    # A complete address becomes an HSDS address; a city alone stays in the extension.
    sherbrooke, magog, _ = exported["locations"]
    assert sherbrooke["addresses"][0]["state_province"] == "QC"
    assert "addresses" not in magog and magog["x_maillage"]["city"] == "Magog"


def test_the_schemas_catch_what_hsds_refuses() -> None:
    exported = organization_to_hsds(organization())
    broken = copy.deepcopy(exported)
    del broken["description"]
    broken["services"][0]["status"] = "open"
    broken["locations"][0]["addresses"][0].pop("postal_code")
    errors = hsds_errors(broken)
    assert any("'description' is a required property" in e for e in errors)
    assert any("services/0/status" in e for e in errors)
    assert any("'postal_code' is a required property" in e for e in errors)

    # Properties HSDS does not name are refused unless they are `x_` extensions: the hub's
    # own word for a field instead of HSDS's, or an extension without its prefix.
    misnamed = copy.deepcopy(exported)
    misnamed["contacts"][0]["role"] = misnamed["contacts"][0].pop("title")
    misnamed["services"][0]["pathways"] = ["settlement"]
    del misnamed["services"][0]["languages"][0]["id"]
    errors = hsds_errors(misnamed)
    assert any(e.startswith("contacts/0:") and "'role' does not match" in e for e in errors)
    assert any(e.startswith("services/0:") and "'pathways' does not match" in e
               for e in errors)
    assert any(e.startswith("services/0/languages/0:") and "'id' is a required" in e
               for e in errors)
    assert not any("x_maillage" in e for e in errors)


def test_hsds_from_elsewhere_is_read_with_defaults_or_refused() -> None:
    foreign = {"id": "not-a-uuid", "name": "Maison de la famille", "description": "",
               "locations": [{"id": str(uuid.uuid4()), "location_type": "physical",
                              "addresses": [{"address_1": "12, rue Principale",
                                             "city": "Rimouski", "region": "Bas-Saint-Laurent",
                                             "postal_code": "G5L 1A1"}]}]}
    entry = entry_from_hsds(foreign)
    assert (entry["kind"], entry["region"], entry["capacity"]) == ("other", "01", "open")
    with pytest.raises(NotHsds, match="no Québec region"):
        entry_from_hsds({"name": "Ailleurs", "locations": [{"location_type": "physical"}]})
    with pytest.raises(NotHsds, match="name is required"):
        entry_from_hsds({"description": "sans nom"})
    with pytest.raises(NotHsds, match="list of objects"):
        entry_from_hsds({"name": "X", "services": "emploi"})

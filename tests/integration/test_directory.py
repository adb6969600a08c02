"""The directory (issue 7): entries with services, locations, contacts and capacity, kept by
their own organization or a hub administrator, and a search that ignores accents.

The test database is shared, so every search names a word only this test's entries hold.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.helpers import Network, Partner

ORGS = "/api/v1/organizations"
PROBLEM_JSON = "application/problem+json"

ENTRY: dict[str, Any] = {
    "description": "Accueil et intégration des personnes immigrantes à Montréal",
    "website": "https://carrefour.example.org",
    "capacity": "waitlist",
    "capacity_until": "2027-01-15",
    "services": [
        {"name": "Aide à l'emploi", "pathways": ["employment", "training"],
         "eligibility_notes": "Résident·e permanent·e ou réfugié·e", "languages": ["fr", "en"]},
        {"name": "Régionalisation — s'établir en région", "pathways": ["settlement"],
         "languages": ["fr", "es"]},
    ],
    "locations": [{"name": "Point de service Côte-des-Neiges", "address": "5000, ch. de la "
                   "Côte-des-Neiges", "city": "Montréal", "postal_code": "H3T 1Y1",
                   "region": "06"},
                  {"city": "Saint-Jérôme", "region": "15"}],
    "contacts": [{"name": "Marie-Ève Tremblay", "role": "conseillère en emploi",
                  "email": "me.tremblay@example.org", "phone": "+1 514 555 0199",
                  "preferred_channel": "email"}],
}


def tag() -> str:
    return "x" + secrets.token_hex(4)


def search(partner: Partner, **params: str) -> list[dict[str, Any]]:
    response = partner.get(ORGS, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def test_an_organization_keeps_its_own_entry(network: Network) -> None:
    carrefour = network.partner(name=f"Carrefour d'intégration {tag()}")
    response = carrefour.call("PATCH", f"{ORGS}/{carrefour.organization_id}", json=ENTRY)
    assert response.status_code == 200, response.get_data(as_text=True)

    entry = carrefour.get(f"{ORGS}/{carrefour.organization_id}").get_json()
    assert entry["capacity"] == "waitlist" and entry["capacity_until"] == "2027-01-15"
    assert [s["name"] for s in entry["services"]] == [
        "Aide à l'emploi", "Régionalisation — s'établir en région"]
    assert entry["services"][0]["pathways"] == ["employment", "training"]
    assert entry["services"][1]["languages"] == ["fr", "es"]
    assert {place["region_name"] for place in entry["locations"]} == {"Montréal", "Laurentides"}
    assert entry["contacts"][0]["email"] == "me.tremblay@example.org"
    assert entry["last_validated_by"] == f"client:{carrefour.client_id}"

    # Lists sent replace the lists held; fields not sent stay.
    response = carrefour.call("PATCH", f"{ORGS}/{carrefour.organization_id}",
                              json={"contacts": [], "capacity": "open"})
    entry = response.get_json()
    assert entry["contacts"] == [] and len(entry["services"]) == 2
    assert entry["capacity"] == "open"


def test_only_the_organization_or_a_hub_administrator_changes_an_entry(network: Network
                                                                       ) -> None:
    owner, other = network.partner(), network.partner()
    admin = network.partner(kind="coordination", scopes=["directory:read", "directory:write",
                                                         "hub:admin"])
    watcher = network.partner(kind="coordination")  # a coordinator without hub:admin
    path = f"{ORGS}/{owner.organization_id}"

    refused = other.call("PATCH", path, json={"capacity": "full"})
    assert refused.status_code == 403 and refused.mimetype == PROBLEM_JSON
    assert watcher.call("PATCH", path, json={"capacity": "full"}).status_code == 403
    assert other.post(f"{path}/validate").status_code == 403

    read_only = owner.fetch_token("directory:read").get_json()["access_token"]
    assert owner.call("PATCH", path, json={"capacity": "full"},
                      token=read_only).status_code == 403

    changed = admin.call("PATCH", path, json={"capacity": "full"})
    assert changed.status_code == 200 and changed.get_json()["capacity"] == "full"
    assert changed.get_json()["last_validated_by"] == f"client:{admin.client_id}"

    # Becoming a coordination body opens the network's handoffs: administrators only.
    promoted = owner.call("PATCH", path, json={"kind": "coordination"})
    assert promoted.status_code == 403 and promoted.mimetype == PROBLEM_JSON
    assert owner.get(path).get_json()["kind"] == "community"
    assert owner.call("PATCH", path, json={"kind": "community"}).status_code == 200  # same
    assert admin.call("PATCH", path, json={"kind": "regional_partner"}).status_code == 200

    confirmed = owner.post(f"{path}/validate")
    assert confirmed.status_code == 200
    assert confirmed.get_json()["last_validated_by"] == f"client:{owner.client_id}"


def test_contacts_are_for_authenticated_partners_only(network: Network) -> None:
    owner = network.partner()
    owner.call("PATCH", f"{ORGS}/{owner.organization_id}", json=ENTRY)
    anonymous = owner.app.test_client().get(f"{ORGS}/{owner.organization_id}")
    assert anonymous.status_code == 401 and anonymous.mimetype == PROBLEM_JSON
    assert "Tremblay" not in anonymous.get_data(as_text=True)


def test_bad_entries_are_refused_field_by_field(network: Network) -> None:
    owner = network.partner()
    path = f"{ORGS}/{owner.organization_id}"
    response = owner.call("PATCH", path, json={
        "capacity": "closed", "services": [{"name": "Emploi", "pathways": ["astrology"]}],
        "locations": [{"city": "Toronto", "region": "35"}],
        "contacts": [{"email": "not an email", "preferred_channel": "pigeon"}]})
    assert response.status_code == 422 and response.mimetype == PROBLEM_JSON
    errors = response.get_json()["errors"]
    assert {"capacity", "services.0.pathways.0", "locations.0.region", "contacts.0.email",
            "contacts.0.preferred_channel"} <= set(errors)
    assert owner.call("PATCH", f"{ORGS}/{secrets.token_hex(4)}", json={}).status_code == 404


def test_search_ignores_accents_and_case(network: Network) -> None:
    word = tag()
    montreal = network.partner(name=f"Centre d'emploi de Montréal {word}")
    coop = network.partner(kind="cooperative_development", region="01",
                           name=f"Coopérative de développement {word}")
    reader = network.partner()

    assert [o["id"] for o in search(reader, q=f"Montreal {word}")] == [montreal.organization_id]
    assert [o["id"] for o in search(reader, q=f"COOPERATIVE {word}")] == [coop.organization_id]
    assert len(search(reader, q=f"developpement {word}")) == 1
    assert search(reader, q=f"Sherbrooke {word}") == []
    # The region's name is part of the entry: "Bas-Saint-Laurent" finds the co-op (region 01).
    assert [o["id"] for o in search(reader, q=f"bas saint laurent {word}")] == [
        coop.organization_id]


def test_search_by_service_place_pathway_kind_and_capacity(network: Network) -> None:
    word = tag()
    carrefour = network.partner(name=f"Carrefour {word}")
    carrefour.call("PATCH", f"{ORGS}/{carrefour.organization_id}", json=ENTRY)
    agence = network.partner(kind="entrepreneurship_agency", name=f"Agence {word}")
    agence.call("PATCH", f"{ORGS}/{agence.organization_id}", json={
        "services": [{"name": "Démarrage d'entreprise", "pathways": ["entrepreneurship"]}]})

    def ids(**params: str) -> set[str]:
        return {o["id"] for o in search(carrefour, q=word, **params)}

    assert ids(pathway="settlement") == {carrefour.organization_id}
    assert ids(pathway="entrepreneurship") == {agence.organization_id}
    assert ids(pathway="cooperative_entrepreneurship") == set()
    assert ids(kind="entrepreneurship_agency") == {agence.organization_id}
    assert ids(capacity="waitlist") == {carrefour.organization_id}
    assert ids(capacity="open") == {agence.organization_id}
    # A location in the Laurentides puts the Montréal organization in region 15 too.
    assert ids(region="15") == {carrefour.organization_id}
    # Words of services and places are searched, without accents.
    assert {o["id"] for o in search(carrefour, q=f"regionalisation {word}")} == {
        carrefour.organization_id}
    assert {o["id"] for o in search(carrefour, q=f"saint jerome {word}")} == {
        carrefour.organization_id}
    assert {o["id"] for o in search(carrefour, q=f"demarrage {word}")} == {
        agence.organization_id}


def test_search_pages_and_refuses_bad_filters(network: Network) -> None:
    word = tag()
    created = {network.partner(name=f"Organisme {word} {n}").organization_id for n in range(3)}
    reader = network.partner()
    first = reader.get(ORGS, query_string={"q": word, "limit": 2}).get_json()
    second = reader.get(ORGS, query_string={"q": word, "limit": 2,
                                            "cursor": first["next_cursor"]}).get_json()
    assert {o["id"] for o in first["items"] + second["items"]} == created
    assert second["next_cursor"] is None
    for bad in ({"pathway": "astrology"}, {"capacity": "closed"}, {"region": "99"},
                {"cursor": "nope"}):
        response = reader.get(ORGS, query_string=bad)
        assert response.status_code in (400, 422) and response.mimetype == PROBLEM_JSON

"""`GET /api/v1/directory/hsds`: the directory as HSDS 3.0 organizations, page by page, that
pass the HSDS schemas and import back unchanged; `directory:read` only; bad input gets a
problem, never a 500."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hub.db import db
from hub.directory.hsds import import_hsds
from hub.directory.organizations import Contact, Organization
from tests.helpers import Network, Partner
from tests.hsds_schemas import hsds_errors

HSDS = "/api/v1/directory/hsds"
ENTRY = {
    "description": "Accueil et intégration des personnes immigrantes à Rimouski",
    "website": "https://accueil-rimouski.example.org",
    "services": [{"name": "Régionalisation", "pathways": ["settlement"],
                  "languages": ["fr", "en"], "eligibility_notes": "Résidence permanente"}],
    "locations": [{"name": "Bureau", "address": "12, rue Principale", "city": "Rimouski",
                   "postal_code": "G5L 1A1", "region": "01"}],
    "contacts": [{"name": "Julie Gagnon", "role": "Agente d'accueil",
                  "email": "jgagnon@example.org", "phone": "+1 418 555 0199",
                  "preferred_channel": "email"}],
}


def every_page(partner: Partner, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every organization, following `next_cursor`; and how many pages it took."""
    organizations: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit}
    pages = 0
    while True:
        response = partner.get(HSDS, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["hsds_version"] == "3.0" and len(body["items"]) <= limit
        organizations += body["items"]
        pages += 1
        if body["next_cursor"] is None:
            return organizations, pages
        query = {"limit": limit, "cursor": body["next_cursor"]}


def test_the_directory_comes_whole_in_pages_and_imports_back_unchanged(network: Network
                                                                        ) -> None:
    described = network.partner(kind="regional_partner", region="01")
    assert described.call("PATCH", f"/api/v1/organizations/{described.organization_id}",
                          json=ENTRY).status_code == 200
    others = [network.partner() for _ in range(4)]
    reader = network.partner(scopes=["directory:read"])

    organizations, pages = every_page(reader, limit=2)
    ids = [o["id"] for o in organizations]
    assert len(ids) == len(set(ids))  # nothing twice across pages
    mine = {p.organization_id for p in (described, reader, *others)}
    assert mine <= set(ids)
    assert pages >= (len(ids) + 1) // 2
    assert all(hsds_errors(o) == [] for o in organizations)

    entry = next(o for o in organizations if o["id"] == described.organization_id)
    assert entry["services"][0]["name"] == "Régionalisation"
    assert entry["services"][0]["x_maillage"] == {"pathways": ["settlement"]}
    assert entry["locations"][0]["addresses"][0]["city"] == "Rimouski"
    assert entry["contacts"][0]["title"] == "Agente d'accueil"
    assert entry["contacts"][0]["phones"][0]["number"] == "+1 418 555 0199"
    assert entry["x_maillage"]["region"] == "01"

    assert [o["id"] for o in every_page(reader, limit=500)[0]] == ids  # same order, any size
    with network.app.app_context():
        outcomes = import_hsds(db.session, organizations, validated_by="test", apply=False,
                               now=datetime.now(UTC))
        db.session.rollback()
    # The test's own organizations come back unchanged.  (The database is shared with the
    # session's other tests, whose organizations must at least be recognised, never created
    # again nor refused.)
    made_here = {str(p.organization_id) for p in (described, reader, *others)}
    by_id = {o["id"]: outcome for o, outcome in zip(organizations, outcomes, strict=True)}
    assert {by_id[i].action for i in made_here} == {"unchanged"}
    assert {o.action for o in outcomes} <= {"unchanged", "update"}, \
        [(o.name, o.action, o.reason) for o in outcomes if o.action not in ("unchanged", "update")]


def test_only_a_token_with_directory_read(network: Network) -> None:
    partner = network.partner()
    without = partner.fetch_token(scope="referrals:read").get_json()["access_token"]
    refused = partner.get(HSDS, token=without)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert "directory:read" in refused.get_json()["detail"]
    anonymous = network.app.test_client().get(HSDS)
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    with_scope = partner.fetch_token(scope="directory:read").get_json()["access_token"]
    assert partner.get(HSDS, token=with_scope).status_code == 200


def test_bad_paging_gets_a_problem(network: Network) -> None:
    partner = network.partner()
    for query, status, field in (({"limit": 0}, 422, "limit"), ({"limit": 501}, 422, "limit"),
                                 ({"limit": "many"}, 422, "limit"),
                                 ({"cursor": "not-a-cursor"}, 400, "cursor"),
                                 ({"page": 2}, 422, "page")):
        response = partner.get(HSDS, query_string=query)
        assert response.status_code == status, (query, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert field in str(response.get_json().get("errors")), response.get_json()


def test_the_route_is_documented(network: Network) -> None:
    spec = network.app.test_client().get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/directory/hsds"]["get"]
    assert operation["security"] == [{"oauth2": ["directory:read"]}]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"limit", "cursor", "updated_since"}
    assert parameters["updated_since"]["schema"]["format"] == "date-time"
    assert "offset" in parameters["updated_since"]["description"]
    text = operation["summary"] + operation.get("description", "")
    assert "HSDS 3.0" in text and "next_cursor" in text and "updated_since" in text


def _walk(partner: Partner, query: dict[str, Any]) -> tuple[list[str], int]:
    """The ids of every page from `query`, the next pages asked with `cursor` alone."""
    ids: list[str] = []
    pages = 0
    while True:
        response = partner.get(HSDS, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        ids += [o["id"] for o in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            return ids, pages
        query = {"limit": query["limit"], "cursor": body["next_cursor"]}


def test_updated_since_gives_the_entries_changed_since_page_by_page(network: Network) -> None:
    untouched, described, contacted, validated = (network.partner() for _ in range(4))
    reader = network.partner(scopes=["directory:read"])
    since = datetime.now(UTC)
    assert described.call("PATCH", f"/api/v1/organizations/{described.organization_id}",
                          json=ENTRY).status_code == 200
    assert contacted.call("PATCH", f"/api/v1/organizations/{contacted.organization_id}",
                          json={"contacts": ENTRY["contacts"]}).status_code == 200
    assert validated.post(
        f"/api/v1/organizations/{validated.organization_id}/validate").status_code == 200
    changed = sorted(p.organization_id for p in (described, contacted, validated))

    ids, pages = _walk(reader, {"limit": 1, "updated_since": since.isoformat()})
    assert ids == changed and pages == 3  # id order, the filter kept by the cursor
    # The same moment written with another offset, and the whole directory without it.
    montreal = since.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert _walk(reader, {"limit": 500, "updated_since": montreal})[0] == changed
    everything = _walk(reader, {"limit": 500})[0]
    assert untouched.organization_id in everything and set(changed) <= set(everything)
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert _walk(reader, {"limit": 500, "updated_since": later}) == ([], 1)

    # The entry as HSDS says it, once changed.
    body = reader.get(HSDS, query_string={"updated_since": since.isoformat()}).get_json()
    entry = next(o for o in body["items"] if o["id"] == described.organization_id)
    assert entry["services"][0]["name"] == "Régionalisation" and hsds_errors(entry) == []


def test_a_change_of_a_service_place_or_contact_alone_moves_the_entry(
        network: Network) -> None:
    partner = network.partner()
    organization_id = uuid.UUID(partner.organization_id)
    with network.app.app_context():
        before = db.session.get(Organization, organization_id).updated_at
        db.session.rollback()
    with network.app.app_context(), db.job_session() as session:
        organization = session.get(Organization, organization_id)
        organization.name = organization.name  # set, not changed: not an update
    with network.app.app_context():
        assert db.session.get(Organization, organization_id).updated_at == before
        db.session.rollback()
    with network.app.app_context(), db.job_session() as session:
        session.add(Contact(organization_id=organization_id, name="Marc", role="accueil"))
    with network.app.app_context():
        after = db.session.get(Organization, organization_id).updated_at
        db.session.rollback()
    assert after > before


def test_a_bad_updated_since_says_what_is_expected(network: Network) -> None:
    partner = network.partner()
    for value, words in (("yesterday", "ISO 8601"), ("2026-11-20", "ISO 8601"),
                         ("2026-11-20T08:00:00", "no offset"),
                         ("2026-11-20T08:00:00 05:00", "%2B")):
        response = partner.get(HSDS, query_string={"updated_since": value})
        assert response.status_code == 422, (value, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert words in str(response.get_json()["errors"]), response.get_json()
    # A cursor continues its own listing: another updated_since with it is refused.
    for _ in range(2):
        network.partner()
    first = partner.get(HSDS, query_string={"limit": 1,
                                            "updated_since": "2020-01-01T00:00:00Z"})
    cursor = first.get_json()["next_cursor"]
    assert cursor is not None
    mixed = partner.get(HSDS, query_string={"cursor": cursor,
                                            "updated_since": "2021-01-01T00:00:00Z"})
    assert mixed.status_code == 400 and mixed.mimetype == "application/problem+json"
    assert "updated_since" in mixed.get_json()["errors"]
    same = partner.get(HSDS, query_string={"cursor": cursor,
                                           "updated_since": "2020-01-01T00:00:00+00:00"})
    assert same.status_code == 200

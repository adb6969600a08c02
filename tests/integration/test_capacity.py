"""Capacity a counsellor can trust at the moment of choosing (design §14): per service, with
its date, through the API and HSDS, shown with its age where a partner is chosen and marked
stale after 30 days; after a decline for lack of room, the receiver says "we are full until…"
in one click, from the portal or from the link of a mail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from hub.adapters.hsds import entry_from_hsds
from hub.db import db, utcnow
from hub.directory.organizations import Organization, Service
from hub.mailbox import links
from tests.helpers import Network, Partner
from tests.integration.test_hsds_api import every_page, hsds_errors
from tests.integration.test_portal_pages import consent_to, refer, register
from tests.portal import Person, make_organization, make_user, text_of

SERVICES = [{"name": "Accueil et intégration", "pathways": ["settlement"]},
            {"name": "Recherche d'emploi", "pathways": ["employment"]}]


def set_entry(partner: Partner, **changes: Any) -> dict[str, Any]:
    response = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                            json=changes)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def services_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in entry["services"]}


def test_capacity_per_service_is_dated_kept_and_refused_when_unknown(network: Network) -> None:
    partner = network.partner()
    before = utcnow()
    entry = set_entry(partner, services=[
        {**SERVICES[0], "capacity": "waitlist", "waitlist_band": "1_to_3_months"},
        SERVICES[1]])
    services = services_of(entry)
    settled = services["Accueil et intégration"]
    assert (settled["capacity"], settled["waitlist_band"], settled["capacity_stale"]) == (
        "waitlist", "1_to_3_months", False)
    assert settled["capacity_updated_at"] >= before.isoformat()[:19]
    assert services["Recherche d'emploi"]["capacity"] is None
    assert services["Recherche d'emploi"]["capacity_stale"] is True  # never said

    # Listed again without capacity: kept, with its date.
    again = services_of(set_entry(partner, services=SERVICES))
    assert again["Accueil et intégration"]["capacity_updated_at"] == \
        settled["capacity_updated_at"]
    assert again["Accueil et intégration"]["capacity"] == "waitlist"

    refused = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                           json={"services": [{**SERVICES[0], "capacity": "sometimes"}]})
    assert refused.status_code == 422
    assert refused.content_type == "application/problem+json"
    assert "capacity" in str(refused.get_json()["errors"])


def test_hsds_carries_each_service_capacity_and_reads_it_back(network: Network) -> None:
    partner = network.partner()
    said = services_of(set_entry(partner, services=[{**SERVICES[0], "capacity": "full"}]))
    reader = network.partner(scopes=["directory:read"])
    organizations, _pages = every_page(reader, limit=500)
    document = next(o for o in organizations if o["id"] == partner.organization_id)
    assert hsds_errors(document) == []
    extension = document["services"][0]["x_maillage"]
    assert extension["capacity"] == "full"
    read_back = entry_from_hsds(document)["services"][0]
    assert read_back["capacity"] == "full"
    assert read_back["capacity_updated_at"].isoformat()[:19] == \
        said[SERVICES[0]["name"]]["capacity_updated_at"][:19]


def test_the_refer_page_shows_each_partner_capacity_with_its_age_and_staleness(
        app: Flask) -> None:
    sender = make_organization(app)
    fresh = make_organization(app, kind="regional_partner", region="01",
                              name=f"Frais {uuid.uuid4().hex[:6]}")
    old = make_organization(app, kind="regional_partner", region="01",
                            name=f"Ancien {uuid.uuid4().hex[:6]}")
    with app.app_context(), db.job_session() as session:
        now = utcnow()
        for organization, said, capacity in ((fresh, now - timedelta(days=3), "open"),
                                             (old, now - timedelta(days=45), "full")):
            service = Service(organization_id=organization.id, name="Accueil", languages=[],
                              capacity=capacity, capacity_updated_at=said)
            service.pathways = ["settlement"]
            session.add(service)
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    participant = register(counsellor)
    page = text_of(counsellor.get(f"/participants/{participant}/refer?region=01"))
    # "Ancien…" comes before "Frais…": the page lists partners by name.
    old_row = page[page.index(old.name):page.index(fresh.name)]
    fresh_row = page[page.index(fresh.name):][:200]
    assert "Accueil — Ouvert — indiqué il y a 3 jours" in fresh_row
    assert "périmée" not in fresh_row
    assert "Accueil — Complet — indiqué il y a 2 mois" in old_row  # 45 days, rounded
    assert "peut être périmée" in old_row


def test_the_referral_form_shows_who_each_service_takes(app: Flask) -> None:
    sender = make_organization(app)
    receiver = make_organization(app, kind="regional_partner", region="01",
                                 name=f"Accueil {uuid.uuid4().hex[:6]}")
    with app.app_context(), db.job_session() as session:
        for name, pathway, notes in (
                ("Installation", "settlement", "Résidents permanents arrivés depuis moins "
                                               "de 5 ans"),
                ("Emploi", "employment", "Personnes de 18 à 35 ans"),
                ("Francisation", "settlement", None)):
            service = Service(organization_id=receiver.id, name=name, languages=[],
                              eligibility_notes=notes)
            service.pathways = [pathway]
            session.add(service)
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    participant = register(counsellor)
    path = f"/participants/{participant}/refer?region=01&pathway=settlement"
    row = text_of(counsellor.get(path)).split(receiver.name, 1)[1][:400]
    assert "Admissibilité" in row
    assert "Installation : Résidents permanents arrivés depuis moins de 5 ans" in row
    assert "18 à 35 ans" not in row  # another pathway's service
    assert "Francisation :" not in row  # no notes, nothing to say
    counsellor.get("/lang/en")
    row = text_of(counsellor.get(path)).split(receiver.name, 1)[1][:400]
    assert "Eligibility" in row
    assert "Installation: Résidents permanents" in row


def test_after_a_decline_for_lack_of_room_the_portal_asks_and_records_we_are_full(
        app: Flask) -> None:
    sender = make_organization(app)
    receiver = make_organization(app, kind="regional_partner", region="01")
    with app.app_context(), db.job_session() as session:
        service = Service(organization_id=receiver.id, name="Accueil", languages=[])
        service.pathways = ["settlement"]
        session.add(service)
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    partner = Person.logged_in(app, make_user(app, receiver, "partner_staff"))
    participant = register(counsellor)
    consent_to(counsellor, participant, receiver)
    leg = refer(counsellor, participant, receiver)
    assert "Êtes-vous complet" not in text_of(partner.get(f"/legs/{leg}"))
    declined = partner.post(f"/legs/{leg}/decline", {"reason": "no_capacity", "version": "1"})
    assert declined.status_code == 302
    page = text_of(partner.get(f"/legs/{leg}"))
    assert "Êtes-vous complet" in page
    until = (utcnow() + timedelta(days=60)).date()
    refused = partner.post(f"/legs/{leg}/capacity", {"capacity": "full",
                                                     "until": "2001-01-01"})
    assert refused.status_code == 422
    done = partner.post(f"/legs/{leg}/capacity", {"capacity": "full",
                                                  "until": until.isoformat()})
    assert done.status_code == 302
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, receiver.id)
        assert organization is not None
        assert (organization.capacity, organization.capacity_until) == ("full", until)
        assert [(s.capacity, s.capacity_updated_at is not None)
                for s in organization.services] == [("full", True)]
    # The sender's counsellor may not say it for the receiver.
    assert counsellor.post(f"/legs/{leg}/capacity", {"capacity": "open"}).status_code in (
        403, 409)


def test_the_link_of_a_mail_asks_for_capacity_after_a_decline_for_lack_of_room(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    entry = set_entry(receiver, services=[SERVICES[0]], contacts=[
        {"name": "Accueil", "email": f"a.{uuid.uuid4().hex[:6]}@example.org",
         "notify_referrals": True}])
    contact_id = uuid.UUID(entry["contacts"][0]["id"])
    leg = sender.refer(receiver)
    token = links.make_token(app.config["HUB_SETTINGS"].secret_key, uuid.UUID(leg["id"]),
                             contact_id)
    client = app.test_client()
    early = client.post(f"/a/{token}/capacity", data={"capacity": "full"})
    assert early.status_code == 422  # only after a decline for lack of room
    assert client.post(f"/a/{token}", data={"action": "decline", "reason": "no_capacity",
                                            "version": "1"}).status_code == 303
    assert "Êtes-vous complet" in client.get(f"/a/{token}").get_data(as_text=True)
    bad_date = client.post(f"/a/{token}/capacity", data={"capacity": "full",
                                                         "until": "31/03/2027"})
    assert bad_date.status_code == 422
    assert 'value="31/03/2027"' in bad_date.get_data(as_text=True)  # what was typed
    done = client.post(f"/a/{token}/capacity", data={"capacity": "waitlist",
                                                     "waitlist_band": "over_3_months"})
    assert done.status_code == 303
    service = services_of(receiver.get(
        f"/api/v1/organizations/{receiver.organization_id}").get_json())[SERVICES[0]["name"]]
    assert (service["capacity"], service["waitlist_band"], service["capacity_stale"]) == (
        "waitlist", "over_3_months", False)


def test_capacity_older_than_30_days_is_stale_in_the_api(app: Flask, network: Network) -> None:
    partner = network.partner()
    set_entry(partner, services=[{**SERVICES[0], "capacity": "open"}])
    with app.app_context(), db.job_session() as session:
        session.execute(update(Service).where(
            Service.organization_id == uuid.UUID(partner.organization_id))
            .values(capacity_updated_at=utcnow() - timedelta(days=31)))
    entry = partner.get(f"/api/v1/organizations/{partner.organization_id}").get_json()
    assert services_of(entry)[SERVICES[0]["name"]]["capacity_stale"] is True


def test_the_directory_entry_page_shows_each_service_capacity_with_its_age(
        app: Flask, network: Network) -> None:
    partner = network.partner()
    set_entry(partner, services=[{**SERVICES[0], "capacity": "full"}, SERVICES[1]])
    reader = make_organization(app)
    person = Person.logged_in(app, make_user(app, reader, "counsellor"))
    page = text_of(person.get(f"/directory/{partner.organization_id}"))
    assert "Places dans ce service en ce moment Complet — indiqué il y a" in page
    assert "Places dans ce service en ce moment Non précisé" in page

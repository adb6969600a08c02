"""The directory in the portal (issue 20, design §13): a text search, a page per entry with its
services, eligibility, languages, places, contacts, capacity and age; the user's
organization's relationship note, edited by any of its users with its history kept and never
shown to another organization; "out of date" reports that the entry's admins see until they
confirm the entry."""

from __future__ import annotations

import html
import secrets
import uuid
from datetime import timedelta

from flask import Flask

from hub.db import db, utcnow
from hub.directory.organizations import Contact, Location, Organization, Service
from tests.portal import Person, make_organization, make_user, text_of


def filled_entry(app: Flask, word: str) -> Organization:
    organization = make_organization(app, kind="public_institution", region="01",
                                     name=f"CISSS du Bas-Saint-Laurent {word}")
    with app.app_context(), db.job_session() as session:
        entry = session.get(Organization, organization.id)
        assert entry is not None
        service = Service(name="Travail social", eligibility_notes="Résidents de la MRC",
                          languages=["fr", "en"])
        service.pathways = ["settlement"]
        entry.services.append(service)
        entry.locations.append(Location(city="Rimouski", region="01", postal_code="G5L 5T1"))
        entry.contacts.append(Contact(name="Nadia Bérubé", role="travailleuse sociale",
                                      email="n.berube@example.org"))
        entry.last_validated_at = utcnow() - timedelta(days=400)
    return organization


def test_a_counsellor_finds_an_entry_and_reads_it_whole(app: Flask) -> None:
    word = secrets.token_hex(3)
    entry = filled_entry(app, word)
    own = make_organization(app)
    counsellor = Person.logged_in(app, make_user(app, own, "counsellor"))

    found = counsellor.get(f"/directory?q=cisss+bas+saint+laurent+{word}")
    assert found.status_code == 200
    assert f"/directory/{entry.id}" in found.get_data(as_text=True)
    by_service = counsellor.get(f"/directory?q=travail+social+{word}&kind=public_institution")
    assert f"/directory/{entry.id}" in by_service.get_data(as_text=True)
    assert f"/directory/{entry.id}" not in counsellor.get(
        f"/directory?q={word}&kind=community").get_data(as_text=True)
    # A filter that is not one of ours is ignored, never a 500.
    assert counsellor.get("/directory?kind=astrologie&region=99").status_code == 200

    text = text_of(counsellor.get(f"/directory/{entry.id}"))
    for expected in ("Organisme public", "Bas-Saint-Laurent", "Travail social",
                     "Résidents de la MRC", "fr, en", "Rimouski", "Nadia Bérubé",
                     "travailleuse sociale", "n.berube@example.org", "Ouvert",
                     "non confirmée depuis plus d’un an"):
        assert expected in text, expected
    assert counsellor.get(f"/directory/{uuid.uuid4()}").status_code == 404


def test_the_note_is_the_organizations_and_keeps_its_history(app: Flask) -> None:
    entry = filled_entry(app, secrets.token_hex(3))
    own, other = make_organization(app), make_organization(app)
    first = Person.logged_in(app, make_user(app, own, "counsellor", name="Sophie Tremblay"))
    second = Person.logged_in(app, make_user(app, own, "partner_staff", name="Marc Roy"))
    outsider = Person.logged_in(app, make_user(app, other, "counsellor"))
    path = f"/directory/{entry.id}"

    saved = first.post(path + "/relationship", {"collaboration": "Accompagnement à l'arrivée",
                                                "notes": "Passer par l'accueil psychosocial"})
    assert saved.status_code == 302
    changed = second.post(path + "/relationship", {"collaboration": "Séjours exploratoires",
                                                   "notes": "Passer par l'accueil psychosocial"})
    assert changed.status_code == 302
    shown = second.get(path)
    assert 'value="Séjours exploratoires"' in shown.get_data(as_text=True)
    page = text_of(shown)
    assert "Marc Roy" in page
    assert "Versions précédentes (1)" in page and "Accompagnement à l'arrivée" in page
    assert "Sophie Tremblay" in page

    hidden = html.unescape(outsider.get(path).get_data(as_text=True))
    assert "Séjours exploratoires" not in hidden and "accueil psychosocial" not in hidden
    assert "Accompagnement à l'arrivée" not in hidden  # the placeholder has a curly one

    # Too long: the page comes back with what was typed and what to fix.
    typed = "x" * 501
    refused = first.post(path + "/relationship", {"collaboration": typed, "notes": "gardé"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert typed in body and "gardé" in body
    assert "au plus 500 caractères" in text_of(refused)


def test_a_partner_reports_an_outdated_entry_and_its_admins_see_it(app: Flask) -> None:
    entry = filled_entry(app, secrets.token_hex(3))
    reporter_org = make_organization(app, name=f"Carrefour {secrets.token_hex(3)}")
    reporter = Person.logged_in(app, make_user(app, reporter_org, "counsellor"))
    admin = Person.logged_in(app, make_user(app, entry, "org_admin"))
    path = f"/directory/{entry.id}"

    reported = reporter.post(path + "/report-outdated",
                             {"note": "La travailleuse sociale a changé de poste"})
    assert reported.status_code == 302
    admin_page = text_of(admin.get(f"/admin/{entry.id}/entry"))
    assert "Des partenaires signalent que la fiche n’est plus à jour (1)" in admin_page
    assert "La travailleuse sociale a changé de poste" in admin_page
    assert reporter_org.name in admin_page

    # One's own entry is kept, not reported; the form says where instead.
    own_page = text_of(admin.get(path))
    assert "pages d’administration" in own_page
    refused = admin.post(path + "/report-outdated", {"note": "?"})
    assert refused.status_code == 422

    too_long = reporter.post(path + "/report-outdated", {"note": "y" * 2001})
    assert too_long.status_code == 422 and "y" * 2001 in too_long.get_data(as_text=True)

    confirmed = admin.post(f"/admin/{entry.id}/entry/validate")
    assert confirmed.status_code == 302
    assert "Des partenaires signalent" not in text_of(admin.get(f"/admin/{entry.id}/entry"))

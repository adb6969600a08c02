"""The directory pages of issue 20 in a real browser, in French and in English: a counsellor
searches the directory, opens an entry, writes the organization's note and reports the entry
as out of date; an organization's admin uploads the counsellors' grid and reads the dry run.
Each page is checked with axe-core (no serious or critical violation) and photographed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.db import db
from hub.directory.organizations import Organization, Service
from hub.directory.relationships import current_note
from tests.browser.conftest import Hub
from tests.browser.test_portal_story import check_page, log_in, submit
from tests.portal import make_organization, make_user

GRID = Path(__file__).parent.parent / "data" / "directory" / "grille_fusionnee.xlsx"
WORDS = {
    "fr": {"saved": "La note de votre organisme est enregistrée.",
           "reported": "est avisé que sa fiche n’est plus à jour", "dry": "Essai à blanc"},
    "en": {"saved": "Your organization's note is saved.",
           "reported": "is told its entry is out of date", "dry": "Dry run"},
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_directory_pages(hub: Hub, browser: Any, language: str) -> None:
    words = WORDS[language]
    tag = uuid.uuid4().hex[:6]
    entry = make_organization(hub.app, kind="public_institution", region="01",
                              name=f"CLSC de Matane {tag}")
    with hub.app.app_context():
        saved = db.session.get(Organization, entry.id)
        saved.services.append(Service(name="Accueil psychosocial", languages=["fr"],
                                      eligibility_notes="Résidents de La Matanie"))
        db.session.commit()
    own = make_organization(hub.app, name=f"Carrefour d'intégration {tag}")
    counsellor_email = make_user(hub.app, own, "counsellor", language, "Sophie Tremblay")
    admin_email = make_user(hub.app, own, "org_admin", language, "Julie Côté")
    context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
    try:
        counsellor = log_in(context, hub, counsellor_email)
        with counsellor.expect_navigation():
            counsellor.click("header nav a[href='/directory']")
        counsellor.fill("#f-q", f"matane {tag}")
        submit(counsellor, "form.filters")
        check_page(counsellor, "directory", language)
        with counsellor.expect_navigation():
            counsellor.click(f"main a[href='/directory/{entry.id}']")
        counsellor.fill("#collaboration", "Accompagnement à l'arrivée")
        counsellor.fill("#notes", "Passer par l'accueil psychosocial")
        submit(counsellor, "form[action$='/relationship']")
        assert words["saved"] in counsellor.inner_text("main")
        counsellor.fill("#report", "La travailleuse sociale a changé de poste")
        submit(counsellor, "form[action$='/report-outdated']")
        assert words["reported"] in counsellor.inner_text("main")
        check_page(counsellor, "directory-entry", language)
        with hub.app.app_context():
            note = current_note(db.session, own.id, entry.id)
            assert note is not None and note.collaboration == "Accompagnement à l'arrivée"
            db.session.expunge_all()

        context.close()  # the admin logs in in a browser of their own
        context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
        admin = log_in(context, hub, admin_email)
        admin.goto(f"{hub.base_url}/admin/{own.id}/grid")
        check_page(admin, "admin-grid", language)
        admin.set_input_files("#grid", str(GRID))
        submit(admin, "form[action$='/grid']")
        assert words["dry"] in admin.inner_text("main h2")
        check_page(admin, "admin-grid-dry-run", language)
    finally:
        context.close()

"""Erasure and the incident register in a real browser, in French and in English: a counsellor
reads the erase confirmation (what it does, that it cannot be undone) and erases; the admin
sees the erasure register without the name, records a confidentiality incident after a
refusal that keeps what was typed and marks the field to fix, and finds it in the register.
Each page is checked with axe-core (no serious or critical violation) and photographed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hub.db import db
from hub.referrals.participants import Participant
from tests.browser.conftest import Hub
from tests.browser.test_portal_story import check_page, log_in, submit
from tests.portal import make_organization, make_user

WORDS = {
    "fr": {"title": "Effacer les renseignements personnels de", "button": "Effacer maintenant",
           "erased": "Les renseignements personnels de la personne sont effacés.",
           "recorded": "Incident consigné au registre."},
    "en": {"title": "Erase the personal data of", "button": "Erase now",
           "erased": "The participant's personal data is erased.",
           "recorded": "Incident recorded in the register."},
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_erase_confirmation_and_incident_register(hub: Hub, browser: Any,
                                                  language: str) -> None:
    words = WORDS[language]
    tag = uuid.uuid4().hex[:6]
    organization = make_organization(hub.app, name=f"Carrefour d'intégration {tag}")
    admin_email = make_user(hub.app, organization, "org_admin", language, "Julie Côté")
    counsellor_email = make_user(hub.app, organization, "counsellor", language, "Marc Gagnon")
    given = f"Ophélie{tag}"

    context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
    try:
        # --- the counsellor: the confirmation says what erasing does, then it is done.
        counsellor = log_in(context, hub, counsellor_email)
        counsellor.goto(f"{hub.base_url}/participants/new")
        counsellor.fill("#given_name", given)
        counsellor.fill("#family_name", "Tremblay")
        counsellor.fill("#email", f"ophelie.{tag}@example.org")
        counsellor.fill("#birth_year", "1988")
        submit(counsellor)
        participant = uuid.UUID(counsellor.url.rsplit("/", 1)[1])
        with counsellor.expect_navigation():
            counsellor.click(f"a[href='/participants/{participant}/erase']")
        assert words["title"] in counsellor.inner_text("h1") and given in counsellor.inner_text(
            "h1")
        assert words["button"] in counsellor.inner_text("main form button[type=submit]")
        check_page(counsellor, "participant-erase", language)
        submit(counsellor)
        assert words["erased"] in counsellor.inner_text("main")
        assert given not in counsellor.inner_text("main")
        with hub.app.app_context():
            stub = db.session.get(Participant, participant)
            assert stub is not None and stub.erased_at is not None
            db.session.expunge_all()
        context.clear_cookies()

        # --- the admin: the erasure register names no one.
        admin = log_in(context, hub, admin_email)
        admin.goto(f"{hub.base_url}/admin/{organization.id}/erasures")
        assert "P-" in admin.inner_text("main") and given not in admin.inner_text("main")
        check_page(admin, "admin-erasures", language)

        # --- an incident: discovered before it occurred is refused, with what was typed kept.
        admin.goto(f"{hub.base_url}/admin/{organization.id}/privacy-incidents/new")
        admin.fill("#information_involved", f"Adresses de 12 participants {tag}")
        admin.fill("#circumstances", "Ordinateur portable volé dans une voiture")
        admin.fill("#occurred_at", "2026-11-28T18:00")
        admin.fill("#discovered_at", "2026-11-27T08:15")
        admin.fill("#people_affected", "12")
        admin.check("#serious-no")
        submit(admin)
        assert admin.locator("#occurred_at").get_attribute("aria-invalid") == "true"
        assert admin.input_value("#discovered_at") == "2026-11-27T08:15"
        assert admin.input_value("#circumstances") == "Ordinateur portable volé dans une voiture"
        check_page(admin, "admin-privacy-incident-refused", language)
        admin.fill("#discovered_at", "2026-11-29T08:15")
        submit(admin)
        assert words["recorded"] in admin.inner_text("main")
        assert f"Adresses de 12 participants {tag}" in admin.inner_text("main")
        assert admin.url.endswith(f"/admin/{organization.id}/privacy-incidents")
        check_page(admin, "admin-privacy-incidents", language)
    finally:
        context.close()

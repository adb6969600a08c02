"""The organization-admin pages in a real browser, in French and in English: an org admin
updates the directory entry and confirms it, invites a colleague, connects a system (its secret
shown once), adds a webhook endpoint, changes it and sends its failed deliveries again after
the confirmation that says how many.  Each main page is checked with axe-core (no serious or
critical violation) and photographed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from hub.accounts.users import User
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from tests.browser.conftest import Hub
from tests.browser.test_portal_story import check_page, log_in, submit
from tests.portal import make_organization, make_user
from webhooks.models import Delivery, DeliveryState

WORDS = {
    "fr": {"saved": "Fiche du répertoire enregistrée.", "invited": "Invitation envoyée",
           "secret": "Copiez le secret maintenant", "endpoint": "Point de réception ajouté",
           "changed": "Point de réception enregistré.",
           "count": "1 livraison a échoué depuis ce moment.",
           "recovered": "1 livraison en échec sera renvoyée."},
    "en": {"saved": "Directory entry saved.", "invited": "Invitation sent",
           "secret": "Copy the secret now", "endpoint": "Endpoint added",
           "changed": "Endpoint saved.", "count": "1 delivery failed since then.",
           "recovered": "1 failed delivery will be sent again."},
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_an_org_admin_keeps_the_organization(hub: Hub, browser: Any, language: str) -> None:
    words = WORDS[language]
    tag = uuid.uuid4().hex[:6]
    organization = make_organization(hub.app, kind="regional_partner", region="01",
                                     name=f"Place aux jeunes Bas-Saint-Laurent {tag}")
    admin_email = make_user(hub.app, organization, "org_admin", language, "Julie Côté")
    make_user(hub.app, organization, "partner_staff", language, "Marc Gagnon")
    context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
    try:
        admin = log_in(context, hub, admin_email)
        with admin.expect_navigation():
            admin.click("header nav a[href='/admin']")
        assert admin.url.endswith(f"/admin/{organization.id}/entry")

        # --- the directory entry: a service, a place, a contact, the capacity.
        admin.fill("#services-0-name", "Séjours exploratoires")
        admin.fill("#services-0-languages", "fr, en")
        admin.check("#services-0-pathways-settlement")
        admin.fill("#locations-0-city", "Rimouski")
        admin.select_option("#locations-0-region", "01")
        admin.fill("#contacts-0-role", "agent de migration")
        admin.fill("#contacts-0-email", "agent@paj.example.org")
        admin.check("#capacity-waitlist")
        submit(admin, "form.entry")
        assert words["saved"] in admin.inner_text("main")
        check_page(admin, "admin-entry", language)
        submit(admin, "form[action$='/entry/validate']")
        with hub.app.app_context():
            saved = db.session.get(Organization, organization.id)
            assert saved.capacity == "waitlist" and saved.last_validated_by.startswith("user:")
            assert [s.name for s in saved.services] == ["Séjours exploratoires"]
            db.session.expunge_all()

        # --- users: invite a colleague.
        admin.click(f"a[href='/admin/{organization.id}/users']")
        admin.wait_for_load_state()
        admin.fill("#email", f"nouvelle-{tag}@example.org")
        admin.fill("#name", "Léa Nouvelle")
        admin.select_option("#role", "counsellor")
        submit(admin, "form[action$='/users']")
        assert words["invited"] in admin.inner_text("main")
        assert "Léa Nouvelle" in admin.inner_text("main table")
        check_page(admin, "admin-users", language)
        with hub.app.app_context():
            assert db.session.query(User).filter_by(email=f"nouvelle-{tag}@example.org").one()
            db.session.expunge_all()

        # --- a connected system: the secret on the confirmation page only.
        admin.click(f"a[href='/admin/{organization.id}/clients']")
        admin.wait_for_load_state()
        check_page(admin, "admin-clients", language)
        admin.fill("#client-name", "Logiciel de suivi")
        submit(admin, "form[action$='/clients']")
        assert words["secret"] in admin.inner_text("main")
        secret = admin.inner_text("#client-secret")
        assert len(secret) > 30
        check_page(admin, "admin-client-created", language)
        admin.goto(f"{hub.base_url}/admin/{organization.id}/clients")
        assert secret not in admin.content()

        # --- a webhook endpoint and its (empty) delivery log.
        admin.click(f"a[href='/admin/{organization.id}/webhooks']")
        admin.wait_for_load_state()
        admin.fill("#url", "http://127.0.0.1:9/maillage")
        submit(admin, "form[action$='/webhooks']")
        assert words["endpoint"] in admin.inner_text("h1")
        assert admin.inner_text("#endpoint-secret").startswith("whsec_")
        admin.click("main a[href*='/webhooks/']")
        admin.wait_for_load_state()
        check_page(admin, "admin-webhook", language)
        admin.fill("#description", "Logiciel de suivi")
        submit(admin, "form[action$='/edit']")
        assert words["changed"] in admin.inner_text("main")
        endpoint_id = uuid.UUID(admin.url.rsplit("/", 1)[1])
        with hub.app.app_context():  # a delivery the endpoint's server refused an hour ago
            failed = utcnow() - timedelta(hours=1)
            db.session.add(Delivery(endpoint_id=endpoint_id, message_id=f"msg_{tag}",
                                    event_type="referral.sent", ordering_key=f"k{tag}",
                                    sequence=1, state=DeliveryState.DEAD.value, attempts=1,
                                    last_status_code=400, next_attempt_at=failed,
                                    created_at=failed, dead_at=failed))
            db.session.commit()
        admin.fill("#since", "2020-01-01T00:00")
        with admin.expect_navigation():
            admin.click("form[action$='/recover'] button[type=submit]")
        assert words["count"] in admin.inner_text("#recover-count")
        check_page(admin, "admin-webhook-recover", language)
        submit(admin)
        assert words["recovered"] in admin.inner_text("main")
        admin.goto(f"{hub.base_url}/admin/{organization.id}/webhooks")
        check_page(admin, "admin-webhooks", language)
    finally:
        context.close()

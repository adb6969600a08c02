"""An opportunity from a region, end to end in Chromium against a `hub run` server (docs/design.md
§12): a regional partner's staff publishes a job; a Montréal counsellor finds it by region and
refers a candidate to it, needed there next week; both tick items of the move's checklist on
their leg pages; the partner sees the candidate under its opportunity.  Each page is checked
with axe-core; two pictures go to tests/browser/screenshots/."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.db import db
from hub.referrals.participants import register_participant
from tests.browser.conftest import Hub
from tests.browser.test_peer_story import server_keys
from tests.browser.test_portal_story import SCREENSHOTS, check_page, log_in, submit
from tests.portal import make_organization, make_user


def test_a_regional_job_reaches_a_montreal_candidate(hub: Hub, browser: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    montreal = make_organization(hub.app, region="06", name=f"Carrefour Montréal {tag}")
    regional = make_organization(hub.app, kind="regional_partner", region="01",
                                 name=f"Accueil Rimouski {tag}")
    counsellor_email = make_user(hub.app, montreal, "counsellor", "fr", "Sophie Tremblay")
    partner_email = make_user(hub.app, regional, "partner_staff", "fr", "Marc Gagnon")
    with server_keys(hub), hub.app.app_context(), db.job_session() as session:
        candidate = register_participant(session, organization_id=montreal.id,
                                         given_name="Karim", family_name=f"Haddad{tag}",
                                         preferred_language="fr")
        consents.grant(session, Caller(montreal.id, "user:arrange"), candidate.id,
                       purpose="referral_sharing", evidence="written",
                       organization_ids=[regional.id])

    partner = log_in(browser.new_context(locale="fr-CA"), hub, partner_email)
    partner.goto(f"{hub.base_url}/opportunities/new")
    title = f"Soudeur ou soudeuse {tag}"
    partner.fill("#title", title)
    partner.fill("#municipality", "Rimouski")
    partner.get_by_label("Emploi", exact=True).check()
    partner.fill("#description", "Poste permanent de jour, formation offerte à l'arrivée.")
    partner.fill("#closes_on", (date.today() + timedelta(days=20)).isoformat())
    partner.fill("#starts_on", (date.today() + timedelta(days=7)).isoformat())
    partner.fill("#places", "2")
    submit(partner)
    assert "Offre publiée" in partner.content()

    counsellor = log_in(browser.new_context(locale="fr-CA"), hub, counsellor_email)
    counsellor.click("text=Offres des régions")
    counsellor.select_option("#region", "01")
    with counsellor.expect_navigation():
        counsellor.get_by_role("button", name="Filtrer").click()
    check_page(counsellor, "opportunities", "fr")
    counsellor.screenshot(path=str(SCREENSHOTS / "opportunities-fr.png"), full_page=True)
    with counsellor.expect_navigation():
        counsellor.get_by_role("link", name=title).click()
    with counsellor.expect_navigation():
        counsellor.get_by_role("link", name="Orienter une personne vers cette offre").click()
    with counsellor.expect_navigation():
        counsellor.get_by_role("link", name=f"Karim Haddad{tag}").click()
    assert title in counsellor.content()  # the form says which opportunity
    needed_by = (date.today() + timedelta(days=7)).isoformat()
    assert counsellor.input_value("#needed_by") == needed_by  # the job's first day
    counsellor.check("#priority-urgent")
    counsellor.fill("#reason_for_referral", "Candidature au poste de soudure.")
    submit(counsellor)
    assert "Orientation envoyée" in counsellor.content() and title in counsellor.content()
    leg_url = counsellor.url

    def tick(page: Any, item: str) -> None:
        page.select_option(f"#status-{item}", "done")
        with page.expect_navigation():
            page.locator(f"form[action$='/checklist/{item}'] button").click()

    tick(counsellor, "lease_termination")
    partner.goto(leg_url)
    tick(partner, "housing")
    check_page(partner, "opportunity-leg", "fr")

    partner.click("text=Offres des régions")
    with partner.expect_navigation():
        partner.get_by_role("link", name="Mes offres").click()
    assert "1 candidature" in partner.locator("main").inner_text()
    with partner.expect_navigation():
        partner.get_by_role("link", name="1 candidature").click()
    check_page(partner, "opportunity-candidates", "fr")
    partner.screenshot(path=str(SCREENSHOTS / "opportunity-candidates-fr.png"), full_page=True)
    shown = partner.locator("main").inner_text()
    assert f"Carrefour Montréal {tag}" in shown and "Envoyée" in shown
    assert f"Karim Haddad{tag}" in shown  # the candidate, as its consent lets the partner see
    with partner.expect_navigation():
        partner.locator("main table a").first.click()
    page = partner.locator("main").inner_text()
    assert f"Karim Haddad{tag}" in page and title in page
    assert "Fait" in page  # both items ticked, each side's
    assert partner.url == leg_url

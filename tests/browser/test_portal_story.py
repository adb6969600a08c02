"""The portal's whole story in real browsers, in French and in English: a counsellor registers
a participant, records consent and refers them; a partner in another browser context
acknowledges, accepts, records first contact and completes; a second leg left unanswered
shows on the coordinator's dashboard once its deadline has passed, and in the network's
charts; the counsellor redirects it to another partner, sees the participant's path drawn, and
withdraws the consent, which cancels the new leg.  Every main page is checked with axe-core
(no serious or critical violation) and photographed; the README's pictures are written
straight to where it shows them (tests/browser/screenshots/)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import update

from hub.db import db, utcnow
from hub.directory.organizations import Service, ServicePathway
from hub.referrals.legs import Referral
from tests.browser.conftest import ARTIFACTS, ROOT, Hub
from tests.portal import PASSWORD, make_organization, make_user

WORDS = {
    "fr": {"sent": "Envoyée", "acknowledged": "Réception confirmée", "accepted": "Acceptée",
           "in_progress": "En cours", "completed": "Terminée", "covered": "Couvert par le "
           "consentement", "overdue": "Orientations en souffrance", "settled": "Établie",
           "redirected": "redirigée", "charts": "Graphiques du réseau",
           "withdrawn": "Consentement retiré. 1 orientation ouverte a été annulée."},
    "en": {"sent": "Sent", "acknowledged": "Acknowledged", "accepted": "Accepted",
           "in_progress": "In progress", "completed": "Completed",
           "covered": "Covered by consent", "overdue": "Stalled handoffs",
           "settled": "Settled in the region", "redirected": "redirected",
           "charts": "Network charts",
           "withdrawn": "Consent withdrawn. 1 open referral was cancelled."},
}
_axe = Axe()
# The pictures README.md and docs/portal.md show, written where they show them.
SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"
README_PICTURES = {("inbox", "fr"), ("stalled", "en"), ("charts", "fr"),
                   ("participants-search", "fr"), ("refer-open-leg", "fr")}


def check_page(page: Any, name: str, language: str) -> None:
    """No serious or critical accessibility violation; a screenshot for people to look at."""
    assert page.locator("html").get_attribute("lang") == language
    results = _axe.run(page)
    serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}-{language}.png"), full_page=True)
    if (name, language) in README_PICTURES:
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}.png"), full_page=True)
    assert not serious, f"{name} ({language}): {serious}"


def log_in(context: Any, hub: Hub, email: str) -> Any:
    page = context.new_page()
    page.goto(f"{hub.base_url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]
    return page


def submit(page: Any, form: str = "main form[method=post]") -> None:
    """Send the form with its main button: the last one (the referral form's first one
    filters the directory)."""
    with page.expect_navigation():
        page.locator(form).last.locator("button[type=submit]").last.click()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_whole_story(hub: Hub, browser: Any, language: str) -> None:
    words = WORDS[language]
    tag = uuid.uuid4().hex[:6]
    sender = make_organization(hub.app, name=f"Carrefour d'intégration {tag}")
    receiver = make_organization(hub.app, kind="regional_partner", region="01",
                                 name=f"Place aux jeunes Bas-Saint-Laurent {tag}")
    coordination = make_organization(hub.app, kind="coordination", name=f"Table {tag}")
    # Another partner of the same region, serving the training pathway: where to redirect.
    trainer = make_organization(hub.app, kind="regional_partner", region="01",
                                name=f"Formation Rimouski {tag}")
    with hub.app.app_context(), db.job_session() as session:
        service = Service(organization_id=trainer.id, name="Formation")
        session.add(service)
        session.flush()
        session.add(ServicePathway(service_id=service.id, pathway="training"))
    counsellor_email = make_user(hub.app, sender, "counsellor", language, "Sophie Tremblay")
    partner_email = make_user(hub.app, receiver, "partner_staff", language, "Marc Gagnon")
    coordinator_email = make_user(hub.app, coordination, "coordinator", language, "Nadia Côté")

    counsellor_context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
    partner_context = browser.new_context(locale="fr-CA" if language == "fr" else "en-CA")
    try:
        # --- the counsellor registers the participant, records consent, refers them.
        counsellor = log_in(counsellor_context, hub, counsellor_email)
        check_page(counsellor, "outbound-empty", language)
        # First, is she registered already? Searched without accents: nobody yet.
        counsellor.goto(f"{hub.base_url}/participants")
        counsellor.fill("#q", "benali amina")
        with counsellor.expect_navigation():
            counsellor.locator("form[role=search] button[type=submit]").click()
        assert counsellor.locator("main table a[href*='/participants/']").count() == 0
        counsellor.goto(f"{hub.base_url}/participants/new")
        check_page(counsellor, "participant-new", language)
        counsellor.fill("#given_name", "Amina")
        counsellor.fill("#family_name", "Benali")
        counsellor.fill("#email", f"amina.{tag}@example.org")
        counsellor.fill("#birth_year", "1990")
        submit(counsellor)
        participant_url = counsellor.url
        assert re.search(r"/participants/[0-9a-f-]{36}$", participant_url)
        check_page(counsellor, "participant", language)
        # Found now by the beginning of her names, in any order, and by her email.
        for query in ("BEN ami", f"amina.{tag}@example.org"):
            counsellor.goto(f"{hub.base_url}/participants")
            counsellor.fill("#q", query)
            with counsellor.expect_navigation():
                counsellor.locator("form[role=search] button[type=submit]").click()
            found = counsellor.locator("main table a[href*='/participants/']")
            assert found.count() == 1 and found.first.get_attribute("href") == \
                participant_url.removeprefix(hub.base_url), query
        check_page(counsellor, "participants-search", language)
        counsellor.goto(participant_url)

        counsellor.click("a[href$='/consents/new']")
        counsellor.wait_for_load_state()
        check_page(counsellor, "consent", language)
        counsellor.check(f"#org-{receiver.id}")
        counsellor.check(f"#org-{trainer.id}")
        submit(counsellor)

        counsellor.click("a[href$='/refer']")
        counsellor.wait_for_load_state()
        counsellor.fill("#reason_for_referral", "Offre d'emploi à Rimouski, début lundi")
        counsellor.select_option("#f-region", "01")
        with counsellor.expect_navigation():
            counsellor.locator("fieldset.filters button[name=filter]").click()
        # Filtering kept what was typed.
        assert counsellor.input_value("#reason_for_referral").startswith("Offre d'emploi")
        assert words["covered"] in counsellor.inner_text(f"#consent-{receiver.id}")
        check_page(counsellor, "refer", language)
        counsellor.check(f"#to-{receiver.id}")
        counsellor.select_option("#pathway", "settlement")
        counsellor.check("#priority-urgent")
        counsellor.fill("#reason_for_referral", "Offre d'emploi à Rimouski, début lundi")
        counsellor.fill("#needs", "logement\nfrancisation")
        submit(counsellor)
        first_leg = counsellor.url.rsplit("/", 1)[1]
        assert words["sent"] in counsellor.inner_text("main dl")
        check_page(counsellor, "leg-sent", language)

        # A second leg to the same partner, to be left unanswered: the page asks first.
        counsellor.goto(f"{participant_url}/refer")
        counsellor.check(f"#to-{receiver.id}")
        counsellor.select_option("#pathway", "training")
        submit(counsellor)
        assert counsellor.locator("#confirm_open_leg").count() == 1
        assert counsellor.input_value("#pathway") == "training"
        check_page(counsellor, "refer-open-leg", language)
        counsellor.check(f"#to-{receiver.id}")
        counsellor.check("#confirm_open_leg")
        submit(counsellor)
        second_leg = counsellor.url.rsplit("/", 1)[1]

        # --- the partner, in its own browser context, answers from the inbox.
        partner = log_in(partner_context, hub, partner_email)
        assert partner.url.endswith("/inbox")
        check_page(partner, "inbox", language)
        assert "Amina Benali" in partner.inner_text("main table")
        partner.click(f"a[href='/legs/{first_leg}']")
        partner.wait_for_load_state()
        steps = [("acknowledge", words["acknowledged"], {}),
                 ("accept", words["accepted"], {}),
                 ("start", words["in_progress"], {}),
                 ("complete", words["completed"], {"#outcome": "settled"})]
        for action, status, selects in steps:
            for selector, value in selects.items():
                partner.select_option(selector, value)
            if action in ("accept", "complete"):  # each takes a note
                partner.fill(f"#note-{action}", "Rendez-vous lundi à 9 h")
            submit(partner, f"form[action$='/{action}']")
            assert status in partner.inner_text("main dl"), action
            if action == "acknowledge":
                check_page(partner, "leg-answer", language)
        assert words["settled"] in partner.inner_text("main dl")

        # The counsellor sees the answers, and who gave them.
        counsellor.goto(f"{hub.base_url}/legs/{first_leg}")
        timeline = counsellor.inner_text("ol.timeline")
        assert "Marc Gagnon" in timeline and "Sophie Tremblay" in timeline
        counsellor.goto(f"{hub.base_url}/outbound")
        check_page(counsellor, "outbound", language)

        # The participant agrees to be counted in the receiver's outcome reports.
        counsellor.goto(f"{participant_url}/consents/new")
        counsellor.check("#purpose-outcome_reporting")
        counsellor.check(f"#org-{receiver.id}")
        submit(counsellor)

        # --- time passes: the second leg's acknowledgement deadline goes by unanswered.
        with hub.app.app_context(), db.job_session() as session:
            sent_at = utcnow() - timedelta(days=3)
            session.execute(update(Referral).where(Referral.id == uuid.UUID(first_leg))
                            .values(created_at=sent_at,
                                    acknowledged_at=sent_at + timedelta(hours=20)))
            session.execute(update(Referral).where(Referral.id == uuid.UUID(second_leg))
                            .values(acknowledge_by=utcnow() - timedelta(days=2)))
        coordinator = log_in(counsellor_context.browser.new_context(), hub, coordinator_email)
        assert words["overdue"] in coordinator.inner_text("h1")
        assert f"/legs/{second_leg}" in coordinator.content()
        assert f"/legs/{first_leg}" not in coordinator.content()
        assert "Amina" not in coordinator.inner_text("main")
        check_page(coordinator, "stalled", language)
        coordinator.click("nav a[href='/network/charts']")
        coordinator.wait_for_load_state()
        assert words["charts"] in coordinator.inner_text("h1")
        assert receiver.name in coordinator.inner_text("main table")
        assert words["settled"] in coordinator.inner_text("main")
        assert "Amina" not in coordinator.inner_text("main")
        check_page(coordinator, "charts", language)
        coordinator.context.close()

        # --- the counsellor redirects the unanswered leg to a partner suggested for it.
        counsellor.goto(f"{hub.base_url}/legs/{second_leg}")
        counsellor.click("a[href*='redirect_from=']")
        counsellor.wait_for_load_state()
        directory = counsellor.locator("fieldset", has=counsellor.locator(
            "input[name=to_organization_id]"))
        assert receiver.name not in directory.inner_text()
        check_page(counsellor, "redirect", language)
        counsellor.check(f"#to-{trainer.id}")
        submit(counsellor)
        assert trainer.name in counsellor.inner_text("figure.chain-picture")
        assert words["redirected"] in counsellor.inner_text("figure.chain-picture")
        check_page(counsellor, "leg-redirected", language)

        # --- the participant withdraws their consent: the new leg is cancelled.
        counsellor.goto(participant_url)
        check_page(counsellor, "participant-path", language)
        counsellor.click("a[href$='/withdraw']")
        counsellor.wait_for_load_state()
        check_page(counsellor, "consent-withdraw", language)
        submit(counsellor)
        assert words["withdrawn"] in counsellor.inner_text("main .flash")
    finally:
        counsellor_context.close()
        partner_context.close()


def test_login_page_is_accessible_in_both_languages(hub: Hub, browser: Any) -> None:
    context = browser.new_context(locale="fr-CA")
    try:
        page = context.new_page()
        page.goto(f"{hub.base_url}/login")
        check_page(page, "login", "fr")
        with page.expect_navigation():
            page.click("a[hreflang=en]")
        assert page.url.endswith("/login")
        check_page(page, "login", "en")
        # Keyboard only: the first Tab reaches the skip link, which leads to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
    finally:
        context.close()

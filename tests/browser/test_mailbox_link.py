"""A partner with only a mailbox answers a referral from a phone (design §14), end to end: a
leg sent over the API to the running `hub run` reaches the receiver's contact as a mail
written to HUB_MAIL_DIR; the link from that file, opened in headless chromium on a
phone-sized screen, acknowledges then declines with a reason; the history shows the contact;
the same link afterwards shows the closed leg and offers nothing; opening it changed
nothing; a tampered link is refused without saying which part was wrong."""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from hub.accounts import clients
from hub.db import db
from hub.directory.organizations import create_organization
from hub.events.store import Event
from hub.referrals.legs import Referral
from tests.browser.conftest import ARTIFACTS, ROOT, Hub

PHONE = {"width": 390, "height": 844}
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/a/[A-Za-z0-9._-]+)")
WORDS = {
    "fr": {"acknowledge": "Confirmer la réception", "decline": "Refuser", "declined": "Refusée",
           "closed": "Cette orientation est fermée", "invalid": "Lien non valide",
           "from_link": "(par le lien d’un courriel)"},
    "en": {"acknowledge": "Acknowledge", "decline": "Decline", "declined": "Declined",
           "closed": "This referral is closed", "invalid": "Link not valid",
           "from_link": "(from the link of a mail)"},
}


def mail_folder(hub: Hub) -> Path:
    """HUB_MAIL_DIR of the server: `mail/` beside its SQLite database (tests/browser/conftest)."""
    database = str(hub.app.config["HUB_SETTINGS"].database_url).removeprefix("sqlite:///")
    return Path(database).parent / "mail"


def partner(hub: Hub, name: str, kind: str = "community") -> tuple[str, httpx.Client]:
    """An organization with an OAuth client; an HTTP client calling the server as it."""
    with hub.app.app_context(), db.job_session() as session:
        organization = create_organization(session, name=name, kind=kind, region="01")
        client, secret = clients.create_client(session, organization=organization)
        organization_id, client_id = str(organization.id), client.client_id
    token = httpx.post(f"{hub.base_url}/oauth/token", auth=(client_id, secret),
                       data={"grant_type": "client_credentials"}).json()["access_token"]
    return organization_id, httpx.Client(base_url=hub.base_url,
                                         headers={"Authorization": f"Bearer {token}"})


def mail_about(hub: Hub, leg_id: str, to: str, seconds: float = 30) -> email.message.Message:
    """The mail to `to` about the leg, once the server's worker has written it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in sorted(mail_folder(hub).glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(("plain",))
            if to in str(message["To"]) and body is not None \
                    and leg_id in body.get_content():  # type: ignore[attr-defined]
                return message
        time.sleep(0.3)
    pytest.fail(f"no mail about {leg_id} in {mail_folder(hub)}")


def leg_state(hub: Hub, leg_id: str) -> tuple[str, int, list[tuple[str, str]]]:
    # Plain columns only: the key ring of the server is not installed in this process.
    with hub.app.app_context(), db.job_session() as session:
        status, version = session.execute(select(Referral.status, Referral.version).where(
            Referral.id == uuid.UUID(leg_id))).one()
        history = [(row.type, row.actor) for row in session.execute(
            select(Event.type, Event.actor).where(Event.subject == f"referrals/{leg_id}")
            .order_by(Event.sequence))]
        return status, version, history


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_partner_answers_from_the_mail_on_a_phone(hub: Hub, browser: Any,
                                                    language: str) -> None:
    words = WORDS[language]
    sender_id, sender = partner(hub, f"Carrefour {uuid.uuid4().hex[:4]}")
    receiver_id, receiver = partner(hub, f"Accueil Matane {uuid.uuid4().hex[:4]}",
                                    "regional_partner")
    address = f"accueil.{uuid.uuid4().hex[:6]}@example.org"
    entry = receiver.patch(f"/api/v1/organizations/{receiver_id}", json={
        "language": language, "contacts": [{"name": "Julie Tremblay", "email": address,
                                            "notify_referrals": True}]})
    assert entry.status_code == 200, entry.text
    contact_id = entry.json()["contacts"][0]["id"]
    participant = sender.post("/api/v1/participants", json={
        "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
        "email": f"amina.{uuid.uuid4().hex[:6]}@example.org"}).json()
    assert sender.post(f"/api/v1/participants/{participant['id']}/consents", json={
        "purpose": "referral_sharing", "evidence": "written",
        "organization_ids": [receiver_id]}).status_code == 201
    leg = sender.post("/api/v1/referrals", json={
        "participant_id": participant["id"], "to_organization_id": receiver_id,
        "pathway": "settlement", "priority": "urgent",
        "reason_for_referral": "Emploi saisonnier à Matane"}).json()

    message = mail_about(hub, leg["id"], address)
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Amina B." in body and "Benali" not in body
    (link,) = LINK.findall(body)

    before = leg_state(hub, leg["id"])
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale=f"{language}-CA")
    page = context.new_page()
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == language
    assert "Benali" in page.content() and "Matane" in page.content()
    # Nothing wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    serious = [v["id"] for v in Axe().run(page).response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    page.screenshot(path=str(ARTIFACTS / f"answer-link-{language}.png"), full_page=True)
    if language == "fr":
        page.screenshot(path=str(ROOT / "tests" / "browser" / "screenshots"
                                 / "answer-link-fr.png"), full_page=True)
    assert leg_state(hub, leg["id"]) == before  # opening the link changed nothing

    with page.expect_navigation():
        page.get_by_role("button", name=words["acknowledge"]).click()
    assert leg_state(hub, leg["id"])[0] == "acknowledged", page.content()[-3000:]
    page.select_option("#reason-decline", "out_of_region")
    with page.expect_navigation():
        page.get_by_role("button", name=words["decline"], exact=True).click()
    status, _version, history = leg_state(hub, leg["id"])
    assert status == "declined"
    assert history[-2:] == [("referral.acknowledged", f"contact:{contact_id}"),
                            ("referral.declined", f"contact:{contact_id}")]
    assert "Julie Tremblay" in page.content() and words["from_link"] in page.content()

    page.goto(link)  # afterwards: the closed leg, nothing to do
    assert words["declined"] in page.content() and words["closed"] in page.content()
    assert page.locator("form[method=post]").count() == 0

    tampered = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    response = page.goto(tampered)
    assert response is not None and response.status == 404
    assert words["invalid"] in page.content()
    assert leg["id"] not in page.content()
    context.close()
    sender.close()
    receiver.close()

"""Participant check-ins (hub.followups.checkins, hub.portal.checkin): a few business days
after a leg is accepted the participant is mailed, in their language, a single-use link asking
whether the receiving organization contacted them; a "No" signals a missed first contact to both
organizations.  The clock of the scheduled check is moved by the test; the page runs on the
real clock."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select

from hub import create_app
from hub.db import db, utcnow
from hub.followups.checkins import ParticipantCheckin, checkins_due
from hub.followups.leg_checks import ReferralCheck
from hub.outbox.mail import OutgoingMail
from hub.portal import app as portal
from hub.referrals.legs import Referral
from tests.helpers import Network, Partner
from tests.integration.test_check_mails import french_day

BASE_URL = "https://maillage.example"
LINK = re.compile(re.escape(BASE_URL) + r"(/suivi/[A-Za-z0-9_-]{43})")


@pytest.fixture(scope="session")
def pages(app: Flask) -> Iterator[Flask]:
    """The app serving the check-in pages: the shared app once create_app registers them,
    until then a second app on the same database (blueprints cannot be added to an app that
    has served requests)."""
    if "checkin" in app.blueprints:
        yield app
        return
    second = create_app(app.config["HUB_SETTINGS"])
    second.config["TESTING"] = True
    portal.init_app(second)
    yield second
    second.extensions["hub_db"][0].dispose()


def run_check(app: Flask, now: datetime) -> int:
    with app.app_context(), db.job_session() as session:
        return checkins_due(session, now, limit=100_000, public_url=BASE_URL)


def accepted_leg(sender: Partner, receiver: Partner, *, follow_up: bool = True,
                 **participant: object) -> dict:
    """A leg the receiver accepted, for a new participant of the sender."""
    participant_id = sender.register_participant(**participant)["id"]
    if follow_up:
        sender.grant_consent(participant_id, sender, purpose="follow_up_contact")
    leg = sender.refer(receiver, participant_id)
    for action in ("acknowledge", "accept"):
        assert receiver.act(leg["id"], action).status_code == 200
    return leg


def accepted_at(app: Flask, leg_id: str) -> datetime:
    with app.app_context(), db.job_session() as session:
        leg = session.get(Referral, uuid.UUID(leg_id))
        assert leg is not None and leg.accepted_at is not None
        return leg.accepted_at


def mails_for(app: Flask, leg_id: str) -> list[OutgoingMail]:
    with app.app_context(), db.job_session() as session:
        return list(session.scalars(select(OutgoingMail)
                                    .where(OutgoingMail.dedupe_key == f"checkin:{leg_id}")))


def ask(app: Flask, sender: Partner, receiver: Partner, **participant: object
        ) -> tuple[dict, OutgoingMail, str]:
    """An accepted leg, the check run a week later: the leg, its mail and the page's path."""
    leg = accepted_leg(sender, receiver, **participant)
    run_check(app, accepted_at(app, leg["id"]) + timedelta(days=7))
    [mail] = mails_for(app, leg["id"])
    found = LINK.search(mail.body_text)
    assert found, mail.body_text
    return leg, mail, found.group(1)


def events_of(partner: Partner, leg_id: str) -> list[dict]:
    return partner.get(f"/api/v1/referrals/{leg_id}/events").get_json()["items"]


def missed_first_contact(partner: Partner, leg_id: str) -> list[dict]:
    return [e for e in events_of(partner, leg_id) if e["type"] == "referral.deadline_missed"
            and e["data"].get("check") == "first_contact"]


def test_an_english_participant_is_asked_and_a_no_reaches_both_organizations(
        app: Flask, pages: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(name="Accueil Plus Estrie")
    leg, mail, path = ask(app, sender, receiver, preferred_language="en")
    assert mail.language == "en"
    assert mail.subject == "Following up on your request to Accueil Plus Estrie"
    assert "whether Accueil Plus Estrie has contacted you" in mail.body_text
    assert mail.to_address.endswith("@example.org")
    token = path.rsplit("/", 1)[1]
    with app.app_context(), db.job_session() as session:
        checkin = session.scalar(select(ParticipantCheckin)
                                 .where(ParticipantCheckin.referral_id == uuid.UUID(leg["id"])))
        assert checkin is not None
        assert checkin.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
        assert checkin.expires_at - checkin.created_at == timedelta(days=14)

    client = pages.test_client()
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<html lang="en">' in html
    assert "Has Accueil Plus Estrie contacted you?" in html
    assert '<form method="post"' in html and "<script" not in html
    for answer, label in (("contacted", "Yes"), ("not_contacted", "No"),
                          ("no_longer_needed", "I no longer need it")):
        assert f'name="answer" value="{answer}">{label}</button>' in html
    assert page.headers["Content-Security-Policy"].startswith(
        "default-src 'self'; frame-ancestors 'none'")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert missed_first_contact(sender, leg["id"]) == []  # showing the page answers nothing

    version = sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["version"]
    answered = client.post(path, data={"answer": "not_contacted"})
    assert answered.status_code == 200
    assert "nobody has contacted you yet" in answered.get_data(as_text=True)
    [signal] = missed_first_contact(sender, leg["id"])
    assert signal["data"]["source"] == "participant"
    assert signal["source"] == "/hub"
    assert signal["sequence"] == version + 1
    assert missed_first_contact(receiver, leg["id"]) == [signal]
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["version"] == version + 1

    again = client.post(path, data={"answer": "contacted"})
    assert again.status_code == 410
    assert "already recorded" in again.get_data(as_text=True)
    assert again.headers["Referrer-Policy"] == "no-referrer"
    assert len(missed_first_contact(sender, leg["id"])) == 1
    assert client.get(path).status_code == 410
    with app.app_context(), db.job_session() as session:
        checkin = session.scalar(select(ParticipantCheckin)
                                 .where(ParticipantCheckin.referral_id == uuid.UUID(leg["id"])))
        assert checkin is not None and checkin.answer == "not_contacted"


def test_a_french_participant_gets_french_and_may_switch_to_english(
        app: Flask, pages: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(name="Carrefour Emploi Sherbrooke")
    leg, mail, path = ask(app, sender, receiver, preferred_language="fr-CA")
    assert mail.language == "fr"
    assert mail.subject == "Suivi de votre demande auprès de Carrefour Emploi Sherbrooke"
    assert "Carrefour Emploi Sherbrooke a communiqué avec vous" in mail.body_text

    client = pages.test_client()
    html = client.get(path).get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "L’organisme Carrefour Emploi Sherbrooke a-t-il communiqué avec vous ?" in html
    assert "Je n’en ai plus besoin" in html
    assert 'href="?lang=en"' in html
    english = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert "Has Carrefour Emploi Sherbrooke contacted you?" in english

    thanks = client.post(path, data={"answer": "contacted"})
    assert thanks.status_code == 200
    assert "Votre réponse a été enregistrée." in thanks.get_data(as_text=True)
    assert missed_first_contact(sender, leg["id"]) == []  # only a "No" signals


def test_other_languages_get_french_then_english(app: Flask, network: Network) -> None:
    leg, mail, _ = ask(app, network.partner(), network.partner(), preferred_language="es")
    assert mail.language == "fr, en"
    french, english = mail.body_text.split("— English below —")
    assert "Bonjour" in french and "Hello" in english
    # Each half writes the day of acceptance as its readers do (in Québec's time).
    day = accepted_at(app, leg["id"]).astimezone(ZoneInfo("America/Toronto")).date()
    assert f"le {french_day(day)}" in french
    assert f"on {day:%B} {day.day}, {day.year}" in english


def test_each_leg_is_asked_once_after_three_business_days(
        app: Flask, network: Network) -> None:
    leg = accepted_leg(network.partner(), network.partner())
    accepted = accepted_at(app, leg["id"])
    run_check(app, accepted + timedelta(days=2))  # too early, on any day of the week
    assert mails_for(app, leg["id"]) == []
    run_check(app, accepted + timedelta(days=7))
    run_check(app, accepted + timedelta(days=8))
    assert len(mails_for(app, leg["id"])) == 1
    with app.app_context(), db.job_session() as session:
        assert session.scalar(select(func.count()).select_from(ParticipantCheckin)
                              .where(ParticipantCheckin.referral_id == uuid.UUID(leg["id"]))) == 1


def test_no_mail_without_email_or_follow_up_consent_for_the_sender(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    without_consent = accepted_leg(sender, receiver, follow_up=False)
    without_email = accepted_leg(sender, receiver, email=None)
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, receiver, purpose="follow_up_contact")  # not the sender
    other_organization = sender.refer(receiver, participant_id)
    for action in ("acknowledge", "accept"):
        receiver.act(other_organization["id"], action)
    legs = (without_consent, without_email, other_organization)
    run_check(app, max(accepted_at(app, leg["id"]) for leg in legs) + timedelta(days=7))
    for leg in legs:
        assert mails_for(app, leg["id"]) == []
    with app.app_context(), db.job_session() as session:  # skipped once, not looked at again
        fired = session.scalars(select(ReferralCheck.referral_id).where(
            ReferralCheck.kind == "checkin",
            ReferralCheck.referral_id.in_([uuid.UUID(leg["id"]) for leg in legs])))
        assert len(list(fired)) == 3


def test_unknown_expired_and_withdrawn_links_get_a_clear_page(
        app: Flask, pages: Flask, network: Network) -> None:
    client = pages.test_client()
    for garbage in ("nope", "A" * 43, "<script>", "x" * 500):
        page = client.get(f"/suivi/{garbage}", headers={"Accept-Language": "en-CA,en;q=0.9"})
        assert page.status_code == 404 and page.mimetype == "text/html"
        assert "This link does not exist" in page.get_data(as_text=True)
        assert page.headers["Referrer-Policy"] == "no-referrer"
    stylesheet = client.get("/suivi/style.css")
    assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"
    french = client.post("/suivi/" + "B" * 43, data={"answer": "not_contacted"})
    assert french.status_code == 404 and "Ce lien n’existe pas" in french.get_data(
        as_text=True)

    sender, receiver = network.partner(), network.partner()
    leg, _, path = ask(app, sender, receiver, preferred_language="en")
    with app.app_context(), db.job_session() as session:
        checkin = session.scalar(select(ParticipantCheckin)
                                 .where(ParticipantCheckin.referral_id == uuid.UUID(leg["id"])))
        assert checkin is not None
        checkin.expires_at = utcnow() - timedelta(minutes=1)
    for page in (client.get(path), client.post(path, data={"answer": "not_contacted"})):
        assert page.status_code == 410
        assert "This link has expired" in page.get_data(as_text=True)
    assert missed_first_contact(sender, leg["id"]) == []

    leg, _, path = ask(app, sender, receiver, preferred_language="en")
    follow_up = [c for c in sender.get(
        f"/api/v1/participants/{leg['participant']['id']}/consents").get_json()["items"]
        if c["purpose"] == "follow_up_contact"]
    assert sender.post(f"/api/v1/consents/{follow_up[0]['id']}/withdraw").status_code == 200
    assert client.post(path, data={"answer": "not_contacted"}).status_code == 410
    assert missed_first_contact(sender, leg["id"]) == []


def test_a_no_on_a_closed_leg_is_recorded_without_a_signal(
        app: Flask, pages: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg, _, path = ask(app, sender, receiver)
    assert sender.act(leg["id"], "cancel", {"reason": "other"}).status_code == 200
    answered = pages.test_client().post(path, data={"answer": "not_contacted"})
    assert answered.status_code == 200
    assert "Votre réponse a été enregistrée." in answered.get_data(as_text=True)
    assert missed_first_contact(sender, leg["id"]) == []


def test_a_missing_answer_shows_the_question_again(
        app: Flask, pages: Flask, network: Network) -> None:
    _, _, path = ask(app, network.partner(), network.partner(), preferred_language="en")
    client = pages.test_client()
    page = client.post(path, data={"answer": "maybe"})
    assert page.status_code == 400
    assert 'role="alert">Choose one of the three answers.' in page.get_data(as_text=True)
    assert client.get(path).status_code == 200  # still open


def test_the_page_escapes_the_organizations_name(
        app: Flask, pages: Flask, network: Network) -> None:
    receiver = network.partner(name="<script>alert(1)</script> Accueil")
    _, _, path = ask(app, network.partner(), receiver, preferred_language="en")
    html = pages.test_client().get(path).get_data(as_text=True)
    assert "<script" not in html
    assert "Has &lt;script&gt;alert(1)&lt;/script&gt; Accueil contacted you?" in html


def test_a_double_click_records_once(app: Flask, pages: Flask, network: Network) -> None:
    sender = network.partner()
    leg, _, path = ask(app, sender, network.partner(), preferred_language="en")
    statuses: list[int] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        statuses.append(pages.test_client().post(
            path, data={"answer": "not_contacted"}).status_code)

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert sorted(statuses) == [200, 410]
    assert len(missed_first_contact(sender, leg["id"])) == 1

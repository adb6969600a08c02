"""Partners who answer from their mailbox (design §14): a leg sent over the API becomes, after
the worker's fan-out, a mail over SMTP to the receiver's contacts marked `notify_referrals`;
its link opens a page that changes nothing, and whose buttons take the receiver's steps with
actor `contact:<id>`; closed legs offer nothing; tampered or foreign links are refused alike."""

from __future__ import annotations

import email
import email.policy
import functools
import re
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from hub.consent.access_log import PersonalDataRead
from hub.db import db, utcnow
from hub.events.store import Event
from hub.mailbox import links, notices
from hub.mailbox.notices import QueuedNotice, next_daily
from hub.outbox import webhook_fanout
from hub.outbox.mail import send_due
from hub.referrals.legs import Referral
from tests.helpers import Network, Partner
from tests.integration.test_check_mails import (
    french_day,
    in_english,
    in_french,
    moment,
    run_checks,
)
from tests.integration.test_mail import SmtpServer, smtp_transport

LINK = re.compile(r"https?://\S+/a/([A-Za-z0-9._-]+)")


TORONTO = ZoneInfo("America/Toronto")  # the default time zone of a receiver


def address() -> str:
    return f"accueil.{secrets.token_hex(4)}@example.org"


def set_entry(partner: Partner, **changes: Any) -> dict[str, Any]:
    response = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                            json=changes)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def fan_out(app: Flask) -> None:
    """What the worker's fan-out loop does (`hub.worker.Worker.fan_out_once`)."""
    settings = app.config["HUB_SETTINGS"]
    hook = functools.partial(notices.notify, secret_key=settings.secret_key,
                             public_url=settings.public_url)
    with app.app_context(), db.job_session() as session:
        while webhook_fanout.fan_out(session, on_events=hook):
            pass


def mails_to(app: Flask, server: SmtpServer, to: str, at: datetime | None = None
             ) -> list[EmailMessage]:
    """What `to` received, once the worker fanned out and sent what is due at `at` (now)."""
    fan_out(app)
    send_due(app.extensions["hub_db"][1], smtp_transport(server),
             now=(at or utcnow()) + timedelta(seconds=1), limit=10_000)
    return [email.message_from_bytes(r.data, policy=email.policy.default)  # type: ignore[misc]
            for r in server.received if to in r.rcpt_to]


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def token_in(message: EmailMessage) -> str:
    found = LINK.search(body_of(message))
    assert found, body_of(message)
    return found.group(1)


def leg_state(app: Flask, leg_id: str) -> tuple[str, int, int]:
    with app.app_context(), db.job_session() as session:
        leg = session.get(Referral, uuid.UUID(leg_id))
        assert leg is not None
        events = len(session.scalars(select(Event.id).where(
            Event.subject == f"referrals/{leg_id}")).all())
        return leg.status, leg.version, events


@pytest.fixture
def pair(network: Network) -> tuple[Partner, Partner, str, str]:
    """A sender, and a receiver with one contact marked for new-leg mails (and one not)."""
    sender = network.partner(name="Carrefour d'intégration de Montréal")
    receiver = network.partner(kind="regional_partner", region="01",
                               name="Place aux jeunes Bas-Saint-Laurent")
    marked, other = address(), address()
    set_entry(receiver, contacts=[
        {"name": "Julie Tremblay", "role": "Accueil", "email": marked, "notify_referrals": True},
        {"name": "Direction", "email": other}])
    return sender, receiver, marked, other


def test_a_new_leg_is_mailed_to_marked_contacts_with_a_link_that_answers_it(
        app: Flask, pair: tuple[Partner, Partner, str, str], smtp: SmtpServer) -> None:
    sender, receiver, marked, other = pair
    needed = date.today() + timedelta(days=9)
    leg = sender.refer(receiver, priority="urgent", needed_by=needed.isoformat())
    (mail,) = mails_to(app, smtp, marked)
    assert not mails_to(app, smtp, other)  # not marked: no mail

    text = body_of(mail)
    assert mail["Content-Language"] == "fr"
    assert "Carrefour d'intégration de Montréal" in str(mail["Subject"])
    assert "Amina B." in text and "Benali" not in text  # given name and family initial
    assert "Urgent" in text and "Emploi" in text
    assert "soudure" not in text and "francisation" not in text  # no reason, no needs
    due = datetime.fromisoformat(leg["deadlines"]["acknowledge_by"].replace("Z", "+00:00"))
    assert (f"Confirmer la réception d’ici le {in_french(due.astimezone(TORONTO))} "
            "(America/Toronto)") in text
    assert f"Personne attendue sur place le {french_day(needed)}" in text
    token = token_in(mail)

    client = app.test_client()
    before = leg_state(app, leg["id"])
    page = client.get(f"/a/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Amina" in html and "Benali" in html and "soudure" in html  # as the portal shows it
    assert "Confirmer la réception" in html
    assert leg_state(app, leg["id"]) == before  # a GET changes nothing
    with app.app_context(), db.job_session() as session:  # but the read is logged
        reads = session.scalars(select(PersonalDataRead).where(
            PersonalDataRead.participant_id == uuid.UUID(leg["participant"]["id"]),
            PersonalDataRead.actor.like("contact:%"))).all()
        assert {r.via for r in reads} >= {"GET /a/{token}", notices.VIA}

    acknowledged = client.post(f"/a/{token}",
                               data={"action": "acknowledge", "version": str(before[1])})
    assert acknowledged.status_code == 303
    assert leg_state(app, leg["id"])[0] == "acknowledged"
    shown = client.get(acknowledged.headers["Location"]).get_data(as_text=True)
    assert "Julie Tremblay" in shown  # who acted, in the history
    assert "Réception confirmée." in shown and "C’est fait" not in shown

    # A decline needs a reason: the page says so, and nothing changes.
    version = leg_state(app, leg["id"])[1]
    refused = client.post(f"/a/{token}", data={"action": "decline", "version": str(version)})
    assert refused.status_code == 422
    assert leg_state(app, leg["id"])[0] == "acknowledged"

    declined = client.post(f"/a/{token}", data={
        "action": "decline", "version": str(version), "reason": "no_capacity"})
    assert declined.status_code == 303

    contact_id = actor_contact(app, receiver, marked)
    with app.app_context(), db.job_session() as session:
        history = session.execute(select(Event.type, Event.actor).where(
            Event.subject == f"referrals/{leg['id']}").order_by(Event.sequence)).all()
    assert [tuple(row) for row in history][-2:] == [
        ("referral.acknowledged", f"contact:{contact_id}"),
        ("referral.declined", f"contact:{contact_id}")]

    # Afterwards the same link shows the closed leg and offers nothing.
    closed = client.get(f"/a/{token}").get_data(as_text=True)
    assert 'name="action"' not in closed and "Refusée" in closed
    again = client.post(f"/a/{token}", data={"action": "accept", "version": "99"})
    assert again.status_code in (409, 412)
    assert leg_state(app, leg["id"])[0] == "declined"


def actor_contact(app: Flask, receiver: Partner, to: str) -> uuid.UUID:
    from hub.directory.organizations import Contact

    with app.app_context(), db.job_session() as session:
        return session.scalars(select(Contact.id).where(
            Contact.organization_id == uuid.UUID(receiver.organization_id),
            Contact.email == to)).one()


def test_tampered_foreign_and_ended_links_are_refused_alike(
        app: Flask, network: Network, pair: tuple[Partner, Partner, str, str],
        smtp: SmtpServer) -> None:
    sender, receiver, marked, _other = pair
    leg = sender.refer(receiver)
    token = token_in(mails_to(app, smtp, marked)[0])
    client = app.test_client()
    contact_id = actor_contact(app, receiver, marked)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    foreign = links.make_token("another hub's secret key " + "x" * 20, uuid.UUID(leg["id"]),
                               contact_id)
    stranger = network.partner()  # a contact of another organization is not the receiver's
    with app.app_context(), db.job_session() as session:
        from hub.directory.organizations import Contact

        outsider = Contact(organization_id=uuid.UUID(stranger.organization_id),
                           email=address())
        session.add(outsider)
        session.flush()
        outsider_id = outsider.id
    secret = app.config["HUB_SETTINGS"].secret_key
    not_theirs = links.make_token(secret, uuid.UUID(leg["id"]), outsider_id)
    pages = [client.get(f"/a/{bad}") for bad in (tampered, foreign, not_theirs, "x")]
    assert {p.status_code for p in pages} == {404}
    assert len({p.get_data(as_text=True) for p in pages}) == 1  # the same words for each
    posted = client.post(f"/a/{tampered}", data={"action": "acknowledge", "version": "1"})
    assert posted.status_code == 404
    assert leg_state(app, leg["id"])[0] == "sent"

    # The link works while its contact is in the entry, whatever else changes...
    set_entry(receiver, capacity="waitlist", contacts=[
        {"name": "Julie Tremblay", "email": marked}])
    assert client.get(f"/a/{token}").status_code == 200
    # ...and ends when the contact leaves it.
    set_entry(receiver, contacts=[{"name": "Direction", "email": address()}])
    assert client.get(f"/a/{token}").status_code == 404


def test_a_link_is_refused_from_another_site_and_after_too_many_requests(
        app: Flask, pair: tuple[Partner, Partner, str, str], smtp: SmtpServer) -> None:
    sender, receiver, marked, _other = pair
    leg = sender.refer(receiver)
    token = token_in(mails_to(app, smtp, marked)[0])
    client = app.test_client()
    forged = client.post(f"/a/{token}", data={"action": "acknowledge", "version": "1"},
                         headers={"Origin": "https://evil.example", "Sec-Fetch-Site":
                                  "cross-site"})
    assert forged.status_code == 403
    assert leg_state(app, leg["id"])[0] == "sent"
    statuses = [client.get(f"/a/{token}").status_code for _ in range(links.RATE_LIMIT + 1)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}


def test_english_organizations_get_english_mails_and_pages(
        app: Flask, pair: tuple[Partner, Partner, str, str], smtp: SmtpServer) -> None:
    sender, receiver, marked, _other = pair
    set_entry(receiver, language="en")
    needed = date.today() + timedelta(days=9)
    leg = sender.refer(receiver, needed_by=needed.isoformat())
    (mail,) = mails_to(app, smtp, marked)
    assert mail["Content-Language"] == "en"
    assert "Employment" in body_of(mail) and "Hello" in body_of(mail)
    due = datetime.fromisoformat(leg["deadlines"]["acknowledge_by"].replace("Z", "+00:00"))
    assert (f"Acknowledge by: {in_english(due.astimezone(TORONTO))} (America/Toronto)"
            in body_of(mail))
    assert f"Needed by: {needed:%B} {needed.day}, {needed.year}" in body_of(mail)
    html = app.test_client().get(f"/a/{token_in(mail)}").get_data(as_text=True)
    assert "Acknowledge" in html and 'lang="en"' in html


def test_daily_organizations_get_one_mail_at_8_listing_the_legs_still_open(
        app: Flask, pair: tuple[Partner, Partner, str, str], smtp: SmtpServer) -> None:
    sender, receiver, marked, _other = pair
    set_entry(receiver, referral_mails="daily")
    legs = [sender.refer(receiver) for _ in range(3)]
    cancelled = sender.act(legs[2]["id"], "cancel")
    assert cancelled.status_code == 200
    assert not mails_to(app, smtp, marked)  # nothing at once
    with app.app_context(), db.job_session() as session:
        queued = session.get(QueuedNotice, uuid.UUID(legs[0]["id"]))
        assert queued is not None
        due = queued.due_at
    assert due > utcnow() and due.astimezone(ZoneInfo("America/Toronto")).hour == 8
    settings = app.config["HUB_SETTINGS"]

    def daily(at: datetime) -> int:
        with app.app_context(), db.job_session() as session:
            return notices.mail_daily(session, at, secret_key=settings.secret_key,
                                      public_url=settings.public_url)

    daily(due - timedelta(minutes=1))  # not yet (other tests' rows may be due)
    assert not mails_to(app, smtp, marked, due)
    daily(due)
    (mail,) = mails_to(app, smtp, marked, due)
    assert str(mail["Subject"]).startswith("2 nouvelles orientations")
    tokens = LINK.findall(body_of(mail))
    assert len(tokens) == 2  # the cancelled leg is no news
    with app.app_context(), db.job_session() as session:
        opened = [links.open_link(session, settings.secret_key, t).leg.id for t in tokens]
    assert sorted(map(str, opened)) == sorted(leg["id"] for leg in legs[:2])
    daily(due + timedelta(days=1))  # mailed once
    assert len(mails_to(app, smtp, marked, due + timedelta(days=1))) == 1


@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2026, 12, 7, 12, 0, tzinfo=UTC), datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
    (datetime(2026, 12, 7, 13, 0, tzinfo=UTC), datetime(2026, 12, 8, 13, 0, tzinfo=UTC)),
    (datetime(2026, 12, 7, 2, 0, tzinfo=UTC), datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
    # Summer time: 8:00 in Toronto is 12:00 UTC.
    (datetime(2026, 7, 1, 11, 0, tzinfo=UTC), datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),
])
def test_the_daily_mail_is_due_at_the_next_8_oclock_local(moment: datetime,
                                                          expected: datetime) -> None:
    assert next_daily(moment, "America/Toronto") == expected


def test_a_contact_who_turned_digests_off_gets_none_and_the_others_still_do(
        app: Flask, network: Network, tmp_path: Path) -> None:
    from tests.integration.test_check_mails import listed_legs, run_checks, sent_mails

    sender = network.partner()
    receiver = network.partner()
    keeps, stops = address(), address()
    entry = set_entry(receiver, contacts=[{"email": keeps},
                                          {"email": stops, "deadline_digests": False}])
    assert [c["deadline_digests"] for c in entry["contacts"]
            if c["email"] == stops] == [False]
    leg = sender.refer(receiver)
    due = datetime.fromisoformat(leg["deadlines"]["acknowledge_by"].replace("Z", "+00:00"))
    run_checks(app, due + timedelta(minutes=1))
    mails = sent_mails(app, tmp_path, keeps, stops)
    assert mails[stops] == []
    assert [leg["id"] in listed_legs(m) for m in mails[keeps]] == [True]


def test_a_portal_user_who_asks_gets_the_mail_with_a_link_to_the_portal(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    from hub.directory.organizations import Organization
    from tests.portal import Person, make_user

    sender, receiver = network.partner(), network.partner()
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(receiver.organization_id))
        assert organization is not None
        user_email = make_user(app, organization, "partner_staff", language="en")
    person = Person.logged_in(app, user_email)
    assert 'id="notify_referrals"' in person.get("/inbox").get_data(as_text=True)
    assert person.post("/inbox/notifications", {"notify_referrals": "on"}).status_code == 302
    leg = sender.refer(receiver)
    (mail,) = mails_to(app, smtp, user_email)
    assert mail["Content-Language"] == "en"  # the user's language
    assert f"/legs/{leg['id']}" in body_of(mail) and "/a/" not in body_of(mail)
    assert person.post("/inbox/notifications", {}).status_code == 302
    sender.refer(receiver)
    assert len(mails_to(app, smtp, user_email)) == 1  # turned off: no second mail


def test_a_portal_user_who_asks_gets_the_missed_deadline_digest_in_their_language(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    from hub.directory.organizations import Organization
    from tests.portal import Person, make_user

    sender, receiver = network.partner(), network.partner()  # French, no directory contact
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(receiver.organization_id))
        assert organization is not None
        asker = make_user(app, organization, "partner_staff", language="en")
        other = make_user(app, organization, "partner_staff")
    person = Person.logged_in(app, asker)
    assert 'id="deadline_digests"' in person.get("/inbox").get_data(as_text=True)
    assert person.post("/inbox/notifications", {"deadline_digests": "on"}).status_code == 302
    leg = sender.refer(receiver)
    late = moment(leg["deadlines"]["acknowledge_by"]) + timedelta(minutes=1)
    run_checks(app, late)
    (mail,) = mails_to(app, smtp, asker, at=late)
    assert mail["Content-Language"] == "en"  # the user's language, not the organization's
    assert "missed a deadline" in str(mail["Subject"])
    assert f"/legs/{leg['id']}" in body_of(mail)
    assert not mails_to(app, smtp, other, at=late)  # did not ask


def test_the_admin_entry_form_marks_contacts_chooses_daily_and_says_capacity(
        app: Flask, network: Network) -> None:
    from hub.directory.organizations import Organization
    from tests.portal import Person, make_user

    partner = network.partner()
    set_entry(partner, services=[{"name": "Accueil", "pathways": ["settlement"]}],
              contacts=[{"name": "Julie", "email": address()}])
    organization_id = uuid.UUID(partner.organization_id)
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, organization_id)
        assert organization is not None
        admin = Person.logged_in(app, make_user(app, organization, "org_admin"))
    form = admin.get(f"/admin/{organization_id}/entry").get_data(as_text=True)
    assert 'name="contacts-0-notify_referrals"' in form
    kept = re.search(r'name="contacts-0-email" type="email" value="([^"]+)"', form)
    assert kept is not None
    response = admin.post(f"/admin/{organization_id}/entry", {
        "name": "Organisme", "region": "06", "capacity": "open", "referral_mails": "daily",
        "services-0-name": "Accueil", "services-0-pathways": "settlement",
        "services-0-capacity": "waitlist", "services-0-waitlist_band": "under_1_month",
        "contacts-0-name": "Julie", "contacts-0-email": kept.group(1),
        "contacts-0-notify_referrals": "on"})  # digests left unchecked: turned off
    assert response.status_code in (200, 302), response.get_data(as_text=True)[-2000:]
    entry = partner.get(f"/api/v1/organizations/{organization_id}").get_json()
    assert entry["referral_mails"] == "daily"
    assert [(c["notify_referrals"], c["deadline_digests"]) for c in entry["contacts"]] == [
        (True, False)]
    (service,) = entry["services"]
    assert (service["capacity"], service["waitlist_band"], service["capacity_stale"]) == (
        "waitlist", "under_1_month", False)

"""Mails to organizations' staff from the follow-up checks and the webhook engine, read back
as the .eml files the embedded transport writes: missed deadlines in one digest per tick to
each of the receiver's contacts, in the receiver's language and time zone, each miss mailed
once whatever crashes or runs twice; an expired leg to the sender with partners of the same
region and pathway with room; a disabled webhook endpoint to its organization's contacts;
and deadlines counted in the receiving organization's time zone."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import event, select

from hub import create_app
from hub.db import db, utcnow
from hub.followups import checkins, leg_checks, policies, tick
from hub.followups import digests as deadline_digests
from hub.followups.scheduler import CheckScheduler
from hub.outbox import webhook_fanout
from hub.outbox.mail import FileTransport, OutgoingMail, send_due
from tests.helpers import Network, Partner
from tests.hub_cli import run_hub
from tests.integration.test_followups import expire_by

FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre")


def french_day(day: date) -> str:
    """A day as a French mail writes it: "2 décembre 2026", "1er mars 2027"."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def in_french(moment: datetime) -> str:
    """A moment as a French mail writes it: "6 décembre 2026 à 9 h 05", "1er mars…"."""
    return f"{french_day(moment.date())} à {moment.hour} h {moment.minute:02d}"


def in_english(moment: datetime) -> str:
    """…and an English one: "December 6, 2026, 9:05 AM"."""
    return (f"{moment:%B} {moment.day}, {moment.year}, {moment.hour % 12 or 12}:"
            f"{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}")

EVERY_MAIL = 10_000


def run_checks(app: Flask, now: datetime) -> dict[str, int]:
    handled = tick.run_once(app.extensions["hub_db"][1], now)
    assert all(count >= 0 for count in handled.values()), handled
    return handled


def address() -> str:
    return f"staff.{secrets.token_hex(4)}@example.org"


def set_entry(partner: Partner, **changes: Any) -> dict[str, Any]:
    response = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                            json=changes)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def contact(email_address: str, role: str = "Accueil") -> dict[str, str]:
    return {"name": "Poste d'accueil", "role": role, "email": email_address}


def sent_mails(app: Flask, tmp_path: Path, *addresses: str) -> dict[str, list[EmailMessage]]:
    """Send what is queued through the embedded transport, then read the .eml files back."""
    folder = tmp_path / "mail"
    send_due(app.extensions["hub_db"][1], FileTransport(folder),
             now=utcnow() + timedelta(days=400), limit=EVERY_MAIL)
    found: dict[str, list[EmailMessage]] = {a: [] for a in addresses}
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        to = message["To"].addresses[0].addr_spec  # type: ignore[union-attr]
        if to in found:
            found[to].append(message)  # type: ignore[arg-type]
    return found


def disabled_endpoint(app: Flask, owner: Partner, url: str,
                      on_disabled: Callable[[Any, Any, str], None]) -> uuid.UUID:
    """A webhook endpoint of `owner`, registered through the API, then disabled by the engine
    (`on_disabled`, as the dispatcher calls it) for a 410."""
    created = owner.post("/api/v1/webhook-endpoints", {"url": url, "event_types": ["referral.*"]})
    assert created.status_code == 201, created.get_data(as_text=True)
    endpoint_id = uuid.UUID(created.get_json()["id"])
    with app.app_context(), db.job_session() as session:
        endpoint = session.get(webhook_fanout.Endpoint, endpoint_id)
        assert endpoint is not None
        on_disabled(session, endpoint, "410 Gone")
    return endpoint_id


def subject(message: EmailMessage) -> str:
    return " ".join(str(message["Subject"]).split())  # unfolded


def body(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def listed_legs(message: EmailMessage) -> list[str]:
    """The legs a digest lists, in its order (each line's portal link)."""
    return re.findall(r"/legs/([0-9a-f-]{36})", body(message))


def test_one_digest_per_receiver_contact_lists_every_missed_leg_in_its_language_and_zone(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender = network.partner(name="Carrefour Emploi Sud")
    french = network.partner(name="Accueil Côte-Nord")
    english = network.partner(name="Welcome Centre Outaouais")
    french_staff, french_desk, english_staff, sender_staff = (address() for _ in range(4))
    set_entry(french, contacts=[contact(french_staff), contact(french_desk, "Direction"),
                                {"name": "Sans courriel"}], time_zone="America/Vancouver")
    set_entry(english, contacts=[contact(english_staff)], language="en")
    set_entry(sender, contacts=[contact(sender_staff)])
    to_french = [sender.refer(french) for _ in range(3)]
    acknowledged = french.act(to_french[2]["id"], "acknowledge")
    assert acknowledged.status_code == 200
    decide_by = moment(acknowledged.get_json()["deadlines"]["decide_by"])
    to_english = sender.refer(english)
    due = max(decide_by, *(moment(leg["deadlines"]["acknowledge_by"])
                           for leg in (to_french[0], to_french[1], to_english)))

    first = run_checks(app, due + timedelta(minutes=1))
    assert first["deadlines_missed"] >= 4 and first["deadline_digests"] >= 3
    again = run_checks(app, due + timedelta(minutes=2))  # nothing new: no digest at all
    assert again["deadline_digests"] == 0
    mails = sent_mails(app, tmp_path, french_staff, french_desk, english_staff, sender_staff)

    assert mails[sender_staff] == []  # the sender's contacts are not told of a receiver's delay
    assert [len(mails[a]) for a in (french_staff, french_desk, english_staff)] == [1, 1, 1]
    french_mail, english_mail = mails[french_staff][0], mails[english_staff][0]
    assert body(mails[french_desk][0]) == body(french_mail)
    assert subject(french_mail) == "3 orientations adressées à Accueil Côte-Nord ont dépassé " \
                                   "un délai"
    assert french_mail["Content-Language"] == "fr"
    assert sorted(listed_legs(french_mail)) == sorted(leg["id"] for leg in to_french)
    text = body(french_mail)
    assert "(heures de America/Vancouver)" in text
    decided = decide_by.astimezone(ZoneInfo("America/Vancouver"))
    assert f"Orientation {to_french[2]['id']}, reçue de Carrefour Emploi Sud : échéance pour la " \
           f"décision (acceptation ou refus) le {in_french(decided)}" in text
    assert text.count("l’accusé de réception") == 2
    assert "/inbox" in text
    assert subject(english_mail) == "1 referral to Welcome Centre Outaouais missed a deadline"
    assert english_mail["Content-Language"] == "en"
    assert listed_legs(english_mail) == [to_english["id"]]
    acknowledge_by = moment(to_english["deadlines"]["acknowledge_by"]).astimezone(
        ZoneInfo("America/Toronto"))
    assert f"Referral {to_english['id']}, received from Carrefour Emploi Sud: acknowledgement " \
           f"was due by {in_english(acknowledge_by)}" in body(english_mail)
    assert "(times in America/Toronto)" in body(english_mail)
    # No participant data: neither the name, the address nor the reason of the referral.
    for message in (french_mail, english_mail):
        for personal in ("Amina", "Benali", "amina.benali", "soudure", "francisation"):
            assert personal not in body(message) and personal not in subject(message)


def test_a_later_tick_mails_only_the_legs_missed_since_the_last_digest(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender, receiver = network.partner(), network.partner()
    staff = address()
    set_entry(receiver, contacts=[contact(staff)])
    first, second = sender.refer(receiver), sender.refer(receiver, priority="urgent")
    urgent_due = moment(second["deadlines"]["acknowledge_by"])
    routine_due = moment(first["deadlines"]["acknowledge_by"])
    assert urgent_due < routine_due

    run_checks(app, urgent_due + timedelta(minutes=1))
    run_checks(app, routine_due + timedelta(minutes=1))
    run_checks(app, routine_due + timedelta(minutes=2))
    mails = sent_mails(app, tmp_path, staff)[staff]
    assert sorted(listed_legs(m) for m in mails) == sorted([[second["id"]], [first["id"]]])
    assert all(subject(m).startswith("1 orientation adressée à ") for m in mails)


def test_a_crash_between_the_firing_and_the_digest_still_mails_once(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender, receiver = network.partner(), network.partner()
    staff = address()
    set_entry(receiver, contacts=[contact(staff)])
    legs = [sender.refer(receiver) for _ in range(2)]
    due = max(moment(leg["deadlines"]["acknowledge_by"]) for leg in legs) \
        + timedelta(minutes=1)
    # The firing pass commits, then the scheduler dies before its digest.
    with app.app_context(), db.job_session() as session:
        assert leg_checks.deadlines_missed(session, due, limit=100_000) >= 2
    assert sent_mails(app, tmp_path, staff)[staff] == []

    sessions = app.extensions["hub_db"][1]
    assert "deadline_digests" in tick.pending(sessions, due)
    handled = run_checks(app, due + timedelta(minutes=1))  # the next tick: nothing to fire
    assert handled["deadlines_missed"] == 0 and handled["deadline_digests"] >= 1
    run_checks(app, due + timedelta(minutes=2))
    [mail] = sent_mails(app, tmp_path, staff)[staff]
    assert sorted(listed_legs(mail)) == sorted(leg["id"] for leg in legs)


def test_two_digests_at_once_mail_each_contact_once(
        app: Flask, network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sender, receiver = network.partner(), network.partner()
    staff = address()
    set_entry(receiver, contacts=[contact(staff)])
    leg = sender.refer(receiver)
    due = moment(leg["deadlines"]["acknowledge_by"]) + timedelta(minutes=1)
    with app.app_context(), db.job_session() as session:
        leg_checks.deadlines_missed(session, due, limit=100_000)

    # The first digest stops after taking the misses, until the second is done (or, on
    # SQLite, two seconds: the second waits for the first's write lock).
    second_done = threading.Event()
    queue = deadline_digests._queue

    def slow_queue(*args: Any, **kwargs: Any) -> int:
        if threading.current_thread().name == "first":
            second_done.wait(timeout=2)
        return queue(*args, **kwargs)

    monkeypatch.setattr(deadline_digests, "_queue", slow_queue)
    sessions = app.extensions["hub_db"][1]
    results: dict[str, int | str] = {}

    def digest(name: str) -> None:
        try:
            with sessions() as session, session.begin():
                results[name] = deadline_digests.mail_digests(session, due)
        except Exception as error:  # shown in the assertion below
            results[name] = type(error).__name__

    first = threading.Thread(target=digest, args=("first",), name="first")
    first.start()
    time.sleep(0.3)
    second = threading.Thread(target=digest, args=("second",), name="second")
    second.start()
    second.join(timeout=30)
    second_done.set()
    first.join(timeout=30)
    # One queued the mail, the other found nothing to take (PostgreSQL: it skipped the rows
    # the first had locked; SQLite: it waited for the first to commit).
    assert sorted(map(str, results.values())) == ["0", "1"], results
    [mail] = sent_mails(app, tmp_path, staff)[staff]
    assert listed_legs(mail) == [leg["id"]]


def test_a_participant_saying_nobody_contacted_them_is_in_the_digest(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender, receiver = network.partner(name="Carrefour Emploi Sud"), network.partner()
    staff = address()
    set_entry(receiver, contacts=[contact(staff)], language="en")
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, sender, purpose="follow_up_contact")
    leg = sender.refer(receiver, participant_id)
    for action in ("acknowledge", "accept"):
        assert receiver.act(leg["id"], action).status_code == 200
    now = utcnow()
    with app.app_context(), db.job_session() as session:
        checkins.checkins_due(session, now + timedelta(days=7), limit=100_000,
                              public_url="https://maillage.example")
        checkin = session.scalar(select(checkins.ParticipantCheckin).where(
            checkins.ParticipantCheckin.referral_id == uuid.UUID(leg["id"])))
        assert checkin is not None
        answered = checkins.record_answer(session, checkin, checkins.Answer.NOT_CONTACTED, now)
        assert answered.signalled

    run_checks(app, now + timedelta(minutes=1))
    [mail] = sent_mails(app, tmp_path, staff)[staff]
    assert listed_legs(mail) == [leg["id"]]
    assert f"Referral {leg['id']}, received from Carrefour Emploi Sud: the person says " \
           "nobody contacted them" in body(mail)
    assert "Amina" not in body(mail) and "amina.benali" not in body(mail)


def test_a_long_digest_lists_the_oldest_and_counts_the_rest(
        app: Flask, network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadline_digests, "LINES_PER_MAIL", 2)
    sender, receiver = network.partner(), network.partner()
    staff = address()
    set_entry(receiver, contacts=[contact(staff)])
    legs = [sender.refer(receiver) for _ in range(4)]
    run_checks(app, max(moment(leg["deadlines"]["acknowledge_by"]) for leg in legs)
               + timedelta(minutes=1))
    [mail] = sent_mails(app, tmp_path, staff)[staff]
    oldest = sorted(legs, key=lambda leg: (leg["deadlines"]["acknowledge_by"], leg["id"]))
    assert listed_legs(mail) == [leg["id"] for leg in oldest[:2]]
    assert subject(mail).startswith("4 orientations adressées à ")
    assert "… et 2 autres, dans la liste des orientations reçues." in body(mail)


def test_an_expired_leg_tells_the_sender_where_to_redirect(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender = network.partner(name="Centre Départ")
    receiver = network.partner(kind="regional_partner", region="02")
    serving = network.partner(kind="regional_partner", region="02", name="0 Même parcours")
    other_pathway = network.partner(kind="regional_partner", region="02", name="0 Autre")
    full = network.partner(kind="regional_partner", region="02", name="0 Complet")
    set_entry(serving, services=[{"name": "Emploi", "pathways": ["employment"]}])
    set_entry(other_pathway, services=[{"name": "Entreprendre",
                                        "pathways": ["entrepreneurship"]}])
    set_entry(full, services=[{"name": "Emploi", "pathways": ["employment"]}], capacity="full")
    sender_staff, receiver_staff = address(), address()
    set_entry(sender, contacts=[contact(sender_staff)], language="en")
    set_entry(receiver, contacts=[contact(receiver_staff)])
    leg = sender.refer(receiver)
    with app.app_context(), db.job_session() as session:
        from hub.referrals.legs import Referral
        expire_by = session.get(Referral, uuid.UUID(leg["id"])).expire_by  # type: ignore[union-attr]

    run_checks(app, expire_by + timedelta(minutes=1))
    run_checks(app, expire_by + timedelta(minutes=2))
    mails = sent_mails(app, tmp_path, sender_staff, receiver_staff)

    expired = [m for m in mails[sender_staff] if "expired" in m["Subject"]]
    assert len(expired) == 1
    text = body(expired[0])
    assert subject(expired[0]) == f"Referral expired without an answer: {leg['id']}"
    assert "0 Même parcours" in text
    assert "0 Autre" not in text and "0 Complet" not in text
    assert f"/legs/{leg['id']}" in text
    events = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [s["name"] for s in events[-1]["data"]["redirect_to"]] == ["0 Même parcours"]
    # The receiver's contacts were told of the missed acknowledgement, not of the expiry.
    assert [m for m in mails[receiver_staff] if "expir" in m["Subject"].lower()] == []


def test_a_disabled_webhook_endpoint_is_mailed_to_the_organization_contacts(
        app: Flask, network: Network, tmp_path: Path) -> None:
    owner = network.partner(name="Coop Nord")
    staff = address()
    set_entry(owner, contacts=[contact(staff)])
    endpoint_id = disabled_endpoint(app, owner, "http://127.0.0.1:9/maillage?token=s3cret",
                                    webhook_fanout.endpoint_disabled)
    mails = sent_mails(app, tmp_path, staff)
    assert len(mails[staff]) == 1
    message = mails[staff][0]
    assert subject(message) == "Maillage a désactivé un point de réception webhook de Coop Nord"
    assert str(endpoint_id) in body(message) and "410 Gone" in body(message)
    # No URL: it may carry a token.
    assert "127.0.0.1:9" not in body(message) and "s3cret" not in body(message)


def test_deadlines_are_counted_in_the_receiving_organization_time_zone(
        app: Flask, network: Network) -> None:
    sender = network.partner()
    toronto, vancouver = network.partner(), network.partner()
    assert set_entry(vancouver, time_zone="America/Vancouver")["time_zone"] == \
        "America/Vancouver"
    refused = toronto.call("PATCH", f"/api/v1/organizations/{toronto.organization_id}",
                           json={"time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422
    assert refused.content_type == "application/problem+json"
    assert "America/Toronto" in refused.get_data(as_text=True)

    # Friday 06:00 UTC: already Friday in Toronto (01:00), still Thursday evening in
    # Vancouver (22:00).  One business day later is Monday in Toronto, Friday in Vancouver.
    start = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    with app.app_context(), db.job_session() as session:
        due = {partner.name: policies.deadline(
            session, organization_id=uuid.UUID(partner.organization_id), pathway="employment",
            check="acknowledge", priority="urgent", start=start)
            for partner in (toronto, vancouver)}
    assert due[toronto.name] == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Mon 01:00 EST
    assert due[vancouver.name] == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)  # Fri 22:00 PST

    # A leg sent now gets the receiver's deadline, counted in its zone.
    leg = sender.refer(vancouver, priority="urgent")
    with app.app_context(), db.job_session() as session:
        expected = policies.deadline(
            session, organization_id=uuid.UUID(vancouver.organization_id),
            pathway="employment", check="acknowledge", priority="urgent",
            start=moment(leg["created_at"]))
    assert moment(leg["deadlines"]["acknowledge_by"]) == expected
    local_sent = moment(leg["created_at"]).astimezone(ZoneInfo("America/Vancouver"))
    local_due = expected.astimezone(ZoneInfo("America/Vancouver"))
    assert local_due.time() == local_sent.time() and local_due.weekday() < 5


def test_no_mail_is_queued_for_an_organization_without_contacts(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    handled = run_checks(app, moment(leg["deadlines"]["acknowledge_by"]) + timedelta(minutes=1))
    assert handled["deadlines_missed"] >= 1
    with app.app_context(), db.job_session() as session:
        digests = session.scalars(select(OutgoingMail).where(
            OutgoingMail.dedupe_key.like("deadline_digest:%"))).all()
        assert all(leg["id"] not in mail.body_text for mail in digests)


def test_a_tick_with_nothing_due_is_one_query(app: Flask, network: Network) -> None:
    engine, sessions = app.extensions["hub_db"]
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    run_checks(app, long_ago)  # digests what other tests left
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert tick.run_tick(sessions, lambda: long_ago, rounds=10) \
            == dict.fromkeys(tick.CHECKS, 0)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(sent) == 1 and "deadline_digest_queue" in sent[0], sent


def test_the_command_line_sets_an_organization_time_zone_and_language(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
           "HUB_ENV": "development"}
    env.pop("HUB_DATA_KEYS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_hub(env, *args)

    assert run("db", "upgrade").returncode == 0
    created = run("org", "create", "--name", "Accueil Gaspé", "--kind", "community",
                  "--region", "11", "--time-zone", "America/Halifax")
    assert created.returncode == 0, created.stderr
    organization = json.loads(created.stdout)
    assert (organization["time_zone"], organization["language"]) == ("America/Halifax", "fr")

    changed = run("org", "set", organization["id"], "--time-zone", "America/Toronto",
                  "--language", "en")
    assert changed.returncode == 0, changed.stderr
    assert (json.loads(changed.stdout)["time_zone"], json.loads(changed.stdout)["language"]) \
        == ("America/Toronto", "en")

    unknown = run("org", "set", organization["id"], "--time-zone", "Quebec/Gaspe")
    assert unknown.returncode == 2 and "IANA" in unknown.stderr
    bad_language = run("org", "create", "--name", "X", "--kind", "community", "--region", "06",
                       "--language", "de")
    assert bad_language.returncode == 2 and "fr, en" in bad_language.stderr
    missing = run("org", "set", str(uuid.uuid4()), "--language", "en")
    assert missing.returncode == 2 and "hub org list" in missing.stderr


def test_each_app_mails_links_to_the_address_of_its_own_settings(
        app: Flask, network: Network, tmp_path: Path) -> None:
    """HUB_PUBLIC_URL is a setting of an app, handed to what builds links (the scheduler of
    that app, the webhook engine's callback), never a setting of the process: a second app
    with another address changes nothing for the first."""
    public_url = "https://maillage.example.org"
    elsewhere = create_app(dataclasses.replace(app.config["HUB_SETTINGS"],
                                               public_url=public_url))
    try:
        sender, receiver = network.partner(), network.partner()
        sender_staff, receiver_staff = address(), address()
        set_entry(sender, contacts=[contact(sender_staff)])
        set_entry(receiver, contacts=[contact(receiver_staff)])
        leg = sender.refer(receiver)
        moment_after = expire_by(app, leg["id"]) + timedelta(minutes=1)
        scheduler = CheckScheduler.for_app(elsewhere, clock=lambda: moment_after)
        try:
            handled = scheduler.tick()
        finally:
            scheduler.shutdown()
        assert handled is not None and handled["expirations"] >= 1

        owner = network.partner()
        owner_staff = address()
        set_entry(owner, contacts=[contact(owner_staff)])
        endpoint_id = disabled_endpoint(app, owner, "http://127.0.0.1:9/hook",
                                        webhook_fanout.on_endpoint_disabled(public_url))

        # The first app, after the second was made: its own (default) address.
        late = sender.refer(receiver)
        run_checks(app, moment(late["deadlines"]["acknowledge_by"]) + timedelta(minutes=1))
    finally:
        elsewhere.extensions["hub_db"][0].dispose()

    mails = sent_mails(app, tmp_path, sender_staff, receiver_staff, owner_staff)
    [expired] = [m for m in mails[sender_staff] if leg["id"] in subject(m)]
    assert f"{public_url}/legs/{leg['id']}" in body(expired)
    digests = {tuple(listed_legs(m)): body(m) for m in mails[receiver_staff]}  # one a tick
    assert set(digests) == {(leg["id"],), (late["id"],)}
    assert f"{public_url}/legs/{leg['id']}" in digests[leg["id"],]
    assert f"{public_url}/inbox" in digests[leg["id"],]
    assert f"http://127.0.0.1:5000/legs/{late['id']}" in digests[late["id"],]
    assert public_url not in digests[late["id"],]
    [disabled] = mails[owner_staff]
    assert f"PATCH {public_url}/api/v1/webhook-endpoints/{endpoint_id} " in body(disabled)

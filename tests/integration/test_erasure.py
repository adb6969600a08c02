"""Erasure by key (docs/design.md §15), on both backends: after a participant's data is erased,
no API answer, feed item, webhook, mail received over SMTP, report or FHIR export shows it;
the database file and its dump hold no name, contact or note of the person; a backup taken
before the erasure and restored after it cannot show them either; the legs, events and counts
stay, and the soak test's replay of the event log still agrees with them; open peer matches
of the person end."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from flask import Flask
from sqlalchemy import MetaData, Text, cast, create_engine, func, select, text
from sqlalchemy.engine import make_url

from hub import create_app, crypto
from hub.consent import key_rotation
from hub.db import Base, db, utcnow
from hub.events.store import Event
from hub.outbox.mail import send_due
from hub.privacy import keystore, retention
from hub.referrals.legs import Referral
from hub.referrals.participants import Participant
from tests.e2e.test_webhooks import deliver_all, subscribe
from tests.helpers import Network, Partner
from tests.integration.test_mail import SmtpServer, smtp_transport
from tests.receiver import Receiver, running_receiver

T = TypeVar("T")
SCOPES = ["participants:read", "participants:write", "consents:read", "consents:write",
          "referrals:read", "referrals:write", "referrals:respond", "events:read",
          "webhooks:manage", "privacy:manage"]


@pytest.fixture
def receiver_system() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


def person_with_history(sender: Partner, receiver: Partner) -> tuple[dict, dict, set[str]]:
    """A participant with a consent (and its note), a leg (reason, needs) and a transition
    note; returns the person, the leg and every piece of personal text written."""
    marker = uuid.uuid4().hex[:8]
    person = sender.register_participant(given_name=f"Zéphirine{marker}",
                                         family_name=f"Quenneville{marker}")
    consent_note = f"Accord signé devant témoin {marker}"
    sender.grant_consent(person["id"], receiver, note=consent_note)
    reason = f"Soudeuse, cherche un poste à Matane {marker}"
    leg = sender.refer(receiver, person["id"], consent=False, reason_for_referral=reason,
                       needs=[f"logement-{marker}"])
    transition_note = f"Rendez-vous avec Mme Quenneville{marker} lundi"
    assert receiver.act(leg["id"], "acknowledge", {"note": transition_note}).status_code == 200
    secrets = {person["given_name"], person["family_name"], person["email"], person["phone"],
               consent_note, reason, f"logement-{marker}", transition_note}
    return person, leg, secrets


def eventually(read: Callable[[], T], done: Callable[[T], bool], seconds: float = 60) -> T:
    """`read()` until `done` says it shows what is awaited.  On PostgreSQL the feed shows an
    event once every older transaction of the server has finished (`hub.events.feed`), and
    the test server is shared: another test's long transaction may hold it back a while."""
    deadline = time.monotonic() + seconds
    while True:
        seen = read()
        if done(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def erase(partner: Partner, participant_id: str) -> dict:
    response = partner.post(f"/api/v1/participants/{participant_id}/erase")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def none_of(secrets: set[str], text_seen: str) -> None:
    shown = {secret for secret in secrets if secret in text_seen}
    assert not shown, f"still shown: {shown}"


def test_after_erasure_no_channel_shows_the_person(
        app: Flask, network: Network, receiver_system: Receiver) -> None:
    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    coordinator = network.partner(kind="coordination")
    subscribe(receiver, receiver_system)
    person, leg, secrets = person_with_history(sender, receiver)
    assert person["given_name"] in json.dumps(
        receiver.get(f"/api/v1/referrals/{leg['id']}").get_json(), ensure_ascii=False)

    erased = erase(sender, person["id"])
    assert erased["reason"] == "on_request" and erased["pseudonym"].startswith("P-")
    assert erase(sender, person["id"]) == erased  # again: the same answer, nothing more
    assert receiver.post(f"/api/v1/participants/{person['id']}/erase").status_code == 404

    # The API: the participant is gone for their organization (410), unknown to others.
    gone = sender.get(f"/api/v1/participants/{person['id']}")
    assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert "erased" in gone.get_json()["detail"]
    assert receiver.get(f"/api/v1/participants/{person['id']}").status_code == 404
    assert sender.get(f"/api/v1/participants/{person['id']}/export").status_code == 410
    # The leg stays, cancelled, with a stub of the person.
    for partner in (sender, receiver, coordinator):
        shown = partner.get(f"/api/v1/referrals/{leg['id']}")
        assert shown.status_code == 200
        body = shown.get_json()
        assert body["status"] == "cancelled"
        assert body["participant"]["redacted"] is True and body["participant"]["erased"]
        none_of(secrets, json.dumps(body, ensure_ascii=False))
        history = partner.get(f"/api/v1/referrals/{leg['id']}/events").get_json()
        none_of(secrets, json.dumps(history, ensure_ascii=False))
        fhir = partner.get(f"/api/v1/referrals/{leg['id']}/fhir")
        none_of(secrets, fhir.get_data(as_text=True))
    consents = sender.get(f"/api/v1/participants/{person['id']}/consents").get_json()["items"]
    assert [c["status"] for c in consents] == ["withdrawn"]

    # The feed: every organization that received the data is told to erase it.
    feed = eventually(lambda: receiver.get("/api/v1/events?limit=500&after=0"
                                           ).get_json()["items"],
                      lambda items: any(e["type"] == "participant.erased" for e in items))
    told = [e for e in feed if e["type"] == "participant.erased"]
    assert [e["data"]["participant"]["id"] for e in told] == [person["id"]]
    assert told[0]["data"]["erase_personal_data"] is True
    none_of(secrets, json.dumps(feed, ensure_ascii=False))

    # Webhooks, rendered when sent: the bodies built after the erasure carry nothing of them.
    def delivered() -> list[str]:
        deliver_all(app, rounds=500)
        return [r.body.decode() for r in receiver_system.requests]

    bodies = eventually(delivered, lambda seen: any('"participant.erased"' in body
                                                    for body in seen))
    none_of(secrets, "\n".join(bodies))

    # Reports and the directory of participants.
    today = datetime.now(UTC).date()
    report = sender.get("/api/v1/reports/funder", query_string={
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(), "format": "csv"})
    assert report.status_code == 200
    none_of(secrets, report.get_data(as_text=True))

    # The erasure register: when, which pseudonym, why.
    register = sender.get("/api/v1/erasures").get_json()["items"]
    assert erased in register
    exported = sender.get("/api/v1/erasures?format=csv").get_data(as_text=True)
    assert erased["pseudonym"] in exported and person["id"] in exported

    # The stub, the leg and its events stay: counts and the log are whole.
    with app.app_context():
        assert db.session.get(Referral, uuid.UUID(leg["id"])) is not None
        events = db.session.scalar(select(func.count()).select_from(Event).where(
            Event.subject == f"referrals/{leg['id']}"))
        assert events == 3  # sent, acknowledged, cancelled
        stub = db.session.get(Participant, uuid.UUID(person["id"]))
        assert stub is not None and stub.erased_at is not None
        assert (stub.given_name, stub.email, stub.phone, stub.birth_year) == ("", None, None,
                                                                              None)
        assert not app.extensions["hub_keystore"].has_key(stub.id)


def _database_bytes(app: Flask, database_url: str) -> bytes:
    """What a copy of the database holds: the SQLite file (and its write-ahead log), or a
    pg_dump of the PostgreSQL database."""
    if database_url.startswith("sqlite"):
        with app.app_context():
            db.session.execute(text("PRAGMA wal_checkpoint(FULL)"))
        path = Path(database_url.removeprefix("sqlite:///"))
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    url = make_url(database_url)
    return subprocess.run(
        ["pg_dump", "--no-owner", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", url.database or ""],
        check=True, capture_output=True, env={**os.environ, "PGPASSWORD": url.password or ""},
    ).stdout


def test_the_database_and_its_dump_hold_no_plaintext_of_the_person(
        app: Flask, network: Network, database_url: str) -> None:
    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    person, _leg, secrets = person_with_history(sender, receiver)
    # Encrypted at rest before erasure already; sealed under the person's own key.
    none_of(secrets, _database_bytes(app, database_url).decode("utf-8", "replace"))
    # Every value of theirs is sealed under their own key, whichever table holds it.
    with app.app_context():
        metadata = Base.metadata
        for table, column in key_rotation.person_columns():
            if table in ("followup_records", "referral_checklist_items", "peer_matches"):
                continue  # none in this history (their own tests write some)
            values = _values_of(metadata, table, column, uuid.UUID(person["id"]))
            assert values, (table, column)
            assert all(crypto.owner_of_token(v) == uuid.UUID(person["id"]) for v in values), (
                table, column)

    erase(sender, person["id"])
    after = _database_bytes(app, database_url).decode("utf-8", "replace")
    none_of(secrets, after)
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM participants WHERE given_name "
                                      "LIKE :p"), {"p": f"p1:{uuid.UUID(person['id']).hex}:%"}
                                 ) == 0


def _values_of(metadata: MetaData, table: str, column: str, person: uuid.UUID) -> list[str]:
    """The stored tokens of `table.column` that belong to `person`."""
    participants, referrals = metadata.tables["participants"], metadata.tables["referrals"]
    notes, consents = metadata.tables["referral_notes"], metadata.tables["consents"]
    consent_notes = metadata.tables["consent_notes"]
    target = metadata.tables[table]
    raw = cast(target.c[column], Text)
    query = {
        "participants": select(raw).where(participants.c.id == person),
        "referrals": select(raw).where(referrals.c.participant_id == person),
        "referral_notes": select(raw).join(referrals, referrals.c.id == notes.c.referral_id)
        .where(referrals.c.participant_id == person),
        "consent_notes": select(raw).join(consents, consents.c.id == consent_notes.c.consent_id)
        .where(consents.c.participant_id == person),
    }[table]
    return [value for value in db.session.scalars(query) if value]


def test_a_backup_restored_after_the_erasure_cannot_show_the_person(
        app: Flask, network: Network, database_url: str, tmp_path: Path) -> None:
    """The key store is not in the database's backups: the restored rows stay sealed."""
    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    person, leg, secrets = person_with_history(sender, receiver)
    restored_url = _backup(app, database_url, tmp_path)

    erase(sender, person["id"])

    restored = _restore(restored_url, database_url, tmp_path)
    settings = app.config["HUB_SETTINGS"]
    import dataclasses

    again = create_app(dataclasses.replace(settings, database_url=restored, keystore_url=(
        settings.keystore_url or settings.keystore)))
    try:
        with again.app_context():
            stub = db.session.get(Participant, uuid.UUID(person["id"]))
            assert stub is not None and stub.erased_at is None  # the backup predates it
            assert (stub.given_name, stub.family_name, stub.email, stub.phone) == (
                None, None, None, None)
            assert db.session.get(Referral, uuid.UUID(leg["id"])).reason_for_referral is None
        shown = again.test_client().get(
            f"/api/v1/referrals/{leg['id']}",
            headers={"Authorization": f"Bearer {sender.token}"})
        assert shown.status_code == 200
        none_of(secrets, shown.get_data(as_text=True))
    finally:
        again.extensions["hub_db"][0].dispose()
        keystore.install(app.extensions["hub_keystore"])
        if not database_url.startswith("sqlite"):
            admin = create_engine(os.environ["HUB_TEST_POSTGRES_URL"],
                                  isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(
                    f'DROP DATABASE IF EXISTS "{make_url(restored).database}" WITH (FORCE)'))
            admin.dispose()


def _backup(app: Flask, database_url: str, tmp_path: Path) -> str:
    """A backup as an operator takes one: a copy of the SQLite file, or a pg_dump file."""
    if database_url.startswith("sqlite"):
        with app.app_context():
            db.session.execute(text("PRAGMA wal_checkpoint(FULL)"))
        copy = tmp_path / "backup.sqlite3"
        shutil.copy(database_url.removeprefix("sqlite:///"), copy)
        return str(copy)
    url = make_url(database_url)
    dump = tmp_path / "backup.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-h", url.host or "127.0.0.1",
                    "-p", str(url.port or 5432), "-U", url.username or "postgres",
                    "-f", str(dump), url.database or ""], check=True)
    return str(dump)


def _restore(backup: str, database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        target = tmp_path / "restored" / "hub.sqlite3"
        target.parent.mkdir()
        shutil.copy(backup, target)
        return f"sqlite:///{target}"
    url = make_url(database_url)
    name = f"{url.database}_restored_{uuid.uuid4().hex[:6]}"
    admin = create_engine(os.environ["HUB_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    subprocess.run(["pg_restore", "--no-owner", "-h", url.host or "127.0.0.1",
                    "-p", str(url.port or 5432), "-U", url.username or "postgres",
                    "-d", name, backup], check=True)
    return url.set(database=name).render_as_string(hide_password=False)


def test_the_retention_check_erases_whose_data_no_longer_serves(
        app: Flask, network: Network) -> None:
    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    done, _leg, _ = person_with_history(sender, receiver)
    still_open, open_leg, _ = person_with_history(sender, receiver)
    # `done`: consent withdrawn, which cancels the leg: nothing serves any more.
    consent = sender.get(f"/api/v1/participants/{done['id']}/consents").get_json()["items"][0]
    assert sender.post(f"/api/v1/consents/{consent['id']}/withdraw").status_code == 200
    later = datetime.now(UTC) + timedelta(days=24 * 31 + 1)
    # The check erases a batch per pass, oldest first; the suite's database holds other
    # tests' people too, so pass until this one is reached or nothing is left to erase.
    erased = total = 0
    for _pass in range(100):
        with app.app_context(), db.job_session() as session:
            erased = retention.erase_expired(session, later)
        total += erased
        if erased == 0 or sender.get(f"/api/v1/participants/{done['id']}").status_code == 410:
            break
    assert total >= 1
    assert sender.get(f"/api/v1/participants/{done['id']}").status_code == 410
    # An open leg and an active consent keep the other one.
    assert sender.get(f"/api/v1/participants/{still_open['id']}").status_code == 200
    register = sender.get("/api/v1/erasures").get_json()["items"]
    assert [(e["participant_id"], e["reason"], e["erased_by"]) for e in register] == [
        (done["id"], "retention", "scheduler")]
    # Not before the period has passed.
    with app.app_context(), db.job_session() as session:
        assert retention.erase_expired(session, datetime.now(UTC)) == 0 or \
            sender.get(f"/api/v1/participants/{still_open['id']}").status_code == 200
    assert receiver.get(f"/api/v1/referrals/{open_leg['id']}").get_json()["participant"][
        "given_name"] == still_open["given_name"]


def test_a_check_in_mail_about_to_go_to_the_person_goes_with_their_data(
        app: Flask, network: Network) -> None:
    """The check-in mail is the one the hub sends to the person's own address: a queued one
    is deleted at the erasure, so no mail leaves for them afterwards."""
    from hub.outbox.mail import OutgoingMail, queue_mail

    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    person, leg, _secrets = person_with_history(sender, receiver)
    with app.app_context(), db.job_session() as session:
        queue_mail(session, to=person["email"], subject="Avez-vous été contacté·e ?",
                   text=f"Bonjour {person['given_name']}", dedupe_key=f"checkin:{leg['id']}")
    erase(sender, person["id"])
    with app.app_context():
        left = db.session.scalars(select(OutgoingMail).where(
            OutgoingMail.dedupe_key == f"checkin:{leg['id']}")).all()
        assert left == []
        assert person["email"] not in {m.to_address for m in db.session.scalars(
            select(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(200))}


def test_after_erasure_the_counts_and_the_replay_of_the_event_log_still_agree(
        app: Flask, network: Network) -> None:
    """The soak test's check (`bench.soak_checks.states_agree`): each leg's events, replayed
    through the lifecycle rules, end at the leg's row, after an erasure cancelled some."""
    from bench.soak_checks import states_agree

    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=SCOPES)
    erased_person, open_leg, _ = person_with_history(sender, receiver)
    kept_person, kept_leg, _ = person_with_history(sender, receiver)
    # A second leg of the erased person, taken further before the erasure.
    accepted = sender.refer(receiver, erased_person["id"], consent=False)
    for action in ("acknowledge", "accept"):
        assert receiver.act(accepted["id"], action).status_code == 200
    # The first one forwarded to a third organization: the erasure cancels the next leg.
    third = network.partner(kind="regional_partner", scopes=SCOPES)
    sender.grant_consent(erased_person["id"], third)
    forwarded = receiver.act(open_leg["id"], "forward",
                             {"to_organization_id": third.organization_id})
    assert forwarded.status_code == 201, forwarded.get_data(as_text=True)
    next_leg = forwarded.get_json()["id"]
    legs = [open_leg["id"], next_leg, accepted["id"], kept_leg["id"]]
    erase(sender, erased_person["id"])

    with app.app_context(), db.engine.connect() as connection:
        # Given the first leg only, the check follows it to the leg it was forwarded to.
        allowed, replayed, counts = states_agree(
            connection, only=[open_leg["id"], accepted["id"], kept_leg["id"]])
    assert allowed[0], allowed[1]
    assert replayed[0], replayed[1]
    # The erased person's open legs are cancelled, the other person's is untouched.
    assert counts == {"forwarded": 1, "cancelled": 2, "acknowledged": 1}
    # As the API shows them, each to an organization party to the leg.
    statuses = {leg: (third if leg == next_leg else sender).get(
        f"/api/v1/referrals/{leg}").get_json()["status"] for leg in legs}
    assert Counter(statuses.values()) == counts
    assert statuses[kept_leg["id"]] == "acknowledged"
    assert sender.get(f"/api/v1/participants/{kept_person['id']}").status_code == 200


def test_erasing_a_peer_or_a_newcomer_ends_their_open_matches(
        app: Flask, network: Network) -> None:
    from tests.integration.test_peers import World, feed

    # The peer is erased while their match is accepted.
    world = World(network)
    match = world.propose()
    assert world.peer_org.post(f"/api/v1/peer-matches/{match['id']}/accept").status_code == 200
    erase(world.peer_org, world.peer["id"])
    for partner in (world.newcomer_org, world.peer_org):
        events = feed(partner, match["id"], until="peer_match.ended")
        assert [e["type"] for e in events][-1] == "peer_match.ended"
        assert not any(s in json.dumps(events, ensure_ascii=False)
                       for s in (world.peer["given_name"], world.peer["email"],
                                 world.peer["phone"], world.peer["family_name"]))
    ended = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert (ended["status"], ended["peer"]) == ("ended", None)
    found = world.newcomer_org.get("/api/v1/peers?region=01").get_json()["items"]
    assert world.profile["id"] not in {p["id"] for p in found}

    # The newcomer is erased while a proposal about them waits for the peer's answer.
    other = World(network)
    proposal = other.propose()
    erase(other.newcomer_org, other.newcomer["id"])
    events = feed(other.peer_org, proposal["id"], until="peer_match.ended")
    assert [e["type"] for e in events] == ["peer_match.proposed", "peer_match.ended"]
    shown = other.peer_org.get(f"/api/v1/peer-matches/{proposal['id']}").get_json()
    assert shown["status"] == "ended"
    assert other.newcomer["given_name"] not in json.dumps(shown, ensure_ascii=False)


def test_no_mail_sent_after_the_erasure_shows_the_person(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    """Mails are written when queued: those queued after the erasure (the new-leg mail, the
    daily list of new legs, the check-ins, the deadline and follow-up digests of the
    scheduler's checks) reach the SMTP server without the person's name, contact or notes."""
    from hub.followups import tick
    from hub.mailbox import notices
    from tests.integration.test_mailbox import address, fan_out, set_entry

    sender = network.partner(scopes=SCOPES)
    receiver = network.partner(kind="regional_partner", scopes=[*SCOPES, "directory:write"])
    daily = network.partner(kind="regional_partner", scopes=[*SCOPES, "directory:write"])
    marked, daily_marked = address(), address()
    set_entry(receiver, contacts=[{"name": "Julie Tremblay", "email": marked,
                                   "notify_referrals": True}])
    set_entry(daily, referral_mails="daily", contacts=[
        {"name": "Marc Gagnon", "email": daily_marked, "notify_referrals": True}])
    settings = app.config["HUB_SETTINGS"]

    def received_from(start: int, at: datetime) -> list[str]:
        """What the SMTP server received since its `start`-th message, once the fan-out ran
        and what is due at `at` was sent."""
        fan_out(app)
        send_due(app.extensions["hub_db"][1], smtp_transport(smtp),
                 now=at + timedelta(seconds=1), limit=10_000)
        texts = []
        for r in smtp.received[start:]:
            message = email.message_from_bytes(r.data, policy=email.policy.default)
            body = message.get_body(("plain",))
            assert body is not None
            texts.append(f"{message['Subject']}\n{body.get_content()}\n"  # type: ignore[attr-defined]
                         + " ".join(r.rcpt_to))
        return texts

    person, _leg, secrets = person_with_history(sender, receiver)
    # The channel does carry the person's given name while they are known.
    before = received_from(0, utcnow())
    assert any(person["given_name"] in text and marked in text for text in before)
    # Legs waiting for the daily mail: one of the person, one of someone else.
    sender.grant_consent(person["id"], daily)
    theirs = sender.refer(daily, person["id"], consent=False)
    other = sender.register_participant(given_name="Océane")
    someone_else = sender.refer(daily, other["id"])
    fan_out(app)
    start = len(smtp.received)

    erase(sender, person["id"])
    # Another leg to the receiver, mailed at once after the erasure: the channel still works.
    sender.refer(receiver, other["id"])
    fan_out(app)
    with app.app_context(), db.job_session() as session:
        queued = session.get(notices.QueuedNotice, uuid.UUID(someone_else["id"]))
        assert queued is not None
        due = queued.due_at
        notices.mail_daily(session, due, secret_key=settings.secret_key,
                           public_url=settings.public_url)
    # The scheduler's checks, weeks later: check-ins, deadlines, follow-ups and digests.
    later = utcnow() + timedelta(days=40)
    tick.run_once(app.extensions["hub_db"][1], later)
    after = received_from(start, later)

    assert any("Océane" in text and marked in text for text in after)
    # The daily list names the other person's leg only: the erased person's is cancelled.
    [listed] = [text for text in after
                if daily_marked in text and "nouvelle orientation" in text.split("\n")[0]]
    assert listed.startswith("1 nouvelle orientation") and "Océane" in listed
    assert theirs["id"] not in "\n".join(after)
    none_of(secrets, "\n".join(after))
    assert not [text for text in after if person["email"] in text]

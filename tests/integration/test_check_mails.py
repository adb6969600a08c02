"""Mails to organizations' staff from the follow-up checks and the webhook engine, read back
as the .eml files the embedded transport writes: a missed deadline to the receiver's contacts
in the receiver's language, an expired leg to the sender with partners of the same region and
pathway with room, a disabled webhook endpoint to its organization's contacts; each once; and
deadlines counted in the receiving organization's time zone."""

from __future__ import annotations

import email
import email.policy
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from hub import checks, outbound, policies
from hub.db import db, utcnow
from hub.mail import FileTransport, OutgoingMail, send_due
from tests.helpers import Network, Partner

EVERY_MAIL = 10_000


def run_checks(app: Flask, now: datetime) -> dict[str, int]:
    handled = checks.run_once(app.extensions["hub_db"][1], now)
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


def subject(message: EmailMessage) -> str:
    return " ".join(str(message["Subject"]).split())  # unfolded


def body(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_missed_deadline_is_mailed_once_to_each_receiver_contact_in_its_language(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender = network.partner(name="Carrefour Emploi Sud")
    french, english = network.partner(), network.partner()
    french_staff, english_staff, other_staff = address(), address(), address()
    set_entry(french, contacts=[contact(french_staff), {"name": "Sans courriel"}])
    set_entry(english, contacts=[contact(english_staff)], language="en")
    set_entry(sender, contacts=[contact(other_staff)])
    to_french = sender.refer(french)
    to_english = sender.refer(english)
    due = max(moment(to_french["deadlines"]["acknowledge_by"]),
              moment(to_english["deadlines"]["acknowledge_by"]))

    run_checks(app, due + timedelta(minutes=1))
    run_checks(app, due + timedelta(minutes=2))  # again: no new mail
    mails = sent_mails(app, tmp_path, french_staff, english_staff, other_staff)

    assert len(mails[french_staff]) == 1 and len(mails[english_staff]) == 1
    assert mails[other_staff] == []  # the sender's contacts are not told of a receiver's delay
    french_mail, english_mail = mails[french_staff][0], mails[english_staff][0]
    assert subject(french_mail) == f"Délai dépassé : demande {to_french['id']} " \
                                     "(l'accusé de réception)"
    assert french_mail["Content-Language"] == "fr"
    assert "Carrefour Emploi Sud" in body(french_mail)
    assert f"/legs/{to_french['id']}" in body(french_mail)
    assert subject(english_mail) == f"Deadline missed: referral {to_english['id']} " \
                                      "(acknowledgement)"
    assert english_mail["Content-Language"] == "en"
    assert f"/legs/{to_english['id']}" in body(english_mail)
    # No participant data: neither the name nor the reason of the referral.
    for message in (french_mail, english_mail):
        assert "Amina" not in body(message) and "soudure" not in body(message)


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
        from hub.referrals import Referral
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
    created = owner.post("/api/v1/webhook-endpoints", {
        "url": "http://127.0.0.1:9/maillage?token=s3cret", "event_types": ["referral.*"]})
    assert created.status_code == 201, created.get_data(as_text=True)
    endpoint_id = uuid.UUID(created.get_json()["id"])
    with app.app_context(), db.job_session() as session:
        endpoint = session.get(outbound.Endpoint, endpoint_id)
        assert endpoint is not None
        outbound.endpoint_disabled(session, endpoint, "410 Gone")
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
    run_checks(app, moment(leg["deadlines"]["acknowledge_by"]) + timedelta(minutes=1))
    with app.app_context(), db.job_session() as session:
        keys = session.scalars(select(OutgoingMail.dedupe_key).where(
            OutgoingMail.dedupe_key.like(f"deadline_missed:{leg['id']}:%"))).all()
    assert keys == []


def test_the_command_line_sets_an_organization_time_zone_and_language(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
           "HUB_ENV": "development"}
    env.pop("HUB_DATA_KEYS", None)
    hub = str(Path(sys.executable).parent / "hub")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([hub, *args], env=env, capture_output=True, text=True,
                              timeout=60)

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

"""The organization-admin pages through HTTP like a browser: the directory entry and its "still
accurate" confirmation, users (invitation by mail, roles, access), OAuth clients whose secret
is shown once and gets real tokens, webhook endpoints delivering to a real local receiver with
their delivery log and redelivery.  An org admin reaches only their own organization (404 for
another's objects), other roles none of it (403); a hub admin reaches any organization."""

from __future__ import annotations

import base64
import html
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from hub.accounts.clients import SCOPES, OAuthClient
from hub.accounts.users import User
from hub.db import db, utcnow
from hub.directory.organizations import QUEBEC_REGIONS, Organization
from hub.events.types import EventType
from hub.outbox.mail import OutgoingMail
from tests.e2e.test_webhooks import deliver_all
from tests.integration.test_portal_pages import consent_to, refer, register
from tests.integration.test_portal_translations import _alike_in_both, _texts
from tests.portal import PASSWORD, Person, make_organization, make_user, text_of
from tests.receiver import Receiver, Reply, running_receiver
from webhooks.models import Delivery, DeliveryState, Endpoint

# The shared test database holds the other tests' events too: fan them all out first.
ROUNDS = 500


@dataclass
class Admins:
    own: Organization
    other: Organization
    admin: Person
    admin_email: str
    other_admin: Person
    counsellor: Person
    counsellor_email: str


@pytest.fixture
def admins(app: Flask) -> Admins:
    own = make_organization(app, kind="regional_partner", region="01",
                            name=f"Place aux jeunes {uuid.uuid4().hex[:6]}")
    other = make_organization(app, name=f"Carrefour {uuid.uuid4().hex[:6]}")
    admin_email = make_user(app, own, "org_admin", name="Julie Admin")
    counsellor_email = make_user(app, own, "counsellor", name="Sophie Tremblay")
    return Admins(own, other, Person.logged_in(app, admin_email), admin_email,
                  Person.logged_in(app, make_user(app, other, "org_admin", name="Autre Admin")),
                  Person.logged_in(app, counsellor_email), counsellor_email)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


def user_id(app: Flask, email: str) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def fresh(app: Flask, model: type, key: object) -> object:
    with app.app_context():
        found = db.session.get(model, key)
        db.session.expunge_all()
        return found


# --- directory entry -----------------------------------------------------------------------

def entry_form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "Place aux jeunes Rimouski", "region": "01", "capacity": "waitlist",
        "capacity_until": "2027-02-01", "description": "Accueil des jeunes en région.",
        "website": "https://paj.example.org",
        "services-0-name": "Séjours exploratoires", "services-0-languages": "fr, en",
        "services-0-pathways": ["settlement", "employment"],
        "services-0-eligibility_notes": "18 à 35 ans",
        "locations-0-city": "Rimouski", "locations-0-region": "01",
        "locations-0-address": "12 rue de la Cathédrale", "locations-0-postal_code": "G5L 1J1",
        "contacts-0-name": "Marc Gagnon", "contacts-0-role": "agent de migration",
        "contacts-0-email": "marc@paj.example.org", "contacts-0-phone": "418 555-0101",
        "contacts-0-preferred_channel": "phone",
    }
    form.update(changes)
    return form


def test_the_admin_edits_and_confirms_the_directory_entry(app: Flask, admins: Admins) -> None:
    page = admins.admin.get(f"/admin/{admins.own.id}/entry")
    assert page.status_code == 200
    assert admins.own.name in text_of(page)
    response = admins.admin.post(f"/admin/{admins.own.id}/entry", entry_form())
    assert response.status_code == 302, text_of(response)

    with app.app_context():
        org = db.session.get(Organization, admins.own.id)
        assert (org.name, org.capacity, str(org.capacity_until)) == (
            "Place aux jeunes Rimouski", "waitlist", "2027-02-01")
        assert [(s.name, sorted(s.pathways), s.languages) for s in org.services] == [
            ("Séjours exploratoires", ["employment", "settlement"], ["fr", "en"])]
        assert [(p.city, p.region) for p in org.locations] == [("Rimouski", "01")]
        assert [(c.role, c.preferred_channel) for c in org.contacts] == [
            ("agent de migration", "phone")]
        admin_id = user_id(app, admins.admin_email)
        assert org.last_validated_by == f"user:{admin_id}"
        first_validation = org.last_validated_at
        db.session.expunge_all()

    # The page shows the entry as saved; a cleared row is removed, the rest kept.
    shown = admins.admin.get(f"/admin/{admins.own.id}/entry").get_data(as_text=True)
    assert 'value="Séjours exploratoires"' in shown and "Julie Admin" in shown
    cleared = entry_form(**{"contacts-0-name": "", "contacts-0-role": "", "contacts-0-email": "",
                            "contacts-0-phone": "", "contacts-0-preferred_channel": ""})
    assert admins.admin.post(f"/admin/{admins.own.id}/entry", cleared).status_code == 302
    with app.app_context():
        org = db.session.get(Organization, admins.own.id)
        assert org.contacts == [] and len(org.services) == 1
        db.session.expunge_all()

    # "Still accurate": only the confirmation moves.
    assert admins.admin.post(f"/admin/{admins.own.id}/entry/validate").status_code == 302
    with app.app_context():
        org = db.session.get(Organization, admins.own.id)
        assert org.last_validated_at > first_validation
        assert org.name == "Place aux jeunes Rimouski"
        db.session.expunge_all()


def test_the_entry_refuses_what_the_api_refuses_with_the_fields_marked(
        app: Flask, admins: Admins) -> None:
    bad = entry_form(**{"services-0-languages": "fr, 12", "website": "pas une adresse",
                        "contacts-0-email": "marc-at-example"})
    response = admins.admin.post(f"/admin/{admins.own.id}/entry", bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Vérifiez les champs" in text_of(response)
    for field in ("services-0-languages", "website", "contacts-0-email"):
        assert f'id="{field}" name="{field}" type' in page
        assert f'aria-describedby="{field}-error"' in page, field
    assert 'value="pas une adresse"' in page  # what was typed is shown again
    with app.app_context():
        assert db.session.get(Organization, admins.own.id).name == admins.own.name
        db.session.expunge_all()


# --- users ---------------------------------------------------------------------------------

def last_mail_to(app: Flask, address: str) -> tuple[str, str]:
    """The mail queued for `address` (addresses are encrypted at rest: read the latest)."""
    with app.app_context(), db.job_session() as session:
        latest = session.scalars(select(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(50))
        found = next((m for m in latest if m.to_address == address), None)
        assert found is not None, f"no mail to {address}"
        return found.subject, found.body_text


def test_an_invited_person_chooses_a_password_once_and_logs_in(
        app: Flask, admins: Admins) -> None:
    email = f"nouvelle-{uuid.uuid4().hex[:6]}@example.org"
    response = admins.admin.post(f"/admin/{admins.own.id}/users", {
        "email": email, "name": "Léa Nouvelle", "role": "partner_staff", "language": "en"})
    assert response.status_code == 302, text_of(response)
    assert "Léa Nouvelle" in text_of(admins.admin.get(f"/admin/{admins.own.id}/users"))

    subject, body = last_mail_to(app, email)
    assert subject == "Maillage: your account is ready"  # in the invited person's language
    assert "Julie Admin" in body and admins.own.name in body
    link = re.search(r"http\S+/password/reset/(\S+)", body)
    assert link is not None
    token = link.group(1)
    # Nobody knows the account's password until the link is used.
    anonymous = Person.anonymous(app)
    assert anonymous.post("/login", {"email": email, "password": PASSWORD}).status_code == 401
    new_password = "un mot de passe assez long"
    done = anonymous.post(f"/password/reset/{token}",
                          {"password": new_password, "confirm": new_password})
    assert done.status_code == 302
    assert anonymous.get(f"/password/reset/{token}").status_code == 410  # single use
    invited = Person.logged_in(app, email, new_password)
    assert invited.get("/inbox").status_code == 200

    # The same address again is refused in words.
    again = admins.admin.post(f"/admin/{admins.own.id}/users", {
        "email": email.upper(), "name": "Doublon", "role": "counsellor", "language": "fr"})
    assert again.status_code == 422
    assert "existe déjà" in text_of(again) or "déjà un compte" in text_of(again)


def test_roles_follow_the_organization_and_an_admin_keeps_their_own(
        app: Flask, admins: Admins) -> None:
    counsellor = user_id(app, admins.counsellor_email)
    to_partner = admins.admin.post(f"/admin/{admins.own.id}/users/{counsellor}/role",
                                   {"role": "partner_staff"})
    assert to_partner.status_code == 302
    assert fresh(app, User, counsellor).role == "partner_staff"
    # The counsellor's next page is the partner's: the new role holds at once.
    assert admins.counsellor.get("/participants").status_code == 403

    for role in ("coordinator", "hub_admin"):  # coordination roles: not in a member org
        refused = admins.admin.post(f"/admin/{admins.own.id}/users/{counsellor}/role",
                                    {"role": role})
        assert refused.status_code == 422
        assert "coordination" in text_of(refused)
    assert fresh(app, User, counsellor).role == "partner_staff"

    me = user_id(app, admins.admin_email)
    refused = admins.admin.post(f"/admin/{admins.own.id}/users/{me}/role",
                                {"role": "counsellor"})
    assert refused.status_code == 422 and fresh(app, User, me).role == "org_admin"
    assert admins.admin.post(f"/admin/{admins.own.id}/users/{me}/disable").status_code == 422


def test_a_disabled_person_is_logged_out_and_cannot_log_in_until_enabled(
        app: Flask, admins: Admins, caplog: pytest.LogCaptureFixture) -> None:
    counsellor = user_id(app, admins.counsellor_email)
    assert admins.counsellor.get("/outbound").status_code == 200
    with caplog.at_level(logging.INFO, logger="hub.audit"):
        assert admins.admin.post(
            f"/admin/{admins.own.id}/users/{counsellor}/disable").status_code == 302
    audited = [r.fields for r in caplog.records if r.name == "hub.audit"]
    assert audited == [{"action": "user.disabled", "target": str(counsellor),
                        "organization_id": str(admins.own.id),
                        "actor": f"user:{user_id(app, admins.admin_email)}"}]
    ended = admins.counsellor.get("/outbound")
    assert ended.status_code == 302 and "/login" in ended.headers["Location"]
    refused = Person.anonymous(app).post(
        "/login", {"email": admins.counsellor_email, "password": PASSWORD})
    assert refused.status_code == 401
    assert admins.admin.post(
        f"/admin/{admins.own.id}/users/{counsellor}/enable").status_code == 302
    assert Person.logged_in(app, admins.counsellor_email).get("/outbound").status_code == 200


# --- OAuth clients -------------------------------------------------------------------------

def token_for(app: Flask, client_id: str, secret: str) -> tuple[int, str | None]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                      headers={"Authorization": f"Basic {basic}"})
    return response.status_code, (response.get_json() or {}).get("access_token")


def test_a_client_secret_is_shown_once_and_gets_tokens_until_revoked(
        app: Flask, admins: Admins) -> None:
    offered = admins.admin.get(f"/admin/{admins.own.id}/clients").get_data(as_text=True)
    assert 'value="directory:read"' in offered and 'value="network:monitor"' not in offered
    created = admins.admin.post(f"/admin/{admins.own.id}/clients", {
        "name": "Logiciel de suivi", "scopes": ["directory:read", "referrals:read"]})
    assert created.status_code == 201, text_of(created)
    page = created.get_data(as_text=True)
    client_id = re.search(r'id="client-id">([^<]+)<', page).group(1)
    secret = re.search(r'id="client-secret">([^<]+)<', page).group(1)
    listing = admins.admin.get(f"/admin/{admins.own.id}/clients").get_data(as_text=True)
    assert client_id in listing and secret not in listing

    status, token = token_for(app, client_id, secret)
    assert status == 200 and token
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get(f"/api/v1/organizations/{admins.own.id}", headers=headers).status_code == 200
    # Scopes as chosen: no directory:write was granted.
    assert api.patch(f"/api/v1/organizations/{admins.own.id}", json={"capacity": "full"},
                     headers=headers).status_code == 403

    # A coordinators' scope cannot be slipped into the form.
    sneaky = admins.admin.post(f"/admin/{admins.own.id}/clients", {
        "name": "x", "scopes": ["directory:read", "network:monitor"]})
    assert sneaky.status_code == 422
    assert admins.admin.post(f"/admin/{admins.own.id}/clients",
                             {"name": "x"}).status_code == 422

    with app.app_context():
        pk = db.session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == client_id))
    assert admins.admin.post(f"/admin/{admins.own.id}/clients/{pk}/revoke").status_code == 302
    assert api.get(f"/api/v1/organizations/{admins.own.id}", headers=headers).status_code == 401
    assert token_for(app, client_id, secret)[0] == 401


# --- webhooks ------------------------------------------------------------------------------

def test_webhook_endpoints_deliver_show_their_log_and_redeliver(
        app: Flask, admins: Admins, receiver: Receiver) -> None:
    base = f"/admin/{admins.own.id}/webhooks"
    refused = admins.admin.post(base, {"url": "http://10.1.2.3/hook", "event_types": ["*"]})
    assert refused.status_code == 422 and "https://" in text_of(refused)
    assert admins.admin.post(base, {"url": receiver.url_for("/hook")}).status_code == 422

    created = admins.admin.post(base, {"url": receiver.url_for("/hook"),
                                       "description": "Notre CRM",
                                       "event_types": ["referral.*"]})
    assert created.status_code == 201, text_of(created)
    secret = re.search(r'id="endpoint-secret">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert secret.startswith("whsec_")
    with app.app_context():
        endpoint_id = db.session.scalar(select(Endpoint.id).where(
            Endpoint.owner_id == admins.own.id))
    detail = f"{base}/{endpoint_id}"
    assert secret not in admins.admin.get(detail).get_data(as_text=True)
    assert secret not in admins.admin.get(base).get_data(as_text=True)

    # An event of the organization reaches the receiver; the log shows the delivery.
    sender = Person.logged_in(app, make_user(app, admins.other, "counsellor"))
    participant = register(sender)
    consent_to(sender, participant, admins.own)
    refer(sender, participant, admins.own)
    deliver_all(app, rounds=ROUNDS)
    assert [r.path for r in receiver.requests] == ["/hook"]
    with app.app_context():
        delivery = db.session.scalar(select(Delivery).where(Delivery.endpoint_id == endpoint_id))
        delivery_id = delivery.id
        assert delivery.state == DeliveryState.DELIVERED
    log = admins.admin.get(detail)
    row = re.search(rf'<tr id="delivery-{delivery_id}">(.*?)</tr>',
                    log.get_data(as_text=True), re.S).group(1)
    assert "referral.sent" in row and "204" in row and "Livrée" in row and " ms" in row

    # Redeliver: sent again over HTTP.
    again = admins.admin.post(f"/admin/{admins.own.id}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 302
    assert fresh(app, Delivery, delivery_id).state == DeliveryState.PENDING
    pending = admins.admin.post(f"/admin/{admins.own.id}/deliveries/{delivery_id}/redeliver")
    assert pending.status_code == 302  # refused with a message, nothing changed
    assert "encore" in text_of(admins.admin.get(detail))
    deliver_all(app, rounds=ROUNDS)
    assert len(receiver.requests) == 2

    # Pause, resume, rotate (the new secret shown once), delete.
    assert admins.admin.post(f"{detail}/pause").status_code == 302
    assert fresh(app, Endpoint, endpoint_id).status == "paused"
    assert admins.admin.post(f"{detail}/resume").status_code == 302
    assert fresh(app, Endpoint, endpoint_id).status == "active"
    rotated = admins.admin.post(f"{detail}/rotate")
    new_secret = re.search(r'id="endpoint-secret">([^<]+)<',
                           rotated.get_data(as_text=True)).group(1)
    assert rotated.status_code == 200 and new_secret != secret
    assert fresh(app, Endpoint, endpoint_id).previous_secret == secret
    assert admins.admin.post(f"{detail}/delete").status_code == 302
    assert fresh(app, Endpoint, endpoint_id) is None
    assert admins.admin.get(detail).status_code == 404


def _endpoint_of(app: Flask, organization_id: uuid.UUID) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Endpoint.id).where(Endpoint.owner_id == organization_id)
                                 .order_by(Endpoint.created_at.desc()).limit(1))


def test_the_admin_changes_an_endpoint_with_the_apis_rules(
        app: Flask, admins: Admins, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    base = f"/admin/{admins.own.id}/webhooks"
    assert admins.admin.post(base, {"url": receiver.url_for("/old"), "description": "CRM",
                                    "event_types": ["consent.*"]}).status_code == 201
    endpoint_id = _endpoint_of(app, admins.own.id)
    detail = f"{base}/{endpoint_id}"
    form = admins.admin.get(detail).get_data(as_text=True)
    assert f'value="{receiver.url_for("/old")}"' in form and 'value="CRM"' in form
    assert re.search(r'value="consent\.\*" checked', form)

    # Refused as the API refuses: a private address, no event, a pattern matching nothing.
    for refused_form, words in (
            ({"url": "http://10.1.2.3/hook", "event_types": ["*"]}, "https://"),
            ({"url": receiver.url_for("/new")}, "au moins un type"),
            ({"url": receiver.url_for("/new"), "event_types": ["nothing.*"]}, "au moins un type")):
        refused = admins.admin.post(f"{detail}/edit", refused_form)
        assert refused.status_code == 422, refused_form
        assert words in text_of(refused), text_of(refused)
        # What was typed is shown again, to be corrected.
        assert f'value="{refused_form["url"]}"' in refused.get_data(as_text=True)
    assert fresh(app, Endpoint, endpoint_id).url == receiver.url_for("/old")

    with caplog.at_level(logging.INFO, logger="hub.audit"):
        caplog.clear()
        saved = admins.admin.post(f"{detail}/edit", {
            "url": receiver.url_for("/new"), "description": "",
            "event_types": ["referral.sent", "consent.withdrawn"]})
    assert saved.status_code == 302, text_of(saved)
    changed = fresh(app, Endpoint, endpoint_id)
    assert (changed.url, changed.description, changed.event_types) == (
        receiver.url_for("/new"), None, ["referral.sent", "consent.withdrawn"])
    assert [r.fields for r in caplog.records if r.name == "hub.audit"] == [{
        "action": "webhook_endpoint.changed", "target": str(endpoint_id),
        "organization_id": str(admins.own.id),
        "actor": f"user:{user_id(app, admins.admin_email)}"}]

    # The hub now sends the chosen events to the new address.
    sender = Person.logged_in(app, make_user(app, admins.other, "counsellor"))
    participant = register(sender)
    consent_to(sender, participant, admins.own)
    refer(sender, participant, admins.own)
    deliver_all(app, rounds=ROUNDS)
    assert [r.path for r in receiver.requests] == ["/new"]


def _age(app: Flask, delivery_id: int, days: int) -> None:
    """A delivery that failed `days` ago (made and dead-lettered then)."""
    with app.app_context(), db.job_session() as session:
        delivery = session.get(Delivery, delivery_id)
        delivery.created_at = delivery.dead_at = utcnow() - timedelta(days=days)


def test_everything_that_failed_since_a_moment_is_sent_again_once_confirmed(
        app: Flask, admins: Admins, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    base = f"/admin/{admins.own.id}/webhooks"
    assert admins.admin.post(base, {"url": receiver.url_for("/hook"),
                                    "event_types": ["referral.sent"]}).status_code == 201
    endpoint_id = _endpoint_of(app, admins.own.id)
    detail = f"{base}/{endpoint_id}"
    # The receiver refuses (400: dead at once) the referrals of three participants.
    receiver.standing["/hook"] = Reply(400)
    sender = Person.logged_in(app, make_user(app, admins.other, "counsellor"))
    for _ in range(3):
        participant = register(sender)
        consent_to(sender, participant, admins.own)
        refer(sender, participant, admins.own)
    deliver_all(app, rounds=ROUNDS)
    with app.app_context():
        dead = list(db.session.scalars(select(Delivery.id).where(
            Delivery.endpoint_id == endpoint_id, Delivery.state == DeliveryState.DEAD)
            .order_by(Delivery.id)))
    assert len(dead) == 3 and len(receiver.requests) == 3
    _age(app, dead[0], days=3)  # failed before the moment chosen below

    # Québec time, as the datetime-local field sends it: yesterday.
    since = (datetime.now(ZoneInfo("America/Toronto")) - timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M")
    assert 'type="datetime-local"' in admins.admin.get(detail).get_data(as_text=True)
    confirm = admins.admin.get(f"{detail}/recover", query_string={"since": since})
    assert confirm.status_code == 200
    assert "2 livraisons ont échoué depuis" in text_of(confirm)
    assert "Renvoyer 2 livraisons" in text_of(confirm)
    assert all(fresh(app, Delivery, d).state == DeliveryState.DEAD for d in dead)  # asked only

    receiver.standing["/hook"] = Reply(204)
    with caplog.at_level(logging.INFO, logger="hub.audit"):
        caplog.clear()
        done = admins.admin.post(f"{detail}/recover", {"since": since})
    assert done.status_code == 302
    assert "2 livraisons en échec seront renvoyées" in text_of(
        admins.admin.get(done.headers["Location"]))
    assert [r.fields["action"] for r in caplog.records if r.name == "hub.audit"] == [
        "webhook_endpoint.recovered"]
    assert [fresh(app, Delivery, d).state for d in dead] == [
        DeliveryState.DEAD, DeliveryState.PENDING, DeliveryState.PENDING]
    deliver_all(app, rounds=ROUNDS)
    assert [fresh(app, Delivery, d).state for d in dead] == [
        DeliveryState.DEAD, DeliveryState.DELIVERED, DeliveryState.DELIVERED]
    assert len(receiver.requests) == 5

    # Nothing failed since: said so, no button; a moment that is not one is refused in words.
    nothing = admins.admin.get(f"{detail}/recover", query_string={"since": since})
    assert "Aucune livraison n’a échoué depuis" in text_of(nothing)
    assert 'name="since"' not in nothing.get_data(as_text=True)
    for bad in ("", "hier", "2026-13-45T99:00", "0001-01-01T00:00", "9999-12-31T23:59"):
        refused = admins.admin.get(f"{detail}/recover", query_string={"since": bad})
        assert refused.status_code == 422 and "2026-11-20 08:00" in text_of(refused)
    # An offset typed in counts as typed: three days and an hour ago, in UTC.
    early = (datetime.now(UTC) - timedelta(days=3, hours=1)).isoformat()
    assert "1 livraison a échoué depuis" in text_of(
        admins.admin.get(f"{detail}/recover", query_string={"since": early}))


def _walk(person: Person, path: str, prefix: str, rel: str) -> tuple[list[list[str]], str]:
    """The row ids (`<tr id="<prefix>...">`) of each page, following the `rel` links from
    `path` to the end; and the address of the last page."""
    pages: list[list[str]] = []
    while True:
        response = person.get(path)
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        pages.append(re.findall(rf'<tr id="{prefix}([^"]+)"', body))
        found = re.search(rf'<a href="([^"]+)" rel="{rel}"', body)
        if found is None:
            return pages, path
        path = html.unescape(found.group(1))


def test_the_delivery_log_pages_through_older_and_newer_deliveries(
        app: Flask, admins: Admins) -> None:
    base = f"/admin/{admins.own.id}/webhooks"
    assert admins.admin.post(base, {"url": "http://127.0.0.1:9/hook",
                                    "event_types": ["*"]}).status_code == 201
    endpoint_id = _endpoint_of(app, admins.own.id)
    now = utcnow()
    with app.app_context(), db.job_session() as session:
        for index in range(230):  # delivered: nothing for a dispatcher to send
            made_at = now - timedelta(minutes=index // 3)  # three at a time: ties
            session.add(Delivery(endpoint_id=endpoint_id, message_id=f"msg_{index}",
                                 event_type="referral.sent", ordering_key=f"k{index}",
                                 sequence=1, state=DeliveryState.DELIVERED.value, attempts=1,
                                 next_attempt_at=made_at, created_at=made_at,
                                 delivered_at=made_at))
    with app.app_context():
        made = [str(i) for i in db.session.scalars(select(Delivery.id).where(
            Delivery.endpoint_id == endpoint_id).order_by(Delivery.created_at.desc(),
                                                          Delivery.id.desc()))]

    older, last = _walk(admins.admin, f"{base}/{endpoint_id}", "delivery-", "next")
    assert [len(p) for p in older] == [100, 100, 30]
    assert sum(older, []) == made  # newest first, each once
    assert "Livraisons plus anciennes" in text_of(admins.admin.get(f"{base}/{endpoint_id}"))
    newer, _first = _walk(admins.admin, last, "delivery-", "prev")
    assert newer == older[::-1]  # back through the same pages
    assert admins.admin.get(f"{base}/{endpoint_id}?before=nonsense").status_code == 400


def test_the_users_list_pages_past_500_people(app: Flask, admins: Admins) -> None:
    with app.app_context(), db.job_session() as session:
        hashed = session.get(User, user_id(app, admins.counsellor_email)).password_hash
        for index in range(520):
            session.add(User(organization_id=admins.own.id, email=f"p{index}-{uuid.uuid4().hex}"
                             "@example.org", name=f"Personne {index:03d}", role="partner_staff",
                             password_hash=hashed, language="fr"))
    with app.app_context():
        names = list(db.session.scalars(select(User.name).where(
            User.organization_id == admins.own.id).order_by(User.name, User.id)))
    pages, last = _walk(admins.admin, f"/admin/{admins.own.id}/users", "user-", "next")
    assert [len(p) for p in pages] == [500, 22]
    with app.app_context():
        shown = [db.session.get(User, uuid.UUID(i)).name for i in sum(pages, [])]
    assert shown == names
    back, _first = _walk(admins.admin, last, "user-", "prev")
    assert back == pages[::-1]
    assert "Page précédente" in text_of(admins.admin.get(last))


# --- who may see what ----------------------------------------------------------------------

def test_an_org_admin_reaches_only_their_own_organization(
        app: Flask, admins: Admins, receiver: Receiver) -> None:
    other = admins.other
    other_user = user_id(app, make_user(app, other, "counsellor"))
    other_endpoint = admins.other_admin.post(f"/admin/{other.id}/webhooks", {
        "url": receiver.url_for("/other"), "event_types": ["*"]})
    assert other_endpoint.status_code == 201
    admins.other_admin.post(f"/admin/{other.id}/clients",
                            {"name": "Leur système", "scopes": ["directory:read"]})
    with app.app_context():
        endpoint_id = db.session.scalar(select(Endpoint.id).where(Endpoint.owner_id == other.id))
        client_pk = db.session.scalar(select(OAuthClient.id).where(
            OAuthClient.organization_id == other.id))
        now = utcnow()
        db.session.add(Delivery(endpoint_id=endpoint_id, message_id="msg_test",
                                event_type="referral.sent", ordering_key="k", sequence=1,
                                state=DeliveryState.DEAD.value, attempts=8,
                                next_attempt_at=now, created_at=now, dead_at=now))
        db.session.commit()
        delivery_id = db.session.scalar(select(Delivery.id).where(
            Delivery.endpoint_id == endpoint_id))

    own = admins.own.id
    for path in (f"/admin/{other.id}/entry", f"/admin/{other.id}/users",
                 f"/admin/{other.id}/clients", f"/admin/{other.id}/webhooks",
                 f"/admin/{own}/webhooks/{endpoint_id}",
                 f"/admin/{own}/webhooks/{endpoint_id}/recover?since=2020-01-01T00:00",
                 f"/admin/{other.id}/webhooks/{endpoint_id}"):
        assert admins.admin.get(path).status_code == 404, path
    for path, form in ((f"/admin/{other.id}/entry", entry_form()),
                       (f"/admin/{other.id}/entry/validate", {}),
                       (f"/admin/{own}/users/{other_user}/disable", {}),
                       (f"/admin/{own}/users/{other_user}/role", {"role": "org_admin"}),
                       (f"/admin/{own}/clients/{client_pk}/revoke", {}),
                       (f"/admin/{own}/webhooks/{endpoint_id}/pause", {}),
                       (f"/admin/{own}/webhooks/{endpoint_id}/delete", {}),
                       (f"/admin/{own}/webhooks/{endpoint_id}/edit",
                        {"url": receiver.url_for("/mine"), "event_types": ["*"]}),
                       (f"/admin/{own}/webhooks/{endpoint_id}/recover",
                        {"since": "2020-01-01T00:00"}),
                       (f"/admin/{own}/deliveries/{delivery_id}/redeliver", {})):
        assert admins.admin.post(path, form).status_code == 404, path
    with app.app_context():
        assert db.session.get(User, other_user).disabled_at is None
        assert db.session.get(OAuthClient, client_pk).revoked_at is None
        assert db.session.get(Endpoint, endpoint_id).status == "active"
        assert db.session.get(Endpoint, endpoint_id).url == receiver.url_for("/other")
        assert db.session.get(Delivery, delivery_id).state == DeliveryState.DEAD
        assert db.session.get(Organization, other.id).name == other.name
        db.session.expunge_all()


def test_other_roles_get_403_and_forms_need_their_csrf_token(
        app: Flask, admins: Admins) -> None:
    own = admins.own.id
    for path in ("/admin", f"/admin/{own}/entry", f"/admin/{own}/users",
                 f"/admin/{own}/clients", f"/admin/{own}/webhooks"):
        assert admins.counsellor.get(path).status_code == 403, path
    assert admins.counsellor.post(f"/admin/{own}/entry/validate").status_code == 403
    endpoint = admins.admin.post(f"/admin/{own}/webhooks", {
        "url": "http://127.0.0.1:9/hook", "event_types": ["*"]})
    assert endpoint.status_code == 201
    with app.app_context():
        endpoint_id = db.session.scalar(select(Endpoint.id).where(Endpoint.owner_id == own))
    detail = f"/admin/{own}/webhooks/{endpoint_id}"
    assert admins.counsellor.get(f"{detail}/recover?since=2020-01-01T00:00").status_code == 403
    assert admins.counsellor.post(f"{detail}/recover",
                                  {"since": "2020-01-01T00:00"}).status_code == 403
    assert admins.counsellor.post(f"{detail}/edit", {
        "url": "http://127.0.0.1:8/x", "event_types": ["*"]}).status_code == 403
    forged_edit = admins.admin.client.post(f"{detail}/edit", data={
        "url": "http://127.0.0.1:8/x", "event_types": ["*"]})
    assert forged_edit.status_code == 400
    assert fresh(app, Endpoint, endpoint_id).url == "http://127.0.0.1:9/hook"
    assert "Administration" not in text_of(admins.counsellor.get("/outbound"))
    assert Person.anonymous(app).get(f"/admin/{own}/users").status_code == 302
    # No token, no change.
    forged = admins.admin.client.post(f"/admin/{own}/users", data={
        "email": "forged@example.org", "role": "org_admin", "name": "x", "language": "fr"})
    assert forged.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "forged@example.org")) is None


def test_a_hub_admin_manages_any_organization(app: Flask, admins: Admins) -> None:
    coordination = make_organization(app, kind="coordination", name="Table de concertation")
    hub_admin = Person.logged_in(app, make_user(app, coordination, "hub_admin", name="Nadia"))
    chooser = hub_admin.get("/admin", query_string={"q": admins.own.name[-6:]})
    assert chooser.status_code == 200
    assert admins.own.name in text_of(chooser) and admins.other.name not in text_of(chooser)
    response = hub_admin.post(f"/admin/{admins.own.id}/entry", entry_form(capacity="full"))
    assert response.status_code == 302, text_of(response)
    with app.app_context():
        assert db.session.get(Organization, admins.own.id).capacity == "full"
        db.session.expunge_all()
    counsellor = user_id(app, admins.counsellor_email)
    assert hub_admin.post(f"/admin/{admins.own.id}/users/{counsellor}/role",
                          {"role": "org_admin"}).status_code == 302
    # In the coordination body, the coordination roles are the ones offered.
    own_users = hub_admin.get(f"/admin/{coordination.id}/users").get_data(as_text=True)
    assert 'value="coordinator"' in own_users and 'value="counsellor"' not in own_users
    assert admins.admin.get("/admin").status_code == 302  # an org admin goes to their entry


# --- every string translated ---------------------------------------------------------------

def test_the_admin_pages_have_no_untranslated_text(
        app: Flask, admins: Admins, receiver: Receiver) -> None:
    """As `test_portal_translations`: French and English share only data and words spelled
    alike in both languages."""
    own = admins.own.id
    assert admins.admin.post(f"/admin/{own}/entry", entry_form()).status_code == 302
    created = admins.admin.post(f"/admin/{own}/webhooks", {
        "url": receiver.url_for("/hook"), "event_types": ["*"]})
    with app.app_context():
        endpoint_id = db.session.scalar(select(Endpoint.id).where(Endpoint.owner_id == own))
    admins.admin.post(f"/admin/{own}/clients", {"name": "CRM", "scopes": ["directory:read"]})
    coordination = make_organization(app, kind="coordination", name="Table de concertation")
    hub_admin = Person.logged_in(app, make_user(app, coordination, "hub_admin", name="Nadia"))
    pages = [(admins.admin, f"/admin/{own}/entry"), (admins.admin, f"/admin/{own}/users"),
             (admins.admin, f"/admin/{own}/clients"), (admins.admin, f"/admin/{own}/webhooks"),
             (admins.admin, f"/admin/{own}/webhooks/{endpoint_id}"), (hub_admin, "/admin")]
    with app.app_context():
        names = set(db.session.scalars(select(Organization.name)))
        people = set(db.session.scalars(select(User.name).where(User.organization_id == own)))
    data = names | people | set(QUEBEC_REGIONS.values()) | set(SCOPES) | {
        e.value for e in EventType} | {
        "Maillage", "English", "Français", "—", "·", ",", "(", ")", "*", "ms", "Nadia",
        "Place aux jeunes Rimouski", "Séjours exploratoires", "Rimouski", "18 à 35 ans",
        "Accueil des jeunes en région.", "Marc Gagnon", "agent de migration", "CRM",
        "Organization_Admin", "Org_Admin", "Counsellor", "Hub_Admin", "fr, en"}
    allowed = _alike_in_both()
    assert created.status_code == 201
    for person, path in pages:
        shared = _texts(person, path, "fr") & _texts(person, path, "en")
        untranslated = {
            text for text in shared
            if text not in allowed and not any(value in text for value in data)
            and not re.search(r"\d|@|https?://|^[\w-]{20,}$", text)}
        assert not untranslated, f"{path}: {sorted(untranslated)}"

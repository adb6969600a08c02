"""The portal's work pages, through HTTP like a browser: a counsellor registers, records consent
and refers; a partner answers from its inbox; a coordinator watches stalled handoffs.  The
rules are the API's (same use cases), the events name the user, errors are plain messages in
the user's language."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from hub.accounts.users import User
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.events.store import Event
from hub.referrals.legs import Referral
from tests.portal import Person, ids_in, make_organization, make_user, text_of


@dataclass
class Network:
    sender: Organization
    receiver: Organization
    elsewhere: Organization
    counsellor: Person
    partner: Person
    partner_en: Person
    counsellor_email: str


@pytest.fixture
def net(app: Flask) -> Network:
    sender = make_organization(app, name=f"Carrefour {uuid.uuid4().hex[:6]}")
    receiver = make_organization(app, kind="regional_partner", region="01",
                                 name=f"Accueil BSL {uuid.uuid4().hex[:6]}")
    elsewhere = make_organization(app, kind="regional_partner", region="05",
                                  name=f"Estrie {uuid.uuid4().hex[:6]}")
    counsellor_email = make_user(app, sender, "counsellor", name="Sophie Tremblay")
    return Network(
        sender, receiver, elsewhere,
        Person.logged_in(app, counsellor_email),
        Person.logged_in(app, make_user(app, receiver, "partner_staff", name="Marc Gagnon")),
        Person.logged_in(app, make_user(app, receiver, "partner_staff", language="en")),
        counsellor_email,
    )


def register(person: Person, **fields: str) -> uuid.UUID:
    form = {"given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
            "email": f"amina.{uuid.uuid4().hex[:8]}@example.org", "birth_year": "1990",
            **fields}
    response = person.post("/participants/new", form)
    if response.status_code == 409 and "Doublon possible" in text_of(response):
        # Another person of the same names: the counsellor confirms it, as the page asks.
        response = person.post("/participants/new", {**form, "allow_duplicate": "true"})
    assert response.status_code == 302, text_of(response)
    return uuid.UUID(response.headers["Location"].rsplit("/", 1)[1])


def consent_to(person: Person, participant: uuid.UUID, *organizations: Organization) -> None:
    response = person.post(f"/participants/{participant}/consents/new", {
        "purpose": "referral_sharing", "evidence": "written",
        "organization_ids": [str(o.id) for o in organizations]})
    assert response.status_code == 302, text_of(response)


def refer(person: Person, participant: uuid.UUID, to: Organization, **fields: str) -> uuid.UUID:
    response = person.post(f"/participants/{participant}/refer", {
        "to_organization_id": str(to.id), "pathway": "settlement", "priority": "routine",
        "reason_for_referral": "Offre d'emploi à Rimouski", "needs": "logement\nfrancisation",
        **fields})
    if response.status_code == 409 and "déjà une orientation ouverte" in text_of(response):
        # Another referral to the same organization: the counsellor confirms, as asked.
        response = person.post(f"/participants/{participant}/refer", {
            "to_organization_id": str(to.id), "pathway": "settlement", "priority": "routine",
            "reason_for_referral": "Offre d'emploi à Rimouski",
            "needs": "logement\nfrancisation", "confirm_open_leg": "1", **fields})
    assert response.status_code == 302, text_of(response)
    return uuid.UUID(response.headers["Location"].rsplit("/", 1)[1])


def act(person: Person, leg: uuid.UUID, action: str, **fields: str):  # noqa: ANN201
    return person.post(f"/legs/{leg}/{action}", fields)


def test_counsellor_registers_with_duplicate_warning_records_consent_and_refers(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor, email="amina.dup@example.org")
    again = net.counsellor.post("/participants/new", {
        "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
        "email": "amina.dup@example.org", "birth_year": "1990"})
    assert again.status_code == 409
    assert "Doublon possible" in text_of(again)
    assert f"/participants/{participant}" in again.get_data(as_text=True)
    other = net.counsellor.post("/participants/new", {
        "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
        "email": "amina.dup@example.org", "birth_year": "1990", "allow_duplicate": "true"})
    assert other.status_code == 302

    bad = net.counsellor.post("/participants/new", {"given_name": "X", "family_name": "Y",
                                                    "preferred_language": "fr",
                                                    "birth_year": "1800"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.get_data(as_text=True)

    consent_to(net.counsellor, participant, net.receiver)
    page = text_of(net.counsellor.get(f"/participants/{participant}"))
    assert "Transmettre l’orientation aux organismes nommés" in page and net.receiver.name in page

    # The consent check is shown before sending: covered or not, per organization.
    choose = net.counsellor.get(f"/participants/{participant}/refer?region=01")
    html = choose.get_data(as_text=True)
    assert net.receiver.name in html and net.elsewhere.name not in html
    assert "Couvert par le consentement" in text_of(choose)
    everywhere = text_of(net.counsellor.get(f"/participants/{participant}/refer"))
    assert "Non couvert" in everywhere

    # Sending to an organization the consent does not cover is refused, in plain words.
    refused = net.counsellor.post(f"/participants/{participant}/refer", {
        "to_organization_id": str(net.elsewhere.id), "pathway": "settlement"})
    assert refused.status_code == 409
    assert "ne couvre pas cet organisme" in text_of(refused)

    leg = refer(net.counsellor, participant, net.receiver, priority="urgent")
    outbound = net.counsellor.get("/outbound")
    assert leg in ids_in(outbound, "/legs/")
    assert "Amina Benali" in text_of(outbound) and "Urgente" in text_of(outbound)

    with app.app_context():
        event = db.session.scalars(select(Event).where(Event.subject == f"referrals/{leg}")
                                   ).one()
        user = db.session.scalars(select(User).where(User.email == net.counsellor_email)).one()
        assert event.type == "referral.sent" and event.actor == f"user:{user.id}"
    timeline = text_of(net.counsellor.get(f"/legs/{leg}"))
    assert "Orientation envoyée" in timeline and "Sophie Tremblay" in timeline


def test_partner_answers_from_the_inbox_through_the_whole_lifecycle(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    routine = refer(net.counsellor, participant, net.receiver)
    urgent = refer(net.counsellor, participant, net.receiver, priority="urgent")

    inbox = net.partner.get("/inbox")
    legs = ids_in(inbox, "/legs/")
    assert legs.index(urgent) < legs.index(routine)  # urgent first
    assert "Amina Benali" in text_of(inbox)

    # Out of order: a plain message with what is possible now.
    early = act(net.partner, routine, "accept")
    assert early.status_code == 409
    assert "Possible maintenant" in text_of(early) and "Confirmer la réception" in text_of(early)

    for action, fields in (("acknowledge", {}), ("accept", {}), ("start", {}),
                           ("complete", {"outcome": "settled"})):
        response = act(net.partner, routine, action, **fields)
        assert response.status_code == 302, (action, text_of(response))
    page = text_of(net.partner.get(f"/legs/{routine}"))
    assert "Terminée" in page and "Établie en région" in page
    assert "Premier contact consigné" in page and "Marc Gagnon" in page
    # Closed legs leave the open inbox.
    assert routine not in ids_in(net.partner.get("/inbox"), "/legs/")
    assert routine in ids_in(net.partner.get("/inbox?closed=1"), "/legs/")

    # A decline needs a reason: said in the user's language.
    act(net.partner, urgent, "acknowledge")
    french = act(net.partner, urgent, "decline")
    assert french.status_code == 422 and "Choisissez un motif." in text_of(french)
    english = act(net.partner_en, urgent, "decline")
    assert english.status_code == 422 and "Choose a reason." in text_of(english)
    # A form from before someone else's change: refused, not applied twice.
    with app.app_context():
        version = db.session.get(Referral, urgent).version
    stale = act(net.partner, urgent, "decline", reason="no_capacity", version=str(version - 1))
    assert stale.status_code == 412 and "au même moment" in text_of(stale)
    assert act(net.partner, urgent, "decline", reason="no_capacity",
               version=str(version)).status_code == 302
    assert "Plus de place" in text_of(net.counsellor.get(f"/legs/{urgent}"))


def test_the_receiver_forwards_and_the_sender_cancels(app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    leg = refer(net.counsellor, participant, net.receiver)

    # The receiving side may not cancel, the sending side may not answer.
    assert "Annuler l’orientation" not in text_of(net.partner.get(f"/legs/{leg}"))
    assert act(net.partner, leg, "cancel").status_code == 403
    assert act(net.counsellor, leg, "acknowledge").status_code == 403

    act(net.partner, leg, "acknowledge")
    refused = act(net.partner, leg, "forward", to_organization_id=str(net.elsewhere.id))
    assert refused.status_code == 409 and "ne couvre pas" in text_of(refused)
    consent_to(net.counsellor, participant, net.receiver, net.elsewhere)
    forwarded = act(net.partner, leg, "forward", to_organization_id=str(net.elsewhere.id))
    assert forwarded.status_code == 302
    new_leg = uuid.UUID(forwarded.headers["Location"].rsplit("/", 1)[1])
    assert new_leg != leg
    # The forwarding organization sends the new leg; the first sender keeps seeing its own.
    chain = text_of(net.partner.get(f"/legs/{new_leg}"))
    assert "Le parcours de la personne" in chain and net.elsewhere.name in chain
    assert "Transférée" in text_of(net.counsellor.get(f"/legs/{leg}"))

    second = refer(net.counsellor, participant, net.receiver)
    # Cancelling asks first, and changes nothing until confirmed.
    asked = act(net.counsellor, second, "cancel", reason="sent_by_mistake")
    assert asked.status_code == 200 and "Annuler l’orientation ?" in text_of(asked)
    assert "Envoyée" in text_of(net.counsellor.get(f"/legs/{second}"))
    assert act(net.counsellor, second, "cancel", reason="sent_by_mistake",
               confirmed="1").status_code == 302
    assert "Envoyée par erreur" in text_of(net.counsellor.get(f"/legs/{second}"))


def test_other_organizations_see_nothing(app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    leg = refer(net.counsellor, participant, net.receiver)
    stranger = Person.logged_in(app, make_user(app, net.elsewhere, "partner_staff"))
    assert stranger.get(f"/legs/{leg}").status_code == 404
    assert stranger.get(f"/participants/{participant}").status_code == 403  # role first
    outsider = Person.logged_in(app, make_user(app, net.elsewhere, "counsellor"))
    assert outsider.get(f"/participants/{participant}").status_code == 404
    assert act(outsider, leg, "cancel").status_code == 404


def test_coordinator_sees_stalled_handoffs_without_personal_data(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor, given_name="Zacharie", family_name="Ouellet")
    consent_to(net.counsellor, participant, net.receiver)
    leg = refer(net.counsellor, participant, net.receiver)
    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator"))
    assert leg not in ids_in(coordinator.get("/network/stalled"), "/legs/")

    # The clock moves on: the acknowledgement deadline passes unanswered.
    with app.app_context(), db.job_session() as session:
        session.execute(update(Referral).where(Referral.id == leg).values(
            acknowledge_by=utcnow() - timedelta(days=3)))
    dashboard = coordinator.get("/network/stalled")
    assert leg in ids_in(dashboard, "/legs/")
    page = text_of(dashboard)
    assert net.receiver.name in page and "Confirmation de réception" in page
    assert "Zacharie" not in page and "Ouellet" not in page
    assert "P-" in page  # the pseudonymous reference

    export = coordinator.get("/network/stalled.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    mine = [row for row in rows if row["referral_id"] == str(leg)]
    assert len(mine) == 1 and mine[0]["to_organization"] == net.receiver.name
    assert float(mine[0]["late_hours"]) >= 71
    assert "Zacharie" not in export.get_data(as_text=True)

    # The leg's page shows the coordinator no personal data either.
    leg_page = text_of(coordinator.get(f"/legs/{leg}"))
    assert "Zacharie" not in leg_page and "Rimouski" not in leg_page
    # And the counsellor sees the overdue mark on the outbound list.
    assert "En retard" in text_of(net.counsellor.get("/outbound"))

"""The portal's later work, through HTTP like a browser: the counsellor withdraws a consent
and redirects a referral, the participant's path is drawn, the referral form filters the
directory by the pathway its services serve, long lists come a page at a time, and the
coordinator reads the network's charts (and their CSV) without any personal data."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from hub.accounts.users import User
from hub.consent import consents as consents
from hub.consent.access_log import PersonalDataRead
from hub.db import db, utcnow
from hub.directory.organizations import Service, ServicePathway
from hub.events.store import Event
from hub.referrals.legs import Referral
from tests.integration.test_portal_pages import (
    Network,
    act,
    consent_to,
    net,
    refer,
    register,
)
from tests.integration.test_reports import min_cell
from tests.portal import Person, ids_in, make_organization, make_user, text_of

__all__ = ["min_cell", "net"]


def _consent_ids(app: Flask, participant: uuid.UUID) -> list[uuid.UUID]:
    with app.app_context():
        return [c.id for c in consents.history(db.session, participant)]


def _leg(app: Flask, leg: uuid.UUID) -> Referral:
    with app.app_context():
        found = db.session.get(Referral, leg)
        db.session.expunge(found)
        return found


def test_withdrawing_a_consent_asks_first_then_cancels_the_open_legs(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    leg = refer(net.counsellor, participant, net.receiver)
    [consent_id] = _consent_ids(app, participant)
    path = f"/participants/{participant}/consents/{consent_id}/withdraw"

    page = net.counsellor.get(f"/participants/{participant}")
    assert path in page.get_data(as_text=True)

    # The confirmation says what will happen, and nothing has happened yet.
    confirm = net.counsellor.get(path)
    assert confirm.status_code == 200
    words = text_of(confirm)
    assert "seront annulées" in words and "Confirmer le retrait" in words
    assert leg in ids_in(confirm, "/legs/")
    assert _leg(app, leg).status == "sent"

    done = net.counsellor.post(path)
    assert done.status_code == 302
    after = text_of(net.counsellor.get(done.headers["Location"]))
    assert "Consentement retiré. 1 orientation ouverte a été annulée." in after
    assert "Annulée — Consentement retiré" in after and "Retiré" in after
    assert _leg(app, leg).cancel_reason == "consent_withdrawn"
    with app.app_context():  # the API's use case ran: the event, by this user
        event = db.session.scalars(select(Event).where(
            Event.subject == f"consents/{consent_id}", Event.type == "consent.withdrawn")).one()
        assert event.actor.startswith("user:")
    # The receiver no longer sees who it was.
    assert "Amina" not in text_of(net.partner.get(f"/legs/{leg}"))
    # No second withdrawal: the page says there is nothing left to withdraw.
    assert "plus actif" in text_of(net.counsellor.get(path))
    assert path not in net.counsellor.get(f"/participants/{participant}").get_data(
        as_text=True)


def test_only_the_participants_organization_withdraws(app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    [consent_id] = _consent_ids(app, participant)
    outsider = Person.logged_in(app, make_user(app, net.elsewhere, "counsellor"))
    path = f"/participants/{participant}/consents/{consent_id}/withdraw"
    assert outsider.get(path).status_code == 404
    assert outsider.post(path).status_code == 404
    assert net.partner.get(path).status_code == 403  # partner staff: role first
    other = register(net.counsellor)
    mismatch = f"/participants/{other}/consents/{consent_id}/withdraw"
    assert net.counsellor.post(mismatch).status_code == 404
    assert consents.ConsentStatus.ACTIVE is _status(app, consent_id)


def _status(app: Flask, consent_id: uuid.UUID) -> consents.ConsentStatus:
    with app.app_context():
        return db.session.get(consents.Consent, consent_id).status()


def _serves(app: Flask, organization_id: uuid.UUID, pathway: str) -> None:
    with app.app_context(), db.job_session() as session:
        service = Service(organization_id=organization_id, name=f"Service {pathway}")
        session.add(service)
        session.flush()
        session.add(ServicePathway(service_id=service.id, pathway=pathway))


def test_redirecting_a_declined_leg_prefills_the_form_and_links_the_chain(
        app: Flask, net: Network) -> None:
    suggested = make_organization(app, kind="regional_partner", region="01",
                                  name=f"Suggéré {uuid.uuid4().hex[:6]}")
    unsuited = make_organization(app, kind="regional_partner", region="01",
                                 name=f"Emploi seulement {uuid.uuid4().hex[:6]}")
    _serves(app, suggested.id, "settlement")
    _serves(app, unsuited.id, "employment")
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver, suggested)
    leg = refer(net.counsellor, participant, net.receiver, priority="urgent")
    act(net.partner, leg, "acknowledge")
    assert act(net.partner, leg, "decline", reason="no_capacity").status_code == 302

    page = net.counsellor.get(f"/legs/{leg}")
    link = f"/participants/{participant}/refer?redirect_from={leg}"
    assert link in page.get_data(as_text=True)
    assert link not in net.partner.get(f"/legs/{leg}").get_data(as_text=True)

    form = net.counsellor.get(link)
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    # Partners of the same region serving the same pathway with room; not the first one.
    assert suggested.name in html and unsuited.name not in html
    assert net.receiver.name not in text_of(form).split("Organisme destinataire")[1]
    assert 'value="urgent" checked' in html
    assert "Offre d&#39;emploi à Rimouski" in html or "Offre d'emploi à Rimouski" in html
    assert re.search(r'<option value="settlement" selected', html)

    response = net.counsellor.post(link, {
        "to_organization_id": str(suggested.id), "pathway": "settlement",
        "priority": "urgent", "reason_for_referral": "Offre d'emploi à Rimouski"})
    assert response.status_code == 302, text_of(response)
    new_leg = uuid.UUID(response.headers["Location"].rsplit("/", 1)[1])
    created = _leg(app, new_leg)
    first = _leg(app, leg)
    assert created.forwarded_from == leg and created.chain_id == first.chain_id
    assert created.to_organization_id == suggested.id and first.status == "declined"

    # The path, as a picture: both boxes, the arrow says "redirected".
    picture = net.counsellor.get(f"/legs/{new_leg}")
    words = text_of(picture)
    assert "redirigée" in words and suggested.name in words and net.receiver.name in words
    assert 'aria-current="page"' in picture.get_data(as_text=True)
    # Once redirected, the same leg is not redirected twice.
    assert link not in net.counsellor.get(f"/legs/{leg}").get_data(as_text=True)
    assert net.counsellor.get(link).status_code == 409


def test_redirecting_an_unanswered_leg_cancels_it(app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver, net.elsewhere)
    leg = refer(net.counsellor, participant, net.receiver)
    link = f"/participants/{participant}/refer?redirect_from={leg}"
    response = net.counsellor.post(link, {"to_organization_id": str(net.elsewhere.id),
                                          "pathway": "settlement"})
    assert response.status_code == 302, text_of(response)
    first = _leg(app, leg)
    assert first.status == "cancelled" and first.cancel_reason == "referred_elsewhere"

    # Refused for lack of consent: nothing changes, not even the cancellation.
    other = refer(net.counsellor, participant, net.receiver)
    stranger = make_organization(app, kind="regional_partner", region="01")
    refused = net.counsellor.post(f"/participants/{participant}/refer?redirect_from={other}",
                                  {"to_organization_id": str(stranger.id),
                                   "pathway": "settlement"})
    assert refused.status_code == 409 and "ne couvre pas" in text_of(refused)
    assert _leg(app, other).status == "sent"

    # An accepted leg is past redirecting.
    act(net.partner, other, "acknowledge")
    act(net.partner, other, "accept")
    late = net.counsellor.get(f"/participants/{participant}/refer?redirect_from={other}")
    assert late.status_code == 409


def test_a_forwarding_partner_redirects_its_leg_without_seeing_the_person(
        app: Flask, net: Network) -> None:
    """The receiver forwarded a participant registered by the sender; the next partner
    declined nothing yet, and the forwarding partner sends the person elsewhere: only to an
    organization the consent covers, without ever reading who the person is or why."""
    next_partner = make_organization(app, kind="regional_partner", region="05",
                                     name=f"Suivant {uuid.uuid4().hex[:6]}")
    uncovered = make_organization(app, kind="regional_partner", region="05",
                                  name=f"Hors consentement {uuid.uuid4().hex[:6]}")
    for organization in (net.elsewhere, next_partner, uncovered):
        _serves(app, organization.id, "settlement")
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)  # the trust the forwarder holds
    consent_to(net.counsellor, participant, net.elsewhere, next_partner)
    first = refer(net.counsellor, participant, net.receiver)
    act(net.partner, first, "acknowledge")
    forwarded = act(net.partner, first, "forward", to_organization_id=str(net.elsewhere.id))
    leg = uuid.UUID(forwarded.headers["Location"].rsplit("/", 1)[1])

    forwarder_email = make_user(app, net.receiver, "counsellor")
    forwarder = Person.logged_in(app, forwarder_email)
    form_path = f"/legs/{leg}/redirect"
    assert form_path in forwarder.get(f"/legs/{leg}").get_data(as_text=True)
    assert form_path not in net.partner.get(f"/legs/{leg}").get_data(as_text=True)  # role
    assert net.partner.get(form_path).status_code == 403
    outsider = Person.logged_in(app, make_user(app, make_organization(app), "counsellor"))
    assert outsider.get(form_path).status_code == 404

    form = forwarder.get(form_path)
    assert form.status_code == 200
    words = text_of(form)
    # Nothing personal, and not whom else the person trusts: every partner may be chosen.
    for personal in ("Amina", "Benali", "Offre d'emploi", "logement"):
        assert personal not in words
    for mark in ("Couvert par le consentement", "Non couvert", "Vérification du consentement"):
        assert mark not in words
    assert next_partner.name in words and uncovered.name in words
    assert f'value="{uncovered.id}" disabled' not in form.get_data(as_text=True)

    refused = forwarder.post(form_path, {"to_organization_id": str(uncovered.id),
                                         "pathway": "settlement", "priority": "urgent"})
    assert refused.status_code == 409 and "ne couvre pas cet organisme" in text_of(refused)
    assert _leg(app, leg).status == "sent"

    done = forwarder.post(form_path, {"to_organization_id": str(next_partner.id),
                                      "pathway": "settlement", "priority": "urgent",
                                      "reason_for_referral": "ignoré", "needs": "ignoré"})
    assert done.status_code == 302, text_of(done)
    new_leg = uuid.UUID(done.headers["Location"].rsplit("/", 1)[1])
    created, before, origin = _leg(app, new_leg), _leg(app, leg), _leg(app, first)
    assert (created.from_organization_id, created.to_organization_id) == (
        net.receiver.id, next_partner.id)
    assert created.forwarded_from == leg and created.chain_id == origin.chain_id
    assert created.priority == "urgent"
    # The reason and the needs went from leg to leg, as typed by the registering counsellor.
    assert (created.reason_for_referral, created.needs) == (
        origin.reason_for_referral, origin.needs) == ("Offre d'emploi à Rimouski",
                                                      ["logement", "francisation"])
    assert (before.status, before.cancel_reason) == ("cancelled", "referred_elsewhere")

    # The new partner reads who it is; the forwarder still does not, and never read it.
    receiving = Person.logged_in(app, make_user(app, next_partner, "partner_staff"))
    assert "Amina" in text_of(receiving.get(f"/legs/{new_leg}"))
    assert "Amina" not in text_of(forwarder.get(f"/legs/{new_leg}"))
    with app.app_context():
        reads = set(db.session.execute(select(
            PersonalDataRead.organization_id, PersonalDataRead.actor).where(
            PersonalDataRead.participant_id == participant)).all())
        forwarder_id = db.session.scalar(select(User.id).where(User.email == forwarder_email))
    readers = {organization for organization, _actor in reads}
    assert net.receiver.id in readers  # its staff, while it held its open leg
    assert next_partner.id in readers
    assert f"user:{forwarder_id}" not in {actor for _org, actor in reads}
    # Redirected once: no second time.
    assert form_path not in forwarder.get(f"/legs/{leg}").get_data(as_text=True)
    assert forwarder.get(form_path).status_code == 409

    # Once the person withdraws the forwarder's cover, it no longer steers their path.
    consent_of_forwarder = next(
        c for c in _consent_ids(app, participant) if _names(app, c) == {net.receiver.id})
    assert net.counsellor.post(
        f"/participants/{participant}/consents/{consent_of_forwarder}/withdraw"
    ).status_code == 302
    assert _leg(app, new_leg).status == "sent"  # the next partner is still covered
    assert f"/legs/{new_leg}/redirect" not in forwarder.get(
        f"/legs/{new_leg}").get_data(as_text=True)
    late = forwarder.get(f"/legs/{new_leg}/redirect")
    assert late.status_code == 409 and "ne couvre plus votre organisme" in text_of(late)
    late_post = forwarder.post(f"/legs/{new_leg}/redirect", {
        "to_organization_id": str(net.elsewhere.id), "pathway": "settlement"})
    assert late_post.status_code == 409 and _leg(app, new_leg).status == "sent"


def _names(app: Flask, consent_id: uuid.UUID) -> set[uuid.UUID]:
    with app.app_context():
        return set(db.session.get(consents.Consent, consent_id).organization_ids)


def test_the_participants_page_draws_each_path(app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver, net.elsewhere)
    leg = refer(net.counsellor, participant, net.receiver)
    act(net.partner, leg, "acknowledge")
    forwarded = act(net.partner, leg, "forward", to_organization_id=str(net.elsewhere.id))
    new_leg = uuid.UUID(forwarded.headers["Location"].rsplit("/", 1)[1])
    page = net.counsellor.get(f"/participants/{participant}")
    html = page.get_data(as_text=True)
    figure = html.split('<figure class="chain-picture">', 1)[1].split("</figure>", 1)[0]
    # One tree: the first leg's box holds the arrow to the forwarded one.
    assert figure.count('<ol class="chain-row">') == 1
    assert figure.index(f"/legs/{leg}") < figure.index("transférée") < figure.index(
        f"/legs/{new_leg}")
    assert net.elsewhere.name in figure and "Transférée" in figure


def test_the_referral_form_filters_by_pathway_served(app: Flask, net: Network) -> None:
    trainer = make_organization(app, kind="regional_partner", region="01",
                                name=f"Formation {uuid.uuid4().hex[:6]}")
    _serves(app, trainer.id, "training")
    participant = register(net.counsellor)
    page = net.counsellor.get(f"/participants/{participant}/refer?pathway=training")
    html = page.get_data(as_text=True)
    assert trainer.name in html and net.receiver.name not in html
    assert re.search(r'<option value="training" selected', html)
    unfiltered = net.counsellor.get(f"/participants/{participant}/refer?region=01")
    assert trainer.name in unfiltered.get_data(as_text=True)
    assert net.receiver.name in unfiltered.get_data(as_text=True)


def _bulk_legs(app: Flask, net: Network, participant: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` open legs from the sender to the receiver, made in one go."""
    now = utcnow()
    ids = [uuid.uuid4() for _ in range(count)]
    with app.app_context(), db.job_session() as session:
        for index, leg_id in enumerate(ids):
            moment = now - timedelta(minutes=index)
            session.add(Referral(
                id=leg_id, chain_id=leg_id, participant_id=participant,
                from_organization_id=net.sender.id, to_organization_id=net.receiver.id,
                pathway="settlement", priority="urgent" if index % 3 == 0 else "routine",
                needs=[], status="sent", version=1, created_at=moment, updated_at=moment,
                acknowledge_by=now - timedelta(minutes=1 + index)))
    return ids


def _walk(person: Person, path: str) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    pages = 0
    while path:
        response = person.get(path)
        assert response.status_code == 200
        seen += ids_in(response, "/legs/")
        found = re.search(r'<a href="([^"]+)" rel="next"', response.get_data(as_text=True))
        path = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert pages >= 3
    return seen


def test_inbox_outbound_and_stalled_lists_come_a_page_at_a_time(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor)
    legs = set(_bulk_legs(app, net, participant, 230))

    inbox = _walk(net.partner, "/inbox")
    assert set(inbox) == legs and len(inbox) == len(legs)  # each once, none missed
    first = net.partner.get("/inbox")
    assert len(ids_in(first, "/legs/")) == 100
    order = [_leg(app, leg).priority for leg in inbox]
    assert order == sorted(order, reverse=True)  # urgent first, across pages

    outbound = _walk(net.counsellor, "/outbound")
    assert set(outbound) == legs and len(outbound) == len(legs)
    created = [_leg(app, leg).created_at for leg in outbound]
    assert created == sorted(created, reverse=True)

    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator"))
    stalled = [leg for leg in _walk(coordinator, "/network/stalled") if leg in legs]
    assert set(stalled) == legs and len(stalled) == len(legs)

    # A cursor made up by hand is refused in words, not with a failure.
    assert net.partner.get("/inbox?after=nonsense").status_code == 400
    # The database is shared by the session's tests: these legs leave the stalled list.
    with app.app_context(), db.job_session() as session:
        session.execute(update(Referral).where(Referral.id.in_(legs)).values(
            status="cancelled", closed_at=utcnow()))


def _outcome_counts(coordinator: Person) -> dict[tuple[str, str], int]:
    export = coordinator.get("/network/charts/outcomes.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    return {(r["pathway"], r["outcome"]): int(r["legs"])
            for r in csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")))}


def test_coordinator_charts_of_a_period_without_personal_data(
        app: Flask, net: Network, min_cell: Any) -> None:
    min_cell(1)  # every count shown, to check each one
    participant = register(net.counsellor, given_name="Zacharie", family_name="Ouellet")
    consent_to(net.counsellor, participant, net.receiver)
    legs = [refer(net.counsellor, participant, net.receiver) for _ in range(3)]
    for leg in legs:
        act(net.partner, leg, "acknowledge")
    with app.app_context(), db.job_session() as session:
        start = utcnow() - timedelta(days=2)
        for hours, leg in zip((2, 4, 30), legs, strict=True):
            session.execute(update(Referral).where(Referral.id == leg).values(
                created_at=start, acknowledged_at=start + timedelta(hours=hours)))
    for leg, outcome in zip(legs[:2], ("settled", "employed"), strict=True):
        act(net.partner, leg, "accept")
        act(net.partner, leg, "start")
        act(net.partner, leg, "complete", outcome=outcome)
    # Outcomes count only with the participant's consent to outcome reporting for the
    # receiver: none before it is recorded, both after.  (The database is shared by the
    # session's tests: compare before and after.)
    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator", language="en"))
    before = _outcome_counts(coordinator)
    response = net.counsellor.post(f"/participants/{participant}/consents/new", {
        "purpose": "outcome_reporting", "evidence": "written",
        "organization_ids": [str(net.receiver.id)]})
    assert response.status_code == 302
    after = _outcome_counts(coordinator)
    assert after[("settlement", "settled")] == before.get(("settlement", "settled"), 0) + 1
    assert after[("settlement", "employed")] == before.get(("settlement", "employed"), 0) + 1

    page = coordinator.get("/network/charts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<svg role="img"' in html and "<script" not in html
    words = text_of(page)
    assert "Zacharie" not in words and "Ouellet" not in words
    assert "Settling in a region Settled in the region" in words
    assert re.search(re.escape(net.receiver.name) + r" Bas-Saint-Laurent 3 4\.0 30\.0", words)

    export = coordinator.get("/network/charts/acknowledgement.csv")
    assert export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    mine = [r for r in rows if r["organization_id"] == str(net.receiver.id)]
    assert mine == [{"organization_id": str(net.receiver.id), "organization": net.receiver.name,
                     "region": "01", "acknowledged": "3", "median_hours": "4.0",
                     "p90_hours": "30.0"}]
    assert "Zacharie" not in coordinator.get("/network/charts/outcomes.csv").get_data(
        as_text=True)

    # A period before these legs shows none of them; a bad period is a plain message.
    old = coordinator.get("/network/charts?from=2020-01-01&to=2020-03-31")
    assert net.receiver.name not in text_of(old)
    bad = coordinator.get("/network/charts?from=2026-05-01&to=2026-01-01")
    assert bad.status_code == 422 and "two dates" in text_of(bad)
    # Counsellors and partners do not see the network's charts.
    assert net.counsellor.get("/network/charts").status_code == 403


def test_small_outcome_counts_are_withheld_in_the_charts(
        app: Flask, net: Network, min_cell: Any) -> None:
    """As in the funder reports (HUB_REPORT_MIN_CELL, 5 by default): two completed legs in a
    period are "<5" on the page and in the CSV, the exact count only with a threshold of 1."""
    participant = register(net.counsellor, given_name="Noémie", family_name="Gagnon")
    consent_to(net.counsellor, participant, net.receiver)
    response = net.counsellor.post(f"/participants/{participant}/consents/new", {
        "purpose": "outcome_reporting", "evidence": "written",
        "organization_ids": [str(net.receiver.id)]})
    assert response.status_code == 302
    legs = [refer(net.counsellor, participant, net.receiver) for _ in range(2)]
    for leg in legs:
        for action in ("acknowledge", "accept", "start"):
            act(net.partner, leg, action)
        act(net.partner, leg, "complete", outcome="employed")
    # A period of their own, which no other test of the shared database uses.
    with app.app_context(), db.job_session() as session:
        session.execute(update(Referral).where(Referral.id.in_(legs)).values(
            created_at=datetime(2011, 2, 14, 15, tzinfo=UTC)))
    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator", language="en"))
    period = "from=2011-02-01&to=2011-02-28"

    def employed() -> str:
        export = coordinator.get(f"/network/charts/outcomes.csv?{period}")
        rows = csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")))
        return next(r["legs"] for r in rows if r["outcome"] == "employed")

    assert employed() == "<5"
    words = text_of(coordinator.get(f"/network/charts?{period}"))
    assert "Employed <5" in words and "Employed 2" not in words
    min_cell(1)
    assert employed() == "2"

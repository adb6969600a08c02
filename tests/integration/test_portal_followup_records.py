"""The counsellor's follow-ups in the portal (docs/design.md §10), through HTTP like a browser:
the "To follow up" list with its count in the menu, the form on the leg's page (a refusal shows
what was typed and what to fix), the note seen by the sender only, a new referral offered after
"needs support", and the coordinators' retention table."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime, timedelta

from flask import Flask

from hub.db import db
from hub.followups import tick
from hub.referrals.legs import Referral
from tests.integration.test_portal_pages import Network, act, consent_to, net, refer, register
from tests.portal import Person, make_organization, make_user, text_of

__all__ = ["net"]


def completed_leg(net: Network, *, follow_up: bool = True) -> tuple[uuid.UUID, uuid.UUID]:
    participant = register(net.counsellor)
    consent_to(net.counsellor, participant, net.receiver)
    if follow_up:
        agreed = net.counsellor.post(f"/participants/{participant}/consents/new", {
            "purpose": "follow_up_contact", "evidence": "verbal",
            "organization_ids": [str(net.sender.id)]})
        assert agreed.status_code == 302, text_of(agreed)
    leg = refer(net.counsellor, participant, net.receiver)
    for action, fields in (("acknowledge", {}), ("accept", {}), ("start", {}),
                           ("complete", {"outcome": "settled"})):
        assert act(net.partner, leg, action, **fields).status_code == 302
    return participant, leg


def closed_at(app: Flask, leg: uuid.UUID) -> datetime:
    with app.app_context():
        found = db.session.get(Referral, leg)
        assert found is not None and found.closed_at is not None
        return found.closed_at


def test_the_counsellor_sees_what_is_due_and_records_it_in_one_form(
        app: Flask, net: Network) -> None:
    participant, leg = completed_leg(net)
    assert "À relancer" in text_of(net.counsellor.get("/outbound"))
    assert "(1)" not in text_of(net.counsellor.get("/followups"))
    tick.run_once(app.extensions["hub_db"][1], closed_at(app, leg) + timedelta(days=31))

    listed = net.counsellor.get("/followups")
    assert listed.status_code == 200
    assert f"/legs/{leg}#followup" in listed.get_data(as_text=True)
    assert "Amina Benali" in text_of(listed) and "Relance à 30 jours" in text_of(listed)
    assert "À relancer (1)" in text_of(listed)
    assert "À relancer" not in text_of(net.partner.get("/inbox"))  # the sender's work

    form = text_of(net.counsellor.get(f"/legs/{leg}"))
    assert "Enregistrer la relance" in form
    note = "A trouvé un logement à Rimouski, cherche une garderie."
    missing = net.counsellor.post(f"/legs/{leg}/followups", {
        "due": "followup_30", "reached": "true", "note": note})
    assert missing.status_code == 422
    assert "Vérifiez les champs" in text_of(missing)
    assert note in missing.get_data(as_text=True)  # what was typed is still there

    done = net.counsellor.post(f"/legs/{leg}/followups", {
        "due": "followup_30", "reached": "true", "situation": "needs_support",
        "in_destination_region": "true", "note": note})
    assert done.status_code == 302, text_of(done)
    page = net.counsellor.get(f"/legs/{leg}", follow_redirects=True)
    seen = text_of(page)
    assert "Relance enregistrée" in seen and note in seen
    assert "Besoin de soutien" in seen and "toujours dans la région de destination" in seen
    # "Needs support": a new referral for the person, filtered to the destination region,
    # its form prefilled with the pathway and why (not the note: it stays with the sender).
    assert f"/participants/{participant}/refer?region=01" in page.get_data(as_text=True)
    link = re.search(f'href="(/participants/{participant}/refer\\?[^"]+)"',
                     page.get_data(as_text=True))
    assert link is not None
    prefilled = net.counsellor.get(html.unescape(link.group(1)))
    form = prefilled.get_data(as_text=True)
    assert prefilled.status_code == 200
    assert '<option value="settlement" selected>' in form
    assert '<option value="01" selected>' in form  # the region filter
    assert re.search(r'id="reason_for_referral"[^>]*>À la suite du suivi du \d+(er)? \w+ '
                     r"\d{4} : la personne a encore besoin de soutien\.</textarea>", form), form
    assert note not in form
    stranger = register(net.counsellor)
    assert net.counsellor.get(f"/participants/{stranger}/refer?after_followup={leg}"
                              ).status_code == 404  # another person's leg
    assert "À relancer (1)" not in seen
    assert "(personal data" not in seen

    receiver_view = text_of(net.partner.get(f"/legs/{leg}"))
    assert "Besoin de soutien" in receiver_view and note not in receiver_view
    assert "Enregistrer la relance" not in receiver_view

    twice = net.counsellor.post(f"/legs/{leg}/followups", {
        "due": "followup_30", "reached": "false", "situation": "unknown"})
    assert twice.status_code == 409 and "déjà" in text_of(twice)


def test_without_consent_the_form_says_what_to_do(app: Flask, net: Network) -> None:
    _participant, leg = completed_leg(net, follow_up=False)
    refused = net.counsellor.post(f"/legs/{leg}/followups", {
        "reached": "true", "situation": "employed", "note": "Appel du 3 mars"})
    assert refused.status_code == 409
    assert "n’a pas accepté d’être contactée pour un suivi" in text_of(refused)
    assert "Appel du 3 mars" in refused.get_data(as_text=True)


def test_coordinators_read_retention_on_the_charts_page(app: Flask, net: Network) -> None:
    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator"))
    page = coordinator.get("/network/charts")
    assert page.status_code == 200
    assert "Rétention à six mois" in text_of(page)
    csv = coordinator.get("/network/charts/retention.csv")
    assert csv.status_code == 200
    assert csv.get_data(as_text=True).lstrip("\ufeff").splitlines()[0] == (
        "region,pathway,completed,followups_recorded,reached,in_destination_region")

"""Everyday details a counsellor and a coordinator rely on: who to call about a stalled
handoff, the preferred language chosen by its name, the region shown."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from flask import Flask
from sqlalchemy import update

from hub.db import db, utcnow
from hub.referrals.legs import Referral
from tests.helpers import Network
from tests.portal import Person, make_organization, make_user, text_of


def test_stalled_handoffs_say_who_to_call_at_the_receiver(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    coordinator = network.partner(kind="coordination")
    changed = receiver.call("PATCH", f"/api/v1/organizations/{receiver.organization_id}", json={
        "contacts": [{"name": "Julie Gagnon", "role": "Accueil", "phone": "418 555 0100",
                      "email": "accueil@example.org"}]})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    leg = sender.refer(receiver)
    with app.app_context(), db.job_session() as session:
        session.execute(update(Referral).where(Referral.id == uuid.UUID(leg["id"])).values(
            acknowledge_by=utcnow() - timedelta(days=2)))

    items = coordinator.get("/api/v1/handoffs/stalled?limit=500").get_json()["items"]
    mine = [i for i in items if i["referral_id"] == leg["id"]]
    assert mine and mine[0]["receiver_contacts"] == [{
        "name": "Julie Gagnon", "role": "Accueil", "email": "accueil@example.org",
        "phone": "418 555 0100", "preferred_channel": None}]

    watcher = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator"))
    page = watcher.get("/network/stalled")
    while leg["id"] not in page.get_data(as_text=True) and 'rel="next"' in page.get_data(
            as_text=True):
        href = page.get_data(as_text=True).split('rel="next"')[0].rsplit('href="', 1)[1]
        page = watcher.get(href.split('"')[0].replace("&amp;", "&"))
    assert "Julie Gagnon (Accueil) · 418 555 0100" in text_of(page)


def test_the_preferred_language_is_chosen_by_name_and_shown_by_name(app: Flask) -> None:
    organization = make_organization(app)
    french = Person.logged_in(app, make_user(app, organization, "counsellor"))
    english = Person.logged_in(app, make_user(app, organization, "counsellor", language="en"))

    form = french.get("/participants/new").get_data(as_text=True)
    assert '<option value="ar">arabe</option>' in form
    assert '<option value="ht">créole haïtien</option>' in form
    assert form.index('value="uk"') < form.index('value="de"')  # newcomers' languages first
    assert '<option value="ar">Arabic</option>' in english.get("/participants/new").get_data(
        as_text=True)

    created = french.post("/participants/new", {
        "given_name": "Rania", "family_name": "Haddad", "preferred_language": "ar",
        "region": "01"})
    assert created.status_code == 302
    page = text_of(french.get(created.headers["Location"]))
    assert "Langue préférée arabe" in page
    assert "Région 01 Bas-Saint-Laurent" in page
    assert "Preferred language Arabic" in text_of(english.get(created.headers["Location"]))


def test_pages_have_an_icon_and_times_without_seconds(app: Flask) -> None:
    person = Person.anonymous(app)
    icon = person.get("/favicon.ico")
    assert icon.status_code == 301 and icon.headers["Location"].endswith("/favicon.svg")
    assert person.get(icon.headers["Location"]).status_code == 200
    assert 'rel="icon"' in person.get("/login").get_data(as_text=True)

    organization = make_organization(app)
    counsellor = Person.logged_in(app, make_user(app, organization, "counsellor"))
    created = counsellor.post("/participants/new", {
        "given_name": "Ana", "family_name": "Silva", "preferred_language": "pt"})
    assert "Personne inscrite." in text_of(counsellor.get(created.headers["Location"]))
    page = counsellor.get("/participants").get_data(as_text=True)
    assert "(Personne conseillère)" in page  # the neutral form: nobody said otherwise

    # A consent's expiry on the participant's page: to the minute, as French writes it.
    granted = counsellor.post(f"{created.headers['Location']}/consents/new", {
        "purpose": "referral_sharing", "evidence": "written", "network_wide": "true"})
    assert granted.status_code == 302, text_of(granted)
    times = re.findall(r"<time [^>]*>([^<]+)</time>",
                       counsellor.get(created.headers["Location"]).get_data(as_text=True))
    assert times and all(re.search(r"\d{4}, \d\d h \d\d$", t) for t in times), times


def test_the_referral_form_says_in_which_languages_each_partner_serves(
        app: Flask, network: Network) -> None:
    receiver = network.partner(kind="regional_partner", region="01")
    changed = receiver.call("PATCH", f"/api/v1/organizations/{receiver.organization_id}", json={
        "services": [{"name": "Accueil", "pathways": ["settlement"], "languages": ["fr", "ar"]},
                     {"name": "Emploi", "pathways": ["employment"], "languages": ["es"]}]})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    organization = make_organization(app)
    counsellor = Person.logged_in(app, make_user(app, organization, "counsellor"))
    created = counsellor.post("/participants/new", {
        "given_name": "Pedro", "family_name": "Santos", "preferred_language": "es"})
    form = text_of(counsellor.get(f"{created.headers['Location']}/refer?region=01"))
    assert "Services offerts en : arabe, espagnol, français" in form

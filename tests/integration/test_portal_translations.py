"""No visible string escapes translation: each main page rendered in French and in English
shares no text but the data it shows (names, dates, codes) and words spelled alike in both
languages.  A string written in a template or view without `_()` shows up here."""

from __future__ import annotations

import html
import re
from pathlib import Path

from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select

from hub.consent import consents
from hub.db import db
from hub.directory.organizations import QUEBEC_REGIONS, Organization
from hub.opportunities.offers import Opportunity
from tests.integration.test_portal_pages import Network, consent_to, net, refer, register
from tests.portal import Person, make_organization, make_user

__all__ = ["net"]  # the fixture, shared with the page tests

CATALOGUE = (Path(__file__).resolve().parents[2]
             / "hub/portal/translations/fr/LC_MESSAGES/messages.po")
_NODE = re.compile(r">([^<>]+)<")


def _alike_in_both() -> set[str]:
    with CATALOGUE.open("rb") as source:
        return {m.id for m in read_po(source) if m.id and m.string == m.id}


def _texts(person: Person, path: str, language: str) -> set[str]:
    person.get(f"/lang/{language}")
    response = person.get(path)
    assert response.status_code == 200, path
    body = response.get_data(as_text=True).split("<body>", 1)[1]
    return {html.unescape(node).strip() for node in _NODE.findall(body)} - {""}


def test_every_visible_string_differs_between_french_and_english(
        app: Flask, net: Network) -> None:
    participant = register(net.counsellor, given_name="Zoé", family_name="Lavoie")
    consent_to(net.counsellor, participant, net.receiver)
    leg = refer(net.counsellor, participant, net.receiver)
    net.partner.post(f"/legs/{leg}/acknowledge")  # the charts then have a row to show
    published = net.partner.post("/opportunities/new", {
        "title": "Soudure", "kind": "job", "region": "01", "municipality": "Rimouski",
        "pathways": ["employment"], "description": "Poste de jour.", "languages": "fr",
        "closes_on": "2099-01-31", "places": "1"})
    assert published.status_code == 302, published.get_data(as_text=True)
    opportunity = published.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        [consent_id] = [c.id for c in consents.history(db.session, participant)]
    coordinator = Person.logged_in(app, make_user(
        app, make_organization(app, kind="coordination"), "coordinator", name="Nadia"))
    pages = [
        (net.counsellor, "/outbound"), (net.counsellor, "/participants"),
        (net.counsellor, "/participants/new"), (net.counsellor, f"/participants/{participant}"),
        (net.counsellor, f"/participants/{participant}/consents/new"),
        (net.counsellor, f"/participants/{participant}/refer"), (net.counsellor, f"/legs/{leg}"),
        (net.partner, "/inbox"), (net.partner, f"/legs/{leg}"),
        (net.counsellor, f"/participants/{participant}/consents/{consent_id}/withdraw"),
        (net.counsellor, f"/participants/{participant}/refer?redirect_from={leg}"),
        (net.counsellor, "/opportunities"), (net.counsellor, f"/opportunities/{opportunity}"),
        (net.counsellor, f"/opportunities/{opportunity}/refer"),
        (net.counsellor, f"/participants/{participant}/refer?opportunity_id={opportunity}"),
        (net.counsellor, "/opportunities/regions"), (net.partner, "/opportunities/new"),
        (net.partner, "/opportunities/mine"),
        (net.partner, f"/opportunities/{opportunity}/candidates"),
        (net.partner, f"/opportunities/{opportunity}/withdraw"),
        (coordinator, "/network/stalled"), (coordinator, "/network/charts"),
        (Person.anonymous(app), "/login"),
        (Person.anonymous(app), "/password/forgot"),
    ]
    data = {"Maillage", "English", "Français", "—", "→", "·", ",", "(", ")", "?",
            net.sender.name, net.receiver.name, net.elsewhere.name, "Zoé Lavoie", "Zoé",
            "Lavoie", "Sophie Tremblay", "Marc Gagnon", "Nadia", "fr", "Counsellor",
            "Partner_Staff", "Coordinator", "Soudure", "Rimouski", "Poste de jour."}
    with app.app_context():  # the directory lists every organization of the shared database
        data |= set(db.session.scalars(select(Organization.name)))
        # and every open opportunity: what other tests published is data, not the page's words
        data |= set(db.session.scalars(select(Opportunity.title)))
        data |= set(db.session.scalars(select(Opportunity.municipality)))
    allowed = _alike_in_both()
    for person, path in pages:
        shared = _texts(person, path, "fr") & _texts(person, path, "en")
        untranslated = {
            text for text in shared
            if text not in allowed and not any(value in text for value in data | set(
                QUEBEC_REGIONS.values()))
            and not re.search(r"\d|@|^P-[0-9a-f]+$", text)}
        assert not untranslated, f"{path}: {sorted(untranslated)}"

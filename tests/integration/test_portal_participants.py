"""The counsellor's participant pages: search among all of the organization's participants,
possible duplicates before a second record, and the correction form."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from hub.db import db
from hub.directory.organizations import Organization
from hub.referrals import participants
from tests.portal import Person, ids_in, make_organization, make_user, text_of


@pytest.fixture
def org(app: Flask) -> Organization:
    return make_organization(app, name=f"Carrefour {uuid.uuid4().hex[:6]}")


@pytest.fixture
def counsellor(app: Flask, org: Organization) -> Person:
    return Person.logged_in(app, make_user(app, org, "counsellor", name="Sophie Tremblay"))


def _register_many(app: Flask, org: Organization, count: int) -> None:
    with app.app_context(), db.job_session() as session:
        for number in range(count):
            participants.register_participant(
                session, organization_id=org.id, given_name=f"Personne{number}",
                family_name="Tremblay", preferred_language="fr",
                phone=f"418 556 {number:04d}")


def test_search_finds_an_early_participant_among_hundreds_and_pages_the_rest(
        app: Flask, org: Organization, counsellor: Person) -> None:
    first = counsellor.post("/participants/new", {
        "given_name": "Marie-Ève", "family_name": "Bérubé", "preferred_language": "fr",
        "phone": "514 555-0199"})
    assert first.status_code == 302
    wanted = uuid.UUID(first.headers["Location"].rsplit("/", 1)[1])
    _register_many(app, org, 210)

    for query in ("berube", "marie eve", "Bérubé Marie-Ève", "5145550199", "555-0199"):
        found = counsellor.get("/participants", query_string={"q": query})
        assert ids_in(found, "/participants/") == [wanted], query
    nobody = counsellor.get("/participants", query_string={"q": "Bérubé Tremblay"})
    assert "Personne n’a été trouvé" in text_of(nobody)

    everyone = counsellor.get("/participants")
    assert len([i for i in ids_in(everyone, "/participants/")]) == 50
    pages, link = 1, 'rel="next"'
    while link in everyone.get_data(as_text=True):
        href = everyone.get_data(as_text=True).split(link)[0].rsplit('href="', 1)[1]
        everyone = counsellor.get(href.split('"')[0].replace("&amp;", "&"))
        pages += 1
    assert pages == 5  # 211 people, 50 a page
    assert wanted in ids_in(everyone, "/participants/")


def test_the_same_names_alone_ask_before_a_second_record(
        app: Flask, org: Organization, counsellor: Person) -> None:
    form = {"given_name": "Omar", "family_name": "Haddad", "preferred_language": "ar",
            "email": "omar@example.org"}
    first = counsellor.post("/participants/new", form)
    existing = uuid.UUID(first.headers["Location"].rsplit("/", 1)[1])

    # Same names, another email: possibly the same person; the form keeps what was typed.
    namesake = {**form, "given_name": "HADDAD", "family_name": "omar",
                "email": "o.haddad@example.org"}
    asked = counsellor.post("/participants/new", namesake)
    assert asked.status_code == 409
    page = text_of(asked)
    assert "mêmes noms. Est-ce la même personne ?" in page
    assert ids_in(asked, "/participants/") == [existing]
    assert 'value="o.haddad@example.org"' in asked.get_data(as_text=True)
    confirmed = counsellor.post("/participants/new", {**namesake, "allow_duplicate": "true"})
    assert confirmed.status_code == 302

    # Same names and the same email: the same person, said so.
    again = counsellor.post("/participants/new", {**form, "email": "OMAR@example.org"})
    assert again.status_code == 409
    assert "même courriel ou le même téléphone" in text_of(again)


def test_the_counsellor_corrects_a_participant_and_a_stale_form_overwrites_nothing(
        app: Flask, org: Organization, counsellor: Person) -> None:
    created = counsellor.post("/participants/new", {
        "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
        "phone": "514 555 0101", "region": "01"})
    participant = created.headers["Location"].rsplit("/", 1)[1]
    detail = text_of(counsellor.get(f"/participants/{participant}"))
    assert "Bas-Saint-Laurent" in detail and "Corriger la fiche" in detail

    form = counsellor.get(f"/participants/{participant}/edit").get_data(as_text=True)
    assert 'value="Benali"' in form and 'name="version" value="1"' in form

    refused = counsellor.post(f"/participants/{participant}/edit", {
        "version": "1", "given_name": "Amina", "family_name": "B" * 201,
        "preferred_language": "fr", "phone": "438 555 0123"})
    assert refused.status_code == 422
    assert 'value="438 555 0123"' in refused.get_data(as_text=True)

    saved = counsellor.post(f"/participants/{participant}/edit", {
        "version": "1", "given_name": "Amina", "family_name": "Benali-Haddad",
        "preferred_language": "fr", "phone": "", "region": "01"})
    assert saved.status_code == 302
    page = text_of(counsellor.get(f"/participants/{participant}"))
    assert "Benali-Haddad" in page and "514 555 0101" not in page  # the phone was cleared

    stale = counsellor.post(f"/participants/{participant}/edit", {
        "version": "1", "given_name": "Aminata", "family_name": "Benali",
        "preferred_language": "fr"})
    assert stale.status_code == 409
    assert "corrigé cette fiche entre-temps" in text_of(stale)
    assert "Benali-Haddad" in text_of(stale)  # the record as it is now
    assert 'value="Aminata"' in stale.get_data(as_text=True)  # what was typed
    assert "Benali-Haddad" in text_of(counsellor.get(f"/participants/{participant}"))

    other = Person.logged_in(app, make_user(app, make_organization(app), "counsellor"))
    assert other.get(f"/participants/{participant}/edit").status_code == 404

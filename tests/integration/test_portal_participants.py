"""The counsellor's participant pages: search among all of the organization's participants,
possible duplicates before a second record, and the correction form."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from hub.db import db
from hub.directory.organizations import Organization
from hub.referrals import participants
from hub.referrals.legs import Referral, ReferralNote
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


# --- forms that create once and keep what was typed ----------------------------------------

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def _token(response: Any) -> str:
    found = FORM_TOKEN.search(response.get_data(as_text=True))
    assert found is not None, "the form carries no one-time token"
    return found.group(1)


def _receiver_with_consent(app: Flask, counsellor: Person, participant: str) -> Organization:
    receiver = make_organization(app, kind="regional_partner", region="01",
                                 name=f"Accueil {uuid.uuid4().hex[:6]}")
    form = counsellor.get(f"/participants/{participant}/consents/new")
    granted = counsellor.post(f"/participants/{participant}/consents/new", {
        "form_token": _token(form), "purpose": "referral_sharing", "evidence": "written",
        "organization_ids": [str(receiver.id)]})
    assert granted.status_code == 302
    return receiver


def _legs_of(app: Flask, participant: str) -> list[Referral]:
    with app.app_context():
        return list(db.session.scalars(select(Referral).where(
            Referral.participant_id == uuid.UUID(participant))))


def test_sending_the_same_form_twice_creates_once_and_shows_what_was_created(
        app: Flask, counsellor: Person) -> None:
    form = counsellor.get("/participants/new")
    body = {"form_token": _token(form), "given_name": "Léa", "family_name": "Morin",
            "preferred_language": "fr"}
    first = counsellor.post("/participants/new", body)
    again = counsellor.post("/participants/new", body)  # Back, then "Register" again
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    participant = first.headers["Location"].rsplit("/", 1)[1]
    assert "déjà été envoyé" in text_of(counsellor.get(again.headers["Location"]))

    receiver = _receiver_with_consent(app, counsellor, participant)
    refer_form = counsellor.get(f"/participants/{participant}/refer")
    referral = {"form_token": _token(refer_form), "to_organization_id": str(receiver.id),
                "pathway": "settlement", "priority": "routine",
                "reason_for_referral": "Emploi à Rimouski"}
    sent = counsellor.post(f"/participants/{participant}/refer", referral)
    double_click = counsellor.post(f"/participants/{participant}/refer", referral)
    assert sent.status_code == double_click.status_code == 302
    assert double_click.headers["Location"] == sent.headers["Location"]
    assert len(_legs_of(app, participant)) == 1

    # A form the hub does not know (expired, made up) is shown again, as typed, to send again.
    forged = counsellor.post(f"/participants/{participant}/refer",
                             {**referral, "form_token": "made-up"})
    assert forged.status_code == 200
    assert "Ce formulaire avait expiré" in text_of(forged)
    assert "Emploi à Rimouski" in forged.get_data(as_text=True)
    assert _token(forged) != "made-up"
    assert len(_legs_of(app, participant)) == 1


def test_a_second_open_referral_to_the_same_organization_asks_first(
        app: Flask, counsellor: Person) -> None:
    created = counsellor.post("/participants/new", {
        "form_token": _token(counsellor.get("/participants/new")), "given_name": "Diego",
        "family_name": "García", "preferred_language": "es"})
    participant = created.headers["Location"].rsplit("/", 1)[1]
    receiver = _receiver_with_consent(app, counsellor, participant)

    def send(**extra: str) -> Any:
        form = counsellor.get(f"/participants/{participant}/refer")
        return counsellor.post(f"/participants/{participant}/refer", {
            "form_token": _token(form), "to_organization_id": str(receiver.id),
            "pathway": "employment", "reason_for_referral": "Soudure", **extra})

    assert send().status_code == 302
    asked = send(reason_for_referral="Logement")
    assert asked.status_code == 409
    assert "déjà une orientation ouverte vers cet organisme" in text_of(asked)
    assert "Logement" in asked.get_data(as_text=True)
    assert len(_legs_of(app, participant)) == 1
    confirmed = counsellor.post(f"/participants/{participant}/refer", {
        "form_token": _token(asked), "to_organization_id": str(receiver.id),
        "pathway": "employment", "reason_for_referral": "Logement", "confirm_open_leg": "1"})
    assert confirmed.status_code == 302
    assert len(_legs_of(app, participant)) == 2


def test_a_refused_referral_and_the_filters_keep_every_field(
        app: Flask, counsellor: Person) -> None:
    created = counsellor.post("/participants/new", {
        "form_token": _token(counsellor.get("/participants/new")), "given_name": "Olena",
        "family_name": "Kovalenko", "preferred_language": "uk"})
    participant = created.headers["Location"].rsplit("/", 1)[1]
    uncovered = make_organization(app, kind="entrepreneurship_agency", region="05",
                                  name=f"Estrie {uuid.uuid4().hex[:6]}")
    typed = {"to_organization_id": str(uncovered.id), "pathway": "entrepreneurship",
             "stage": "exploration", "reason_for_referral": "Projet de boulangerie",
             "needs": "plan d'affaires\nfinancement"}
    form = counsellor.get(f"/participants/{participant}/refer")

    filtered = counsellor.post(f"/participants/{participant}/refer",
                               {**typed, "form_token": _token(form), "f_region": "05",
                                "filter": "1"})
    assert filtered.status_code == 200
    html = filtered.get_data(as_text=True)
    assert "Projet de boulangerie" in html and "financement" in html
    assert uncovered.name in html

    refused = counsellor.post(f"/participants/{participant}/refer",
                              {**typed, "form_token": _token(filtered)})
    assert refused.status_code == 409  # no consent covers it
    assert "ne couvre pas cet organisme" in text_of(refused)
    html = refused.get_data(as_text=True)
    assert "Projet de boulangerie" in html and "plan d&#39;affaires" in html
    assert 'value="exploration" selected' in html

    too_long = counsellor.post(f"/participants/{participant}/refer", {
        **typed, "form_token": _token(refused), "reason_for_referral": "x" * 4001})
    assert too_long.status_code == 422
    assert "4 000 caractères au plus" in text_of(too_long)
    assert 'maxlength="4000"' in too_long.get_data(as_text=True)


# --- pages that show what the reader may see, and say why when they hide it -----------------

def test_names_shown_to_whom_they_belong_and_masked_rows_say_why(
        app: Flask, counsellor: Person) -> None:
    created = counsellor.post("/participants/new", {
        "given_name": "Fatou", "family_name": "Diallo", "preferred_language": "fr"})
    participant = created.headers["Location"].rsplit("/", 1)[1]
    receiver = _receiver_with_consent(app, counsellor, participant)
    partner = Person.logged_in(app, make_user(app, receiver, "partner_staff", name="Marc"))
    sent = counsellor.post(f"/participants/{participant}/refer", {
        "to_organization_id": str(receiver.id), "pathway": "settlement"})
    leg = sent.headers["Location"].rsplit("/", 1)[1]

    # The counsellor's own participant: every row of their referrals shows the name.
    own = counsellor.get(f"/participants/{participant}").get_data(as_text=True)
    assert "(données personnelles masquées)" not in own
    assert own.count("Fatou Diallo") >= 2  # the title and the referrals' row

    # The partner accepts and completes with a note each; the notes are kept with the leg.
    for action, extra in (("acknowledge", {}), ("accept", {"note": "Rendez-vous lundi"}),
                          ("complete", {"outcome": "settled", "note": "Logement trouvé"})):
        page = partner.get(f"/legs/{leg}").get_data(as_text=True)
        version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore
        done = partner.post(f"/legs/{leg}/{action}", {"version": version, **extra})
        assert done.status_code == 302, text_of(done)
    with app.app_context():
        notes = db.session.scalars(select(ReferralNote.body).where(
            ReferralNote.referral_id == uuid.UUID(leg))).all()
    assert sorted(notes) == ["Logement trouvé", "Rendez-vous lundi"]

    # Closed, the partner's row keeps a reference and says why the name is hidden.
    closed = partner.get("/inbox?closed=1")
    text = text_of(closed)
    assert "Fatou" not in text
    assert "orientation fermée : le nom n’est plus affiché" in text
    assert re.search(r"P-[0-9a-f]{16}", text)

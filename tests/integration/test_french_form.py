"""A portal user's French form of address (`users.french_form`): French pages name their role
and agree with them in that form; English keeps one word."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from hub.accounts.users import User
from hub.db import db
from tests.portal import Person, make_organization, make_user, text_of

ROLE_IN_FRENCH = {"feminine": "Conseillère", "masculine": "Conseiller",
                  "neutral": "Personne conseillère"}
LOGGED_OUT = {"feminine": "Vous êtes déconnectée.", "masculine": "Vous êtes déconnecté.",
              "neutral": "Vous n’êtes plus en ligne."}


@pytest.mark.parametrize("form", ["feminine", "masculine", "neutral"])
def test_each_form_reads_its_own_french_and_english_stays_one_word(app: Flask,
                                                                   form: str) -> None:
    organization = make_organization(app)
    email = make_user(app, organization, "counsellor", name="Sophie", french_form=form)
    person = Person.logged_in(app, email)
    page = text_of(person.get("/participants"))
    assert f"Sophie — {organization.name} ({ROLE_IN_FRENCH[form]})" in page
    others = set(ROLE_IN_FRENCH.values()) - {ROLE_IN_FRENCH[form]}
    assert not any(f"({other})" in page for other in others)

    person.get("/lang/en")
    assert f"({'Counsellor'})" in text_of(person.get("/participants"))
    person.get("/lang/fr")
    logged_out = person.post("/logout", follow_redirects=True)
    assert LOGGED_OUT[form] in text_of(logged_out)


def test_the_user_chooses_their_form_on_their_own_page(app: Flask) -> None:
    organization = make_organization(app)
    person = Person.logged_in(app, make_user(app, organization, "counsellor"))
    own = text_of(person.get("/account"))
    assert "Féminin (Conseillère)" in own and "Neutre (épicène) (Personne conseillère)" in own

    refused = person.post("/account", {"french_form": "plural"})
    assert refused.status_code == 422
    assert "Choisissez l’une des trois formes proposées." in text_of(refused)

    saved = person.post("/account", {"french_form": "masculine"}, follow_redirects=True)
    assert "(Conseiller)" in text_of(saved)


def test_the_admin_invites_someone_with_their_form(app: Flask) -> None:
    organization = make_organization(app)
    admin = Person.logged_in(app, make_user(app, organization, "org_admin"))
    invited = admin.post(f"/admin/{organization.id}/users", {
        "email": "karim@example.org", "name": "Karim", "role": "counsellor",
        "language": "fr", "french_form": "masculine"})
    assert invited.status_code == 302, text_of(invited)
    with app.app_context():
        assert db.session.scalar(select(User.french_form).where(
            User.email == "karim@example.org")) == "masculine"

    refused = admin.post(f"/admin/{organization.id}/users", {
        "email": "lea@example.org", "name": "Léa", "role": "counsellor",
        "language": "fr", "french_form": "plural"})
    assert refused.status_code == 422
    assert "Choisissez l’une des trois formes proposées." in text_of(refused)
    assert 'value="lea@example.org"' in refused.get_data(as_text=True)  # kept as typed


def test_the_admin_is_told_the_new_role_in_the_person_s_form(app: Flask) -> None:
    organization = make_organization(app)
    admin = Person.logged_in(app, make_user(app, organization, "org_admin"))
    email = make_user(app, organization, "partner_staff", name="Julie", french_form="feminine")
    with app.app_context():
        julie = db.session.scalar(select(User.id).where(User.email == email))
    changed = admin.post(f"/admin/{organization.id}/users/{julie}/role",
                         {"role": "counsellor"}, follow_redirects=True)
    assert "Nouveau rôle de Julie : Conseillère." in text_of(changed)


def test_the_admin_changes_how_french_pages_address_someone(app: Flask) -> None:
    organization = make_organization(app)
    admin = Person.logged_in(app, make_user(app, organization, "org_admin"))
    email = make_user(app, organization, "counsellor", name="Sam", french_form="neutral")
    with app.app_context():
        sam = db.session.scalar(select(User.id).where(User.email == email))
    listed = admin.get(f"/admin/{organization.id}/users").get_data(as_text=True)
    assert f'id="french-form-{sam}"' in listed

    changed = admin.post(f"/admin/{organization.id}/users/{sam}/french-form",
                         {"french_form": "feminine"}, follow_redirects=True)
    assert "Les pages en français s’adressent maintenant à Sam ainsi : Féminin" \
        in text_of(changed)
    assert f"Sam — {organization.name} (Conseillère)" in text_of(
        Person.logged_in(app, email).get("/participants"))

    refused = admin.post(f"/admin/{organization.id}/users/{sam}/french-form",
                         {"french_form": "plural"})
    assert refused.status_code == 422
    assert "Choisissez l’une des trois formes proposées." in text_of(refused)
    with app.app_context():
        assert db.session.scalar(select(User.french_form).where(User.id == sam)) == "feminine"

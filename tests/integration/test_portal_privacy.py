"""The portal's privacy pages (docs/design.md §15): the counsellor downloads the person's copy
from the participant's page; an organization's admin keeps the register of confidentiality
incidents (moments typed in the organization's zone, refusals re-shown with what was typed,
the register as CSV), and no one else reaches it."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from hub.db import db
from hub.directory.organizations import Organization
from hub.privacy.incidents import PrivacyIncident
from hub.referrals.participants import Participant
from tests.integration.test_portal_pages import register
from tests.integration.test_portal_translations import _alike_in_both, _texts
from tests.portal import Person, make_organization, make_user, text_of

FORM = {
    "information_involved": "Adresses de 12 participants",
    "circumstances": "Ordinateur portable volé dans une voiture",
    "occurred_at": "2026-11-28T18:00",
    "discovered_at": "2026-11-29T08:15",
    "people_affected": "12",
    "risk_assessment": "Disque chiffré, risque faible",
    "serious_injury_risk": "false",
    "cai_notified_at": "",
    "people_notified_at": "",
    "measures_taken": "",
}


@pytest.fixture
def office(app: Flask) -> tuple[uuid.UUID, Person, Person, Person]:
    """An organization with its admin and a counsellor, and another organization's admin."""
    own = make_organization(app, name=f"Carrefour {uuid.uuid4().hex[:6]}")
    other = make_organization(app)
    return (own.id, Person.logged_in(app, make_user(app, own, "org_admin")),
            Person.logged_in(app, make_user(app, own, "counsellor")),
            Person.logged_in(app, make_user(app, other, "org_admin")))


def test_the_counsellor_downloads_the_persons_copy(app: Flask, office) -> None:
    _own, _admin, counsellor, _other = office
    participant = register(counsellor, given_name="Noémie", family_name="Bouchard")
    page = counsellor.get(f"/participants/{participant}").get_data(as_text=True)
    assert f'href="/participants/{participant}/copy" download' in page

    download = counsellor.get(f"/participants/{participant}/copy")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="participant-{participant}.json"')
    copy = json.loads(download.get_data(as_text=True))
    assert copy["identity"]["given_name"] == "Noémie"
    assert copy["export"]["participant_id"] == str(participant)


def test_another_organization_gets_no_copy(app: Flask, office) -> None:
    _own, _admin, counsellor, _other = office
    participant = register(counsellor)
    stranger_org = make_organization(app)
    stranger = Person.logged_in(app, make_user(app, stranger_org, "counsellor"))
    assert stranger.get(f"/participants/{participant}/copy").status_code == 404


def test_the_admin_records_and_corrects_an_incident(app: Flask, office) -> None:
    own, admin, _counsellor, _other = office
    recorded = admin.post(f"/admin/{own}/privacy-incidents/new", FORM)
    assert recorded.status_code == 302, text_of(recorded)
    with app.app_context():
        incident = db.session.scalar(select(PrivacyIncident).where(
            PrivacyIncident.organization_id == own))
        assert incident is not None
        # 08:15 in Montréal (UTC-5 in November) is 13:15 UTC.
        assert incident.discovered_at.isoformat() == "2026-11-29T13:15:00+00:00"
        assert incident.people_affected == 12 and incident.serious_injury_risk is False
        incident_id = incident.id
    listed = text_of(admin.get(f"/admin/{own}/privacy-incidents"))
    assert "Adresses de 12 participants" in listed

    form = admin.get(f"/admin/{own}/privacy-incidents/{incident_id}").get_data(as_text=True)
    assert 'value="2026-11-29T08:15"' in form  # shown back in the organization's zone
    corrected = admin.post(f"/admin/{own}/privacy-incidents/{incident_id}", {
        **FORM, "serious_injury_risk": "true", "cai_notified_at": "2026-11-30T10:00",
        "measures_taken": "Mots de passe changés"})
    assert corrected.status_code == 302, text_of(corrected)
    with app.app_context():
        changed = db.session.get(PrivacyIncident, incident_id)
        assert changed is not None and changed.serious_injury_risk is True
        assert changed.measures_taken == "Mots de passe changés"

    exported = admin.get(f"/admin/{own}/privacy-incidents.csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["id"], r["serious_injury_risk"]) for r in rows] == [(str(incident_id), "True")]


def test_a_refused_form_comes_back_with_what_was_typed_and_the_fields_marked(
        app: Flask, office) -> None:
    own, admin, _counsellor, _other = office
    refused = admin.post(f"/admin/{own}/privacy-incidents/new", {
        **FORM, "occurred_at": "2026-11-30T10:00", "people_affected": "douze"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "Ordinateur portable volé dans une voiture" in page
    assert re.search(r'id="people_affected"[^>]*aria-invalid="true"', page)
    # The schema accepts the number now; the dates do not tell a possible story.
    refused = admin.post(f"/admin/{own}/privacy-incidents/new",
                         {**FORM, "occurred_at": "2026-11-30T10:00"})
    assert refused.status_code == 422
    assert re.search(r'id="occurred_at"[^>]*aria-invalid="true"', refused.get_data(as_text=True))
    assert 'value="2026-11-30T10:00"' in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(PrivacyIncident.id).where(
            PrivacyIncident.organization_id == own)) is None


def test_only_the_organizations_admins_reach_its_register(app: Flask, office) -> None:
    own, admin, counsellor, other_admin = office
    assert admin.post(f"/admin/{own}/privacy-incidents/new", FORM).status_code == 302
    with app.app_context():
        incident_id = db.session.scalar(select(PrivacyIncident.id).where(
            PrivacyIncident.organization_id == own))
    for path in (f"/admin/{own}/privacy-incidents", f"/admin/{own}/privacy-incidents.csv",
                 f"/admin/{own}/privacy-incidents/{incident_id}"):
        assert other_admin.get(path).status_code == 404
        assert counsellor.get(path).status_code == 403


def test_the_privacy_pages_have_no_untranslated_text(app: Flask, office) -> None:
    own, admin, _counsellor, _other = office
    assert admin.post(f"/admin/{own}/privacy-incidents/new", FORM).status_code == 302
    with app.app_context():
        incident_id = db.session.scalar(select(PrivacyIncident.id).where(
            PrivacyIncident.organization_id == own))
    allowed = _alike_in_both() | set(FORM.values()) | {"Maillage", "English", "Français",
                                                        "—", "·", "(", ")", "."}
    for path in (f"/admin/{own}/privacy-incidents", f"/admin/{own}/privacy-incidents/new",
                 f"/admin/{own}/privacy-incidents/{incident_id}"):
        shared = _texts(admin, path, "fr") & _texts(admin, path, "en")
        untranslated = {text for text in shared if text not in allowed
                        and not re.search(r"\d|@|Carrefour|Org |Org_Admin|/", text)}
        assert not untranslated, f"{path}: {sorted(untranslated)}"


def test_the_counsellor_erases_at_the_persons_request_and_the_admin_sees_the_register(
        app: Flask, office) -> None:
    own, admin, counsellor, _other = office
    participant = register(counsellor, given_name="Ophélie", family_name="Tremblay")
    page = counsellor.get(f"/participants/{participant}").get_data(as_text=True)
    assert f'href="/participants/{participant}/erase"' in page
    confirm = counsellor.get(f"/participants/{participant}/erase")
    assert confirm.status_code == 200 and "Ophélie" in text_of(confirm)

    erased = counsellor.post(f"/participants/{participant}/erase")
    assert erased.status_code == 302
    with app.app_context():
        stub = db.session.get(Participant, participant)
        assert stub is not None and stub.erased_at is not None and stub.given_name == ""
    gone = counsellor.get(f"/participants/{participant}")
    assert gone.status_code == 410 and "Ophélie" not in text_of(gone)
    assert "Ophélie" not in text_of(counsellor.get("/participants"))

    register_page = text_of(admin.get(f"/admin/{own}/erasures"))
    assert "P-" in register_page and "Ophélie" not in register_page
    exported = admin.get(f"/admin/{own}/erasures.csv").get_data(as_text=True)
    assert str(participant) in exported and "on_request" in exported
    assert counsellor.get(f"/admin/{own}/erasures").status_code == 403


def test_the_erasure_pages_have_no_untranslated_text(app: Flask, office) -> None:
    own, admin, counsellor, _other = office
    participant = register(counsellor, given_name="Zoé", family_name="Lavoie")
    allowed = _alike_in_both() | {"Maillage", "English", "Français", "—", "·", "(", ")", ".",
                                  "Zoé Lavoie", "JSON"}
    for person, path in ((counsellor, f"/participants/{participant}/erase"),
                         (admin, f"/admin/{own}/erasures")):
        shared = _texts(person, path, "fr") & _texts(person, path, "en")
        untranslated = {text for text in shared if text not in allowed
                        and not re.search(r"\d|@|Carrefour|Org |Org_Admin|/", text)}
        assert not untranslated, f"{path}: {sorted(untranslated)}"


# --- consent in plain words, with the person in charge of personal information ------------

def test_the_admin_names_the_privacy_officer_and_the_consent_form_shows_them(
        app: Flask, office) -> None:
    from tests.integration.test_portal_admin import entry_form

    own, admin, counsellor, _other = office
    named = admin.post(f"/admin/{own}/entry", entry_form(**{
        "privacy_officer-name": "Hélène Gagnon",
        "privacy_officer-email": "vie.privee@carrefour.example.org"}))
    assert named.status_code == 302, text_of(named)
    with app.app_context():
        organization = db.session.get(Organization, own)
        assert organization is not None
        assert (organization.privacy_officer_name, organization.privacy_officer_email) == (
            "Hélène Gagnon", "vie.privee@carrefour.example.org")
    # Half a person is refused, with the field marked and what was typed kept.
    half = admin.post(f"/admin/{own}/entry", entry_form(**{
        "privacy_officer-name": "Hélène Gagnon", "privacy_officer-email": ""}))
    assert half.status_code == 422
    assert 'value="Hélène Gagnon"' in half.get_data(as_text=True)

    participant = register(counsellor)
    consent_page = text_of(counsellor.get(f"/participants/{participant}/consents/new"))
    assert "Hélène Gagnon" in consent_page and "vie.privee@carrefour.example.org" in consent_page
    # Each purpose in plain words, in the user's language.
    assert "Vos nom et prénom, vos coordonnées et le motif" in consent_page
    printable = counsellor.get(f"/participants/{participant}/consents/form")
    assert printable.status_code == 200
    form_text = text_of(printable)
    assert "Hélène Gagnon" in form_text and "Signature de la personne participante" in form_text
    assert form_text.count("☐") == 8  # yes or no, for each of the four purposes
    counsellor.get("/lang/en")
    english = text_of(counsellor.get(f"/participants/{participant}/consents/form"))
    assert "Your name, your contact details and the reason for the referral" in english


def test_the_api_names_the_privacy_officer_in_the_directory_entry(network) -> None:
    partner = network.partner()
    path = f"/api/v1/organizations/{partner.organization_id}"
    changed = partner.call("PATCH", path, json={"privacy_officer": {
        "name": "Hélène Gagnon", "email": "vie.privee@carrefour.example.org"}})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["privacy_officer"] == {
        "name": "Hélène Gagnon", "email": "vie.privee@carrefour.example.org"}
    refused = partner.call("PATCH", path, json={"privacy_officer": {"name": "Hélène"}})
    assert refused.status_code == 422
    assert "privacy_officer.email" in refused.get_json()["errors"]
    cleared = partner.call("PATCH", path, json={"privacy_officer": None})
    assert cleared.get_json()["privacy_officer"] is None


def test_the_consent_pages_have_no_untranslated_text(app: Flask, office) -> None:
    _own, _admin, counsellor, _other = office
    participant = register(counsellor, given_name="Zoé", family_name="Lavoie")
    allowed = _alike_in_both() | {"Maillage", "English", "Français", "—", "·", "(", ")", ".",
                                  "Zoé Lavoie", "☐", "Zoé", "Lavoie", "Benali"}
    for path in (f"/participants/{participant}/consents/form",):
        shared = _texts(counsellor, path, "fr") & _texts(counsellor, path, "en")
        untranslated = {text for text in shared if text not in allowed
                        and not re.search(r"\d|@|Carrefour|Org |_{3,}|/", text)}
        assert not untranslated, f"{path}: {sorted(untranslated)}"

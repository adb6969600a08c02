"""The portal's side of preparing a move (docs/design.md §12): the counsellor gives the date the
person is needed there, a past one is refused with the form as typed; the date shows on the
leg page and in the partner's inbox; a consent can share the details with employers, and an
employer's leg page says what it is not shown."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import Flask, render_template_string

from tests.integration.test_portal_pages import consent_to, refer, register
from tests.portal import Person, make_organization, make_user, text_of


def test_needed_by_on_the_form_the_leg_and_the_inbox(app: Flask) -> None:
    sender = make_organization(app)
    receiver = make_organization(app, kind="regional_partner", region="01")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    partner = Person.logged_in(app, make_user(app, receiver, "partner_staff"))
    participant = register(counsellor)
    consent_to(counsellor, participant, receiver)

    past = (date.today() - timedelta(days=2)).isoformat()
    refused = counsellor.post(f"/participants/{participant}/refer", {
        "to_organization_id": str(receiver.id), "pathway": "employment", "priority": "urgent",
        "reason_for_referral": "Entrevue à Rimouski", "needed_by": past})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "doit être aujourd’hui ou plus tard" in text_of(refused)
    assert f'value="{past}"' in page and "Entrevue à Rimouski" in page  # as typed
    assert 'id="needed_by"' in page and 'aria-invalid="true"' in page

    needed = date.today() + timedelta(days=7)
    leg = refer(counsellor, participant, receiver, priority="urgent",
                needed_by=needed.isoformat())
    shown = text_of(counsellor.get(f"/legs/{leg}"))
    assert "Personne attendue le" in shown
    assert "toutes les échéances tombent avant" in shown
    inbox = partner.get("/inbox")
    assert "Personne attendue le" in text_of(inbox)
    assert f'datetime="{needed.isoformat()}"' in counsellor.get(f"/legs/{leg}").get_data(
        as_text=True)


def test_an_employer_is_told_what_it_is_not_shown(app: Flask) -> None:
    sender = make_organization(app)
    employer = make_organization(app, kind="employer", region="05")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    staff = Person.logged_in(app, make_user(app, employer, "partner_staff"))
    participant = register(counsellor, given_name="Yasmine", family_name="Haddad")
    consent_to(counsellor, participant, employer)
    leg = refer(counsellor, participant, employer)
    page = text_of(staff.get(f"/legs/{leg}"))
    assert "Yasmine Haddad" in page
    assert "Offre d'emploi à Rimouski" not in page and "logement, francisation" not in page
    assert "Besoin de savoir" in page

    # A consent that shares the details: the employer reads them.
    shared = register(counsellor, given_name="Karim", family_name="Haddad")
    response = counsellor.post(f"/participants/{shared}/consents/new", {
        "purpose": "referral_sharing", "evidence": "written",
        "organization_ids": [str(employer.id)], "share_details": "true"})
    assert response.status_code == 302, text_of(response)
    second = refer(counsellor, shared, employer)
    page = text_of(staff.get(f"/legs/{second}"))
    assert "Offre d'emploi à Rimouski" in page and "Besoin de savoir" not in page


def test_both_parties_tick_the_checklist_and_print_it(app: Flask) -> None:
    sender = make_organization(app, name="Carrefour Montréal")
    receiver = make_organization(app, kind="regional_partner", region="01",
                                 name="Accueil Rimouski")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    partner = Person.logged_in(app, make_user(app, receiver, "partner_staff"))
    participant = register(counsellor, given_name="Yasmine", family_name="Haddad")
    consent_to(counsellor, participant, receiver)
    leg = refer(counsellor, participant, receiver, priority="urgent",
                needed_by=(date.today() + timedelta(days=6)).isoformat())

    page = text_of(counsellor.get(f"/legs/{leg}"))
    assert "Liste de préparation du déménagement" in page and "Résilier le bail" in page
    done = counsellor.post(f"/legs/{leg}/checklist/lease_termination",
                           {"status": "done", "owner": "sender", "note": "Avis remis"})
    assert done.status_code == 302
    ticked = partner.post(f"/legs/{leg}/checklist/housing", {"status": "done",
                                                            "owner": "receiver"})
    assert ticked.status_code == 302
    refused = partner.post(f"/legs/{leg}/checklist/housing", {"status": "fini"})
    assert refused.status_code == 422 and "Liste de préparation" in text_of(refused)

    printed = text_of(counsellor.get(f"/legs/{leg}/checklist/print"))
    assert "Yasmine Haddad" in printed and "Accueil Rimouski" in printed
    assert "☑ Résilier le bail Carrefour Montréal Avis remis" in printed
    assert "☑ Logement à l’arrivée Accueil Rimouski" in printed
    assert "☐ Déménagement" in printed
    timeline = text_of(partner.get(f"/legs/{leg}"))
    assert timeline.count("Liste de préparation mise à jour") >= 2


def test_a_household_is_linked_and_referred_at_once(app: Flask) -> None:
    sender = make_organization(app)
    receiver = make_organization(app, kind="regional_partner", region="01")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    amina = register(counsellor, given_name="Amina", family_name="Haddad")
    karim = register(counsellor, given_name="Karim", family_name="Haddad")
    lina = register(counsellor, given_name="Lina", family_name="Haddad")
    page = text_of(counsellor.get(f"/participants/{amina}"))
    assert "Ménage" in page and "Lier les personnes qui déménagent avec elle" in page
    linked = counsellor.post(f"/participants/{amina}/household",
                             {"participant_ids": [str(karim), str(lina)]})
    assert linked.status_code == 302, text_of(linked)
    detail = text_of(counsellor.get(f"/participants/{amina}"))
    assert "Karim Haddad" in detail and "Lina Haddad" in detail and "Déménage avec" in detail

    consent_to(counsellor, amina, receiver)
    consent_to(counsellor, karim, receiver)
    form = counsellor.get(f"/participants/{amina}/refer").get_data(as_text=True)
    assert 'name="whole_household"' in form and "(3 personnes)" in form
    sent = counsellor.post(f"/participants/{amina}/refer", {
        "to_organization_id": str(receiver.id), "pathway": "settlement",
        "priority": "urgent", "whole_household": "true"})
    assert sent.status_code == 302, text_of(sent)
    shown = text_of(counsellor.get(sent.headers["Location"]))
    assert "Orientation envoyée pour 2 membres du ménage." in shown
    assert "Non envoyée pour 1 membres" in shown

    # Members change: Lina leaves and moves with Sami instead, who cannot be in two
    # households; Lina leaves him (two left, one goes: nobody is linked), and Sami joins.
    removed = counsellor.post(f"/participants/{amina}/household/remove",
                              {"member_id": str(lina)})
    assert removed.status_code == 302
    assert "Lina Haddad" not in text_of(counsellor.get(f"/participants/{amina}"))
    sami = register(counsellor, given_name="Sami", family_name="Haddad")
    counsellor.post(f"/participants/{lina}/household", {"participant_ids": [str(sami)]})
    again = counsellor.post(f"/participants/{amina}/household",
                            {"participant_ids": [str(sami)]})
    assert again.status_code == 409 and "un seul ménage" in text_of(again)
    nobody = counsellor.post(f"/participants/{amina}/household", {})
    assert nobody.status_code == 422 and "Choisissez au moins une personne" in text_of(nobody)
    counsellor.post(f"/participants/{lina}/household/remove", {"member_id": str(lina)})
    assert "Aucun lien avec d’autres personnes" in text_of(
        counsellor.get(f"/participants/{sami}"))
    joined = counsellor.post(f"/participants/{amina}/household",
                             {"participant_ids": [str(sami)]})
    assert joined.status_code == 302, text_of(joined)
    assert "Sami Haddad" in text_of(counsellor.get(f"/participants/{karim}"))


def test_the_portal_writes_the_first_of_a_month_1er_in_french(app: Flask) -> None:
    # The portal's one date filter: "1er" in French, Babel's own form otherwise; a moment
    # is read in Québec's time (03:00 UTC on 1 March is still 28 February there).
    template = ("{{ day|dateformat('full') }} / {{ noon|dateformat('long') }} / "
                "{{ night|dateformat('medium') }} / {{ later|dateformat('long') }} / "
                "{{ noon|datetimeformat(minute_format()) }}")
    values = {"day": date(2026, 12, 1), "noon": datetime(2027, 3, 1, 17, tzinfo=UTC),
              "night": datetime(2027, 3, 1, 3, tzinfo=UTC), "later": date(2026, 12, 2)}
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert render_template_string(template, **values) == (
            "mardi 1er décembre 2026 / 1er mars 2027 / 28 févr. 2027 / 2 décembre 2026 / "
            "1er mars 2027, 12 h 00")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert render_template_string(template, **values) == (
            "Tuesday, December 1, 2026 / March 1, 2027 / Feb 28, 2027 / December 2, 2026 / "
            "Mar 1, 2027, 12:00 PM")

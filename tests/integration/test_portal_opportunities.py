"""The portal's opportunities (docs/design.md §12): a refused publication shows the form again
as typed with the fields to fix; browsing filters by region and pathway and keeps the filters;
a counsellor refers a person to an opportunity through the referral form, which goes to its
publisher and names it; only the publisher sees the candidates, and withdraws with a
confirmation; an organization chooses the regions it follows."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from urllib.parse import quote

from flask import Flask

from hub.db import utcnow
from hub.opportunities.offers import local_today
from tests.integration.test_portal_pages import consent_to, register
from tests.portal import Person, make_organization, make_user, text_of

# Unique titles: the database is shared by the tests of a run, and browsing lists them all.
TITLE = f"Soudeur ou soudeuse {uuid.uuid4().hex[:6]}"


def _offer(**fields: str) -> dict[str, object]:
    return {"title": TITLE, "kind": "job", "region": "01",
            "municipality": "Rimouski", "pathways": ["employment"],
            "description": "Poste permanent de jour.", "languages": "fr, en",
            "closes_on": (date.today() + timedelta(days=30)).isoformat(), "places": "2",
            **fields}


def test_publish_browse_and_refer_a_candidate(app: Flask) -> None:
    sender = make_organization(app)
    regional = make_organization(app, kind="regional_partner", region="01",
                                 name=f"Accueil Rimouski {uuid.uuid4().hex[:6]}")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    partner = Person.logged_in(app, make_user(app, regional, "partner_staff"))

    refused = counsellor.get("/opportunities/new")
    assert refused.status_code == 403 and "Seuls les partenaires régionaux" in text_of(refused)

    # Refused by the form's schema (no pathway), then by the use case (a past date): each
    # time the form as typed, the field at fault marked with what to fix.
    no_pathway = partner.post("/opportunities/new", _offer(pathways=[]))
    assert no_pathway.status_code == 422
    assert "Choisissez au moins un parcours." in text_of(no_pathway)
    # Yesterday in Québec, where closing days are counted (UTC's date is a day ahead in the
    # evening there).
    past = (local_today(utcnow()) - timedelta(days=1)).isoformat()
    wrong = partner.post("/opportunities/new", _offer(closes_on=past))
    assert wrong.status_code == 422
    page = wrong.get_data(as_text=True)
    assert f'value="{TITLE}"' in page and "Poste permanent de jour." in page
    assert 'value="fr, en"' in page and f'value="{past}"' in page  # as typed
    assert page.count('aria-invalid="true"') == 1 and 'aria-describedby="closes_on-error"' in page
    assert "le dernier jour où l’on oriente des candidatures" in text_of(wrong)

    published = partner.post("/opportunities/new", _offer())
    assert published.status_code == 302, text_of(published)
    opportunity = published.headers["Location"].rsplit("/", 1)[1]

    found = counsellor.get("/opportunities?region=01&pathway=employment")
    assert TITLE in text_of(found) and "Rimouski" in text_of(found)
    assert '<option value="01" selected>' in found.get_data(as_text=True)  # filters kept
    assert '<option value="employment" selected>' in found.get_data(as_text=True)
    assert TITLE not in text_of(counsellor.get("/opportunities?region=05"))
    assert TITLE not in text_of(
        counsellor.get("/opportunities?region=01&pathway=training"))
    unknown = counsellor.get("/opportunities?region=99")
    assert unknown.status_code == 422 and "Choisissez la région et le parcours" in text_of(unknown)

    shown = counsellor.get(f"/opportunities/{opportunity}")
    assert "Orienter une personne vers cette offre" in text_of(shown)
    participant = register(counsellor, given_name="Karim", family_name="Haddad")
    consent_to(counsellor, participant, regional)
    chooser = counsellor.get(f"/opportunities/{opportunity}/refer?q=Haddad")
    link = f"/participants/{participant}/refer?opportunity_id={opportunity}"
    assert link in chooser.get_data(as_text=True).replace("&amp;", "&")
    form = counsellor.get(link).get_data(as_text=True)
    assert TITLE in form
    assert f'name="opportunity_id" value="{opportunity}"' in form
    assert f'value="{regional.id}" checked' in form
    sent = counsellor.post(link, {"to_organization_id": str(regional.id),
                                  "pathway": "employment", "priority": "urgent",
                                  "opportunity_id": opportunity,
                                  "needed_by": (date.today() + timedelta(days=7)).isoformat()})
    assert sent.status_code == 302, text_of(sent)
    leg = text_of(counsellor.get(sent.headers["Location"]))
    assert "Offre" in leg and TITLE in leg


def test_candidates_for_the_publisher_only_then_withdrawn(app: Flask) -> None:
    sender = make_organization(app)
    regional = make_organization(app, kind="employer", region="05")
    counsellor = Person.logged_in(app, make_user(app, sender, "counsellor"))
    employer = Person.logged_in(app, make_user(app, regional, "partner_staff"))
    title = f"Stage en usine {uuid.uuid4().hex[:6]}"
    published = employer.post("/opportunities/new", _offer(title=title, region="05",
                                                           municipality="Magog"))
    assert published.status_code == 302, text_of(published)
    opportunity = published.headers["Location"].rsplit("/", 1)[1]
    participant = register(counsellor)
    consent_to(counsellor, participant, regional)
    sent = counsellor.post(f"/participants/{participant}/refer", {
        "to_organization_id": str(regional.id), "pathway": "employment",
        "priority": "routine", "opportunity_id": opportunity})
    assert sent.status_code == 302, text_of(sent)
    leg = sent.headers["Location"].rsplit("/", 1)[1]

    assert f"Pour : {title}" in text_of(employer.get("/inbox"))  # the leg names it
    mine = text_of(employer.get("/opportunities/mine"))
    assert "1 candidature" in mine and "Envoyée : 1" in mine
    candidates = employer.get(f"/opportunities/{opportunity}/candidates")
    assert f"/legs/{leg}" in candidates.get_data(as_text=True)
    assert "Envoyée : 1" in text_of(candidates) and "Amina Benali" in text_of(candidates)
    assert counsellor.get(f"/opportunities/{opportunity}/candidates").status_code == 404

    confirm = employer.get(f"/opportunities/{opportunity}/withdraw")
    assert "1 orientation encore ouverte" in text_of(confirm)
    assert counsellor.post(f"/opportunities/{opportunity}/withdraw").status_code == 404
    link = f"/participants/{participant}/refer?opportunity_id={opportunity}"
    token = re.search(r'name="form_token" value="([^"]+)"', counsellor.get(link).get_data(
        as_text=True))
    assert token is not None
    assert employer.post(f"/opportunities/{opportunity}/withdraw").status_code == 302
    assert title not in text_of(counsellor.get("/opportunities?region=05"))
    closed = counsellor.get(link)
    assert closed.status_code == 409 and "ne reçoit plus de candidatures" in text_of(closed)
    # Withdrawn while the counsellor typed: the form again as typed, without the opportunity,
    # and sent as it is then, to the same organization.
    typed = {"to_organization_id": str(regional.id), "pathway": "employment",
             "priority": "routine", "opportunity_id": opportunity,
             "reason_for_referral": "Soudeur d’expérience, cherche un poste de jour.",
             "form_token": token.group(1)}
    again = counsellor.post(link, typed)
    page = again.get_data(as_text=True)
    assert again.status_code == 409 and "ne reçoit plus de candidatures" in text_of(again)
    assert "Soudeur d’expérience, cherche un poste de jour." in text_of(again)
    assert 'name="opportunity_id"' not in page and f'value="{regional.id}" checked' in page
    sent = counsellor.post(link, {**typed, "opportunity_id": "", "confirm_open_leg": "1"})
    assert sent.status_code == 302, text_of(sent)


def test_followed_regions_and_the_daily_mail(app: Flask) -> None:
    organization = make_organization(app)
    counsellor = Person.logged_in(app, make_user(app, organization, "counsellor"))
    saved = counsellor.post("/opportunities/regions", {"regions": ["01", "05"],
                                                       "daily_mail": "1"})
    assert saved.status_code == 302
    page = counsellor.get("/opportunities/regions").get_data(as_text=True)
    # Whom the daily mail goes to, as hub.opportunities.daily_mail chooses them.
    assert "qui reçoivent un courriel à chaque nouvelle orientation" in page
    assert "à défaut, aux personnes qui administrent l’organisme" in page
    assert 'value="01" checked' in page and 'value="05" checked' in page
    assert 'value="06" checked' not in page
    assert 'id="daily_mail" name="daily_mail" value="1" checked' in page
    assert counsellor.post("/opportunities/regions", {"regions": ["99"]}).status_code == 422


def test_hostile_values_in_the_publish_form_show_the_form_again(app: Flask) -> None:
    """Each field of the publish form in turn given what no browser sends (bytes that are not
    UTF-8, huge numbers, malformed dates...): the form again or a refusal page, never a 500."""
    regional = make_organization(app, kind="regional_partner", region="01")
    partner = Person.logged_in(app, make_user(app, regional, "partner_staff"))
    form = partner.get("/opportunities/new").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', form)
    assert token is not None
    valid = {name: quote(str(value)) for name, value in _offer().items() if name != "pathways"}
    for name in [*valid, "pathways"]:
        for value in ("%ED%A0%80", "%FF%FE", "9" * 5000, "2026-13-45", "-1", "1e999", ""):
            fields = {**valid, "pathways": "employment", name: value}
            body = "&".join(f"{key}={raw}" for key, raw in fields.items())
            response = partner.client.post(
                "/opportunities/new", content_type="application/x-www-form-urlencoded",
                data=f"{body}&csrf_token={partner.token()}&form_token={token.group(1)}")
            assert response.status_code < 500, (name, value, response.status_code)

"""Opportunities from the regions (docs/design.md §12) through the API: who publishes, browsing
by region and pathway, legs that name an opportunity, the publisher's candidates, closing when
the places are filled (also under two acceptances at once) and at the date, the events to the
regions' followers, and their daily mail over SMTP."""

from __future__ import annotations

import email
import email.policy
import secrets
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.accounts.callers import Caller
from hub.adapters.fhir import OPPORTUNITY_ID
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.events.types import EventType
from hub.followups import tick
from hub.opportunities import daily_mail, publishing
from hub.opportunities.offers import LOCAL_ZONE, Opportunity, RegionFollow
from hub.outbox.mail import send_due
from tests.e2e.test_webhooks import deliver_all, received, subscribe
from tests.helpers import Network, Partner, second_during_first
from tests.integration.test_check_mails import address, set_entry
from tests.integration.test_erasure import eventually
from tests.integration.test_fhir import bundle_of
from tests.integration.test_mail import SmtpServer, smtp_transport
from tests.portal import Person, make_user, text_of
from tests.receiver import running_receiver


def local_today() -> date:
    return utcnow().astimezone(ZoneInfo(LOCAL_ZONE)).date()


def offer(**overrides: Any) -> dict[str, Any]:
    """An opportunity's body: a welding job in Rimouski, closing in a month."""
    return {"title": "Soudeur ou soudeuse", "kind": "job", "region": "01",
            "municipality": "Rimouski", "pathways": ["employment"],
            "description": "Poste permanent de jour, formation offerte à l'arrivée.",
            "languages": ["fr"], "closes_on": (local_today() + timedelta(days=30)).isoformat(),
            "places": 2, **overrides}


def publish(partner: Partner, **overrides: Any) -> dict[str, Any]:
    response = partner.post("/api/v1/opportunities", offer(**overrides))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def accept(partner: Partner, leg_id: str) -> Any:
    assert partner.act(leg_id, "acknowledge").status_code == 200
    return partner.act(leg_id, "accept")


def feed_types(partner: Partner, opportunity_id: str) -> list[str]:
    items = partner.get("/api/v1/events?limit=500").get_json()["items"]
    return [e["type"] for e in items if e["subject"] == f"opportunities/{opportunity_id}"]


def test_only_organizations_that_offer_places_publish_and_each_field_says_what_to_fix(
        network: Network) -> None:
    community = network.partner()
    refused = community.post("/api/v1/opportunities", offer())
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert "regional partners, employers" in refused.get_json()["detail"]

    for kind in ("regional_partner", "employer", "insertion_enterprise",
                 "entrepreneurship_agency"):
        published = publish(network.partner(kind=kind, region="01"))
        assert (published["status"], published["closed_reason"], published["version"]) == (
            "open", None, 1)

    partner = network.partner(kind="regional_partner", region="01")
    key = {"Idempotency-Key": secrets.token_hex(8)}
    first = partner.post("/api/v1/opportunities", offer(), headers=key)
    again = partner.post("/api/v1/opportunities", offer(), headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    yesterday = (local_today() - timedelta(days=1)).isoformat()
    bad = partner.post("/api/v1/opportunities", offer(closes_on=yesterday, starts_on=yesterday))
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    errors = bad.get_json()["errors"]
    assert "is past" in errors["closes_on"][0] and "is past" in errors["starts_on"][0]
    bad = partner.post("/api/v1/opportunities", offer(region="99", languages=["français!"],
                                                      pathways=["welding"], places=0))
    assert bad.status_code == 422
    assert {name.split(".")[0] for name in bad.get_json()["errors"]} == {
        "region", "languages", "pathways", "places"}
    assert "01 to 17" in str(bad.get_json()["errors"]["region"])
    assert "Unknown region '99'" in str(bad.get_json()["errors"]["region"])
    assert partner.post("/api/v1/opportunities", offer(title="   ")).status_code == 422


def test_browsing_filters_by_region_and_pathway_newest_first_and_hides_closed_ones(
        network: Network) -> None:
    reader = network.partner()
    partner = network.partner(kind="regional_partner", region="11")
    older = publish(partner, region="11", pathways=["cooperative_entrepreneurship"])
    newer = publish(partner, region="11", pathways=["entrepreneurship", "training"])
    gone = publish(partner, region="11", pathways=["training"])
    assert partner.post(f"/api/v1/opportunities/{gone['id']}/withdraw").get_json()[
        "closed_reason"] == "withdrawn"

    def listed(**query: str) -> list[str]:
        response = reader.get("/api/v1/opportunities", query_string={"region": "11", **query})
        assert response.status_code == 200, response.get_data(as_text=True)
        mine = {older["id"], newer["id"], gone["id"]}
        return [o["id"] for o in response.get_json()["items"] if o["id"] in mine]

    assert listed() == [newer["id"], older["id"]]
    assert listed(pathway="entrepreneurship") == [newer["id"]]  # not cooperative_...
    assert listed(pathway="cooperative_entrepreneurship") == [older["id"]]
    assert listed(include_closed="true") == [gone["id"], newer["id"], older["id"]]
    # Paged: one at a time, the same order.
    first = reader.get("/api/v1/opportunities", query_string={
        "region": "11", "limit": 1, "include_closed": "true"}).get_json()
    assert first["next_cursor"]
    assert reader.get(f"/api/v1/opportunities/{gone['id']}").get_json()["status"] == "closed"
    unknown = reader.get("/api/v1/opportunities", query_string={"pathway": "welding"})
    assert unknown.status_code == 422 and "pathway" in str(unknown.get_json()["errors"])
    assert reader.get(f"/api/v1/opportunities/{uuid.uuid4()}").status_code == 404


def test_a_leg_for_an_opportunity_goes_to_its_open_publisher_and_forwarding_drops_it(
        network: Network) -> None:
    sender, partner = network.partner(), network.partner(kind="regional_partner", region="01")
    elsewhere = network.partner(kind="regional_partner", region="01")
    opportunity = publish(partner)

    person = sender.register_participant()["id"]
    sender.grant_consent(person)  # the whole network
    leg = sender.refer(partner, person, consent=False, opportunity_id=opportunity["id"])
    assert leg["opportunity_id"] == opportunity["id"]
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["opportunity_id"] == (
        opportunity["id"])

    body = {"participant_id": person, "to_organization_id": elsewhere.organization_id,
            "pathway": "employment", "opportunity_id": opportunity["id"]}
    wrong = sender.post("/api/v1/referrals", body)
    assert wrong.status_code == 422
    assert partner.organization_id in wrong.get_json()["errors"]["to_organization_id"][0]
    unknown = sender.post("/api/v1/referrals", {**body, "opportunity_id": str(uuid.uuid4())})
    assert unknown.status_code == 422 and "opportunity_id" in unknown.get_json()["errors"]

    # Forwarded elsewhere, the participant is no longer a candidate of that opportunity.
    assert partner.act(leg["id"], "acknowledge").status_code == 200
    forwarded = partner.act(leg["id"], "forward",
                            {"to_organization_id": elsewhere.organization_id})
    assert forwarded.status_code == 201 and forwarded.get_json()["opportunity_id"] is None

    partner.post(f"/api/v1/opportunities/{opportunity['id']}/withdraw")
    closed = sender.post("/api/v1/referrals", {
        **body, "to_organization_id": partner.organization_id})
    assert closed.status_code == 409
    problem = closed.get_json()
    assert problem["type"].endswith("/opportunity-closed") and "withdrew" in problem["detail"]


def test_the_publisher_sees_its_candidates_and_nobody_else_does(network: Network) -> None:
    first, second = network.partner(name="Carrefour Montréal"), network.partner()
    partner = network.partner(kind="employer", region="01")
    opportunity = publish(partner, places=5)
    one = first.refer(partner, opportunity_id=opportunity["id"], needed_by=(
        local_today() + timedelta(days=7)).isoformat())
    two = second.refer(partner, opportunity_id=opportunity["id"])
    assert accept(partner, one["id"]).status_code == 200

    response = partner.get(f"/api/v1/opportunities/{opportunity['id']}/candidates")
    assert response.status_code == 200, response.get_data(as_text=True)
    candidates = response.get_json()
    assert candidates["counts"] == {"accepted": 1, "sent": 1}
    assert [c["referral_id"] for c in candidates["items"]] == [one["id"], two["id"]]
    assert candidates["items"][0]["from_organization"] == {
        "id": first.organization_id, "name": "Carrefour Montréal"}
    assert candidates["items"][0]["needed_by"] == one["needed_by"]
    assert "Amina" not in response.get_data(as_text=True)  # no personal data here
    # The FHIR export names the opportunity, by identifier, in the request's supportingInfo.
    assert bundle_of(first, one["id"])["ServiceRequest"]["supportingInfo"] == [
        {"identifier": {"system": OPPORTUNITY_ID, "value": opportunity["id"]}}]

    for stranger in (first, network.partner(kind="regional_partner", region="01")):
        assert stranger.get(
            f"/api/v1/opportunities/{opportunity['id']}/candidates").status_code == 404
        assert stranger.post(
            f"/api/v1/opportunities/{opportunity['id']}/withdraw").status_code == 404
    assert first.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()[
        "status"] == "open"


def test_the_acceptance_that_fills_the_places_closes_it_and_followers_hear_of_it(
        network: Network) -> None:
    sender = network.partner()
    follower, bystander = network.partner(), network.partner()
    region = "09"
    assert follower.call("PUT", "/api/v1/opportunities/follows", json={
        "regions": [region, "01"], "daily_mail": False}).get_json() == {
            "regions": ["01", region], "daily_mail": False}
    partner = network.partner(kind="regional_partner", region=region)
    opportunity = publish(partner, region=region, places=2)
    legs = [sender.refer(partner, opportunity_id=opportunity["id"]) for _ in range(3)]

    assert accept(partner, legs[0]["id"]).status_code == 200
    assert partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()[
        "status"] == "open"
    assert accept(partner, legs[1]["id"]).status_code == 200
    closed = partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()
    assert (closed["status"], closed["closed_reason"]) == ("closed", "places_filled")
    full = accept(partner, legs[2]["id"])
    assert full.status_code == 409 and full.get_json()["type"].endswith("/opportunity-full")
    # What helps: publishing again would make a new opportunity, which this leg does not name.
    assert "no_capacity" in full.get_json()["detail"]
    assert "publish a new opportunity" in full.get_json()["detail"]
    assert partner.act(legs[2]["id"], "decline", {"reason": "no_capacity"}).status_code == 200

    published, closing = EventType.OPPORTUNITY_PUBLISHED.value, EventType.OPPORTUNITY_CLOSED.value
    assert eventually(lambda: feed_types(follower, opportunity["id"]),
                      lambda seen: len(seen) == 2) == [published, closing]
    assert feed_types(partner, opportunity["id"]) == [published, closing]
    assert feed_types(bystander, opportunity["id"]) == []
    events = [e for e in follower.get("/api/v1/events?limit=500").get_json()["items"]
              if e["subject"] == f"opportunities/{opportunity['id']}"]
    assert [e["sequence"] for e in events] == [1, 2]
    assert events[1]["data"]["opportunity"]["closed_reason"] == "places_filled"


def test_two_acceptances_at_once_take_one_last_place(app: Flask, network: Network) -> None:
    sender, partner = network.partner(), network.partner(kind="employer", region="01")
    opportunity = publish(partner, places=1)
    legs = [sender.refer(partner, opportunity_id=opportunity["id"]) for _ in range(2)]
    for leg in legs:
        assert partner.act(leg["id"], "acknowledge").status_code == 200
    partner.token  # noqa: B018 (fetched once, before the threads)
    start = threading.Barrier(2)
    answers: list[int] = []

    def accept_one(leg_id: str) -> None:
        start.wait()
        answers.append(partner.act(leg_id, "accept").status_code)

    threads = [threading.Thread(target=accept_one, args=(leg["id"],)) for leg in legs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200, 409]
    candidates = partner.get(f"/api/v1/opportunities/{opportunity['id']}/candidates").get_json()
    assert candidates["counts"] == {"accepted": 1, "acknowledged": 1}


def test_a_withdrawal_racing_the_last_acceptance_leaves_it_filled(
        app: Flask, network: Network) -> None:
    """The publisher withdraws an opportunity it read open while another request's acceptance
    fills its last place and closes it: the withdrawal waits for the row and finds it closed,
    instead of failing on the version it read."""
    sender, partner = network.partner(), network.partner(kind="employer", region="01")
    opportunity = publish(partner, places=1)
    leg = sender.refer(partner, opportunity_id=opportunity["id"])
    assert partner.act(leg["id"], "acknowledge").status_code == 200
    publisher = Caller(organization_id=uuid.UUID(partner.organization_id), actor="test")
    with app.app_context(), db.job_session() as session:
        read_open = session.get(Opportunity, uuid.UUID(opportunity["id"]))
        assert read_open is not None and read_open.status == "open"
        assert partner.act(leg["id"], "accept").status_code == 200  # meanwhile: filled
        withdrawn = publishing.withdraw(session, publisher, read_open.id)
        assert (withdrawn.status, withdrawn.closed_reason) == ("closed", "places_filled")
    assert feed_types(partner, opportunity["id"]) == [
        EventType.OPPORTUNITY_PUBLISHED.value, EventType.OPPORTUNITY_CLOSED.value]


def test_two_choices_of_regions_at_once_take_turns(app: Flask, network: Network) -> None:
    """Two requests choose an organization's regions at the same moment: the second waits for
    the first and keeps the region it added, instead of adding it again (a conflict)."""
    organization = network.partner()
    caller = Caller(organization_id=uuid.UUID(organization.organization_id), actor="test")
    failures = second_during_first(
        app, lambda session: publishing.follow_regions(session, caller, ["02"], daily_mail=True),
        lambda session: publishing.follow_regions(session, caller, ["02", "03"],
                                                  daily_mail=False))
    assert failures == []
    assert organization.get("/api/v1/opportunities/follows").get_json() == {
        "regions": ["02", "03"], "daily_mail": False}


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(places=st.integers(1, 2), answers=st.lists(st.sampled_from(["accept", "decline"]),
                                                   min_size=1, max_size=3))
def test_accepted_candidates_never_outnumber_the_places(
        network: Network, places: int, answers: list[str]) -> None:
    sender, partner = network.partner(), network.partner(kind="employer", region="01")
    opportunity = publish(partner, places=places)
    person = sender.register_participant()["id"]
    sender.grant_consent(person, partner)
    legs = [sender.refer(partner, person, consent=False, opportunity_id=opportunity["id"])
            for _ in answers]
    for leg, answer in zip(legs, answers, strict=True):
        if answer == "accept":
            assert accept(partner, leg["id"]).status_code in (200, 409)
        else:
            partner.act(leg["id"], "decline", {"reason": "not_eligible"})
    state = partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()
    taken = partner.get(f"/api/v1/opportunities/{opportunity['id']}/candidates").get_json()[
        "counts"].get("accepted", 0)
    assert taken == min(places, answers.count("accept"))
    assert (state["status"] == "closed") == (taken == places)


def test_an_opportunity_closes_when_its_closing_day_is_over_in_quebec(
        app: Flask, network: Network) -> None:
    partner, follower = network.partner(kind="regional_partner", region="01"), network.partner()
    today = local_today()
    opportunity = publish(partner, closes_on=today.isoformat())
    assert tick.CHECKS["opportunities_closed"] is publishing.close_due
    midnight = datetime.combine(today + timedelta(days=1), time(0, 0),
                                tzinfo=ZoneInfo(LOCAL_ZONE)).astimezone(UTC)

    def close_at(moment: datetime) -> str:
        with app.app_context(), db.job_session() as session:
            assert session.scalar(select(publishing.closing_pending(moment))) is not None
            publishing.close_due(session, moment)
        return partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()["status"]

    assert close_at(midnight - timedelta(minutes=1)) == "open"  # 23:59 on its last day
    assert close_at(midnight) == "closed"
    closed = partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()
    assert closed["closed_reason"] == "closes_on_passed"
    # Followed or not, the publisher hears of it; a leg can no longer name it.
    assert feed_types(partner, opportunity["id"])[-1] == "opportunity.closed"
    refused = follower.post("/api/v1/referrals", {
        "participant_id": follower.register_participant()["id"],
        "to_organization_id": partner.organization_id, "pathway": "employment",
        "opportunity_id": opportunity["id"]})
    assert refused.status_code == 409


def test_the_events_reach_a_followers_webhook(app: Flask, network: Network) -> None:
    follower = network.partner()
    assert follower.call("PUT", "/api/v1/opportunities/follows",
                         json={"regions": ["08"]}).status_code == 200
    partner = network.partner(kind="regional_partner", region="08")
    with running_receiver() as system:
        subscribe(follower, system, event_types=["opportunity.*"])
        opportunity = publish(partner, region="08", title="Stage en agronomie",
                              kind="internship")

        def bodies() -> list[dict]:
            deliver_all(app, rounds=200)
            return [b for b in received(system) if b["subject"].endswith(opportunity["id"])]

        (delivered,) = eventually(bodies, lambda seen: len(seen) == 1)
    assert delivered["type"] == "opportunity.published"
    assert delivered["data"]["opportunity"] == opportunity


FRENCH_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre"]


def mails_to(app: Flask, server: SmtpServer, to: str) -> list[EmailMessage]:
    send_due(app.extensions["hub_db"][1], smtp_transport(server),
             now=utcnow() + timedelta(days=2), limit=10_000)
    return [email.message_from_bytes(r.data, policy=email.policy.default)  # type: ignore[misc]
            for r in server.received if to in r.rcpt_to]


def test_followers_who_asked_get_one_daily_mail_of_new_opportunities(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    follower = network.partner(name="Carrefour d'intégration de Montréal")
    marked = address()
    set_entry(follower, contacts=[{"name": "Julie Tremblay", "email": marked,
                                   "notify_referrals": True}])
    # Without contacts to notify, an organization's administrators get it, in their language.
    english = network.partner(name="Newcomers' Employment Centre")
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(english.organization_id))
    admin = make_user(app, organization, "org_admin", language="en")
    region = "10"
    for organization_following in (follower, english):
        assert organization_following.call("PUT", "/api/v1/opportunities/follows", json={
            "regions": [region], "daily_mail": True}).get_json()["daily_mail"] is True
    partner = network.partner(kind="regional_partner", region=region,
                              name="Emploi Nord-du-Québec")
    title = f"Préposé·e à l'entretien {secrets.token_hex(2)}"
    today = local_today()
    first_of_a_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    opportunity = publish(partner, region=region, title=title, places=3,
                          closes_on=first_of_a_month.isoformat())
    elsewhere = publish(partner, region="01")  # a region the follower does not follow

    with app.app_context(), db.job_session() as session:
        follow = session.get(RegionFollow, (uuid.UUID(follower.organization_id), region))
        assert follow is not None and follow.next_mail_at is not None
        due = follow.next_mail_at
    assert due.astimezone(ZoneInfo(LOCAL_ZONE)).time() == time(8, 0)

    def mail_at(moment: datetime) -> None:
        with app.app_context(), db.job_session() as session:
            daily_mail.mail_daily(session, moment)

    mail_at(due - timedelta(minutes=1))
    assert mails_to(app, smtp, marked) == []  # not yet 8:00
    mail_at(due)
    mail_at(due + timedelta(minutes=1))  # the same morning again: nothing more
    (mail,) = mails_to(app, smtp, marked)
    text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "1 nouvelle offre" in str(mail["Subject"])
    assert title in text and "Emploi Nord-du-Québec" in text and "Rimouski" in text
    assert f"/opportunities/{opportunity['id']}" in text
    month = FRENCH_MONTHS[first_of_a_month.month - 1]
    assert (f"Candidatures à orienter jusqu’au 1er {month} {first_of_a_month.year} : 3 places"
            in text)
    assert elsewhere["id"] not in text  # only the followed region's
    (mail,) = mails_to(app, smtp, admin)
    assert str(mail["Subject"]) == "1 new opportunity in the regions you follow"
    month_in_english = first_of_a_month.strftime("%B")  # the C locale's English month names
    assert (f"Refer candidates until {month_in_english} 1, {first_of_a_month.year}: 3 places"
            in str(mail.get_body(("plain",)).get_content()))  # type: ignore[union-attr]

    # The next morning: nothing new, no mail.
    mail_at(due + timedelta(days=1))
    assert len(mails_to(app, smtp, marked)) == 1
    with app.app_context(), db.job_session() as session:
        assert session.scalar(select(Opportunity.status).where(
            Opportunity.id == uuid.UUID(opportunity["id"]))) == "open"


def test_the_portal_says_why_an_acceptance_beyond_the_places_is_refused(
        app: Flask, network: Network) -> None:
    sender, partner = network.partner(), network.partner(kind="regional_partner", region="01")
    opportunity = publish(partner, places=1)
    legs = [sender.refer(partner, opportunity_id=opportunity["id"]) for _ in range(2)]
    assert accept(partner, legs[0]["id"]).status_code == 200
    assert partner.act(legs[1]["id"], "acknowledge").status_code == 200
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(partner.organization_id))
    staff = Person.logged_in(app, make_user(app, organization, "partner_staff"))

    refused = staff.post(f"/legs/{legs[1]['id']}/accept", {})
    assert refused.status_code == 409
    assert "places de cette offre sont prises" in text_of(refused)
    assert "orienter la personne ailleurs" in text_of(refused)
    assert "publiez une nouvelle offre" in text_of(refused)
    # Withdrawing it once filled changes nothing, and the page says so.
    withdrawn = staff.post(f"/opportunities/{opportunity['id']}/withdraw", {},
                           follow_redirects=True)
    assert "Cette offre était déjà fermée (places comblées) : rien n’a changé." in text_of(
        withdrawn)
    assert partner.get(f"/api/v1/opportunities/{opportunity['id']}").get_json()[
        "closed_reason"] == "places_filled"
